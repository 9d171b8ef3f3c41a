package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/media"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

type clock struct{}

func (clock) Now() time.Time { return time.Now() }

// startHub runs a real hub (SQLite file, loopback HTTP) and returns its URL and an admin token.
func startHub(t *testing.T) (string, string) {
	t.Helper()
	url, tok, _ := startHubDB(t)
	return url, tok
}

// startHubDB is startHub also giving its store, to add users with their roles.
func startHubDB(t *testing.T) (string, string, *store.DB) {
	t.Helper()
	return startHubIn(t, "Quảng Nam", nil)
}

// startHubIn is a real hub on loopback over a real SQLite file, its province "qn" named
// province, its staff times in zone (nil: the hub's default), with an admin token.
func startHubIn(t *testing.T, province string, zone *time.Location) (string, string, *store.DB) {
	t.Helper()
	url, tok, db, _ := startHubWith(t, province, func(o *hub.Options) { o.Location = zone })
	return url, tok, db
}

// startHubWith is startHubIn with edit applied to the hub's options, also giving the server.
func startHubWith(t *testing.T, province string, edit func(*hub.Options)) (string, string, *store.DB, *hub.Server) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(context.Background(), filepath.Join(dir, "hub.db"), clock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := protocol.GenerateKey(nil)
	signer, _ := protocol.NewSigner("k", priv)
	opts := hub.Options{Store: db, Signer: signer, ContentDir: filepath.Join(dir, "content"), Log: log,
		Transcoder: &media.Transcoder{FFmpeg: "ffmpeg", FFprobe: "ffprobe", LoudnessLUFS: -16}}
	if edit != nil {
		edit(&opts)
	}
	srv, err := hub.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close(); db.Close() })
	tok, err := hub.AddUser(context.Background(), db, "admin", "", "qn", province)
	if err != nil {
		t.Fatal(err)
	}
	return hs.URL, tok, db, srv
}

