// Package powercut is a test filesystem whose one job is to lose, on demand, exactly what a
// power cut loses: everything not yet fsynced.
//
// It is a FUSE pass-through (go-fuse) to a backing directory. The backing directory always
// holds what the kernel's page cache would hold; for every change not yet made durable the
// filesystem keeps, in memory, what the disk holds instead (the file's bytes at its last sync,
// and an undo entry for each create, rename, unlink, mkdir and rmdir). Cut freezes it (every
// later call fails with EIO, as a dead disk would), puts back the durable image and leaves the
// mount to be unmounted; mounting the backing directory again is the reboot.
//
// The model, deliberately strict (POSIX, not ext4's kindness):
//   - a file's bytes and size are durable after fsync or fdatasync of that file (or a write
//     through an O_SYNC/O_DSYNC handle);
//   - a name change in a directory (create, mkdir, mknod, symlink, unlink, rmdir, rename) is
//     durable only after an fsync of that directory; a rename between two directories after an
//     fsync of either (journalled filesystems commit it as one);
//   - fsync of a file does not make its directory entry durable;
//   - with Reorder, each unsynced write or truncate independently survives or not, as disks
//     write back pages in any order; without it none survive.
//
// Not modelled: mode, owner and times (never rolled back), hard links (refused), xattrs, a
// write torn inside one call, metadata journalling that makes one directory's fsync commit
// another's changes. A file unlinked while open and then written is not rolled back.
package powercut

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is one mount.
type FS struct {
	backing string // the files: backing/root; unlinked ones wait in backing/attic
	mnt     string
	server  *fuse.Server
	conn    uint64 // fusectl connection number
	reorder *rand.Rand

	mu     sync.Mutex
	frozen atomic.Bool // set under mu; read without it by reads
	seq    int
	dirty  map[uint64]*dirtyFile // by backing inode: files with unsynced bytes
	undo   []*nsChange           // name changes not yet durable, oldest first
	stats  Stats
}

// Stats counts what a cut threw away.
type Stats struct {
	Syncs        int // file fsyncs
	DirSyncs     int // directory fsyncs
	FilesRolled  int // files whose unsynced bytes were dropped (in whole or part)
	NamesRolled  int // name changes undone
	WritesKept   int // unsynced writes a Reorder cut let survive
	WritesLost   int // unsynced writes dropped
	PendingNames int // name changes waiting for a directory fsync at the cut
}

type dirtyFile struct {
	durable []byte // content at the last sync (nil and !existed: created since)
	writes  []write
}

type write struct {
	off      int64
	data     []byte
	truncate bool // a size change to off
}

type nsChange struct {
	dirs []uint64 // directories whose fsync makes it durable
	ino  uint64   // the inode it names (0: none)
	undo func() error
	what string
}

// Options of a mount.
type Options struct {
	// Reorder, when set, makes each unsynced write survive a cut with probability 1/2.
	Reorder *rand.Rand
}

