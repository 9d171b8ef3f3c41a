package console

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

func TestDiffTimelines(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	at := func(day, h, m int) time.Time { return time.Date(2026, 12, day, h, m, 0, 0, loc) }
	seg := func(prog string, start time.Time, minutes int, status string) calSeg {
		return calSeg{Output: "speakers", Program: prog, Item: "text:" + prog, Status: status, Scheduled: start, Start: start,
			End: start.Add(time.Duration(minutes) * time.Minute)}
	}
	old := []calSeg{
		seg("sang", at(7, 5, 30), 15, "play"), seg("sang", at(8, 5, 30), 15, "play"),
		seg("chieu", at(7, 17, 0), 15, "play"), seg("dan-toc", at(9, 19, 0), 30, "play"),
	}
	new := []calSeg{
		seg("sang", at(7, 5, 30), 15, "play"),
		seg("sang", at(8, 5, 30), 15, "preempted"), // the same play, now cut short by something else
		seg("chieu", at(7, 17, 30), 15, "play"),    // moved half an hour
		seg("the-duc", at(7, 6, 0), 10, "play"),    // new
	}
	changes := diffTimelines(old, new, loc)
	var got []string
	for _, c := range changes {
		s := c.New
		if c.Kind == "removed" {
			s = c.Old
		}
		got = append(got, c.Kind+" "+s.Program+" "+s.Start.Format("02 15:04"))
	}
	want := []string{"added the-duc 07 06:00", "moved chieu 07 17:30", "moved sang 08 05:30", "removed dan-toc 09 19:00"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	marks := map[string]string{}
	for _, s := range new {
		marks["new "+s.Program+s.Start.Format("021504")] = s.Change
	}
	for _, s := range old {
		marks["old "+s.Program+s.Start.Format("021504")] = s.Change
	}
	for k, v := range map[string]string{"new sang070530": "", "new the-duc070600": "added", "old dan-toc091900": "removed",
		"old chieu071700": "moved", "new chieu071730": "moved"} {
		if marks[k] != v {
			t.Errorf("%s marked %q, want %q", k, marks[k], v)
		}
	}
	if ch := diffTimelines(nil, nil, loc); len(ch) != 0 {
		t.Errorf("two empty timelines differ: %+v", ch)
	}
}

// A document read into the forms and written back is the same document: every field the
// scheduler knows survives the trip, so form and YAML edits never lose each other's work.
func TestEditorRoundTrip(t *testing.T) {
	src := `version: 1
id: xa-tam-xuan
revision: 3
timezone: Asia/Ho_Chi_Minh
quiet_hours:
  - {from: "22:00", to: "05:00"}
programs:
  - id: sang
    title: Bản tin sáng
    cron: "0 30 5 * * MON-SAT"
    valid_from: 2026-12-01
    valid_until: 2027-01-31
    max_duration: 20m
    volume: 0.8
    on_interrupt: restart
    repeat: {count: 1, gap: 30s}
    items:
      - content: sha256:9f2c0c1b5e8d4a7f3b6e1d2c9a8b7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a
        duration: 8m
        title: Thời sự
        fallback_text: Bản tin sáng hôm nay
      - text: "Chào buổi sáng"
        duration: 1m
        ticker: dòng chữ chạy
  - id: dan-toc
    class: priority
    priority: 2
    cron: "0 0 19 * * WED"
    outputs: [speakers, board]
    items:
      - stream: http://radio.example/cotu.mp3
        duration: 30m
  - id: bao
    class: emergency
    at: 2026-12-20T16:00:00+07:00
    repeat: {count: 3, every: 2h}
    items: [{file: /var/lib/loa/local/coi.mp3, duration: 1m}]
  - id: odd
    cron: "0 */15 8-10 1 * *"
    items: [{text: "x", duration: 10s}]
`
	want, err := scheduler.Parse("src", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	loose, err := decodeLoose([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	form := fromDocument(loose, time.UTC)
	if p := form.Programs[0]; p.When != "weekly" || p.Time != "05:30" || p.Days != [7]bool{true, true, true, true, true, true, false} || p.ValidFrom != "01/12/2026" || p.Volume != "80" {
		t.Errorf("the weekly programme in the forms: %+v", p)
	}
	if p := form.Programs[3]; p.When != "cron" || p.Cron != "0 */15 8-10 1 * *" {
		t.Errorf("a cron the forms cannot show as days and a time stays as written: %+v", p)
	}
	if p := form.Programs[2]; p.When != "once" || p.Date != "20/12/2026" || p.Time != "16:00" {
		t.Errorf("the one-off programme in the forms: %+v", p)
	}
	// Through the posted form fields, as a browser sends them (with the blank rows).
	form.addBlanks()
	posted := formValues(form)
	back := readEditorForm(posted)
	out := back.toYAML(time.UTC)
	got, err := scheduler.Parse(editorName, out)
	if err != nil {
		t.Fatalf("the forms' YAML does not parse: %v\n%s", err, out)
	}
	// The one-off's time is written in the schedule's zone, not with an offset: same instant.
	a, _ := json.Marshal(want.Programs[2].At)
	if got.Programs[2].At != "2026-12-20T16:00" {
		t.Errorf("at: %s, was %s", got.Programs[2].At, a)
	}
	got.Programs[2].At = want.Programs[2].At
	g, _ := got.Encode()
	w, _ := want.Encode()
	if string(g) != string(w) {
		t.Errorf("round trip changed the document:\n got %s\nwant %s", g, w)
	}
}

// formValues is what a browser posts for the forms as the editor renders them.
func formValues(d editorDoc) url.Values {
	v := url.Values{"id": {d.ID}, "timezone": {d.Timezone}, "revision": {d.Revision}}
	for i, q := range d.Quiet {
		k := "q." + strconv.Itoa(i) + "."
		v.Set(k+"from", q.From)
		v.Set(k+"to", q.To)
	}
	for i, p := range d.Programs {
		k := "p." + strconv.Itoa(i) + "."
		for f, x := range map[string]string{"id": p.ID, "title": p.Title, "class": p.Class, "priority": p.Priority, "when": p.When,
			"time": p.Time, "date": p.Date, "cron": p.Cron, "valid_from": p.ValidFrom, "valid_until": p.ValidUntil,
			"max_duration": p.MaxDuration, "volume": p.Volume, "on_interrupt": p.OnInterrupt, "repeat_count": p.RepeatCount,
			"repeat_gap": p.RepeatGap, "repeat_every": p.RepeatEvery} {
			v.Set(k+f, x)
		}
		for j, on := range p.Days {
			if on {
				v.Add(k+"days", dayNames[j])
			}
		}
		for o, on := range p.Outputs {
			if on {
				v.Add(k+"outputs", o)
			}
		}
		for j, it := range p.Items {
			ik := k + "i." + strconv.Itoa(j) + "."
			for f, x := range map[string]string{"kind": it.Kind, "value": it.Value, "duration": it.Duration, "title": it.Title,
				"fallback": it.Fallback, "ticker": it.Ticker} {
				v.Set(ik+f, x)
			}
		}
	}
	return v
}

// The scheduler's messages land at the field they are about.
func TestEditorErrorsAtFields(t *testing.T) {
	v := url.Values{"id": {"x"}, "timezone": {"Asia/Ho_Chi_Minh"}, "revision": {"1"},
		"p.0.id": {"sang"}, "p.0.when": {"weekly"}, "p.0.days": {"MON"}, "p.0.time": {"05:30"}, "p.0.volume": {"150"},
		"p.0.i.0.kind": {"text"}, "p.0.i.0.value": {"Bản tin"}, "p.0.i.0.duration": {""},
		"p.1.id": {"chieu"}, "p.1.when": {"weekly"}, "p.1.time": {"17:00"},
		"p.1.i.0.kind": {"stream"}, "p.1.i.0.value": {"ftp://x"}, "p.1.i.0.duration": {"30m"},
		"q.0.from": {"22:00"}, "q.0.to": {"22:00"}}
	d := readEditorForm(v)
	src := d.toYAML(time.UTC)
	_, err := scheduler.Parse(editorName, src)
	if err == nil {
		t.Fatalf("the document parsed:\n%s", src)
	}
	d.placeErrors(err, editorName)
	p0, p1 := d.Programs[0], d.Programs[1]
	check := func(what string, msgs []string, want string) {
		t.Helper()
		if len(msgs) != 1 || !strings.Contains(msgs[0], want) {
			t.Errorf("%s: %q, want one saying %q (all: %v)", what, msgs, want, err)
		}
	}
	check("the text item", p0.Items[0].Errors, "text needs a duration")
	check("the volume", p0.Errors["volume"], "volume 1.5 is outside 0..1")
	check("the stream", p1.Items[0].Errors, "must be an http:// or https:// URL")
	check("no day ticked", p1.Errors["when"], "tick at least one day")
	check("quiet hours", d.Quiet[0].Errors, "from and to are both 22:00")
	if len(d.Errors) != 0 {
		t.Errorf("errors left with the document: %v", d.Errors)
	}
}

// What the decoder refuses names only the value: it is shown at the field that holds it.
func TestEditorValueErrorsAtFields(t *testing.T) {
	v := url.Values{"id": {"x"}, "timezone": {"Asia/Ho_Chi_Minh"}, "revision": {"1"},
		"p.0.id": {"sang"}, "p.0.when": {"weekly"}, "p.0.days": {"MON"}, "p.0.time": {"05:30"},
		"p.0.i.0.kind": {"text"}, "p.0.i.0.value": {"Bản tin"}, "p.0.i.0.duration": {"15 phút"}}
	for _, c := range []struct{ field, value, want string }{
		{"p.0.i.0.duration", "15 phút", `duration "15 phút": write it like 90s`},
		{"p.0.max_duration", "nửa giờ", `duration "nửa giờ"`},
		{"p.0.valid_from", "31/13/2026", `date "2026-13-31": write it as YYYY-MM-DD`},
		{"q.0.from", "25:00", `time of day "25:00"`},
	} {
		f := url.Values{}
		for k, x := range v {
			f[k] = x
		}
		f.Set("p.0.i.0.duration", "15m")
		f.Set(c.field, c.value)
		f.Set("q.0.to", "05:00")
		if c.field != "q.0.from" {
			f.Set("q.0.from", "22:00")
		}
		d := readEditorForm(f)
		_, err := scheduler.Parse(editorName, d.toYAML(time.UTC))
		if err == nil {
			t.Fatalf("%s = %q parsed", c.field, c.value)
		}
		d.placeErrors(err, editorName)
		var at []string
		switch c.field {
		case "p.0.i.0.duration":
			at = d.Programs[0].Items[0].Errors
		case "p.0.max_duration":
			at = d.Programs[0].Errors["max_duration"]
		case "p.0.valid_from":
			at = d.Programs[0].Errors["valid"]
		case "q.0.from":
			at = d.Quiet[0].Errors
		}
		if len(at) != 1 || !strings.Contains(at[0], c.want) || len(d.Errors) != 0 {
			t.Errorf("%s = %q: at the field %q, with the document %q; want %q", c.field, c.value, at, d.Errors, c.want)
		}
	}
}
