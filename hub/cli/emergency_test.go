package cli

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
)

func TestEmergencyCommands(t *testing.T) {
	url, tok := startHub(t)
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k]
	}}
	must := func(args ...string) string {
		t.Helper()
		code, out, e := runCLI(env, args...)
		if code != 0 {
			t.Fatalf("loa %s: exit %d\n%s%s", strings.Join(args, " "), code, out, e)
		}
		return out
	}
	must("area", "add", "qn/tk")
	must("device", "enroll", "tk/cl-01", "--area", "qn/tk")

	out := must("emergency", "--to", "qn/tk", "--text", "Bão số 13 sắp đổ bộ", "--repeat-every", "20m", "--until", "1h", "--series", "storm-13", "--volume", "0.8")
	if !regexp.MustCompile(`emergency 1 \(series storm-13\) for qn/tk on the air: class emergency, .*3 plays every 20m0s`).MatchString(out) ||
		!strings.Contains(out, "1 device(s) got a new schedule, 0 of them online") {
		t.Fatalf("emergency output:\n%s", out)
	}
	// A recording given as FILE is uploaded first, then broadcast; same series: replaces.
	wav := filepath.Join(t.TempDir(), "canh-bao.wav")
	if b, err := exec.Command("sox", "-n", "-r", "16000", "-c", "1", wav, "synth", "1", "sine", "500").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, b)
	}
	out = must("emergency", wav, "--to", "qn/tk", "--series", "storm-13", "--text", "Bão số 13 đã vào bờ")
	if !strings.Contains(out, "uploaded as sha256:") || !strings.Contains(out, "emergency 2 (series storm-13)") || !strings.Contains(out, "replaced: [1]") {
		t.Fatalf("emergency FILE output:\n%s", out)
	}
	out = must("emergency", "list")
	if !regexp.MustCompile(`(?m)^2\s+emergency\s+emergency\s+qn/tk\s+storm-13\s.*active\s+canh-bao`).MatchString(out) || strings.Contains(out, "\n1 ") {
		t.Fatalf("emergency list:\n%s", out)
	}
	var all []api.EmergencyJSON
	if err := json.Unmarshal([]byte(must("emergency", "list", "--all", "--json")), &all); err != nil || len(all) != 2 || all[1].EndReason != "replaced" {
		t.Fatalf("emergency list --all --json: %+v %v", all, err)
	}
	out = must("emergency", "cancel", "2")
	if !strings.Contains(out, "emergency 2 (series storm-13) for qn/tk ended") {
		t.Fatalf("cancel output:\n%s", out)
	}
	if out = must("emergency", "list"); !strings.Contains(out, "nothing on the air") {
		t.Fatalf("list after cancel:\n%s", out)
	}

	out = must("live", "start", "--to", "qn/tk", "--url", "http://radio.example/qnr.mp3", "--for", "30m")
	if !strings.Contains(out, "live 3") || !strings.Contains(out, "class priority") {
		t.Fatalf("live start:\n%s", out)
	}
	if out = must("live", "stop", "--to", "qn/tk"); !strings.Contains(out, "live 3 (series") || !strings.Contains(out, "stopped") {
		t.Fatalf("live stop:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"emergency", "--text", "x"}, 2, "needs --to AREA"},
		{[]string{"emergency", "--to", "qn/tk"}, 2, "needs a FILE, --content sha256:… or --text"},
		{[]string{"emergency", "a.mp3", "b.mp3", "--to", "qn/tk"}, 2, "at most one FILE"},
		{[]string{"emergency", "cancel"}, 2, "one ID"},
		{[]string{"emergency", "cancel", "abc"}, 2, "not an emergency ID"},
		{[]string{"emergency", "cancel", "99"}, 1, "no emergency 99"},
		{[]string{"emergency", "cancel", "--series", "nope"}, 1, "no active series"},
		{[]string{"emergency", "--to", "tk", "--text", "x"}, 1, "use --to qn/tk"},
		{[]string{"emergency", "--to", "qn/tk", "--text", "x", "--repeat-every", "soon"}, 1, "positive duration"},
		{[]string{"emergency", "/no/such.mp3", "--to", "qn/tk"}, 1, "uploading /no/such.mp3"},
		{[]string{"bulletin", "--to", "qn/tk", "--content", "sha256:" + strings.Repeat("a", 64)}, 2, "--next-session"},
		{[]string{"bulletin", "--to", "qn/tk", "--text", "x", "--next-session"}, 1, "push a schedule first"},
		{[]string{"live", "start", "--to", "qn/tk"}, 2, "--url"},
		{[]string{"live", "stop", "--to", "qn/tk"}, 1, "no active live relay in qn/tk"},
		{[]string{"live"}, 2, "start or stop"},
	} {
		code, out, e := runCLI(env, c.args...)
		if code != c.code || !strings.Contains(e, c.want) {
			t.Errorf("loa %s: exit %d %q%q, want %d with %q", strings.Join(c.args, " "), code, out, e, c.code, c.want)
		}
	}
}
