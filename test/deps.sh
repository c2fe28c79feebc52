#!/usr/bin/env bash
# Makes sure this machine has what `make run`, `make test` or `make bench` needs
# (deps.sh run|test|bench). As root it installs what is missing with apt-get; otherwise it
# names the packages and fails. `deps.sh --list WHAT` only prints the missing packages.
set -euo pipefail

list=false
if [[ ${1:-} == --list ]]; then
  list=true
  shift
fi

# Each need is CHECK:PACKAGE, where CHECK is a command on PATH or, starting with /, a file:
# the check is what the tests use, not something another package may bring (LibreOffice's
# soffice command comes with libreoffice-common, without the Writer module the tests drive).
# DEPS_ROOT prefixes the files (for deps.sh's own test).
writer=/usr/lib/libreoffice/program/libswlo.so
uno=/usr/lib/python3/dist-packages/uno.py
fruit='/usr/lib/*/samba/vfs/fruit.so' # the share Mac clients need (vfs_fruit)
case "${1:-test}" in
  run)  want="fusermount3:fuse3 getfattr:attr" ;;
  test) want="fusermount3:fuse3 getfattr:attr umount:mount rsync:rsync unzip:unzip ffmpeg:ffmpeg vim.basic:vim gio:libglib2.0-bin curl:curl jq:jq soffice:libreoffice-writer-nogui $writer:libreoffice-writer-nogui $uno:python3-uno dbus-daemon:dbus-daemon smbd:samba smbclient:smbclient $fruit:samba-vfs-modules" ;;
  bench) want="fusermount3:fuse3 getfattr:attr umount:mount curl:curl rclone:rclone" ;;
  *)    echo "usage: $0 [--list] run|test|bench" >&2; exit 2 ;;
esac

missing=()
for w in $want; do
  check=${w%%:*} pkg=${w#*:}
  if [[ $check == /* ]]; then
    compgen -G "${DEPS_ROOT:-}$check" >/dev/null && continue
  else
    command -v "$check" >/dev/null && continue
  fi
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
done

if $list; then
  echo "${missing[*]}"
  exit 0
fi

command -v go >/dev/null || { echo "deps: Go is not on PATH; install Go 1.26 or later (https://go.dev/dl/)" >&2; exit 1; }

if [[ ! -e /dev/fuse ]]; then
  echo "deps: /dev/fuse is missing, so nothing can be mounted here (load the fuse module, or give the container --device /dev/fuse --cap-add SYS_ADMIN)" >&2
fi

((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "deps: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
exit 1
