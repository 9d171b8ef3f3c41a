package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-project/loa/internal/testkit"
)

// docLine is a `$ loa …` example of a doc, with the error the doc shows after it, if any.
type docLine struct {
	doc, line string
	args      []string
	redirect  string // > FILE
	comment   string // # … after the command
	wantErr   string // the doc's "loa: …" line after it
}

// shellWords splits an example as a shell would for these docs: words, double quotes, a
// trailing # comment, one > redirection.
func shellWords(s string) (args []string, redirect, comment string) {
	var cur strings.Builder
	inQ, have := false, false
	flush := func() {
		if have {
			args = append(args, cur.String())
		}
		cur.Reset()
		have = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ, have = !inQ, true
		case inQ:
			cur.WriteByte(c)
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !have:
			flush()
			return args, redirect, strings.TrimSpace(s[i+1:])
		case c == '>' && !have:
			flush()
			rest := strings.TrimSpace(s[i+1:])
			redirect, comment, _ = strings.Cut(rest, " #")
			return args, strings.TrimSpace(redirect), strings.TrimSpace(comment)
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	flush()
	return args, redirect, comment
}

// docExamples returns the `$ loa …` lines in fenced code blocks of a markdown file.
func docExamples(t *testing.T, path string) []docLine {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []docLine
	fence := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fence = !fence
			continue
		}
		if !fence || !strings.HasPrefix(l, "$ loa ") {
			continue
		}
		d := docLine{doc: filepath.Base(path), line: l}
		d.args, d.redirect, d.comment = shellWords(strings.TrimPrefix(l, "$ loa "))
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "loa: ") {
			d.wantErr = strings.TrimPrefix(lines[i+1], "loa: ")
		}
		out = append(out, d)
	}
	return out
}

// docSynopsis returns the command lines of docs/cli.md's Commands block, continuation lines
// joined to their command.
func docSynopsis(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Commands\n\n```\n")
	if !ok {
		t.Fatal("docs/cli.md has no Commands block")
	}
	block, _, _ := strings.Cut(rest, "```")
	var out []string
	for _, l := range strings.Split(block, "\n") {
		l, _, _ = strings.Cut(l, "  #")
		switch {
		case strings.HasPrefix(l, "loa "):
			out = append(out, l)
		case strings.TrimSpace(l) != "" && len(out) > 0:
			out[len(out)-1] += " " + strings.TrimSpace(l)
		}
	}
	return out
}

// notUnderstood is what the CLI says of a command or flag it does not know.
var notUnderstood = regexp.MustCompile(`flag provided but not defined|unknown command|takes at most|takes one|takes a `)

// Every command and flag docs/cli.md lists is one the CLI knows, and every example in
// docs/cli.md and the README runs against a real hub without an unknown command or flag or a
// usage error; where the doc shows the error an example gets, the CLI says that.
func TestCLIDocsExamples(t *testing.T) {
	root, _ := filepath.Abs("../..")
	h := startHubAs(t, "quang-nam", "Quảng Nam", nil)
	for _, a := range []string{"quang-nam/tam-ky", "quang-nam/tam-ky/tam-thanh", "quang-nam/hoi-an", "quang-nam/tam-ky/an-son"} {
		h.loaOK(t, "area", "add", a)
	}
	h.loaOK(t, "term", "add", "language", "vie", "--label", "Tiếng Việt")
	h.loaOK(t, "term", "add", "language", "ktv", "--label", "Cơ Tu")
	h.loaOK(t, "term", "add", "theme", "human-rights", "--label", "Quyền con người")
	tamThanh := lastLine(testkit.Run(t, nil, h.hubBin, "user", "add", "lan", "--scope", "quang-nam/tam-ky/tam-thanh", "--config", h.cfg))

	// The files the examples name, in the directory they run in.
	work := t.TempDir()
	writeTone(t, filepath.Join(work, "tone.wav"))
	tone, _ := os.ReadFile(filepath.Join(work, "tone.wav"))
	for _, f := range []string{"bao-cao.mp3", "x.mp3", "bao-so-13.mp3", "thong-bao.mp3", "ban-tin.mp3"} {
		os.WriteFile(filepath.Join(work, f), tone, 0o644)
	}
	os.WriteFile(filepath.Join(work, "commune.yaml"), []byte("version: 1\nid: tam-thanh\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\n"+
		"programs:\n  - id: morning\n    title: Bản tin sáng\n    cron: \"0 30 5 * * *\"\n    items:\n      - stream: http://radio.example/vov1.mp3\n        duration: 15m\n"), 0o644)

	loa := func(env []string, args ...string) (int, string, string) {
		cmd := exec.Command(h.loaBin, args...)
		cmd.Dir = work
		cmd.Env = append(append(os.Environ(), h.env...), env...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), o.String(), e.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, o.String(), e.String()
	}

	// The synopsis: each command with each of its flags given a value.
	flagRe := regexp.MustCompile(`(?:^|[\s\[(|])(--?[a-z][a-z-]*)`)
	for _, syn := range docSynopsis(t, filepath.Join(root, "docs", "cli.md")) {
		var words []string
		for _, w := range strings.Fields(strings.TrimPrefix(syn, "loa ")) {
			if w == "" || strings.ContainsAny(w, "-[(|") || strings.ToLower(w) != w {
				break
			}
			words = append(words, w)
		}
		if _, _, errs := loa(nil, words...); notUnderstood.MatchString(errs) && strings.Contains(errs, "unknown command") {
			t.Errorf("docs/cli.md lists `loa %s`, which the CLI does not know: %s", strings.Join(words, " "), errs)
		}
		for _, m := range flagRe.FindAllStringSubmatch(syn, -1) {
			args := append(append([]string{}, words...), m[1]+"=x")
			if _, _, errs := loa(nil, args...); strings.Contains(errs, "not defined") || strings.Contains(errs, "unknown command") {
				t.Errorf("docs/cli.md lists %s for `loa %s`, which the CLI does not take: %s", m[1], strings.Join(words, " "), firstLineOf(errs))
			}
		}
	}

	// The examples, in the order the docs give them.
	examples := append(docExamples(t, filepath.Join(root, "docs", "cli.md")), docExamples(t, filepath.Join(root, "README.md"))...)
	if len(examples) < 15 {
		t.Fatalf("found only %d examples in docs/cli.md and README.md", len(examples))
	}
	for _, ex := range examples {
		var env []string
		if strings.Contains(ex.comment, "as Tam Thanh staff") {
			env = []string{"LOA_TOKEN=" + tamThanh}
		}
		code, out, errs := loa(env, ex.args...)
		if ex.redirect != "" {
			os.WriteFile(filepath.Join(work, ex.redirect), []byte(out), 0o644)
		}
		// Exit 2 is a usage error: only where the doc shows that error.
		if notUnderstood.MatchString(errs) || code == 2 && ex.wantErr == "" {
			t.Errorf("%s: `%s`: exit %d, the CLI does not understand it: %s", ex.doc, ex.line, code, firstLineOf(errs))
			continue
		}
		if ex.wantErr != "" {
			if !docMatch(ex.wantErr, strings.TrimPrefix(firstLineOf(errs), "loa: ")) {
				t.Errorf("%s: `%s`:\n the doc shows: %s\n the CLI says:  %s", ex.doc, ex.line, ex.wantErr, firstLineOf(errs))
			}
		}
	}
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// docMatch compares a doc's message with the program's: "…" in the doc stands for anything.
func docMatch(doc, got string) bool {
	parts := strings.Split(doc, "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}
