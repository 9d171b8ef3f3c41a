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
	var ref Ref
	powercut.AcrossACut(t, func(mnt string) func() {
		s, err := Open(filepath.Join(mnt, "data", "content"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if ref, err = s.Put(strings.NewReader(strings.Repeat("bulletin ", 5000)), Ref{}); err != nil {
			t.Fatal(err)
		}
		return func() { s.Close() }
	}, func(mnt string) {
		s, err := Open(filepath.Join(mnt, "data", "content"), Options{})
		if err != nil {
			t.Fatalf("the store does not open after the cut: %v", err)
		}
		defer s.Close()
		if err := s.Verify(ref); err != nil {
			t.Errorf("item stored before the power cut: %v", err)
		}
	})
}