func runCLI(env Env, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env.Stdout, env.Stderr = &out, &errb
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	code := Run(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestHubURLAndTokenSources(t *testing.T) {
	url, tok := startHub(t)
	home := t.TempDir()
	// Nothing configured: a clear error.
	if code, _, e := runCLI(Env{Home: home}, "status"); code != 1 || !strings.Contains(e, "LOA_HUB") {
		t.Fatalf("no hub: %d %q", code, e)
	}
	// The config file.
	os.MkdirAll(filepath.Join(home, ".config", "loa"), 0o755)
	os.WriteFile(filepath.Join(home, ".config", "loa", "config.yaml"), []byte("hub: "+url+"\ntoken: "+tok+"\n"), 0o600)
	if code, out, e := runCLI(Env{Home: home}, "whoami"); code != 0 || !strings.Contains(out, "scope qn") {
		t.Fatalf("config file: %d %q %q", code, out, e)
	}
	// The environment overrides the file; flags override both.
	env := Env{Home: home, Getenv: func(k string) string {
		if k == "LOA_TOKEN" {
			return "loa-st1-wrong"
		}
		return ""
	}}
	if code, _, e := runCLI(env, "whoami"); code != 1 || !strings.Contains(e, "unknown, revoked or expired") {
		t.Fatalf("env token: %d %q", code, e)
	}
	if code, _, e := runCLI(env, "--token", tok, "whoami"); code != 0 {
		t.Fatalf("flag before command: %d %q", code, e)
	}
	if code, _, e := runCLI(env, "whoami", "--token", tok); code != 0 {
		t.Fatalf("flag after command: %d %q", code, e)
	}
	os.WriteFile(filepath.Join(home, ".config", "loa", "config.yaml"), []byte("hub_url: x\n"), 0o600)
	if code, _, e := runCLI(Env{Home: home}, "status"); code != 1 || !strings.Contains(e, "hub_url") {
		t.Fatalf("unknown config field: %d %q", code, e)
	}
	if code, _, e := runCLI(Env{Home: home}, "device", "frobnicate"); code != 2 || !strings.Contains(e, `unknown command "device frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, e)
	}
	if code, _, e := runCLI(Env{Home: home}, "device", "enroll", "x/y"); code != 2 || !strings.Contains(e, "--area") {
		t.Fatalf("enroll without area: %d %q", code, e)
	}
}

func TestCommandsAgainstHub(t *testing.T) {
	url, tok := startHub(t)
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k]
	}}
	must := func(args ...string) string {
		t.Helper()
		code, out, e := runCLI(env, args...)
		if code != 0 {
			t.Fatalf("loa %s: %d %s", strings.Join(args, " "), code, e)
		}
		return out
	}
	must("area", "add", "qn/duy-hai", "--name", "Duy Hải")
	if out := must("area", "list"); !strings.Contains(out, "qn/duy-hai") || !strings.Contains(out, "Duy Hải") {
		t.Fatalf("area list:\n%s", out)
	}
	out := must("device", "enroll", "duy-hai/cl-01", "--area", "qn/duy-hai", "--outputs", "speakers,board")
	if !strings.Contains(out, "secret: loa-ds1-") {
		t.Fatalf("enroll:\n%s", out)
	}
	if out := must("device", "list"); !strings.Contains(out, "duy-hai/cl-01") || !strings.Contains(out, "never") {
		t.Fatalf("device list:\n%s", out)
	}
	if out := must("device", "show", "duy-hai/cl-01"); !strings.Contains(out, "qn/duy-hai") {
		t.Fatalf("device show:\n%s", out)
	}
	if out := must("device", "show", "duy-hai/cl-01", "--json"); !strings.Contains(out, `"area": "qn/duy-hai"`) {
		t.Fatalf("device show --json:\n%s", out)
	}
	if _, err := exec.LookPath("espeak-ng"); err == nil {
		if _, err := exec.LookPath("ffmpeg"); err == nil {
			wav := filepath.Join(t.TempDir(), "speech.wav")
			if b, err := exec.Command("espeak-ng", "-v", "vi", "-w", wav, "Thông báo lịch tiêm chủng").CombinedOutput(); err != nil {
				t.Fatalf("espeak-ng: %v %s", err, b)
			}
			out := must("content", "add", wav, "--title", "Tiêm chủng", "--language", "vi", "--theme", "health")
			if !strings.Contains(out, "sha256:") || !strings.Contains(out, "added") {
				t.Fatalf("content add:\n%s", out)
			}
			if out := must("content", "list"); !strings.Contains(out, "Tiêm chủng") {
				t.Fatalf("content list:\n%s", out)
			}
		}
	}
	doc := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(doc, []byte("version: 1\nid: s\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: p\n    cron: \"0 0 6 * * *\"\n    items:\n      - stream: http://r.example/x.mp3\n        duration: 1m\n"), 0o644)
	if out := must("schedule", "push", doc, "--to", "qn/duy-hai"); !strings.Contains(out, "area:qn/duy-hai revision 1 stored; 1 device(s)") {
		t.Fatalf("push:\n%s", out)
	}
	if out := must("status"); !strings.Contains(out, "composed") {
		t.Fatalf("status after push to an offline device:\n%s", out)
	}
	if out := must("confirmations", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("confirmations --json: %q", out)
	}
	if code, _, e := runCLI(env, "confirmations", "--since", "last tuesday"); code != 1 || !strings.Contains(e, "RFC 3339") {
		t.Fatalf("bad --since: %d %q", code, e)
	}
	if out := must("device", "revoke", "duy-hai/cl-01"); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %s", out)
	}
	if out := must("status"); !strings.Contains(out, "revoked") {
		t.Fatalf("status after revoke:\n%s", out)
	}
}

func FuzzParseFileConfig(f *testing.F) {
	f.Add([]byte("hub: http://x\ntoken: t\n"))
	f.Add([]byte("hub: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseFileConfig(b)
	})
}

// TestCommandHelp: `loa COMMAND --help` and `loa help COMMAND` print that command's usage and
// exit 0; a usage error prints the error and that command's usage and exits 2.
func TestCommandHelp(t *testing.T) {
	env := Env{Getenv: func(string) string { return "" }}
	for _, args := range [][]string{{"area", "add", "--help"}, {"help", "area", "add"}, {"--hub", "http://x", "area", "add", "-h"}} {
		code, out, _ := runCLI(env, args...)
		if code != 0 || !strings.Contains(out, "loa area add ID") || strings.Contains(out, "loa confirmations") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	code, _, errOut := runCLI(env, "area", "add")
	if code != 2 || !strings.Contains(errOut, "loa area add ID") || strings.Contains(errOut, "loa confirmations") {
		t.Errorf("usage error: exit %d\n%s", code, errOut)
	}
	if code, out, _ := runCLI(env, "--help"); code != 0 || !strings.Contains(out, "loa confirmations") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

// TestCobraConventions: a wrong flag is a usage error (exit 2, that command's usage, nothing
// sent); a group alone names its commands; `loa completion SHELL` writes a script for each
// shell that completes loa's own commands.
func TestCobraConventions(t *testing.T) {
	env := Env{Getenv: func(string) string { return "" }}
	code, out, errOut := runCLI(env, "area", "add", "x/y", "--colour", "red")
	if code != 2 || out != "" || !strings.Contains(errOut, "area add: flag provided but not defined: --colour") ||
		!strings.Contains(errOut, "loa area add ID") || !strings.Contains(errOut, "--name") || strings.Contains(errOut, "loa confirmations") {
		t.Errorf("wrong flag: exit %d\nstdout %q\nstderr:\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(env, "schedule", "plan", "--to"); code != 2 || !strings.Contains(errOut, "flag needs an argument") || !strings.Contains(errOut, "loa schedule plan --to") {
		t.Errorf("flag without its value: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(env, "area"); code != 2 || !strings.Contains(errOut, "area takes add, list or policy") {
		t.Errorf("group alone: exit %d\n%s", code, errOut)
	}
	if code, out, _ := runCLI(env, "help", "schedule", "push"); code != 0 || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "loa schedule push FILE") {
		t.Errorf("help schedule push: exit %d\n%s", code, out)
	}
	for shell, want := range map[string]string{"bash": "__start_loa", "zsh": "#compdef loa", "fish": "complete -c loa"} {
		code, out, errOut := runCLI(env, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, no %q in %d bytes\n%s", shell, code, want, len(out), errOut)
		}
	}
	// What the shells ask for when completing: the commands under `loa device`, and their flags.
	code, out, _ = runCLI(env, "__complete", "device", "")
	for _, w := range []string{"enroll", "list", "show", "revoke", "rekey"} {
		if code != 0 || !strings.Contains(out, w+"\t") {
			t.Errorf("completing `loa device `: exit %d, no %s in\n%s", code, w, out)
		}
	}
	if code, out, _ = runCLI(env, "__complete", "schedule", "plan", "--"); code != 0 || !strings.Contains(out, "--week") || !strings.Contains(out, "--hub") {
		t.Errorf("completing `loa schedule plan --`: exit %d\n%s", code, out)
	}
	if code, out, _ = runCLI(env, "__complete", "term", "list", ""); code != 0 || !strings.Contains(out, "language\ntheme\nformat\nunit\n") {
		t.Errorf("completing `loa term list `: exit %d\n%s", code, out)
	}
}
