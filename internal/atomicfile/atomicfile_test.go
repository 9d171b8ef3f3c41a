package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if err != nil || string(b) != "two" || fi.Mode().Perm() != 0o640 {
		t.Fatalf("read back %q %v, mode %v", b, err, fi.Mode())
	}
	// A failed fill leaves the old file and no temporary beside it.
	boom := errors.New("disk full")
	err = WriteFrom(p, 0o640, func(w io.Writer) error { w.Write([]byte("thr")); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFrom error %v, want the fill's", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("after a failed write: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left beside it: %v", ents)
	}
	// A directory that does not exist is an error, not a panic.
	if err := Write(filepath.Join(dir, "no", "x"), nil, 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
