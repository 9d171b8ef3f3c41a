package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestPlanAndValidateCommands(t *testing.T) {
	bin := testkit.Binary(t, "loa-agent")
	demo := "../../scheduler/testdata/demo.yaml"

	out, _, code := run(t, bin, "validate", "--schedule", demo)
	if code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("validate demo: exit %d, %q", code, out)
	}

	out, errOut, code := run(t, bin, "plan", "--schedule", demo, "--from", "2026-11-27T00:00:00+07:00", "--until", "2026-11-28T00:00:00+07:00")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 {
		t.Fatalf("plan printed %d lines", len(lines))
	}
	for _, l := range lines {
		var seg map[string]any
		if err := json.Unmarshal([]byte(l), &seg); err != nil {
			t.Fatalf("plan line is not JSON: %q", l)
		}
		for _, k := range []string{"output", "program", "item", "class", "start", "end", "status"} {
			if _, ok := seg[k]; !ok {
				t.Errorf("plan line lacks %q: %s", k, l)
			}
		}
		if !strings.HasSuffix(seg["start"].(string), "+07:00") {
			t.Errorf("start %v is not in the schedule's zone", seg["start"])
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nid: x\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - {id: morning, cron: \"61 6 * * *\", items: [{file: a.mp3, duration: 1m}]}\n"), 0o644)
	_, errOut, code = run(t, bin, "validate", "--schedule", bad)
	if code != 1 || !strings.Contains(errOut, `program "morning"`) || !strings.Contains(errOut, `minute "61"`) {
		t.Fatalf("validate bad: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, bin, "plan", "--schedule", bad)
	if code != 1 || !strings.Contains(errOut, `minute "61"`) {
		t.Fatalf("plan bad: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, bin, "plan", "--schedule", demo, "--from", "yesterday")
	if code != 2 || !strings.Contains(errOut, "RFC 3339") {
		t.Fatalf("plan bad --from: exit %d, %q", code, errOut)
	}
}

// TestHelpAndUsage: `COMMAND --help` and `help COMMAND` print that command's usage and flags
// and exit 0; a wrong flag or a missing argument exits 2 with that command's usage.
func TestHelpAndUsage(t *testing.T) {
	bin := testkit.Binary(t, "loa-agent")
	for _, args := range [][]string{{"plan", "--help"}, {"help", "plan"}} {
		out, _, code := run(t, bin, args...)
		if code != 0 || !strings.Contains(out, "loa-agent plan --schedule FILE") || !strings.Contains(out, "--until") || strings.Contains(out, "loa-agent show") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--schedule", "x.yaml", "--colour", "red"}, "plan: flag provided but not defined: --colour"},
		{[]string{"validate"}, "--schedule FILE is required"},
		{[]string{"play"}, "accepts 1 arg(s), received 0"},
		{[]string{"test", "lights"}, `no test "lights"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		out, errOut, code := run(t, bin, tc.args...)
		usage := "Usage:\n  loa-agent " + tc.args[0]
		if tc.args[0] == "frobnicate" {
			usage = "Usage:\n  loa-agent"
		}
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, usage) {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit 2, %q and %q", tc.args, code, out, errOut, tc.want, usage)
		}
	}
	if out, _, code := run(t, bin, "completion", "fish"); code != 0 || !strings.Contains(out, "complete -c loa-agent") {
		t.Errorf("completion fish: exit %d\n%s", code, out)
	}
}
