// Package content is the agent's content-addressed store: media files named by the sha256 of
// their bytes, written atomically so that a power cut never leaves a half file under a real
// name, verified before they are served, and kept inside a size budget.
//
// Layout under the store directory:
//
//	objects/<64 hex>   the items
//	verified/<64 hex>  marker: the item hashed right when its size, mtime, ctime and inode were these
//	tmp/               Put's temp files (removed at Open: only a crash leaves them)
//	partial/<64 hex>   Fetch's partial downloads, kept across restarts for Range resume
//	lock               flock'd while a Store is open: one process per store
//
// All of these live on one filesystem, so the final rename is atomic.
package content

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// Options configure a Store. The zero value is usable: no budget, no logging, default HTTP.
type Options struct {
	// Budget caps the bytes of stored items; 0 means no cap.
	Budget int64
	// Logger receives what a technician needs: corrupt items removed, evictions, resumes.
	Logger *slog.Logger
	// HTTPClient is used by Fetch; nil means a client with the default transport.
	HTTPClient *http.Client
	// FetchStall aborts one HTTP attempt when no byte arrived for this long (a 4G link that
	// hangs without closing). 0 means 60 s.
	FetchStall time.Duration
	// FetchAttempts bounds the requests of one Fetch call. Fetch only retries after an attempt
	// that made progress; 0 means 20.
	FetchAttempts int
	// LockWait is how long Open waits for another process to let go of the store (a
	// `loa-agent status` reading it while the agent starts) before giving up; 0: not at all.
	LockWait time.Duration
}

// Store is a content-addressed store in one directory. Its methods are safe for concurrent use.
// Only one process may open a directory at a time.
type Store struct {
	dir     string
	opts    Options
	log     *slog.Logger
	fs      fileSystem
	client  *http.Client
	lockF   *os.File
	mu      sync.Mutex
	index   map[Ref]entry
	bytes   int64        // sum of index sizes
	keep    map[Ref]bool // nil before the first Keep or GC: nothing is evictable then
	reserve int64        // bytes promised to Fetch calls in flight
	fetches map[Ref]*inflight
	hashes  atomic.Int64 // full hashes done by Open/Path/Verify (tests check the marker is trusted)
}

type entry struct {
	size  int64
	mtime time.Time
}

// Usage is what Usage reports.
type Usage struct {
	Items   int   `json:"items"`
	Bytes   int64 `json:"bytes"`
	Budget  int64 `json:"budget"`  // 0: no cap
	Partial int64 `json:"partial"` // bytes of partial downloads waiting for resume
}

// GCResult says what GC removed.
type GCResult struct {
	Removed      int   `json:"removed"`
	RemovedBytes int64 `json:"removed_bytes"`
	Partials     int   `json:"partials"`
}

// ErrNotFound is returned (wrapped) when the store does not hold a ref.
var ErrNotFound = errors.New("not in the content store")

// CorruptError: a stored file no longer hashes to its ref. The file has been removed.
type CorruptError struct {
	Ref  Ref
	Got  Ref
	Size int64
	Path string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("content %s is corrupt: %s (%d bytes) hashes to %s; removed it, fetch it again",
		e.Ref, e.Path, e.Size, e.Got)
}

// MismatchError: bytes offered to Put or Fetch do not hash to the expected ref. Nothing was stored.
type MismatchError struct {
	Source string // "input", a file path or a URL
	Want   Ref
	Got    Ref
	Size   int64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("content from %s: want %s, got %s (%d bytes); nothing stored",
		e.Source, e.Want, e.Got, e.Size)
}

// BudgetError: an item does not fit in the budget even after evicting everything evictable.
type BudgetError struct {
	Need      int64 // size of the item
	AtLeast   bool  // Put from a reader stopped reading at Need bytes: the item is larger
	Used      int64 // bytes stored now, including downloads in flight
	Protected int64 // bytes of items the schedules need (not evictable)
	Budget    int64
}

func (e *BudgetError) Error() string {
	size := fmt.Sprintf("%d bytes", e.Need)
	if e.AtLeast {
		size = fmt.Sprintf("at least %d bytes", e.Need)
	}
	return fmt.Sprintf("content store budget exceeded: an item of %s does not fit: budget %d bytes, "+
		"%d bytes stored of which %d needed by the schedules; raise the storage budget or remove programs",
		size, e.Budget, e.Used, e.Protected)
}

