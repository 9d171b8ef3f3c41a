package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/store"
)

// The workflow as staff run it: the administrator requires approval in a commune, its editor's
// push waits, the district's approver rejects it with a reason, then approves the next one;
// `loa schedule list` shows who approved it; an emergency warning is reviewed afterwards.
func TestApprovalCommands(t *testing.T) {
	as, run, user := staffCLI(t)
	admin := ""
	run(as(admin), 0, "area", "add", "qn/tk")
	run(as(admin), 0, "area", "add", "qn/tk/c1")
	editor, approver, warner := user("lan", "qn/tk/c1", store.RoleOperator), user("hung", "qn/tk", store.RoleApprover), user("binh", "qn/tk", store.RoleEmergency)
	if out := run(as(admin), 0, "area", "policy", "qn/tk", "--approval", "required"); !strings.Contains(out, "qn/tk: approval required; self-approval not allowed") {
		t.Fatalf("area policy:\n%s", out)
	}
	if out := run(editor, 0, "area", "policy", "qn/tk/c1"); !strings.Contains(out, "qn/tk/c1: approval required") {
		t.Fatalf("a commune's inherited policy:\n%s", out)
	}
	file := filepath.Join(t.TempDir(), "c1.yaml")
	os.WriteFile(file, []byte(approvalDocCLI), 0o644)
	out := run(editor, 0, "schedule", "push", file, "--to", "qn/tk/c1", "--dry-run")
	if !strings.Contains(out, "area:qn/tk/c1 requires approval: a push would submit it for approval (approvers: admin, binh, hung)") || strings.Contains(out, "would store") {
		t.Fatalf("an editor's dry run where approval is required:\n%s", out)
	}
	out = run(editor, 0, "schedule", "push", file, "--to", "qn/tk/c1")
	if !strings.Contains(out, "area:qn/tk/c1: submitted for approval as 1; nothing sent") || !strings.Contains(out, "admin, binh, hung") {
		t.Fatalf("an editor's push:\n%s", out)
	}
	out = run(approver, 0, "submissions")
	if !regexp.MustCompile(`(?m)^1\s+area:qn/tk/c1\s+c1\s+1\s+lan\s+\S+ \S+\s+submitted\s+-\s+a first schedule`).MatchString(out) {
		t.Fatalf("submissions:\n%s", out)
	}
	run(approver, 2, "reject", "1")
	out = run(approver, 0, "reject", "1", "--reason", "Sai giờ phát")
	if !strings.Contains(out, "submission 1 by lan rejected: Sai giờ phát") {
		t.Fatalf("reject:\n%s", out)
	}
	if out = run(editor, 0, "submissions", "--state", "rejected"); !regexp.MustCompile(`rejected\s+hung \S+ \S+\s+Sai giờ phát`).MatchString(out) {
		t.Fatalf("the editor's rejected list:\n%s", out)
	}
	run(editor, 0, "schedule", "push", file, "--to", "qn/tk/c1")
	if out = run(editor, 1, "approve", "2"); !strings.Contains(out, "your role operator") {
		t.Fatalf("an operator approves:\n%s", out)
	}
	out = run(approver, 0, "approve", "2")
	if !strings.Contains(out, "submission 2 by lan approved: area:qn/tk/c1 revision 1 stored; 0 device(s)") {
		t.Fatalf("approve:\n%s", out)
	}
	if out = run(editor, 0, "schedule", "list", "--to", "qn/tk/c1"); !regexp.MustCompile(`area:qn/tk/c1\s+1\s+c1\s+1\s+lan\s+\S+ \S+\s+hung \d\d/\d\d/\d{4} \d\d:\d\d`).MatchString(out) {
		t.Fatalf("schedule list:\n%s", out)
	}
	// A play-now of the editor waits too, and its approval sends it as the editor asked.
	run(as(admin), 0, "device", "enroll", "c1/cl-01", "--area", "qn/tk/c1")
	out = run(editor, 0, "play", "--to", "qn/tk/c1", "--url", "http://r.example/tb.mp3", "--title", "Thông báo")
	if !strings.Contains(out, "area:qn/tk/c1: submitted for approval as 3") {
		t.Fatalf("an editor's play where approval is required:\n%s", out)
	}
	if out = run(approver, 0, "submissions"); !strings.Contains(out, "play now (priority): Thông báo") {
		t.Fatalf("the queue with a play-now:\n%s", out)
	}
	run(approver, 0, "approve", "3")
	if out = run(approver, 0, "commands"); !strings.Contains(out, `play "Thông báo" (http://r.example/tb.mp3) to qn/tk/c1, by lan`) {
		t.Fatalf("commands after the play-now's approval:\n%s", out)
	}
	// Where approval is not required, `loa submit` asks for it all the same.
	run(as(admin), 0, "area", "add", "qn/hoi-an")
	out = run(as(admin), 0, "submit", file, "--to", "qn/hoi-an")
	if !strings.Contains(out, "area:qn/hoi-an: submitted for approval as 4") {
		t.Fatalf("submit where approval is not required:\n%s", out)
	}
	run(warner, 0, "emergency", "--to", "qn/tk", "--text", "Bão số 9")
	if out = run(approver, 0, "review"); !regexp.MustCompile(`(?m)^1\s+qn/tk\s+binh\s+.*Bão số 9`).MatchString(out) {
		t.Fatalf("review queue:\n%s", out)
	}
	if out = run(approver, 0, "review", "1", "--note", "đúng"); !strings.Contains(out, "emergency 1 by binh reviewed by hung") {
		t.Fatalf("review:\n%s", out)
	}
	if out = run(approver, 0, "review"); !strings.Contains(out, "no emergency warning waits") {
		t.Fatalf("review queue after:\n%s", out)
	}
}

