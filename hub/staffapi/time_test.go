package staffapi

import (
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
)

// One rule for every time flag: dates and clock times in the hub's zone, a duration counted
// from now (signed); a filter that looks back refuses an unsigned one, saying how to write it.
func TestParseTimeParam(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // 17:00 in Vietnam
	vn, err := api.LoadZone("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]time.Time{
		"2026-11-26T06:00:00+07:00": time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC),
		"2026-11-20":                time.Date(2026, 11, 19, 17, 0, 0, 0, time.UTC),
		"20/11/2026":                time.Date(2026, 11, 19, 17, 0, 0, 0, time.UTC),
		"2026-11-20 05:30":          time.Date(2026, 11, 19, 22, 30, 0, 0, time.UTC),
		"05:30":                     time.Date(2026, 11, 25, 22, 30, 0, 0, time.UTC),
		"-24h":                      now.Add(-24 * time.Hour),
		"-7d":                       now.Add(-7 * 24 * time.Hour),
		"":                          {},
	} {
		got, err := ParseTimeParam("since", in, now, vn)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := ParseTimeParam("since", "24h", now, vn); err == nil || !strings.Contains(err.Error(), "write -24h") {
		t.Errorf("an unsigned duration looking back: %v", err)
	}
	for _, bad := range []string{"yesterday", "2026-13-01", "-0h", "5"} {
		if _, err := ParseTimeParam("since", bad, now, vn); err == nil || !strings.Contains(err.Error(), "--since") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseTimeParam(f *testing.F) {
	for _, s := range []string{"24h", "2026-11-26", "2026-11-26T06:00:00Z", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimeParam("since", s, now, time.UTC)
		if err == nil && s != "" && got.IsZero() && s != "0001-01-01" {
			t.Logf("%q -> zero time", s)
		}
	})
}