// Open opens (creating if needed) the store in dir. It removes temp files a crash left behind
// and indexes the items without hashing them (Open/Path verify lazily).
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{dir: dir, opts: opts, log: opts.Logger, fs: osFS{}, client: opts.HTTPClient,
		index: map[Ref]entry{}, fetches: map[Ref]*inflight{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.opts.FetchStall <= 0 {
		s.opts.FetchStall = 60 * time.Second
	}
	if s.opts.FetchAttempts <= 0 {
		s.opts.FetchAttempts = 20
	}
	if opts.Budget < 0 {
		return nil, fmt.Errorf("content store %s: negative budget %d", dir, opts.Budget)
	}
	for _, sub := range []string{"objects", "verified", "tmp", "partial"} {
		// Durably: a store whose directory a power cut takes away loses items it had synced.
		if err := atomicfile.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	for deadline := time.Now().Add(opts.LockWait); ; time.Sleep(50 * time.Millisecond) {
		err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || !time.Now().Before(deadline) {
			lf.Close()
			return nil, fmt.Errorf("content store %s is in use by another process (%v); stop it first", dir, err)
		}
	}
	s.lockF = lf
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the directory lock.
func (s *Store) Close() error {
	if s.lockF == nil {
		return nil
	}
	err := s.lockF.Close() // closing drops the flock
	s.lockF = nil
	return err
}

// Dir returns the store directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) objectPath(r Ref) string  { return filepath.Join(s.dir, "objects", r.Hex()) }
func (s *Store) markerPath(r Ref) string  { return filepath.Join(s.dir, "verified", r.Hex()) }
func (s *Store) partialPath(r Ref) string { return filepath.Join(s.dir, "partial", r.Hex()) }

func (s *Store) load() error {
	tmps, err := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, t := range tmps {
		p := filepath.Join(s.dir, "tmp", t.Name())
		if err := os.RemoveAll(p); err != nil {
			s.log.Warn("cannot remove a temp file left by a crash", "path", p, "err", err)
		}
	}
	objs, err := os.ReadDir(filepath.Join(s.dir, "objects"))
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	for _, o := range objs {
		r, err := ParseRef(protocol.ContentRefPrefix + o.Name())
		if err != nil || !o.Type().IsRegular() {
			s.log.Warn("ignoring a file that is not a store item", "path", filepath.Join(s.dir, "objects", o.Name()))
			continue
		}
		fi, err := o.Info()
		if err != nil {
			continue // removed meanwhile
		}
		s.index[r] = entry{size: fi.Size(), mtime: fi.ModTime()}
		s.bytes += fi.Size()
	}
	// Markers without an item are useless; drop them so they cannot match a later file.
	marks, _ := os.ReadDir(filepath.Join(s.dir, "verified"))
	for _, m := range marks {
		r, err := ParseRef(protocol.ContentRefPrefix + m.Name())
		if _, ok := s.index[r]; err != nil || !ok {
			os.Remove(filepath.Join(s.dir, "verified", m.Name()))
		}
	}
	return nil
}

// Has reports whether the store holds ref (without verifying it).
func (s *Store) Has(ref Ref) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[ref]
	return ok
}

// Usage reports the items and bytes stored and the budget.
func (s *Store) Usage() Usage {
	s.mu.Lock()
	u := Usage{Items: len(s.index), Bytes: s.bytes, Budget: s.opts.Budget}
	s.mu.Unlock()
	parts, _ := os.ReadDir(filepath.Join(s.dir, "partial"))
	for _, p := range parts {
		if fi, err := p.Info(); err == nil {
			u.Partial += fi.Size()
		}
	}
	return u
}

// Refs lists the stored refs (unverified).
func (s *Store) Refs() []Ref {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ref, 0, len(s.index))
	for r := range s.index {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

// Open returns the item for reading, verified: the first time (or after the file changed) it
// is hashed in full; afterwards a marker holding size, mtime, ctime and inode is trusted. A file
// that does not hash to its ref is removed and a *CorruptError returned.
func (s *Store) Open(ref Ref) (*os.File, error) {
	f, err := s.open(ref, false)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the item's file path after the same verification as Open (for players that take
// a path). The path stays valid until GC or eviction removes the item.
func (s *Store) Path(ref Ref) (string, error) {
	f, err := s.open(ref, false)
	if err != nil {
		return "", err
	}
	f.Close()
	return s.objectPath(ref), nil
}

// Verify hashes the item in full whatever its marker says; a corrupt item is removed.
func (s *Store) Verify(ref Ref) error {
	f, err := s.open(ref, true)
	if err != nil {
		return err
	}
	return f.Close()
}

func (s *Store) open(ref Ref, force bool) (*os.File, error) {
	p := s.objectPath(ref)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		s.forget(ref)
		return nil, fmt.Errorf("content %s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("content %s: %w", ref, err)
	}
	before, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content %s: %w", ref, err)
	}
	if !force && s.markerMatches(ref, before) {
		return f, nil
	}
	s.hashes.Add(1)
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("content %s: reading %s: %w", ref, p, err)
	}
	var got Ref
	h.Sum(got[:0])
	if got != ref {
		f.Close()
		s.removeItem(ref)
		err := &CorruptError{Ref: ref, Got: got, Size: n, Path: p}
		s.log.Error("removed a corrupt content item", "ref", ref.String(), "found", got.String(), "bytes", n, "path", p)
		return nil, err
	}
	// Only trust what we hashed: if the file changed while we read it, leave no marker.
	if after, err := f.Stat(); err == nil && sameFile(before, after) {
		s.writeMarker(ref, after)
	}
	s.mu.Lock()
	if _, ok := s.index[ref]; !ok { // copied in by hand since Open: count it
		s.index[ref] = entry{size: n, mtime: before.ModTime()}
		s.bytes += n
	}
	s.mu.Unlock()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("content %s: %w", ref, err)
	}
	return f, nil
}

// marker is the identity of a verified file. Any write to the file changes ctime (which no
// user call can set back), a replaced file has a new inode: either makes the marker stale.
func marker(fi os.FileInfo) string {
	m := fmt.Sprintf("v1 size=%d mtime=%d", fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m += fmt.Sprintf(" ctime=%d.%09d ino=%d dev=%d", st.Ctim.Sec, st.Ctim.Nsec, st.Ino, st.Dev)
	}
	return m + "\n"
}

func sameFile(a, b os.FileInfo) bool { return marker(a) == marker(b) }

func (s *Store) markerMatches(ref Ref, fi os.FileInfo) bool {
	b, err := os.ReadFile(s.markerPath(ref))
	return err == nil && string(b) == marker(fi)
}

// writeMarker is not fsync'd: losing a marker only costs one more hash.
func (s *Store) writeMarker(ref Ref, fi os.FileInfo) {
	p := s.markerPath(ref)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(marker(fi)), 0o644); err == nil {
		err = os.Rename(tmp, p)
		if err != nil {
			os.Remove(tmp)
		}
	}
}