// Mount serves backing/root at mnt (created if needed). The attic of a previous mount is
// emptied: what it held was unlinked durably or put back.
func Mount(backing, mnt string, opts Options) (*FS, error) {
	root := filepath.Join(backing, "root")
	attic := filepath.Join(backing, "attic")
	if err := os.RemoveAll(attic); err != nil {
		return nil, err
	}
	for _, d := range []string{root, attic, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	p := &FS{backing: backing, mnt: mnt, reorder: opts.Reorder, dirty: map[uint64]*dirtyFile{}}
	lr := &gofs.LoopbackRoot{Path: root}
	lr.NewNode = func(r *gofs.LoopbackRoot, _ *gofs.Inode, _ string, _ *syscall.Stat_t) gofs.InodeEmbedder {
		return &node{LoopbackNode: gofs.LoopbackNode{RootData: r}, p: p}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil {
		return nil, err
	}
	lr.Dev = uint64(st.Dev)
	rootNode := lr.NewNode(lr, nil, "", &st)
	lr.RootNode = rootNode
	srv, err := gofs.Mount(mnt, rootNode, &gofs.Options{MountOptions: fuse.MountOptions{
		DirectMountStrict: true, FsName: "powercut", Name: "powercut", AllowOther: true,
	}})
	if err != nil {
		return nil, fmt.Errorf("powercut: mounting %s: %w", mnt, err)
	}
	p.server = srv
	if err := syscall.Stat(mnt, &st); err == nil {
		p.conn = uint64((st.Dev & 0xff) | ((st.Dev >> 12) & 0xfff00))
	}
	return p, nil
}

// Dir is where the filesystem is mounted.
func (p *FS) Dir() string { return p.mnt }

// Cut freezes the filesystem and puts back its durable image: after it returns nothing more
// reaches the backing directory. Kill the processes using it, then Unmount.
func (p *FS) Cut() (Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen.Load() {
		return p.stats, nil
	}
	p.frozen.Store(true)
	root := filepath.Join(p.backing, "root")
	var errs []error
	p.stats.PendingNames = len(p.undo)
	for i := len(p.undo) - 1; i >= 0; i-- {
		if err := p.undo[i].undo(); err != nil {
			errs = append(errs, fmt.Errorf("undoing %s: %w", p.undo[i].what, err))
		}
		p.stats.NamesRolled++
	}
	p.undo = nil
	// Where each dirty inode lives now that the names are back.
	where := map[uint64]string{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				where[fi.Sys().(*syscall.Stat_t).Ino] = path
			}
		}
		return nil
	})
	for ino, df := range p.dirty {
		path, ok := where[ino]
		if !ok {
			continue // its name did not survive
		}
		data := append([]byte(nil), df.durable...)
		if p.reorder != nil {
			for _, w := range df.writes {
				if p.reorder.IntN(2) == 0 {
					p.stats.WritesLost++
					continue
				}
				p.stats.WritesKept++
				if w.truncate {
					if int64(len(data)) > w.off {
						data = data[:w.off]
					} else {
						data = append(data, make([]byte, w.off-int64(len(data)))...)
					}
					continue
				}
				if end := w.off + int64(len(w.data)); end > int64(len(data)) {
					data = append(data, make([]byte, end-int64(len(data)))...)
				}
				copy(data[w.off:], w.data)
			}
		} else {
			p.stats.WritesLost += len(df.writes)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			errs = append(errs, err)
		}
		p.stats.FilesRolled++
	}
	p.dirty = map[uint64]*dirtyFile{}
	return p.stats, errors.Join(errs...)
}

// Unmount unmounts (after Cut, or cleanly: then the page cache state is what stays, as after
// a clean shutdown). A file still open on it, even by this process, cannot hold it up: the
// kernel's connection is aborted, as a disk without power answers nothing.
func (p *FS) Unmount() error {
	p.mu.Lock()
	p.frozen.Store(true)
	p.mu.Unlock()
	if err := p.server.Unmount(); err == nil {
		p.server.Wait()
		return nil
	}
	abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", p.conn)
	if _, err := os.Stat(abort); err != nil {
		// fusectl is not always mounted; mounting it is harmless.
		syscall.Mount("none", "/sys/fs/fuse/connections", "fusectl", 0, "")
	}
	aerr := os.WriteFile(abort, []byte("1"), 0o200)
	if err := syscall.Unmount(p.mnt, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("powercut: unmounting %s: %w (abort: %v)", p.mnt, err, aerr)
	}
	if aerr != nil {
		return fmt.Errorf("powercut: %s detached but its connection not aborted: %w", p.mnt, aerr)
	}
	p.server.Wait()
	return nil
}

// lock takes the filesystem for one change; a frozen filesystem refuses all.
func (p *FS) lock() syscall.Errno {
	p.mu.Lock()
	if p.frozen.Load() {
		p.mu.Unlock()
		return syscall.EIO
	}
	return 0
}

