"""Saves a Writer document through a running LibreOffice, as a user's Save does.

Usage: python3 libreoffice_save.py PIPE PATH TEXT
Opens PATH (or makes a new document when it does not exist), sets its text to TEXT, stores it
(store() for an existing file: the real Save path) and closes it. LibreOffice must be listening
with --accept=pipe,name=PIPE;urp;
"""
import os, sys, time, uno
from com.sun.star.beans import PropertyValue

def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p

pipe, path, text = sys.argv[1], sys.argv[2], sys.argv[3]
local = uno.getComponentContext()
resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
for _ in range(300):
    try:
        ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
        break
    except Exception:
        time.sleep(0.1)
else:
    sys.exit("LibreOffice did not answer on its pipe")
desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
url = uno.systemPathToFileUrl(path)
if os.path.exists(path):
    doc = desktop.loadComponentFromURL(url, "_blank", 0, (prop("Hidden", True),))
    doc.Text.setString(text)
    doc.store()
else:
    doc = desktop.loadComponentFromURL("private:factory/swriter", "_blank", 0, (prop("Hidden", True),))
    doc.Text.setString(text)
    doc.storeAsURL(url, (prop("FilterName", "writer8"),))
doc.close(True)