func (s *Store) forget(ref Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.index[ref]; ok {
		s.bytes -= e.size
		delete(s.index, ref)
	}
}

// removeItem deletes the item and its marker.
func (s *Store) removeItem(ref Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(ref)
}

func (s *Store) removeLocked(ref Ref) error {
	os.Remove(s.markerPath(ref)) // the marker first: it must never outlive its file
	err := s.fs.Remove(s.objectPath(ref))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if e, ok := s.index[ref]; ok {
		s.bytes -= e.size
		delete(s.index, ref)
	}
	return nil
}

// Keep declares the items the active and pending schedules need. When Put or Fetch need room
// in the budget they evict other items, oldest first. Until Keep (or GC) is first called,
// nothing is evicted: at boot the store cannot know what the schedules need.
func (s *Store) Keep(refs []Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = make(map[Ref]bool, len(refs))
	for _, r := range refs {
		s.keep[r] = true
	}
}

// GC declares keep like Keep, then removes every item outside it, oldest first, and the partial
// downloads of refs outside it.
func (s *Store) GC(keep []Ref) (GCResult, error) {
	s.Keep(keep)
	s.mu.Lock()
	defer s.mu.Unlock()
	var res GCResult
	var errs []error
	for _, r := range s.evictableLocked() {
		size := s.index[r].size
		if err := s.removeLocked(r); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Removed++
		res.RemovedBytes += size
	}
	parts, _ := os.ReadDir(filepath.Join(s.dir, "partial"))
	for _, p := range parts {
		r, err := ParseRef(protocol.ContentRefPrefix + p.Name())
		if err == nil && (s.keep[r] || s.fetches[r] != nil) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, "partial", p.Name())); err == nil {
			res.Partials++
		}
	}
	if res.Removed > 0 || res.Partials > 0 {
		s.log.Info("content store cleaned", "removed", res.Removed, "bytes", res.RemovedBytes, "partials", res.Partials)
	}
	return res, errors.Join(errs...)
}

// evictableLocked lists items outside the keep set, oldest first.
func (s *Store) evictableLocked() []Ref {
	if s.keep == nil {
		return nil
	}
	var out []Ref
	for r := range s.index {
		if !s.keep[r] {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := s.index[out[i]], s.index[out[j]]
		if !a.mtime.Equal(b.mtime) {
			return a.mtime.Before(b.mtime)
		}
		return string(out[i][:]) < string(out[j][:])
	})
	return out
}

// roomLocked is the most an item could take after evicting everything evictable (-1: no cap).
func (s *Store) roomLocked() int64 {
	if s.opts.Budget == 0 {
		return -1
	}
	var evictable int64
	for _, r := range s.evictableLocked() {
		evictable += s.index[r].size
	}
	room := s.opts.Budget - s.bytes - s.reserve + evictable
	if room < 0 {
		room = 0
	}
	return room
}

