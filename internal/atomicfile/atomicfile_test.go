package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/loa-project/loa/internal/powercut"
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

// TestMkdirAllSurvivesPowerCut: directories MkdirAll made, and a file written in the deepest
// with Write, are all there after a power cut.
func TestMkdirAllSurvivesPowerCut(t *testing.T) {
	powercut.AcrossACut(t, func(mnt string) func() {
		dir := filepath.Join(mnt, "a", "b", "c")
		if err := MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Write(filepath.Join(dir, "f"), []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}
		return nil
	}, func(mnt string) {
		if b, err := os.ReadFile(filepath.Join(mnt, "a", "b", "c", "f")); err != nil || string(b) != "kept" {
			t.Errorf("after the cut: %q, %v; want \"kept\"", b, err)
		}
	})
}
