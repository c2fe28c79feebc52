package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// countingFS tells the Observer of every request the kernel makes and how it was answered
// (imsfs_fuse_operations_total). It wraps the node file system that go-fuse builds, as
// gofs.Mount would serve it; what it does not list (forget, interrupt, init) passes uncounted.
type countingFS struct {
	fuse.RawFileSystem
	obs Observer
}

func (c *countingFS) count(op string, st fuse.Status) fuse.Status {
	errno := ""
	if st != fuse.OK {
		errno = errnoName(syscall.Errno(st))
	}
	c.obs.Operation(op, errno)
	return st
}

func (c *countingFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return c.count("lookup", c.RawFileSystem.Lookup(cancel, header, name, out))
}

func (c *countingFS) GetAttr(cancel <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return c.count("getattr", c.RawFileSystem.GetAttr(cancel, input, out))
}

func (c *countingFS) SetAttr(cancel <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return c.count("setattr", c.RawFileSystem.SetAttr(cancel, input, out))
}

func (c *countingFS) Mknod(cancel <-chan struct{}, input *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return c.count("mknod", c.RawFileSystem.Mknod(cancel, input, name, out))
}

func (c *countingFS) Mkdir(cancel <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return c.count("mkdir", c.RawFileSystem.Mkdir(cancel, input, name, out))
}

func (c *countingFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	return c.count("unlink", c.RawFileSystem.Unlink(cancel, header, name))
}

func (c *countingFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	return c.count("rmdir", c.RawFileSystem.Rmdir(cancel, header, name))
}

func (c *countingFS) Rename(cancel <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) fuse.Status {
	return c.count("rename", c.RawFileSystem.Rename(cancel, input, oldName, newName))
}

func (c *countingFS) Link(cancel <-chan struct{}, input *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	return c.count("link", c.RawFileSystem.Link(cancel, input, name, out))
}

func (c *countingFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) fuse.Status {
	return c.count("symlink", c.RawFileSystem.Symlink(cancel, header, pointedTo, linkName, out))
}

func (c *countingFS) Access(cancel <-chan struct{}, input *fuse.AccessIn) fuse.Status {
	return c.count("access", c.RawFileSystem.Access(cancel, input))
}

func (c *countingFS) SetXAttr(cancel <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return c.count("setxattr", c.RawFileSystem.SetXAttr(cancel, input, attr, data))
}

func (c *countingFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	return c.count("removexattr", c.RawFileSystem.RemoveXAttr(cancel, header, attr))
}

func (c *countingFS) Create(cancel <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return c.count("create", c.RawFileSystem.Create(cancel, input, name, out))
}

func (c *countingFS) Open(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return c.count("open", c.RawFileSystem.Open(cancel, input, out))
}

func (c *countingFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return c.count("lseek", c.RawFileSystem.Lseek(cancel, in, out))
}

func (c *countingFS) Flush(cancel <-chan struct{}, input *fuse.FlushIn) fuse.Status {
	return c.count("flush", c.RawFileSystem.Flush(cancel, input))
}

func (c *countingFS) Fsync(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	return c.count("fsync", c.RawFileSystem.Fsync(cancel, input))
}

func (c *countingFS) Fallocate(cancel <-chan struct{}, input *fuse.FallocateIn) fuse.Status {
	return c.count("fallocate", c.RawFileSystem.Fallocate(cancel, input))
}

func (c *countingFS) OpenDir(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return c.count("opendir", c.RawFileSystem.OpenDir(cancel, input, out))
}

func (c *countingFS) ReadDir(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return c.count("readdir", c.RawFileSystem.ReadDir(cancel, input, out))
}

func (c *countingFS) ReadDirPlus(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return c.count("readdirplus", c.RawFileSystem.ReadDirPlus(cancel, input, out))
}

func (c *countingFS) FsyncDir(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	return c.count("fsyncdir", c.RawFileSystem.FsyncDir(cancel, input))
}

func (c *countingFS) StatFs(cancel <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return c.count("statfs", c.RawFileSystem.StatFs(cancel, input, out))
}

func (c *countingFS) Statx(cancel <-chan struct{}, input *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return c.count("statx", c.RawFileSystem.Statx(cancel, input, out))
}

func (c *countingFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	b, st := c.RawFileSystem.Readlink(cancel, header)
	return b, c.count("readlink", st)
}

func (c *countingFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	n, st := c.RawFileSystem.GetXAttr(cancel, header, attr, dest)
	return n, c.count("getxattr", st)
}

func (c *countingFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	n, st := c.RawFileSystem.ListXAttr(cancel, header, dest)
	return n, c.count("listxattr", st)
}

func (c *countingFS) Read(cancel <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	r, st := c.RawFileSystem.Read(cancel, input, buf)
	return r, c.count("read", st)
}

func (c *countingFS) Write(cancel <-chan struct{}, input *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	n, st := c.RawFileSystem.Write(cancel, input, data)
	return n, c.count("write", st)
}

func (c *countingFS) CopyFileRange(cancel <-chan struct{}, input *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	n, st := c.RawFileSystem.CopyFileRange(cancel, input)
	return n, c.count("copy_file_range", st)
}

func (c *countingFS) Release(cancel <-chan struct{}, input *fuse.ReleaseIn) {
	c.RawFileSystem.Release(cancel, input)
	c.obs.Operation("release", "")
}

func (c *countingFS) ReleaseDir(input *fuse.ReleaseIn) {
	c.RawFileSystem.ReleaseDir(input)
	c.obs.Operation("releasedir", "")
}
