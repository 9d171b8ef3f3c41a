package content

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func data(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestPutOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := data(300_000, 1)
	ref, err := s.Put(bytes.NewReader(b), Ref{})
	if err != nil {
		t.Fatal(err)
	}
	if ref != RefOf(b) {
		t.Fatalf("Put returned %s, want %s", ref, RefOf(b))
	}
	f, err := s.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, b) {
		t.Fatal("Open returned other bytes than Put stored")
	}
	p, err := s.Path(ref)
	if err != nil || p != filepath.Join(dir, "objects", ref.Hex()) {
		t.Fatalf("Path = %q, %v", p, err)
	}
	if u := s.Usage(); u.Items != 1 || u.Bytes != int64(len(b)) {
		t.Fatalf("Usage = %+v", u)
	}
	// Same bytes again: one item.
	if _, err := s.Put(bytes.NewReader(b), ref); err != nil {
		t.Fatal(err)
	}
	if u := s.Usage(); u.Items != 1 {
		t.Fatalf("duplicate Put made %d items", u.Items)
	}
	if n := len(dirNames(t, filepath.Join(dir, "tmp"))); n != 0 {
		t.Fatalf("%d temp files left", n)
	}
	// Not stored:
	_, err = s.Open(RefOf([]byte("nope")))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing ref: %v", err)
	}
}

func TestPutFileAndMismatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	src := filepath.Join(t.TempDir(), "a.mp3")
	b := data(5000, 2)
	os.WriteFile(src, b, 0o644)
	ref, err := s.PutFile(src, RefOf(b))
	if err != nil || ref != RefOf(b) {
		t.Fatalf("PutFile: %v %v", ref, err)
	}
	other := data(5000, 3)
	_, err = s.Put(bytes.NewReader(other), RefOf(data(10, 9)))
	var me *MismatchError
	if !errors.As(err, &me) || me.Got != RefOf(other) || me.Size != 5000 {
		t.Fatalf("mismatch: %v", err)
	}
	if !strings.Contains(err.Error(), RefOf(other).String()) || !strings.Contains(err.Error(), "nothing stored") {
		t.Fatalf("error does not say what was found: %v", err)
	}
	if s.Has(RefOf(other)) || len(dirNames(t, filepath.Join(dir, "objects"))) != 1 || len(dirNames(t, filepath.Join(dir, "tmp"))) != 0 {
		t.Fatal("a refused Put left something behind")
	}
	if _, err := s.PutFile(filepath.Join(t.TempDir(), "missing"), Ref{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("PutFile of a missing file: %v", err)
	}
}

func TestCorruptFileIsRemoved(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := data(4096, 4)
	ref, _ := s.Put(bytes.NewReader(b), Ref{})
	p := filepath.Join(dir, "objects", ref.Hex())
	fi, _ := os.Stat(p)
	// Flip one byte, same size, and put the mtime back: the marker must still notice.
	bad := append([]byte(nil), b...)
	bad[100] ^= 0xff
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	_, err := s.Open(ref)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Ref != ref || ce.Got != RefOf(bad) {
		t.Fatalf("Open of a corrupt file: %v", err)
	}
	for _, want := range []string{ref.String(), RefOf(bad).String(), "4096 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("corrupt file still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "verified", ref.Hex())); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("marker of the corrupt file still there")
	}
	if s.Has(ref) || s.Usage().Items != 0 {
		t.Fatal("corrupt item still indexed")
	}
}

