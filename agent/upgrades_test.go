package agent

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

func TestUpgradeConfig(t *testing.T) {
	hub := "hub: {url: https://hub.example, secret: s, trusted_keys: {k: 'ed25519:x'}}\n"
	for src, want := range map[string]string{
		"upgrade: {release_keys: {r: 'ed25519:nothex'}}\n" + hub:                                       "upgrade.release_keys",
		"upgrade: {release_keys: {r: 'ed25519:" + strings.Repeat("00", 32) + "'}}\n":                   "upgrade.release_keys is set but hub.url is not",
		"upgrade: {margin: 7h, release_keys: {r: 'ed25519:" + strings.Repeat("00", 32) + "'}}\n" + hub: "upgrade.margin 7h0m0s",
	} {
		_, err := loadConfigText(t, "device_id: a\ndata_dir: d\n"+src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", src, err, want)
		}
	}
	c, err := loadConfigText(t, "device_id: a\ndata_dir: d\nupgrade: {release_keys: {r: 'ed25519:"+strings.Repeat("00", 32)+"'}}\n"+hub)
	if err != nil || len(c.Upgrade.ReleaseKeys) != 1 {
		t.Fatalf("a good upgrade section: %v", err)
	}
}

// UpgradeBusy holds an install back while a programme plays, when a session is due within
// the margin, and for two hours either side of an emergency broadcast.
func TestUpgradeBusy(t *testing.T) {
	doc, err := scheduler.Parse("s.yaml", []byte(`version: 1
id: s
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - id: morning
    class: normal
    cron: "0 30 6 * * *"
    items: [{stream: "http://radio.example/vov1.mp3", duration: 15m}]
  - id: storm
    class: emergency
    at: "2026-12-05T14:00:00+07:00"
    items: [{stream: "http://radio.example/alert.mp3", duration: 5m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := New(&Config{DataDir: t.TempDir()}, slog.New(slog.DiscardHandler), nil)
	a.sched.doc = doc
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, "2026-12-05T"+s+"+07:00")
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for now, want := range map[string]string{
		"03:00:00": "",
		"06:15:00": "",                          // 15 min before: outside a 10 min margin
		"06:25:00": "programme morning is due",  // within the margin
		"06:40:00": "programme morning is due",  // running (the runner plays it)
		"06:50:00": "",                          // over
		"11:30:00": "",                          // emergency more than 2 h ahead
		"12:30:00": "emergency storm is active", // within 2 h of it
		"15:30:00": "emergency storm is active",
		"16:30:00": "",
	} {
		got := a.UpgradeBusy(at(now), 10*time.Minute)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("at %s: busy %q, want %q", now, got, want)
		}
	}
	a.setNowPlaying("speakers", &NowPlaying{Output: "speakers", Program: "play-now", Class: "priority"})
	if got := a.UpgradeBusy(at("03:00:00"), 10*time.Minute); !strings.Contains(got, "play-now (priority) plays on speakers") {
		t.Errorf("while playing: busy %q", got)
	}
}
