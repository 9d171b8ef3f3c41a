package scheduler

import (
	"os"
	"strings"
	"testing"
)

func TestParseRefusesWithUsefulErrors(t *testing.T) {
	prog := func(fields string) string {
		return header + "programs:\n  - {id: morning, " + fields + "}\n"
	}
	item := `items: [{file: a.mp3, duration: 1m}]`
	cases := []struct {
		name, doc string
		want      []string // every fragment must appear in the error
	}{
		{"cron minute out of range", prog(`cron: "61 6 * * *", ` + item),
			[]string{`program "morning" (line 6)`, `cron "61 6 * * *"`, `minute "61"`, "allowed 0-59"}},
		// In five fields the second is the hour: "0 61 6 * *" means minute 0 of hour 61.
		{"cron hour out of range", prog(`cron: "0 61 6 * *", ` + item), []string{`hour "61"`, "allowed 0-23"}},
		{"cron seconds field", prog(`cron: "75 0 6 * * *", ` + item), []string{`second "75"`}},
		{"cron with wrong field count", prog(`cron: "0 6 * *", ` + item), []string{`cron "0 6 * *"`, "5 fields"}},
		{"cron @every", prog(`cron: "@every 1h", ` + item), []string{"@every drifts"}},
		{"unknown time zone", strings.Replace(prog(`cron: "0 6 * * *", `+item), "Asia/Ho_Chi_Minh", "Asia/Hanoi_City", 1),
			[]string{`timezone "Asia/Hanoi_City"`, "IANA"}},
		{"valid_until before valid_from", prog(`cron: "0 6 * * *", valid_from: 2026-12-01, valid_until: 2026-11-01, ` + item),
			[]string{`program "morning"`, "valid_until 2026-11-01 is before valid_from 2026-12-01"}},
		{"emergency without items", prog(`class: emergency, at: "2026-11-01T06:00:00+07:00", items: []`),
			[]string{`program "morning"`, "emergency program must have items"}},
		{"negative volume", prog(`cron: "0 6 * * *", volume: -0.5, ` + item), []string{`program "morning"`, "volume -0.5 is outside 0..1"}},
		{"unknown class", prog(`class: urgent, cron: "0 6 * * *", ` + item), []string{`class "urgent" is not one of normal, priority, emergency`}},
		{"unknown field", prog(`cron: "0 6 * * *", max_duraton: 5m, ` + item), []string{"max_duraton", "not found"}},
		{"bad duration", prog(`cron: "0 6 * * *", max_duration: 5 minutes, ` + item), []string{`duration "5 minutes"`}},
		{"stream without duration", prog(`cron: "0 6 * * *", items: [{stream: "http://radio.example/a.mp3"}]`),
			[]string{"items[0]", "needs a duration"}},
		{"bad content ref", prog(`cron: "0 6 * * *", items: [{content: "sha256:xyz", duration: 1m}]`), []string{`content "sha256:xyz"`}},
		{"ticker on a stream", prog(`cron: "0 6 * * *", items: [{stream: "http://radio.example/a.mp3", duration: 1m, ticker: hi}]`),
			[]string{"items[0]", "ticker", "sound only"}},
		{"fallback on a text", prog(`cron: "0 6 * * *", items: [{text: "Bản tin", duration: 1m, fallback_text: hi}]`),
			[]string{"items[0]", "fallback_text", "text item is spoken itself"}},
		{"stamped without a stream", prog(`cron: "0 6 * * *", items: [{file: a.mp3, stamped: /agent/relay}]`),
			[]string{"items[0]", "stamped", "beside a stream"}},
		{"stamped on another host", prog(`cron: "0 6 * * *", items: [{stream: "http://radio.example/a.mp3", duration: 1m, stamped: "//evil.example/x"}]`),
			[]string{"items[0]", "a path on the hub"}},
		{"two kinds in one item", prog(`cron: "0 6 * * *", items: [{file: a.mp3, text: hi, duration: 1m}]`), []string{"exactly one of"}},
		{"cron and at", prog(`cron: "0 6 * * *", at: "2026-11-01T06:00:00+07:00", ` + item), []string{"both cron and at"}},
		{"bad at", prog(`at: "tomorrow", ` + item), []string{`at "tomorrow"`, "RFC 3339"}},
		{"bad on_interrupt", prog(`cron: "0 6 * * *", on_interrupt: pause, ` + item), []string{`on_interrupt "pause"`}},
		{"unknown output", prog(`cron: "0 6 * * *", outputs: [siren], ` + item), []string{`"siren" is not speakers, screen or board`}},
		{"wrong version", strings.Replace(prog(`cron: "0 6 * * *", `+item), "version: 1", "version: 7", 1), []string{"version 7 is not supported"}},
		{"zero revision", strings.Replace(prog(`cron: "0 6 * * *", `+item), "revision: 1", "revision: 0", 1), []string{"revision 0"}},
		{"not YAML", "version: [1\n", []string{"not valid YAML or JSON"}},
		{"empty", "  \n", []string{"schedule is empty"}},
		{"a list, not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"no programs", header + "programs: []\n", []string{"programs is empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := Parse("test.yaml", []byte(c.doc))
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			if doc != nil {
				t.Errorf("a refused document must not be returned half-loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseDuplicateProgramID(t *testing.T) {
	_, err := Parse("dup.yaml", []byte(header+`programs:
  - {id: morning, cron: "0 6 * * *", items: [{file: a.mp3, duration: 1m}]}
  - {id: morning, cron: "0 7 * * *", items: [{file: b.mp3, duration: 1m}]}
`))
	if err == nil || !strings.Contains(err.Error(), `program "morning" (line 7): id is used again (first by program #1)`) {
		t.Fatalf("got %v", err)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse("many.yaml", []byte(header+`programs:
  - {id: a, cron: "0 99 * * *", items: [{file: a.mp3, duration: 1m}]}
  - {id: b, cron: "0 6 * * *", volume: 2, items: [{file: a.mp3, duration: 1m}]}
`))
	if err == nil || !strings.Contains(err.Error(), `program "a"`) || !strings.Contains(err.Error(), `program "b"`) {
		t.Fatalf("want both programmes named, got %v", err)
	}
}

func TestParseJSONAndYAMLAgree(t *testing.T) {
	src, err := os.ReadFile("testdata/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y, err := Parse("demo.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	js, err := y.Encode()
	if err != nil {
		t.Fatal(err)
	}
	j, err := Parse("demo.json", js)
	if err != nil {
		t.Fatalf("the JSON form of a valid document is refused: %v\n%s", err, js)
	}
	from := mustTime(t, "2026-11-27T00:00:00+07:00")
	a, _ := Compile(y, from, from.AddDate(0, 0, 7), CompileOptions{})
	b, _ := Compile(j, from, from.AddDate(0, 0, 7), CompileOptions{})
	if strings.Join(compact(a), "\n") != strings.Join(compact(b), "\n") || len(a.Segments) == 0 {
		t.Fatalf("YAML and JSON forms compile differently:\n%v\n%v", compact(a), compact(b))
	}
}

func FuzzParse(f *testing.F) {
	demo, _ := os.ReadFile("testdata/demo.yaml")
	f.Add(demo)
	f.Add([]byte(header + "programs:\n  - {id: a, cron: \"0 6 * * *\", items: [{file: a.mp3, duration: 1m}]}\n"))
	f.Add([]byte(`{"version":1,"id":"x","revision":2,"timezone":"UTC","programs":[{"id":"a","at":"2026-01-01T00:00:00Z","items":[{"text":"hi","duration":"1m"}]}]}`))
	f.Add([]byte("version: &a [*a]\n"))
	f.Add([]byte(header + "quiet_hours: [{from: \"25:00\", to: \"x\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse("fuzz", data)
		if err != nil {
			if doc != nil {
				t.Fatal("document returned with an error")
			}
			return
		}
		// Whatever parses must compile over a day without trouble.
		from := mustTime(t, "2026-11-27T00:00:00+07:00")
		_, _ = Compile(doc, from, from.Add(24*3600e9), CompileOptions{})
	})
}

// The example in docs/schedule.md is the one users copy: it must stay valid.
func TestDocumentedExampleIsValid(t *testing.T) {
	md, err := os.ReadFile("../docs/schedule.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatal("docs/schedule.md has no yaml example")
	}
	s = s[start+len("```yaml\n"):]
	end := strings.Index(s, "```")
	doc, err := Parse("docs/schedule.md", []byte(s[:end]))
	if err != nil {
		t.Fatalf("the documented example is refused: %v", err)
	}
	from := mustTime(t, "2026-11-27T00:00:00+07:00")
	tl, err := Compile(doc, from, from.AddDate(0, 0, 2), CompileOptions{})
	if err != nil || len(tl.Segments) == 0 {
		t.Fatalf("the documented example compiles to %v segments, err %v", tl, err)
	}
}

func TestPlanOutputs(t *testing.T) {
	doc := mustParse(t, header+`programs:
  - {id: a, title: "Bản tin", cron: "0 0 6 * * *", repeat: {count: 1, gap: 1m}, items: [{file: a.mp3, duration: 2m}]}`)
	from := mustTime(t, "2026-11-27T00:00:00+07:00")
	tl, _ := Compile(doc, from, from.Add(24*3600e9), CompileOptions{})
	var js, table strings.Builder
	if err := tl.WriteJSONLines(&js); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("json lines: %q", lines)
	}
	for _, want := range []string{`"output":"speakers"`, `"program":"a"`, `"item":0`, `"class":"normal"`,
		`"start":"2026-11-27T06:00:00+07:00"`, `"end":"2026-11-27T06:02:00+07:00"`, `"status":"play"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("first line %s lacks %s", lines[0], want)
		}
	}
	if err := tl.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "a (repeat 1)") || !strings.Contains(table.String(), "2026-11-27 06:03:00") {
		t.Errorf("table:\n%s", table.String())
	}
}