// touch notes that inode ino at path is about to change, keeping its durable content first.
func (p *FS) touch(ino uint64, path string, w write) {
	df := p.dirty[ino]
	if df == nil {
		b, _ := os.ReadFile(path)
		df = &dirtyFile{durable: b}
		p.dirty[ino] = df
	}
	if p.reorder != nil {
		w.data = append([]byte(nil), w.data...)
	} else {
		w.data = nil // only the count matters
	}
	df.writes = append(df.writes, w)
}

func (p *FS) synced(ino uint64) {
	delete(p.dirty, ino)
	p.stats.Syncs++
}

func (p *FS) dirSynced(dir uint64) {
	p.stats.DirSyncs++
	kept := p.undo[:0]
	for _, c := range p.undo {
		durable := false
		for _, d := range c.dirs {
			durable = durable || d == dir
		}
		if !durable {
			kept = append(kept, c)
		}
	}
	p.undo = kept
}

func (p *FS) attic() string {
	p.seq++
	return filepath.Join(p.backing, "attic", fmt.Sprint(p.seq))
}

func inoOf(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// removeIfIno undoes a creation: the name goes if it still names the created inode.
func removeIfIno(path string, ino uint64) func() error {
	return func() error {
		if inoOf(path) != ino {
			return nil // renamed away durably since, or already gone
		}
		return os.RemoveAll(path)
	}
}

type node struct {
	gofs.LoopbackNode
	p *FS
}

func (n *node) ino() uint64 { return n.StableAttr().Ino }

func (n *node) full() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) created(name string, kind string) {
	path := filepath.Join(n.full(), name)
	n.p.undo = append(n.p.undo, &nsChange{dirs: []uint64{n.ino()}, ino: inoOf(path),
		undo: removeIfIno(path, inoOf(path)), what: kind + " " + path})
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.p.lock(); e != 0 {
		return nil, nil, 0, e
	}
	defer n.p.mu.Unlock()
	path := filepath.Join(n.full(), name)
	existed := inoOf(path) != 0
	if existed && flags&syscall.O_TRUNC != 0 {
		n.p.touch(inoOf(path), path, write{truncate: true})
	}
	in, fh, ff, e := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if e != 0 {
		return in, fh, ff, e
	}
	if !existed {
		n.created(name, "create")
		n.p.dirty[inoOf(path)] = &dirtyFile{}
	}
	return in, n.p.wrap(fh, in.Operations().(*node), flags), ff, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := n.p.lock(); e != 0 {
		return nil, 0, e
	}
	defer n.p.mu.Unlock()
	if flags&syscall.O_TRUNC != 0 {
		n.p.touch(n.ino(), n.full(), write{truncate: true})
	}
	fh, ff, e := n.LoopbackNode.Open(ctx, flags)
	if e != 0 {
		return fh, ff, e
	}
	return n.p.wrap(fh, n, flags), ff, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.p.lock(); e != 0 {
		return nil, e
	}
	defer n.p.mu.Unlock()
	in, e := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if e == 0 {
		n.created(name, "mkdir")
	}
	return in, e
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.p.lock(); e != 0 {
		return nil, e
	}
	defer n.p.mu.Unlock()
	in, e := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if e == 0 {
		n.created(name, "mknod")
	}
	return in, e
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := n.p.lock(); e != 0 {
		return nil, e
	}
	defer n.p.mu.Unlock()
	in, e := n.LoopbackNode.Symlink(ctx, target, name, out)
	if e == 0 {
		n.created(name, "symlink")
	}
	return in, e
}

// Link is refused: hard links are not modelled.
func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

// CopyFileRange is refused so the kernel falls back to reads and writes, which are tracked.
func (n *node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOTSUP
}