func TestMarkerTrustedUntilFileChanges(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := data(10000, 5)
	ref, _ := s.Put(bytes.NewReader(b), Ref{})
	for i := 0; i < 3; i++ {
		if _, err := s.Path(ref); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.hashes.Load(); n != 0 {
		t.Fatalf("a freshly Put item was hashed %d times on Open", n)
	}
	s.Close()

	// A new process trusts the marker too.
	s2 := openStore(t, dir, Options{})
	if _, err := s2.Path(ref); err != nil || s2.hashes.Load() != 0 {
		t.Fatalf("after reopen: %v, hashes %d", err, s2.hashes.Load())
	}
	// Rewrite the same bytes: the file changed (ctime), so it is hashed once, then trusted again.
	p := filepath.Join(dir, "objects", ref.Hex())
	os.WriteFile(p, b, 0o644)
	for i := 0; i < 2; i++ {
		if _, err := s2.Path(ref); err != nil {
			t.Fatal(err)
		}
	}
	if n := s2.hashes.Load(); n != 1 {
		t.Fatalf("changed file hashed %d times, want 1", n)
	}
	// Verify always hashes.
	if err := s2.Verify(ref); err != nil || s2.hashes.Load() != 2 {
		t.Fatalf("Verify: %v, hashes %d", err, s2.hashes.Load())
	}
}

func TestReopenCleansTempAndIndexes(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	a, _ := s.Put(bytes.NewReader(data(100, 6)), Ref{})
	b, _ := s.Put(bytes.NewReader(data(200, 7)), Ref{})
	s.Close()
	os.WriteFile(filepath.Join(dir, "tmp", "put-crashed"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(dir, "objects", "README"), []byte("?"), 0o644)
	s2 := openStore(t, dir, Options{})
	if u := s2.Usage(); u.Items != 2 || u.Bytes != 300 {
		t.Fatalf("Usage after reopen = %+v", u)
	}
	if !s2.Has(a) || !s2.Has(b) {
		t.Fatal("items lost on reopen")
	}
	if n := dirNames(t, filepath.Join(dir, "tmp")); len(n) != 0 {
		t.Fatalf("crash leftovers not removed: %v", n)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, Options{})
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
}

// A store held a moment by another opener (`loa-agent status` while the agent starts) is
// waited for with LockWait, not refused; a store held past it is refused.
func TestOpenWaitsForABriefHolder(t *testing.T) {
	dir := t.TempDir()
	holder, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		holder.Close()
		close(released)
	}()
	s, err := Open(dir, Options{LockWait: 30 * time.Second})
	if err != nil {
		t.Fatalf("Open while another held the store for a moment: %v", err)
	}
	select {
	case <-released:
	default:
		t.Fatal("Open returned while the other holder still had the store")
	}
	if _, err := Open(dir, Options{LockWait: 100 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("Open past LockWait: %v", err)
	}
	s.Close()
}

func TestBudgetAndEviction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{Budget: 1000})
	a, err := s.Put(bytes.NewReader(data(600, 1)), Ref{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing declared evictable yet: refuse, naming the sizes.
	_, err = s.Put(bytes.NewReader(data(600, 2)), Ref{})
	var be *BudgetError
	if !errors.As(err, &be) || be.Budget != 1000 || be.Used != 600 || be.Protected != 600 {
		t.Fatalf("over budget: %v", err)
	}
	for _, w := range []string{"budget 1000 bytes", "600 bytes stored"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if len(dirNames(t, filepath.Join(dir, "tmp"))) != 0 || s.Usage().Items != 1 {
		t.Fatal("refused Put left something")
	}
	// The schedules now need nothing: the old item is evicted to make room.
	s.Keep(nil)
	b, err := s.Put(bytes.NewReader(data(600, 2)), Ref{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Has(a) || !s.Has(b) || s.Usage().Bytes != 600 {
		t.Fatalf("eviction: has a %v, has b %v, usage %+v", s.Has(a), s.Has(b), s.Usage())
	}
	// b is needed: a 500-byte item cannot fit, and the error says so.
	s.Keep([]Ref{b})
	_, err = s.Put(bytes.NewReader(data(500, 3)), Ref{})
	if !errors.As(err, &be) || be.Protected != 600 {
		t.Fatalf("protected item evicted or wrong error: %v", err)
	}
	// Larger than the whole budget.
	_, err = s.Put(bytes.NewReader(data(5000, 4)), Ref{})
	if !errors.As(err, &be) || !be.AtLeast || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("item larger than budget: %v", err)
	}
	if !s.Has(b) {
		t.Fatal("needed item lost")
	}
}

func TestEvictionOldestFirst(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{Budget: 300})
	var refs []Ref
	for i := 0; i < 3; i++ {
		r, err := s.Put(bytes.NewReader(data(100, byte(10+i))), Ref{})
		if err != nil {
			t.Fatal(err)
		}
		// Give each a distinct, increasing mtime (the eviction order), as the index saw at Open.
		p := filepath.Join(dir, "objects", r.Hex())
		tm := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		os.Chtimes(p, tm, tm)
		refs = append(refs, r)
	}
	s.Close()
	s = openStore(t, dir, Options{Budget: 300})
	s.Keep([]Ref{refs[0]}) // the oldest is needed
	if _, err := s.Put(bytes.NewReader(data(100, 20)), Ref{}); err != nil {
		t.Fatal(err)
	}
	if !s.Has(refs[0]) || s.Has(refs[1]) || !s.Has(refs[2]) {
		t.Fatalf("evicted the wrong one: %v %v %v", s.Has(refs[0]), s.Has(refs[1]), s.Has(refs[2]))
	}
}

func TestGC(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	var refs []Ref
	for i := 0; i < 4; i++ {
		r, _ := s.Put(bytes.NewReader(data(100*(i+1), byte(i))), Ref{})
		refs = append(refs, r)
	}
	keptPart := filepath.Join(dir, "partial", refs[0].Hex())
	stalePart := filepath.Join(dir, "partial", RefOf([]byte("gone")).Hex())
	os.WriteFile(keptPart, []byte("x"), 0o644)
	os.WriteFile(stalePart, []byte("y"), 0o644)
	res, err := s.GC([]Ref{refs[1], refs[3]})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 2 || res.RemovedBytes != 100+300 || res.Partials != 2 {
		t.Fatalf("GC = %+v", res)
	}
	if s.Has(refs[0]) || !s.Has(refs[1]) || s.Has(refs[2]) || !s.Has(refs[3]) {
		t.Fatal("GC removed the wrong items")
	}
	if u := s.Usage(); u.Items != 2 || u.Bytes != 200+400 || u.Partial != 0 {
		t.Fatalf("Usage after GC = %+v", u)
	}
	if n := dirNames(t, filepath.Join(dir, "verified")); len(n) != 2 {
		t.Fatalf("markers after GC: %v", n)
	}
}

// faultFS writes real files but fails like a full disk or a dying SD card when told to.
type faultFS struct {
	osFS
	diskLeft  int64 // bytes writable before ENOSPC; <0 unlimited
	failSync  bool
	failDSync bool
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	of, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{of, f}, nil
}

func (f *faultFS) SyncDir(dir string) error {
	if f.failDSync {
		return syscall.EIO
	}
	return f.osFS.SyncDir(dir)
}

func (f *faultFile) Write(b []byte) (int, error) {
	if f.fs.diskLeft >= 0 && int64(len(b)) > f.fs.diskLeft {
		n, _ := f.File.Write(b[:f.fs.diskLeft])
		f.fs.diskLeft = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	if f.fs.diskLeft >= 0 {
		f.fs.diskLeft -= int64(len(b))
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	if f.fs.failSync {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Sync()
}

func TestDiskFaults(t *testing.T) {
	cases := []struct {
		name string
		fs   faultFS
		want string
	}{
		{"disk full", faultFS{diskLeft: 50_000}, "disk full after"},
		{"fsync fails", faultFS{diskLeft: -1, failSync: true}, "fsync of"},
		{"directory fsync fails", faultFS{diskLeft: -1, failDSync: true}, "fsync of directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			fs := c.fs
			s.fs = &fs
			b := data(200_000, 9)
			_, err := s.Put(bytes.NewReader(b), Ref{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Put: %v, want error containing %q", err, c.want)
			}
			if s.Has(RefOf(b)) || len(dirNames(t, filepath.Join(dir, "objects"))) != 0 || len(dirNames(t, filepath.Join(dir, "tmp"))) != 0 {
				t.Fatal("failed Put left a file or an index entry")
			}
			// Once the disk behaves again, the same Put works.
			s.fs = osFS{}
			if _, err := s.Put(bytes.NewReader(b), RefOf(b)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
