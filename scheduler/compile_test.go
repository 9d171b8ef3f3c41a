package scheduler

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// mustParse parses a document written for a test, failing the test on any error.
func mustParse(t *testing.T, src string) *Document {
	t.Helper()
	doc, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc
}

// compact renders segments as "start-end output program#play item status" in the schedule's
// zone, the shape table tests compare against.
func compact(tl *Timeline) []string {
	var out []string
	for _, s := range tl.Segments {
		name := s.Program
		if s.Play > 0 {
			name += "#" + itoa(s.Play)
		}
		line := s.Start.Format("01-02 15:04:05") + "-" + s.End.Format("15:04:05") + " " + s.Output + " " + name + " " + itoa(s.Item) + " " + string(s.Status)
		if s.Offset > 0 {
			line += " @" + s.Offset.String()
		}
		out = append(out, line)
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

const header = "version: 1\nid: t\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\n"

func TestCompileTable(t *testing.T) {
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	day := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, hcm) }
	cases := []struct {
		name        string
		doc         string
		from, until time.Time
		want        []string
	}{
		{
			name: "daily cron plays each day",
			doc: header + `programs:
  - {id: a, cron: "0 30 6 * * *", items: [{file: a.mp3, duration: 10m}]}`,
			from: day(1, 0, 0), until: day(3, 0, 0),
			want: []string{
				"11-01 06:30:00-06:40:00 speakers a 0 play",
				"11-02 06:30:00-06:40:00 speakers a 0 play",
			},
		},
		{
			name: "five-field weekday cron skips Sunday (2026-11-01 is a Sunday)",
			doc: header + `programs:
  - {id: a, cron: "0 7 * * MON-SAT", items: [{file: a.mp3, duration: 1m}]}`,
			from: day(1, 0, 0), until: day(3, 0, 0),
			want: []string{"11-02 07:00:00-07:01:00 speakers a 0 play"},
		},
		{
			name: "descriptor @daily",
			doc: header + `programs:
  - {id: a, cron: "@daily", items: [{file: a.mp3, duration: 1m}]}`,
			from: day(1, 0, 0), until: day(2, 12, 0),
			want: []string{"11-01 00:00:00-00:01:00 speakers a 0 play", "11-02 00:00:00-00:01:00 speakers a 0 play"},
		},
		{
			name: "one-off at, given with an offset and read in the schedule's zone",
			doc: header + `programs:
  - {id: a, at: "2026-11-01T23:30:00Z", items: [{file: a.mp3, duration: 2m}]}
  - {id: b, at: "2026-11-02T09:00", items: [{file: b.mp3, duration: 2m}]}`,
			from: day(1, 0, 0), until: day(3, 0, 0),
			want: []string{
				"11-02 06:30:00-06:32:00 speakers a 0 play",
				"11-02 09:00:00-09:02:00 speakers b 0 play",
			},
		},
		{
			name: "validity window is inclusive at both edges",
			doc: header + `programs:
  - {id: a, cron: "0 8 * * *", valid_from: 2026-11-02, valid_until: 2026-11-03, items: [{file: a.mp3, duration: 1m}]}`,
			from: day(1, 0, 0), until: day(5, 0, 0),
			want: []string{"11-02 08:00:00-08:01:00 speakers a 0 play", "11-03 08:00:00-08:01:00 speakers a 0 play"},
		},
		{
			name: "overlapping normal programmes: the earlier keeps the output, the later starts after it, cut at its window",
			doc: header + `programs:
  - {id: late, cron: "0 10 6 * * *", items: [{file: b.mp3, duration: 10m}]}
  - {id: early, cron: "0 0 6 * * *", items: [{file: a.mp3, duration: 15m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:15:00 speakers early 0 play",
				"11-01 06:15:00-06:20:00 speakers late 0 cut",
			},
		},
		{
			name: "priority preempts normal; resume continues where it stopped",
			doc: header + `programs:
  - {id: n, cron: "0 0 6 * * *", max_duration: 30m, on_interrupt: resume, items: [{file: a.mp3, duration: 10m}, {file: b.mp3, duration: 5m}]}
  - {id: p, class: priority, cron: "0 4 6 * * *", items: [{file: p.mp3, duration: 2m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:04:00 speakers n 0 preempted",
				"11-01 06:04:00-06:06:00 speakers p 0 play",
				"11-01 06:06:00-06:12:00 speakers n 0 resumed @4m0s",
				"11-01 06:12:00-06:17:00 speakers n 1 resumed",
			},
		},
		{
			name: "priority preempts normal; restart plays from the first item",
			doc: header + `programs:
  - {id: n, cron: "0 0 6 * * *", max_duration: 30m, on_interrupt: restart, items: [{file: a.mp3, duration: 10m}]}
  - {id: p, class: priority, cron: "0 4 6 * * *", items: [{file: p.mp3, duration: 2m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:04:00 speakers n 0 preempted",
				"11-01 06:04:00-06:06:00 speakers p 0 play",
				"11-01 06:06:00-06:16:00 speakers n 0 resumed",
			},
		},
		{
			name: "priority preempts normal; skip gives up the rest",
			doc: header + `programs:
  - {id: n, cron: "0 0 6 * * *", max_duration: 30m, on_interrupt: skip, items: [{file: a.mp3, duration: 10m}]}
  - {id: p, class: priority, cron: "0 4 6 * * *", items: [{file: p.mp3, duration: 2m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:04:00 speakers n 0 preempted",
				"11-01 06:04:00-06:06:00 speakers p 0 play",
			},
		},
		{
			name: "a resumed programme is never extended past its window",
			doc: header + `programs:
  - {id: n, cron: "0 0 6 * * *", on_interrupt: resume, items: [{file: a.mp3, duration: 10m}]}
  - {id: p, class: priority, cron: "0 4 6 * * *", items: [{file: p.mp3, duration: 2m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:04:00 speakers n 0 preempted",
				"11-01 06:04:00-06:06:00 speakers p 0 play",
				"11-01 06:06:00-06:10:00 speakers n 0 cut @4m0s",
			},
		},
		{
			name: "integer priority orders programmes inside a class",
			doc: header + `programs:
  - {id: low, class: priority, priority: 1, cron: "0 0 6 * * *", items: [{file: a.mp3, duration: 10m}]}
  - {id: high, class: priority, priority: 5, cron: "0 2 6 * * *", items: [{file: b.mp3, duration: 1m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:02:00 speakers low 0 preempted",
				"11-01 06:02:00-06:03:00 speakers high 0 play",
				"11-01 06:03:00-06:10:00 speakers low 0 cut @2m0s",
			},
		},
		{
			name: "emergency preempts everything, also in quiet hours; normal in quiet hours is suppressed",
			doc: header + `quiet_hours: [{from: "22:00", to: "05:00"}]
programs:
  - {id: p, class: priority, cron: "0 0 23 * * *", items: [{file: a.mp3, duration: 10m}]}
  - {id: e, class: emergency, cron: "0 5 23 * * *", items: [{file: e.mp3, duration: 2m}]}`,
			from: day(1, 12, 0), until: day(2, 0, 0),
			want: []string{
				"11-01 23:00:00-23:10:00 speakers p 0 suppressed",
				"11-01 23:05:00-23:07:00 speakers e 0 play",
			},
		},
		{
			name: "quiet hours spanning midnight: suppressed on both sides, a programme running into them is cut",
			doc: header + `quiet_hours: [{from: "22:00", to: "05:00"}]
programs:
  - {id: night, cron: "0 0 1 * * *", items: [{file: a.mp3, duration: 5m}]}
  - {id: evening, cron: "0 50 21 * * *", items: [{file: b.mp3, duration: 20m}]}
  - {id: dawn, cron: "0 0 5 * * *", items: [{file: c.mp3, duration: 5m}]}`,
			from: day(1, 12, 0), until: day(2, 6, 0),
			want: []string{
				"11-01 21:50:00-22:00:00 speakers evening 0 cut",
				"11-02 01:00:00-01:05:00 speakers night 0 suppressed",
				"11-02 05:00:00-05:05:00 speakers dawn 0 play",
			},
		},
		{
			name: "max_duration cuts a long programme",
			doc: header + `programs:
  - {id: a, cron: "0 0 6 * * *", max_duration: 15m, items: [{file: a.mp3, duration: 10m}, {file: b.mp3, duration: 10m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:10:00 speakers a 0 play",
				"11-01 06:10:00-06:15:00 speakers a 1 cut",
			},
		},
		{
			name: "repeat with a gap, and an item of unknown length runs to max_duration",
			doc: header + `programs:
  - {id: a, cron: "0 0 6 * * *", repeat: {count: 2, gap: 5m}, items: [{file: a.mp3, duration: 3m}]}
  - {id: r, cron: "0 0 7 * * *", max_duration: 30m, items: [{stream: "http://radio.example/x.mp3", duration: 30m}, {file: unknown.mp3}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:03:00 speakers a 0 play",
				"11-01 06:08:00-06:11:00 speakers a#1 0 play",
				"11-01 06:16:00-06:19:00 speakers a#2 0 play",
				"11-01 07:00:00-07:30:00 speakers r 0 cut", // the unknown item never gets a turn
			},
		},
		{
			name: "outputs are resolved independently",
			doc: header + `programs:
  - {id: text, cron: "0 0 6 * * *", outputs: [board], items: [{text: "Lịch tiêm chủng", duration: 10m}]}
  - {id: e, class: emergency, cron: "0 5 6 * * *", outputs: [speakers, board], items: [{file: e.mp3, duration: 1m}]}`,
			from: day(1, 0, 0), until: day(1, 12, 0),
			want: []string{
				"11-01 06:00:00-06:05:00 board text 0 preempted",
				"11-01 06:05:00-06:06:00 board e 0 play",
				"11-01 06:06:00-06:10:00 board text 0 cut @5m0s",
				"11-01 06:05:00-06:06:00 speakers e 0 play",
			},
		},
		{
			name: "leap day: a 29 February programme plays in 2028 only",
			doc: header + `programs:
  - {id: leap, cron: "0 0 8 29 2 *", items: [{file: a.mp3, duration: 1m}]}`,
			from: time.Date(2026, 1, 1, 0, 0, 0, 0, hcm), until: time.Date(2029, 1, 1, 0, 0, 0, 0, hcm),
			want: []string{"02-29 08:00:00-08:01:00 speakers leap 0 play"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := mustParse(t, c.doc)
			tl, err := Compile(doc, c.from, c.until, CompileOptions{})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got := compact(tl)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("timeline:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(c.want, "\n      "))
			}
			// Deterministic: compiling again gives the same timeline.
			again, _ := Compile(doc, c.from, c.until, CompileOptions{})
			if strings.Join(compact(again), "\n") != strings.Join(got, "\n") {
				t.Errorf("second compile differs")
			}
		})
	}
}

func TestCompileDST(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	doc := mustParse(t, `version: 1
id: berlin
revision: 1
timezone: Europe/Berlin
programs:
  - {id: morning, cron: "0 30 6 * * *", items: [{file: a.mp3, duration: 10m}]}
  - {id: night, cron: "0 30 2 * * *", items: [{file: b.mp3, duration: 10m}]}
`)
	check := func(from time.Time, want []string) {
		t.Helper()
		tl, err := Compile(doc, from, from.Add(72*time.Hour), CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range tl.Segments {
			got = append(got, s.Program+" "+s.Start.Format(time.RFC3339))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// Spring forward on 2026-03-29: 02:30 does not exist and plays at 03:00 CEST; 06:30 stays
	// 06:30 local although the offset changed.
	check(time.Date(2026, 3, 28, 0, 0, 0, 0, berlin), []string{
		"night 2026-03-28T02:30:00+01:00", "morning 2026-03-28T06:30:00+01:00",
		"night 2026-03-29T03:00:00+02:00", "morning 2026-03-29T06:30:00+02:00",
		"night 2026-03-30T02:30:00+02:00", "morning 2026-03-30T06:30:00+02:00",
	})
	// Fall back on 2026-10-25: 02:30 happens twice and plays once, at the first.
	check(time.Date(2026, 10, 24, 0, 0, 0, 0, berlin), []string{
		"night 2026-10-24T02:30:00+02:00", "morning 2026-10-24T06:30:00+02:00",
		"night 2026-10-25T02:30:00+02:00", "morning 2026-10-25T06:30:00+01:00",
		"night 2026-10-26T02:30:00+01:00", "morning 2026-10-26T06:30:00+01:00",
	})
}

func TestCompileRangeIsARestriction(t *testing.T) {
	// A segment crossing `from` is the same segment whether or not the range starts before it:
	// the agent recompiles on every clock step and must not see programmes change identity.
	doc := mustParse(t, header+`programs:
  - {id: n, cron: "0 0 6 * * *", max_duration: 30m, items: [{file: a.mp3, duration: 10m}]}
  - {id: p, class: priority, cron: "0 4 6 * * *", items: [{file: p.mp3, duration: 2m}]}`)
	hcm := doc.Location()
	wide, _ := Compile(doc, time.Date(2026, 11, 1, 0, 0, 0, 0, hcm), time.Date(2026, 11, 2, 0, 0, 0, 0, hcm), CompileOptions{})
	narrow, _ := Compile(doc, time.Date(2026, 11, 1, 6, 5, 0, 0, hcm), time.Date(2026, 11, 1, 6, 7, 0, 0, hcm), CompileOptions{})
	keys := map[string]bool{}
	for _, s := range wide.Segments {
		keys[s.Key()+string(s.Status)] = true
	}
	if len(narrow.Segments) != 2 {
		t.Fatalf("narrow compile has %d segments, want 2: %v", len(narrow.Segments), compact(narrow))
	}
	for _, s := range narrow.Segments {
		if !keys[s.Key()+string(s.Status)] {
			t.Errorf("segment %v of the narrow range is not in the wide one", compact(&Timeline{Segments: []Segment{s}}))
		}
	}
}

func TestCompileItemLengthFromStore(t *testing.T) {
	doc := mustParse(t, header+`programs:
  - {id: a, cron: "0 0 6 * * *", items: [{content: "sha256:`+strings.Repeat("ab", 32)+`"}]}`)
	hcm := doc.Location()
	from, until := time.Date(2026, 11, 1, 0, 0, 0, 0, hcm), time.Date(2026, 11, 2, 0, 0, 0, 0, hcm)
	if _, err := Compile(doc, from, until, CompileOptions{}); err == nil || !strings.Contains(err.Error(), `program "a"`) {
		t.Fatalf("compile without a known length: got %v, want an error naming program \"a\"", err)
	}
	tl, err := Compile(doc, from, until, CompileOptions{ItemLength: func(it Item) (time.Duration, bool) { return 95 * time.Second, true }})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Segments) != 1 || tl.Segments[0].End.Sub(tl.Segments[0].Start) != 95*time.Second {
		t.Fatalf("segments %v: want one of 95s", compact(tl))
	}
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
