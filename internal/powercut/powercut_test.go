package powercut

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func mount(t *testing.T, backing string, opts Options) *FS {
	t.Helper()
	SkipInProcess(t)
	p, err := Mount(backing, filepath.Join(backing, "mnt"), opts)
	if err != nil {
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	t.Cleanup(func() { p.Unmount() })
	return p
}

// cut cuts the power, unmounts and mounts again: the reboot.
func cut(t *testing.T, p *FS, backing string) *FS {
	t.Helper()
	if _, err := p.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := p.Unmount(); err != nil {
		t.Fatal(err)
	}
	return mount(t, backing, Options{})
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of directory %s: %v", dir, err)
	}
}

func writeFile(t *testing.T, path, data string, fsync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if fsync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func read(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestUnsyncedWriteIsLostSyncedStays(t *testing.T) {
	backing := t.TempDir()
	p := mount(t, backing, Options{})
	m := p.Dir()
	writeFile(t, filepath.Join(m, "synced"), "one", true)
	writeFile(t, filepath.Join(m, "unsynced"), "two", false)
	syncDir(t, m) // both names durable; only one file's bytes
	writeFile(t, filepath.Join(m, "synced"), "one, then more", false)
	if got := read(filepath.Join(m, "synced")); got != "one, then more" {
		t.Fatalf("before the cut the page cache shows %q", got)
	}
	p = cut(t, p, backing)
	if got := read(filepath.Join(m, "synced")); got != "one" {
		t.Errorf("synced file after the cut: %q, want its synced bytes %q", got, "one")
	}
	if got := read(filepath.Join(m, "unsynced")); got != "" {
		t.Errorf("never synced file after the cut: %q, want empty (its name was synced, not its bytes)", got)
	}
	// An append after a sync: the appended part alone is lost.
	f, _ := os.OpenFile(filepath.Join(m, "synced"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(" two")
	f.Sync()
	f.WriteString(" three")
	f.Close()
	p = cut(t, p, backing)
	if got := read(filepath.Join(m, "synced")); got != "one two" {
		t.Errorf("after an fsync'd and an unsynced append: %q, want %q", got, "one two")
	}
}

func TestRenameNeedsDirectorySync(t *testing.T) {
	backing := t.TempDir()
	p := mount(t, backing, Options{})
	m := p.Dir()
	os.Mkdir(filepath.Join(m, "d"), 0o755)
	syncDir(t, m)
	d := filepath.Join(m, "d")
	writeFile(t, filepath.Join(d, "f"), "old", true)
	syncDir(t, d)

	// Replace without a directory sync: the rename is lost, the old file is back.
	writeFile(t, filepath.Join(d, "f.tmp"), "new", true)
	if err := os.Rename(filepath.Join(d, "f.tmp"), filepath.Join(d, "f")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(d, "gone")) // nothing there; must not upset the log
	p = cut(t, p, backing)
	if got := read(filepath.Join(d, "f")); got != "old" {
		t.Errorf("rename without directory sync: f is %q after the cut, want %q", got, "old")
	}
	if _, err := os.Stat(filepath.Join(d, "f.tmp")); err == nil {
		t.Error("f.tmp survived, though its creation was never synced in its directory")
	}

	// The same with the directory synced: the new file stays.
	writeFile(t, filepath.Join(d, "f.tmp"), "new", true)
	os.Rename(filepath.Join(d, "f.tmp"), filepath.Join(d, "f"))
	syncDir(t, d)
	p = cut(t, p, backing)
	if got := read(filepath.Join(d, "f")); got != "new" {
		t.Errorf("rename with directory sync: f is %q after the cut, want %q", got, "new")
	}

	// An unlink without a directory sync comes back; a mkdir without one goes.
	os.Remove(filepath.Join(d, "f"))
	os.Mkdir(filepath.Join(m, "e"), 0o755)
	writeFile(t, filepath.Join(m, "e", "x"), "x", true)
	syncDir(t, filepath.Join(m, "e"))
	p = cut(t, p, backing)
	if got := read(filepath.Join(d, "f")); got != "new" {
		t.Errorf("unlink without directory sync: f is %q after the cut, want it back as %q", got, "new")
	}
	if _, err := os.Stat(filepath.Join(m, "e")); err == nil {
		t.Error("a directory whose mkdir was never synced in its parent survived")
	}
	// Frozen: after Cut nothing more is accepted.
	if _, err := p.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m, "late"), []byte("x"), 0o644); err == nil {
		t.Error("a write after the cut succeeded")
	}
}

func TestReorderKeepsOnlyWhatWasWritten(t *testing.T) {
	backing := t.TempDir()
	p := mount(t, backing, Options{Reorder: rand.New(rand.NewPCG(1, 2))})
	m := p.Dir()
	f, err := os.OpenFile(filepath.Join(m, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("AAAA"), 0)
	f.Sync()
	syncDir(t, m)
	for i := range 4 {
		f.WriteAt([]byte{'B'}, int64(i))
	}
	f.Close()
	st, err := p.Cut()
	if err != nil {
		t.Fatal(err)
	}
	p.Unmount()
	p = mount(t, backing, Options{})
	got := read(filepath.Join(m, "f"))
	if len(got) != 4 {
		t.Fatalf("after a reordered cut f is %q", got)
	}
	for _, c := range got {
		if c != 'A' && c != 'B' {
			t.Fatalf("after a reordered cut f is %q: bytes never written", got)
		}
	}
	if st.WritesKept+st.WritesLost != 4 {
		t.Errorf("stats %+v: want 4 unsynced writes decided", st)
	}
	t.Logf("reordered: %q (%d kept, %d lost)", got, st.WritesKept, st.WritesLost)
}
