package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSetAsideKeepsEveryDamagedJournal: two damaged journals set aside at the same clock time
// (a Pi without an RTC boots at the same wrong time) are both kept.
func TestSetAsideKeepsEveryDamagedJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	at := time.Date(2026, 12, 4, 6, 30, 0, 0, time.UTC)
	var names []string
	for _, body := range []string{"first", "second"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		name, err := setAside(path, at)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if names[0] == names[1] {
		t.Fatalf("both set aside as %s: the first is lost", names[0])
	}
	for i, want := range []string{"first", "second"} {
		if b, err := os.ReadFile(names[i]); err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want %q", names[i], b, err, want)
		}
	}
}