// makeRoomLocked evicts unneeded items, oldest first, until need more bytes fit the budget.
func (s *Store) makeRoomLocked(need int64) error {
	if s.opts.Budget == 0 {
		return nil
	}
	if room := s.roomLocked(); need > room {
		return s.budgetErrLocked(need)
	}
	for _, r := range s.evictableLocked() {
		if s.bytes+s.reserve+need <= s.opts.Budget {
			break
		}
		size := s.index[r].size
		if err := s.removeLocked(r); err != nil {
			return fmt.Errorf("content store: evicting %s to make room: %w", r, err)
		}
		s.log.Info("evicted an item no schedule needs to make room", "ref", r.String(), "bytes", size)
	}
	if s.bytes+s.reserve+need > s.opts.Budget {
		return s.budgetErrLocked(need)
	}
	return nil
}

func (s *Store) budgetErrLocked(need int64) error {
	var evictable int64
	for _, r := range s.evictableLocked() {
		evictable += s.index[r].size
	}
	return &BudgetError{Need: need, Used: s.bytes + s.reserve, Protected: s.bytes - evictable, Budget: s.opts.Budget}
}

// Put stores the bytes of r and returns their ref. With a non-zero want, bytes that hash to
// anything else are refused with a *MismatchError and nothing is left behind. An item that does
// not fit the budget, even after evicting items outside the keep set, gets a *BudgetError.
func (s *Store) Put(r io.Reader, want Ref) (Ref, error) {
	return s.put(r, want, "input")
}

// PutFile stores a copy of a local file (see Put).
func (s *Store) PutFile(path string, want Ref) (Ref, error) {
	f, err := os.Open(path)
	if err != nil {
		return Ref{}, fmt.Errorf("content store: %w", err)
	}
	defer f.Close()
	return s.put(f, want, path)
}

func (s *Store) put(r io.Reader, want Ref, source string) (Ref, error) {
	if !want.IsZero() && s.Has(want) {
		if f, err := s.open(want, false); err == nil {
			f.Close()
			return want, nil
		}
		// corrupt and removed (logged): store it again from r
	}
	s.mu.Lock()
	room := s.roomLocked()
	s.mu.Unlock()

	tmp, err := s.fs.OpenFile(filepath.Join(s.dir, "tmp", "put-"+rand.Text()),
		os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return Ref{}, fmt.Errorf("content store: creating a temp file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			s.fs.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	src := r
	if room >= 0 {
		src = io.LimitReader(r, room+1) // never write more than could be kept
	}
	n, err := copyTo(tmp, h, src)
	if err != nil {
		return Ref{}, fmt.Errorf("content store: storing %s: %w", source, err)
	}
	if room >= 0 && n > room {
		s.mu.Lock()
		be := s.budgetErrLocked(n).(*BudgetError)
		s.mu.Unlock()
		be.AtLeast = true
		return Ref{}, fmt.Errorf("storing %s: %w", source, be)
	}
	var got Ref
	h.Sum(got[:0])
	if !want.IsZero() && got != want {
		return Ref{}, &MismatchError{Source: source, Want: want, Got: got, Size: n}
	}
	if err := tmp.Sync(); err != nil {
		return Ref{}, fmt.Errorf("content store: fsync of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return Ref{}, fmt.Errorf("content store: %w", err)
	}
	done = true
	if err := s.commit(tmp.Name(), got, n, 0); err != nil {
		s.fs.Remove(tmp.Name())
		return Ref{}, fmt.Errorf("storing %s: %w", source, err)
	}
	return got, nil
}

// commit renames a complete, fsync'd, verified temp file into objects/ and fsyncs the directory.
// reserved is what a Fetch already reserved for it.
func (s *Store) commit(tmpPath string, ref Ref, size, reserved int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserve -= reserved
	if _, ok := s.index[ref]; ok {
		s.fs.Remove(tmpPath)
		return nil
	}
	if err := s.makeRoomLocked(size); err != nil {
		return err
	}
	dst := s.objectPath(ref)
	if err := s.fs.Rename(tmpPath, dst); err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	if err := s.fs.SyncDir(filepath.Join(s.dir, "objects")); err != nil {
		// The rename may not survive a power cut; do not claim it did.
		s.fs.Remove(dst)
		return fmt.Errorf("content store: fsync of directory %s: %w", filepath.Join(s.dir, "objects"), err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	s.index[ref] = entry{size: fi.Size(), mtime: fi.ModTime()}
	s.bytes += fi.Size()
	s.writeMarker(ref, fi) // hashed as it was written
	return nil
}

// copyTo copies src into f and h, telling a disk error from a read error.
func copyTo(f io.Writer, h io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 128<<10)
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			if _, werr := f.Write(buf[:k]); werr != nil {
				if errors.Is(werr, syscall.ENOSPC) {
					return n, fmt.Errorf("disk full after %d bytes: %w", n, werr)
				}
				return n, fmt.Errorf("writing after %d bytes: %w", n, werr)
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("reading after %d bytes: %w", n, rerr)
		}
	}
}