// unlink moves the name to the attic, so that undoing it can put the durable file back.
func (n *node) unlink(name, what string) syscall.Errno {
	if e := n.p.lock(); e != 0 {
		return e
	}
	defer n.p.mu.Unlock()
	path := filepath.Join(n.full(), name)
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return gofs.ToErrno(err)
	}
	if what == "rmdir" {
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return syscall.ENOTDIR
		}
		if ents, _ := os.ReadDir(path); len(ents) > 0 {
			return syscall.ENOTEMPTY
		}
	} else if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.EISDIR
	}
	to := n.p.attic()
	if err := os.Rename(path, to); err != nil {
		return gofs.ToErrno(err)
	}
	n.p.undo = append(n.p.undo, &nsChange{dirs: []uint64{n.ino()}, undo: func() error {
		return os.Rename(to, path)
	}, what: what + " " + path})
	return 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.unlink(name, "unlink")
}
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno { return n.unlink(name, "rmdir") }

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&^uint32(unix_RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and whiteouts are not modelled
	}
	if e := n.p.lock(); e != 0 {
		return e
	}
	defer n.p.mu.Unlock()
	np := newParent.(*node)
	from := filepath.Join(n.full(), name)
	to := filepath.Join(np.full(), newName)
	if inoOf(from) == 0 {
		return syscall.ENOENT
	}
	replaced := ""
	if inoOf(to) != 0 {
		if flags != 0 {
			return syscall.EEXIST
		}
		if fi, err := os.Stat(to); err == nil && fi.IsDir() {
			if ents, _ := os.ReadDir(to); len(ents) > 0 {
				return syscall.ENOTEMPTY
			}
		}
		replaced = n.p.attic()
		if err := os.Rename(to, replaced); err != nil {
			return gofs.ToErrno(err)
		}
	}
	if err := os.Rename(from, to); err != nil {
		if replaced != "" {
			os.Rename(replaced, to)
		}
		return gofs.ToErrno(err)
	}
	n.p.undo = append(n.p.undo, &nsChange{dirs: []uint64{n.ino(), np.ino()}, undo: func() error {
		err := os.Rename(to, from)
		if replaced != "" {
			err = errors.Join(err, os.Rename(replaced, to))
		}
		return err
	}, what: "rename " + from + " to " + to})
	return 0
}

const unix_RENAME_NOREPLACE = 1

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.p.lock(); e != 0 {
		return e
	}
	defer n.p.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		n.p.touch(n.ino(), n.full(), write{off: int64(sz), truncate: true})
	}
	if h, ok := f.(*handle); ok {
		f = h.f
	}
	return n.LoopbackNode.Setattr(ctx, f, in, out)
}

// Fsync makes a file's bytes, or a directory's name changes, durable.
func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	if e := n.p.lock(); e != 0 {
		return e
	}
	defer n.p.mu.Unlock()
	if n.IsDir() {
		n.p.dirSynced(n.ino())
	} else {
		n.p.synced(n.ino())
	}
	return 0 // the backing directory's own durability does not matter here
}

// OpendirHandle returns a handle whose fsyncdir reaches Fsync above.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.p.frozen.Load() {
		return nil, 0, syscall.EIO
	}
	ds, e := gofs.NewLoopbackDirStream(n.full())
	if e != 0 {
		return nil, 0, e
	}
	return &dirHandle{ds: ds, n: n}, 0, 0
}

type dirHandle struct {
	ds gofs.DirStream
	n  *node
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.ds.(gofs.FileReaddirenter).Readdirent(ctx)
}
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.ds.(gofs.FileSeekdirer).Seekdir(ctx, off)
}
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.ds.(gofs.FileReleasedirer).Releasedir(ctx, flags)
}
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.Fsync(ctx, nil, flags)
}

// handle is an open file: its writes are noted before they reach the backing file.
type handle struct {
	f    gofs.FileHandle
	n    *node
	sync bool // O_SYNC or O_DSYNC: each write is durable when it returns
}

func (p *FS) wrap(fh gofs.FileHandle, n *node, flags uint32) gofs.FileHandle {
	return &handle{f: fh, n: n, sync: flags&(syscall.O_SYNC|syscall.O_DSYNC) != 0}
}

func (h *handle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.n.p.frozen.Load() {
		return nil, syscall.EIO
	}
	return h.f.(gofs.FileReader).Read(ctx, buf, off)
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	p := h.n.p
	if e := p.lock(); e != 0 {
		return 0, e
	}
	defer p.mu.Unlock()
	if !h.sync {
		p.touch(h.n.ino(), h.n.full(), write{off: off, data: data})
	}
	return h.f.(gofs.FileWriter).Write(ctx, data, off)
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.n.Fsync(ctx, h, flags)
}

