package clicmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// tree is a small program: `demo greet NAME [--loud]`, `demo check` (exit 1 or 2 as told),
// `demo fail`, and the group `demo user add`.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "demo", Short: "a demo"}
	greet := &cobra.Command{Use: "greet NAME [--loud]", Short: "say hello", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] == "nobody" {
				return Usagef("greet takes a person, not %q", args[0])
			}
			c.Println("hello", args[0])
			return nil
		}}
	greet.Flags().Bool("loud", false, "shout")
	check := &cobra.Command{Use: "check CODE", Short: "exit as told", RunE: func(c *cobra.Command, args []string) error {
		if args[0] == "2" {
			return ExitError{Code: 2}
		}
		return ExitError{Code: 1}
	}}
	fail := &cobra.Command{Use: "fail", Short: "fail", RunE: func(*cobra.Command, []string) error { return errors.New("it broke") }}
	user := &cobra.Command{Use: "user", Short: "users"}
	user.AddCommand(&cobra.Command{Use: "add NAME", Short: "add a user", Run: func(*cobra.Command, []string) {}},
		&cobra.Command{Use: "remove NAME", Short: "remove a user", Run: func(*cobra.Command, []string) {}})
	root.AddCommand(greet, check, fail, user)
	Prepare(root)
	return root
}

func execute(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := Execute(context.Background(), tree(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestExitCodesAndUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // contained in stdout
		stderr   string // contained in stderr
		noStderr string // not in stderr (another command's usage)
	}{
		{[]string{"greet", "Lan"}, 0, "hello Lan", "", ""},
		{[]string{"greet", "--help"}, 0, "demo greet NAME [--loud]", "", ""},
		{[]string{"help", "greet"}, 0, "--loud", "", ""},
		{[]string{"greet", "Lan", "--colour"}, 2, "", "demo: greet: flag provided but not defined: --colour\n\nUsage:\n  demo greet NAME [--loud]", "user"},
		{[]string{"greet", "Lan", "-x"}, 2, "", "flag provided but not defined: -x", ""},
		{[]string{"greet"}, 2, "", "accepts 1 arg(s)", ""},
		{[]string{"greet", "nobody"}, 2, "", "demo: greet takes a person, not \"nobody\"\n\nUsage:\n  demo greet", ""},
		{[]string{"check", "1"}, 1, "", "", "Usage"},
		{[]string{"check", "2"}, 2, "", "Usage:\n  demo check CODE", ""},
		{[]string{"fail"}, 1, "", "demo: it broke\n", "Usage"},
		{[]string{"frobnicate"}, 2, "", `demo: unknown command "frobnicate"`, ""},
		{[]string{}, 2, "", "demo: no command", ""},
		{[]string{"user"}, 2, "", "demo: user takes add or remove", ""},
		{[]string{"user", "frob"}, 2, "", `demo: unknown command "user frob"`, ""},
	} {
		code, out, errOut := execute(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) ||
			tc.noStderr != "" && strings.Contains(errOut, tc.noStderr) {
			t.Errorf("demo %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(tc.args, " "), code, tc.code, out, errOut)
		}
	}
}

// TestGenDocs: the man pages (one per command, roff, no build date unless SOURCE_DATE_EPOCH
// gives one) and the three shells' completions, where Debian's shells look for them.
func TestGenDocs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1764806400") // 4 Dec 2025
	if code, _, errOut := execute("gen-docs", dir); code != 0 {
		t.Fatalf("gen-docs: exit %d: %s", code, errOut)
	}
	man := filepath.Join(dir, "usr", "share", "man", "man1")
	for _, page := range []string{"demo.1", "demo-greet.1", "demo-user-add.1", "demo-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(man, page))
		if err != nil {
			t.Errorf("no man page %s: %v", page, err)
			continue
		}
		if s := string(b); !strings.HasPrefix(s, ".nh\n.TH") || !strings.Contains(s, ".SH NAME") || !strings.Contains(s, "Dec 2025") {
			t.Errorf("%s is not a dated man page:\n%s", page, s)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(man, "demo-greet.1")); !strings.Contains(string(b), "loud") {
		t.Errorf("demo-greet.1 does not describe --loud:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(man, "demo-gen-docs.1")); err == nil {
		t.Error("the hidden gen-docs command has a man page")
	}
	for path, want := range map[string]string{
		"usr/share/bash-completion/completions/demo":    "__start_demo",
		"usr/share/zsh/vendor-completions/_demo":        "#compdef demo",
		"usr/share/fish/vendor_completions.d/demo.fish": "complete -c demo",
	} {
		if b, err := os.ReadFile(filepath.Join(dir, path)); err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v; want it to hold %q", path, err, want)
		}
	}
}
