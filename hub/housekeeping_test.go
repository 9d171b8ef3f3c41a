package hub

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepRemovesOldScreenshots: the daily sweep removes screenshots past keepScreenshot and
// keeps recent ones (pruning of revisions and commands is tested in the store).
func TestSweepRemovesOldScreenshots(t *testing.T) {
	h := newTestHub(t)
	dir := filepath.Join(h.dir, "screenshots", "qn", "cl-1")
	os.MkdirAll(dir, 0o755)
	old, recent := filepath.Join(dir, "cmd-1.png"), filepath.Join(dir, "cmd-2.png")
	for _, p := range []string{old, recent} {
		if err := os.WriteFile(p, []byte("png"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-keepScreenshot - time.Hour)
	os.Chtimes(old, long, long)
	h.srv.sweep(context.Background())
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a screenshot older than %s is still there (%v)", keepScreenshot, err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent screenshot was removed: %v", err)
	}
}