func (h *handle) Flush(ctx context.Context) syscall.Errno {
	return h.f.(gofs.FileFlusher).Flush(ctx)
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	return h.f.(gofs.FileReleaser).Release(ctx)
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.f.(gofs.FileGetattrer).Getattr(ctx, out)
}

func (h *handle) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.n.Setattr(ctx, h, in, out)
}

func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.f.(gofs.FileLseeker).Lseek(ctx, off, whence)
}

func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	p := h.n.p
	if e := p.lock(); e != 0 {
		return e
	}
	defer p.mu.Unlock()
	p.touch(h.n.ino(), h.n.full(), write{off: int64(off), data: make([]byte, 0)})
	return h.f.(gofs.FileAllocater).Allocate(ctx, off, size, mode)
}

// InProcessEnv, set to 1, lets tests mount the filesystem in their own process and use it
// from that same process (`make soak` sets it). Off by default: a process that serves a FUSE
// mount and blocks on it in one runtime can deadlock (a stop-the-world while its own request
// waits), and a test binary stuck so in the kernel cannot even be killed — it hung a
// `make test` run. The agent's power-cut test keeps running: there the agent is another process.
const InProcessEnv = "LOA_FUSE_INPROCESS"

// SkipInProcess skips a test that would serve and use a mount in one process unless
// InProcessEnv is set.
func SkipInProcess(t interface{ Skip(...any) }) {
	if os.Getenv(InProcessEnv) != "1" {
		t.Skip("serves and uses a FUSE mount in one process, which can deadlock; `make soak` runs it (" + InProcessEnv + "=1)")
	}
}

// TB is what AcrossACut needs of a test (*testing.T satisfies it).
type TB interface {
	Helper()
	Skip(...any)
	Skipf(string, ...any)
	Fatal(...any)
	Cleanup(func())
	TempDir() string
}

// AcrossACut is the shape of an in-process power-cut regression: it mounts a fresh power-cut
// filesystem, lets write change it (write returns how to close what it opened, or nil), cuts
// the power, closes, mounts again (the reboot) and lets check look at what survived. Both get
// the mount's directory. It skips unless in-process mounts are asked for (SkipInProcess).
func AcrossACut(t TB, write func(dir string) (closeAll func()), check func(dir string)) {
	t.Helper()
	SkipInProcess(t)
	backing := t.TempDir()
	mnt := filepath.Join(backing, "mnt")
	pc, err := Mount(backing, mnt, Options{})
	if err != nil {
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	closeAll := write(mnt)
	if _, err := pc.Cut(); err != nil {
		t.Fatal(err)
	}
	if closeAll != nil {
		closeAll()
	}
	pc.Unmount()
	if pc, err = Mount(backing, mnt, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Unmount() })
	check(mnt)
}

// Runner is what Schedule needs of a test (*testing.T satisfies it).
type Runner interface {
	Helper()
	Logf(string, ...any)
	Fatalf(string, ...any)
}

// Schedule is a power-cut test's plan: how many cuts (the environment variable countEnv, e.g.
// LOA_POWERCUTS, or def) and the random source of its choices, seeded from LOA_POWERCUT_SEED
// when set (it repeats the choices, not the timing) or from the clock, and logged either way.
// stream tells tests apart that use the same seed.
func Schedule(t Runner, countEnv string, def int, stream uint64) (cuts int, rng *rand.Rand) {
	t.Helper()
	cuts = def
	if s := os.Getenv(countEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a whole number of cuts, e.g. 100", countEnv, s)
		}
		cuts = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LOA_POWERCUT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LOA_POWERCUT_SEED=%q: want the seed a run logged, a whole number", s)
		}
		seed = n
	}
	t.Logf("seed %d (LOA_POWERCUT_SEED repeats the choices, not the timing)", seed)
	return cuts, rand.New(rand.NewPCG(seed, stream))
}
