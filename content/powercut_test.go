package content

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/internal/powercut"
)

// TestPutSurvivesPowerCut: an item Put returned for is there after a power cut, also when the
// store's directories were made just before (their names need their parents' fsync).
func TestPutSurvivesPowerCut(t *testing.T) {
	powercut.SkipInProcess(t)
	backing := t.TempDir()
	mnt := filepath.Join(backing, "mnt")
	pc, err := powercut.Mount(backing, mnt, powercut.Options{})
	if err != nil {
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	s, err := Open(filepath.Join(mnt, "data", "content"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.Put(strings.NewReader(strings.Repeat("bulletin ", 5000)), Ref{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Cut(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	pc.Unmount()
	pc, err = powercut.Mount(backing, mnt, powercut.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Unmount()
	s, err = Open(filepath.Join(mnt, "data", "content"), Options{})
	if err != nil {
		t.Fatalf("the store does not open after the cut: %v", err)
	}
	defer s.Close()
	if err := s.Verify(ref); err != nil {
		t.Errorf("item stored before the power cut: %v", err)
	}
}
