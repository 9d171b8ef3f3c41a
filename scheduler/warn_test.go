package scheduler

import (
	"strings"
	"testing"
	"time"
)

func TestWarnings(t *testing.T) {
	doc, err := Parse("warn.yaml", []byte(`
version: 1
id: w
revision: 1
timezone: Asia/Ho_Chi_Minh
programs:
  - id: news
    cron: "0 30 5 * * *"
    items: [{text: "tin sáng", duration: 20m}]
  - id: music
    cron: "0 40 5 * * *"
    items: [{text: "nhạc", duration: 10m}]
  - id: urgent
    class: priority
    cron: "0 35 5 * * *"
    max_duration: 5m
    items: [{text: "thông báo", duration: 8m}]
  - id: evening
    cron: "0 0 17 * * *"
    items: [{text: "tin chiều", duration: 20m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 7, 0, 0, 0, 0, doc.Location())
	ws := Warnings(doc, from, from.Add(48*time.Hour))
	var got []string
	for _, w := range ws {
		got = append(got, w.Path+": "+w.Message)
	}
	if len(ws) != 2 {
		t.Fatalf("want 2 warnings (one overlap, one cut), got %d:\n%s", len(ws), strings.Join(got, "\n"))
	}
	if ws[0].Path != "programs[2].max_duration" || !strings.Contains(ws[0].Message, "8m0s, longer than its max_duration 5m0s") {
		t.Errorf("max_duration warning: %+v", ws[0])
	}
	if ws[1].Path != "programs[1]" || !strings.Contains(ws[1].Message, `"news" and "music" overlap on speakers`) {
		t.Errorf("overlap warning: %+v", ws[1])
	}
	// Different priorities are the author's intent, not a warning.
	doc.Programs[1].Priority = 1
	doc2, err := Parse("warn2", mustEncode(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	if ws := Warnings(doc2, from, from.Add(48*time.Hour)); len(ws) != 1 {
		t.Errorf("with priorities apart: %+v", ws)
	}
}

func mustEncode(t *testing.T, d *Document) []byte {
	t.Helper()
	b, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
