package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// loa schedule list|show|plan read the hub's stored and composed schedules: the plan of a
// device is its signed document (province + commune + broadcasts) with titles, for a plain
// date or a week; a push of the same schedule makes no revision; --dry-run stores nothing.
func TestSchedulePlanFromHub(t *testing.T) {
	h := startHubProc(t, nil)
	h.loaOK(t, "area", "add", "qn/tk")
	h.loaOK(t, "device", "enroll", "tk/cl-01", "--area", "qn/tk")
	tone := filepath.Join(h.dir, "tone.wav")
	writeTone(t, tone)
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(h.loaOK(t, "content", "add", tone, "--title", "Thông báo tiêm chủng"))
	write := func(name, body string) string {
		p := filepath.Join(h.dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	prov := write("qn.yaml", "version: 1\nid: qn\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: relay\n    title: Tiếp sóng VOV\n    cron: \"0 0 6 * * *\"\n    items:\n      - stream: http://radio.example/vov1.mp3\n        duration: 30m\n")
	communeDoc := "version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: morning\n    title: Bản tin sáng\n    cron: \"0 30 5 * * *\"\n    items:\n      - content: " + ref + "\n"
	commune := write("tk.yaml", communeDoc)
	h.loaOK(t, "schedule", "push", prov, "--to", "qn")
	h.loaOK(t, "schedule", "push", commune, "--to", "qn/tk")

	day := h.loaOK(t, "schedule", "plan", "--to", "tk/cl-01", "--from", "2026-12-07")
	for _, want := range []string{"signed revision", "T2 07/12", "05:30:00", "Bản tin sáng", "Thông báo tiêm chủng", "06:00:00", "Tiếp sóng VOV", "times in Asia/Ho_Chi_Minh"} {
		if !strings.Contains(day, want) {
			t.Fatalf("plan of a day lacks %q:\n%s", want, day)
		}
	}
	if strings.Contains(day, "T3 08/12") && strings.Contains(day, "Bản tin sáng\tThông") {
		t.Fatalf("a day's plan runs past the day:\n%s", day)
	}
	week := h.loaOK(t, "schedule", "plan", "--to", "tk/cl-01", "--week")
	if n := strings.Count(week, "Bản tin sáng"); n != 7 {
		t.Fatalf("a week holds %d morning bulletins, want 7:\n%s", n, week)
	}
	area := h.loaOK(t, "schedule", "plan", "--to", "qn/tk", "--from", "07/12/2026")
	if !strings.Contains(area, "without a schedule of its own") || !strings.Contains(area, "Tiếp sóng VOV") || !strings.Contains(area, "Bản tin sáng") {
		t.Fatalf("plan of an area:\n%s", area)
	}
	// A broadcast reaches the plan as the hub composes it for the device.
	h.loaOK(t, "emergency", "--to", "qn/tk", "--text", "Bão số 13", "--title", "Cảnh báo bão", "--until", "2h")
	if now := h.loaOK(t, "schedule", "plan", "--to", "tk/cl-01"); !strings.Contains(now, "emergency") || !strings.Contains(now, "Cảnh báo bão") {
		t.Fatalf("plan with an emergency on the air:\n%s", now)
	}

	list := h.loaOK(t, "schedule", "list")
	if !regexp.MustCompile(`area:qn\s+1\s+qn\s+1\s+admin`).MatchString(list) || !regexp.MustCompile(`area:qn/tk\s+1\s+tk\s+1`).MatchString(list) {
		t.Fatalf("schedule list:\n%s", list)
	}
	if show := h.loaOK(t, "schedule", "show", "qn/tk"); !strings.Contains(show, "area:qn/tk revision 1") || !strings.Contains(show, communeDoc) {
		t.Fatalf("schedule show:\n%s", show)
	}

	// The same schedule with only its revision bumped: no new revision.
	again := write("tk2.yaml", strings.Replace(communeDoc, "revision: 1", "revision: 2", 1))
	if out := h.loaOK(t, "schedule", "push", again, "--to", "qn/tk"); !strings.Contains(out, "already is this schedule") {
		t.Fatalf("pushing the same schedule again:\n%s", out)
	}
	changed := write("tk3.yaml", strings.Replace(communeDoc, "0 30 5", "0 0 5", 1)+"  - id: evening\n    title: Bản tin chiều\n    cron: \"0 0 17 * * *\"\n    items:\n      - content: "+ref+"\n")
	dry := h.loaOK(t, "schedule", "push", changed, "--to", "qn/tk", "--dry-run")
	if !strings.Contains(dry, "revision 2 for 1 device(s)") || !strings.Contains(dry, "~ morning (Bản tin sáng)") || !strings.Contains(dry, "+ evening (Bản tin chiều)") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if revs := h.loaOK(t, "schedule", "list", "--to", "qn/tk"); strings.Count(revs, "area:qn/tk") != 1 {
		t.Fatalf("a dry run or a same push stored a revision:\n%s", revs)
	}
}
