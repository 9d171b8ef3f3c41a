package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/api"
)

func TestDeviceCommandsCLI(t *testing.T) {
	url, tok := startHub(t)
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k]
	}}
	for _, args := range [][]string{
		{"area", "add", "qn/tk"},
		{"device", "enroll", "tk/cl-01", "--area", "qn/tk"},
		{"device", "enroll", "tk/cl-02", "--area", "qn/tk"},
	} {
		if code, _, e := runCLI(env, args...); code != 0 {
			t.Fatalf("%v: %s", args, e)
		}
	}

	// Usage errors say what to write, before anything reaches the hub.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "0.5"}, "needs --to AREA"},
		{[]string{"volume", "--to", "qn/tk"}, "one LEVEL from 0"},
		{[]string{"volume", "--to", "qn/tk", "loud"}, `volume "loud": give a level from 0 to 1`},
		{[]string{"volume", "--to", "qn/tk", "1.2"}, "give a level from 0 to 1"},
		{[]string{"stop", "--to", "qn/tk", "now"}, "takes no arguments"},
		{[]string{"play", "--to", "qn/tk"}, "one of FILE, --content"},
		{[]string{"play", "--to", "qn/tk", "a.mp3", "--url", "http://r/x"}, "one of FILE, --content"},
		{[]string{"play", "--to", "qn/tk", "--url", "http://r/x", "--for", "1h", "--expires", "1h"}, "not both"},
		{[]string{"commands", "a", "b"}, "at most one command ID"},
	} {
		code, _, e := runCLI(env, tc.args...)
		if code != 2 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, e, tc.want)
		}
	}
	// The hub's refusals come through as they are.
	if code, _, e := runCLI(env, "play", "--to", "qn/tk", "--content", "sha256:"+strings.Repeat("ab", 32)); code != 1 || !strings.Contains(e, "not in the hub's library") {
		t.Errorf("unknown content: %d %q", code, e)
	}
	if code, _, e := runCLI(env, "stop", "--to", "cl-01"); code != 1 || !strings.Contains(e, "use --to tk/cl-01") {
		t.Errorf("short device id: %d %q", code, e)
	}

	// Offline devices: the command waits for them, and says so.
	code, out, e := runCLI(env, "volume", "--to", "qn/tk", "60%", "--wait", "0")
	if code != 0 || !strings.Contains(out, "volume 0.6 to qn/tk, by admin") || !strings.Contains(out, "2 pending") ||
		strings.Count(out, "offline: it gets the command when it reconnects") != 2 {
		t.Fatalf("volume: %d\n%s%s", code, out, e)
	}
	id := strings.Fields(out)[0]
	if !strings.HasPrefix(id, "cmd-") {
		t.Fatalf("first word %q is not the command id", id)
	}
	if code, out, e = runCLI(env, "stop", "--to", "tk/cl-02", "--output", "speakers", "--wait", "0", "--json"); code != 0 {
		t.Fatalf("stop: %s", e)
	}
	var stop api.CommandJSON
	if err := json.Unmarshal([]byte(out), &stop); err != nil || stop.Action != "stop" || stop.Output != "speakers" || len(stop.Outcomes) != 1 {
		t.Fatalf("stop --json: %v\n%s", err, out)
	}

	// loa commands: newest first, per device.
	code, out, e = runCLI(env, "commands")
	if code != 0 || strings.Index(out, stop.ID) > strings.Index(out, id) || !strings.Contains(out, "stop on speakers to tk/cl-02") ||
		!strings.Contains(out, "tk/cl-01  pending") {
		t.Fatalf("commands: %d\n%s%s", code, out, e)
	}
	code, out, _ = runCLI(env, "commands", id, "--json")
	var one api.CommandJSON
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil || one.ID != id || one.Volume == nil || *one.Volume != 0.6 || one.Counts["pending"] != 2 {
		t.Fatalf("commands ID --json: %d\n%s", code, out)
	}
	if code, _, e := runCLI(env, "commands", "cmd-1"); code != 1 || !strings.Contains(e, "no command cmd-1") {
		t.Fatalf("unknown command: %d %q", code, e)
	}
}

func TestCommandTableAttentionFirst(t *testing.T) {
	now := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	c := api.CommandJSON{ID: "cmd-9", Action: "play_now", Content: "sha256:" + strings.Repeat("ab", 32), Title: "Tin bão",
		Class: "emergency", To: "area:qn", IssuedBy: "admin", IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute),
		Counts: map[string]int{"executed": 2, "refused": 1}, Outcomes: []api.CommandOutcomeJSON{
			{Device: "a", State: "executed"}, {Device: "b", State: "executed"},
			{Device: "c", State: "refused", Code: "expired", Reason: "command cmd-9 (play_now) expired"}}}
	var b strings.Builder
	if err := CommandTable(&b, c, 2, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, `play "Tin bão" (sha256:abababababab…) as emergency to qn`) || !strings.Contains(out, "2 executed, 1 refused") ||
		strings.Index(out, "  c ") > strings.Index(out, "  a ") || !strings.Contains(out, "expired: command cmd-9") ||
		!strings.Contains(out, "… and 1 more device(s): loa commands cmd-9") {
		t.Fatalf("table:\n%s", out)
	}
}
