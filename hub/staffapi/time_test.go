package staffapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TimeRange reads both filters, or answers 400 naming the one that is wrong.
func TestTimeRange(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	p := Caller{Zone: time.UTC}
	w := httptest.NewRecorder()
	since, until, ok := TimeRange(w, url.Values{"since": {"-2h"}, "until": {"-1h"}}, now, p)
	if !ok || !since.Equal(now.Add(-2*time.Hour)) || !until.Equal(now.Add(-time.Hour)) {
		t.Fatalf("since %v until %v ok %v (answer %d %s)", since, until, ok, w.Code, w.Body)
	}
	for _, bad := range []string{"since", "until"} {
		w := httptest.NewRecorder()
		if _, _, ok := TimeRange(w, url.Values{bad: {"yesterday-ish"}}, now, p); ok || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), bad) {
			t.Errorf("bad %s: ok %v, answer %d %s", bad, ok, w.Code, w.Body)
		}
	}
}
