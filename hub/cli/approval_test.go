package cli

import (
	"context"
	"os"
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
	url, admin, db := startHubDB(t)
	as := func(tok string) Env {
		return Env{Getenv: func(k string) string { return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k] }}
	}
	run := func(env Env, want int, args ...string) string {
		t.Helper()
		code, out, e := runCLI(env, args...)
		if code != want {
			t.Fatalf("loa %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, e)
		}
		return out + e
	}
	run(as(admin), 0, "area", "add", "qn/tk")
	run(as(admin), 0, "area", "add", "qn/tk/c1")
	user := func(id, scope string, role store.Role) Env {
		tok, err := hub.AddUser(context.Background(), db, id, id, scope, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetRole(context.Background(), id, role); err != nil {
			t.Fatal(err)
		}
		return as(tok)
	}
	editor, approver, warner := user("lan", "qn/tk/c1", store.RoleOperator), user("hung", "qn/tk", store.RoleApprover), user("binh", "qn/tk", store.RoleEmergency)
	if out := run(as(admin), 0, "area", "policy", "qn/tk", "--approval", "required"); !strings.Contains(out, "qn/tk: approval required; self-approval not allowed") {
		t.Fatalf("area policy:\n%s", out)
	}
	if out := run(editor, 0, "area", "policy", "qn/tk/c1"); !strings.Contains(out, "qn/tk/c1: approval required") {
		t.Fatalf("a commune's inherited policy:\n%s", out)
	}
	file := filepath.Join(t.TempDir(), "c1.yaml")
	os.WriteFile(file, []byte(approvalDocCLI), 0o644)
	out := run(editor, 0, "schedule", "push", file, "--to", "qn/tk/c1")
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
	// Where approval is not required, `loa submit` asks for it all the same.
	run(as(admin), 0, "area", "add", "qn/hoi-an")
	out = run(as(admin), 0, "submit", file, "--to", "qn/hoi-an")
	if !strings.Contains(out, "area:qn/hoi-an: submitted for approval as 3") {
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
