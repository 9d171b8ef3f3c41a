package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loa-project/loa/internal/testkit"
)

// Languages and themes come from admin-kept lists with Vietnamese labels; staff may type the
// label any usual way; a wrong value is refused before ffmpeg runs and leaves nothing on the
// hub; metadata can be edited; the library lists with filters, as JSON and CSV.
func TestContentMetadataLists(t *testing.T) {
	// ffmpeg and ffprobe through a wrapper that logs each run, to see what ran on a refusal.
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs.log")
	for _, prog := range []string{"ffmpeg", "ffprobe"} {
		os.WriteFile(filepath.Join(dir, prog), []byte("#!/bin/sh\necho "+prog+" >> "+runs+"\nexec "+prog+" \"$@\"\n"), 0o755)
	}
	h := startHubProc(t, func(string) string {
		return "ffmpeg: " + filepath.Join(dir, "ffmpeg") + "\nffprobe: " + filepath.Join(dir, "ffprobe") + "\n"
	})
	h.loaOK(t, "area", "add", "qn/nam-giang")
	h.loaOK(t, "term", "add", "language", "vie", "--label", "Tiếng Việt")
	h.loaOK(t, "term", "add", "language", "ktv", "--label", "Cơ Tu")
	h.loaOK(t, "term", "add", "theme", "human-rights", "--label", "Quyền con người")
	if out := h.loaOK(t, "term", "list", "language"); !strings.Contains(out, "ktv") || !strings.Contains(out, "Cơ Tu") || strings.Contains(out, "human-rights") {
		t.Fatalf("term list language:\n%s", out)
	}
	lan := lastLine(testkit.Run(t, nil, h.hubBin, "user", "add", "lan", "--scope", "qn/nam-giang", "--config", h.cfg))
	commune := *h
	commune.env = append(append([]string{}, h.env...), "LOA_TOKEN="+lan)
	if code, _, errs := commune.loa(t, "term", "add", "language", "ctu", "--label", "Co Tu"); code != 1 || !strings.Contains(errs, "only staff of a top area") {
		t.Fatalf("a commune changed the hub's lists: %d %s", code, errs)
	}

	tone := filepath.Join(dir, "tone.wav")
	writeTone(t, tone)
	contentDir := filepath.Join(h.dir, "data", "content")
	files := func() int { es, _ := os.ReadDir(contentDir); return len(es) }
	before := files()
	code, _, errs := commune.loa(t, "content", "add", tone, "--title", "Bản tin", "--language", "Co Tuu", "--theme", "nhân quyền")
	if code != 1 || !strings.Contains(errs, `--language "Co Tuu": not in the hub's list of languages (ngôn ngữ): Cơ Tu (ktv), Tiếng Việt (vie)`) ||
		!strings.Contains(errs, `--theme "nhân quyền"`) || strings.Contains(errs, "Æ") {
		t.Fatalf("a language not in the list: %d %s", code, errs)
	}
	if b, _ := os.ReadFile(runs); len(b) > 0 {
		t.Fatalf("ffmpeg ran before the metadata was refused:\n%s", b)
	}
	if files() != before {
		t.Fatal("a refused upload left a file in the content directory")
	}
	if es, _ := os.ReadDir(filepath.Join(h.dir, "data", "tmp")); len(es) > 0 {
		t.Fatalf("a refused upload left %d temporary file(s)", len(es))
	}

	// The label typed as staff type it: accents or not, dashes or spaces.
	out := commune.loaOK(t, "content", "add", tone, "--title", "Bản tin Cơ Tu", "--language", "cơ-tu", "--theme", "Quyền Con Người")
	if !strings.Contains(out, "added") || !strings.Contains(out, "language Cơ Tu, theme Quyền con người") {
		t.Fatalf("content add by label:\n%s", out)
	}
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	// The same bytes again with other metadata: kept, and the way to change it said.
	if out := commune.loaOK(t, "content", "add", tone, "--title", "x", "--language", "vie"); !strings.Contains(out, "already in the library") || !strings.Contains(out, "loa content edit "+ref) {
		t.Fatalf("same bytes, other metadata:\n%s", out)
	}
	if out := commune.loaOK(t, "content", "edit", ref, "--language", "Tiếng Việt", "--title", "Bản tin tiếng Việt"); !strings.Contains(out, `"Bản tin tiếng Việt"; language Tiếng Việt, theme Quyền con người`) {
		t.Fatalf("content edit:\n%s", out)
	}
	if code, _, errs := commune.loa(t, "content", "edit", ref, "--language", "klingon"); code != 1 || !strings.Contains(errs, "not in the hub's list of languages") {
		t.Fatalf("edit to a language not in the list: %d %s", code, errs)
	}

	table := h.loaOK(t, "content", "list", "--language", "vie")
	if !strings.Contains(table, "Bản tin tiếng Việt") || !strings.Contains(table, "Tiếng Việt") || !strings.Contains(table, "1 item(s)") {
		t.Fatalf("content list --language vie:\n%s", table)
	}
	if out := h.loaOK(t, "content", "list", "--language", "Cơ Tu"); !strings.Contains(out, "0 item(s)") {
		t.Fatalf("content list --language 'Cơ Tu' after the edit:\n%s", out)
	}
	var js []map[string]any
	if err := json.Unmarshal([]byte(h.loaOK(t, "content", "list", "--theme", "human-rights", "--json")), &js); err != nil || len(js) != 1 ||
		js[0]["language"] != "vie" || js[0]["language_label"] != "Tiếng Việt" || js[0]["ref"] != ref {
		t.Fatalf("content list --json: %v %v", js, err)
	}
	rows, err := csv.NewReader(strings.NewReader(h.loaOK(t, "content", "list", "--csv", "--title", "tiếng Việt"))).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][4] != "language" || rows[1][4] != "vie" || rows[1][5] != "Tiếng Việt" {
		t.Fatalf("content list --csv: %v %v", rows, err)
	}
}