const approvalDocCLI = "version: 1\nid: c1\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: news\n    cron: \"0 30 6 * * *\"\n    items:\n      - stream: http://r.example/n.mp3\n        duration: 15m\n"

// Content under approval as staff run it: a commune editor's upload waits (the answer says who
// can approve it), `loa content list --state submitted` lists it, a schedule pushed with it
// where approval is not required is refused naming it, `loa reject content` needs a reason,
// `loa approve content` puts it in the library for broadcast.
func TestApproveContentCommands(t *testing.T) {
	for _, tool := range []string{"sox", "ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps installs it)", tool)
		}
	}
	as, run, user := staffCLI(t)
	admin := ""
	run(as(admin), 0, "area", "add", "qn/tk")
	run(as(admin), 0, "area", "add", "qn/tk/c1")
	run(as(admin), 0, "area", "add", "qn/dl")
	run(as(admin), 0, "area", "policy", "qn/tk", "--approval", "required")
	editor, approver := user("lan", "qn/tk/c1", store.RoleOperator), user("hung", "qn/tk", store.RoleApprover)
	wav := filepath.Join(t.TempDir(), "tin.wav")
	if out, err := exec.Command("sox", "-D", "-n", "-r", "48000", "-c", "1", "-b", "16", wav, "synth", "1", "sine", "440", "vol", "0.1").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v %s", err, out)
	}
	out := run(editor, 0, "content", "add", wav, "--title", "Bản tin xã")
	m := regexp.MustCompile(`(sha256:[0-9a-f]{64}) added`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "waiting for approval in qn/tk/c1") || !strings.Contains(out, "who can: admin, hung") {
		t.Fatalf("an editor's upload where approval is required:\n%s", out)
	}
	ref := m[1]
	if out = run(approver, 0, "content", "list", "--state", "submitted"); !regexp.MustCompile(`Bản tin xã\s.*lan \S+ \S+\s+waiting for approval in qn/tk/c1`).MatchString(out) {
		t.Fatalf("what waits:\n%s", out)
	}
	file := filepath.Join(t.TempDir(), "dl.yaml")
	os.WriteFile(file, []byte(strings.Replace(approvalDocCLI, "- stream: http://r.example/n.mp3\n        duration: 15m", "- content: "+ref, 1)), 0o644)
	if out = run(as(admin), 1, "schedule", "push", file, "--to", "qn/dl"); !strings.Contains(out, `"Bản tin xã" (`+ref+`) waits for approval`) {
		t.Fatalf("a push playing it before its approval:\n%s", out)
	}
	run(approver, 2, "reject", "content", ref)
	if out = run(approver, 0, "reject", "content", ref, "--reason", "Sai tên thôn"); !strings.Contains(out, "rejected by hung") || !strings.Contains(out, "Sai tên thôn") {
		t.Fatalf("reject content:\n%s", out)
	}
	if out = run(editor, 0, "content", "list", "--state", "rejected"); !strings.Contains(out, "Sai tên thôn") {
		t.Fatalf("the editor's rejected items:\n%s", out)
	}
	if out = run(approver, 0, "approve", "content", ref); !regexp.MustCompile(`uploaded by lan: approved by hung \d\d/\d\d/\d{4} \d\d:\d\d`).MatchString(out) {
		t.Fatalf("approve content:\n%s", out)
	}
	if out = run(as(admin), 0, "schedule", "push", file, "--to", "qn/dl"); !strings.Contains(out, "area:qn/dl revision 1 stored") {
		t.Fatalf("the push once the item is approved:\n%s", out)
	}
	if out = run(approver, 0, "content", "list", "--csv"); !strings.Contains(out, ",qn/tk/c1,approved,hung,") {
		t.Fatalf("content list --csv:\n%s", out)
	}
}

// staffCLI starts a hub and returns how to run `loa` as a token (as("") is the administrator
// of the province "qn") and how to add staff with a role.
func staffCLI(t *testing.T) (as func(token string) Env, run func(env Env, want int, args ...string) string, user func(id, scope string, role store.Role) Env) {
	url, admin, db := startHubDB(t)
	as = func(tok string) Env {
		if tok == "" {
			tok = admin
		}
		return Env{Getenv: func(k string) string { return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k] }}
	}
	run = func(env Env, want int, args ...string) string {
		t.Helper()
		code, out, e := runCLI(env, args...)
		if code != want {
			t.Fatalf("loa %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, e)
		}
		return out + e
	}
	user = func(id, scope string, role store.Role) Env {
		tok, err := hub.AddUser(context.Background(), db, id, id, scope, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetRole(context.Background(), id, role); err != nil {
			t.Fatal(err)
		}
		return as(tok)
	}
	return as, run, user
}
