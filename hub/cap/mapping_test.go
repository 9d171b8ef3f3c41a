package cap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

var hcm = time.FixedZone("ICT", 7*3600)

// stormNow is an hour after the Quảng Nam storm alert was sent.
var stormNow = time.Date(2026, 11, 26, 9, 0, 0, 0, hcm)

func newMapper(t *testing.T, cfg Config) *Mapper {
	t.Helper()
	m, err := NewMapper(cfg, loadAreas(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMapQuangNamStormSeries(t *testing.T) {
	m := newMapper(t, Config{})
	alert := mustParse(t, "quang-nam-storm.xml")
	d, err := m.Map(alert, stormNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != Create || d.Class != scheduler.Emergency {
		t.Fatalf("action %s class %s, want create emergency", d.Action, d.Class)
	}
	if d.SeriesID != "canhbao@vndma.example.vn,VNDMA-2026-TS12-001" || d.MessageID != d.SeriesID {
		t.Errorf("series %q message %q", d.SeriesID, d.MessageID)
	}
	if d.Language != "vi-VN" || d.Title != "Cảnh báo bão số 12" || d.Event != "Bão số 12" {
		t.Errorf("vi block not chosen: lang %q title %q event %q", d.Language, d.Title, d.Event)
	}
	wantText := "Bản tin phát hành lúc 8 giờ 00 ngày 26/11/2026.\n" +
		"Cảnh báo bão số 12\n" +
		"Bão số 12 sẽ đổ bộ vào vùng biển Hội An đêm nay.\n" +
		"Đưa tàu thuyền vào bờ, di chuyển đến nơi trú ẩn của xã."
	if d.Text != wantText {
		t.Errorf("text =\n%s\nwant\n%s", d.Text, wantText)
	}
	if want := []string{"quang-nam/hoi-an/cam-thanh", "quang-nam/hoi-an/tan-hiep"}; !reflect.DeepEqual(d.Areas, want) {
		t.Errorf("areas %v, want %v", d.Areas, want)
	}
	if d.AudioURL != "https://canhbao.example.vn/audio/ts12-001.mp3" || d.AudioMimeType != "audio/mpeg" || d.AudioDigest == "" {
		t.Errorf("audio %q %q %q", d.AudioURL, d.AudioMimeType, d.AudioDigest)
	}
	if !d.IssuedAt.Equal(alert.Sent) || !d.Expires.Equal(time.Date(2026, 11, 27, 20, 0, 0, 0, hcm)) || !d.Start.IsZero() {
		t.Errorf("issued %v expires %v start %v", d.IssuedAt, d.Expires, d.Start)
	}
	if d.Repeat != 2*time.Hour {
		t.Errorf("repeat %v, want 2h for a Met emergency", d.Repeat)
	}
	if len(d.Warnings) != 0 {
		t.Errorf("warnings: %v", d.Warnings)
	}

	up, err := m.Map(mustParse(t, "quang-nam-storm-update.xml"), stormNow.Add(5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if up.Action != Replace || up.SeriesID != d.SeriesID || up.MessageID == d.SeriesID {
		t.Errorf("update: action %s series %q message %q", up.Action, up.SeriesID, up.MessageID)
	}
	if want := []string{"quang-nam/tam-ky/tam-thanh"}; !reflect.DeepEqual(up.Areas, want) {
		t.Errorf("update areas %v, want %v (circle of 10 km off Tam Kỳ)", up.Areas, want)
	}
	if !strings.HasPrefix(up.Text, "Bản tin phát hành lúc 14 giờ 00 ngày 26/11/2026.") || up.AudioURL != "" {
		t.Errorf("update text %q audio %q", up.Text, up.AudioURL)
	}

	cancel, err := m.Map(mustParse(t, "quang-nam-storm-cancel.xml"), stormNow.Add(22*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if cancel.Action != Cancel || cancel.SeriesID != d.SeriesID || len(cancel.References) != 2 {
		t.Errorf("cancel: action %s series %q (want the earliest reference) refs %v", cancel.Action, cancel.SeriesID, cancel.References)
	}
}

func TestMapOASISExamples(t *testing.T) {
	// A district area map that also knows Los Angeles County and the Sierra, so the
	// examples map somewhere; Appendix A.1 has no geocode or polygon and must not.
	areas, err := ParseAreaMap([]byte(`
geocodes:
  - {name: SAME, value: "006037", areas: [ca/los-angeles]}
areas:
  - {id: ca/alpine, polygon: "38.40,-120.00 38.60,-120.00 38.60,-119.80 38.40,-119.80 38.40,-120.00"}
  - {id: ca/imperial/brawley, polygon: "32.90,-115.60 33.00,-115.60 33.00,-115.50 32.90,-115.50 32.90,-115.60"}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMapper(Config{Languages: []string{"vi", "es", "en"}}, areas)
	if err != nil {
		t.Fatal(err)
	}
	at := func(a *Alert) time.Time { return a.Sent.Add(time.Minute) }

	a1 := mustParse(t, "oasis-a1-homeland-security.xml")
	if _, err := m.Map(a1, at(a1)); !errors.Is(err, ErrUnmapped) || !strings.Contains(err.Error(), "U.S. nationwide") {
		t.Errorf("A.1: err = %v, want ErrUnmapped naming the area", err)
	}

	a2 := mustParse(t, "oasis-a2-thunderstorm.xml")
	d, err := m.Map(a2, at(a2))
	if err != nil || d.Action != Create || d.Class != scheduler.Emergency || d.Repeat != 2*time.Hour ||
		!reflect.DeepEqual(d.Areas, []string{"ca/alpine"}) || !d.Expires.Equal(a2.Infos[0].Expires) {
		t.Errorf("A.2: %+v %v", d, err)
	}
	if d.Language != "en-US" || len(d.Warnings) != 0 {
		t.Errorf("A.2 language %q (no <language> means en-US) warnings %v", d.Language, d.Warnings)
	}
	if !strings.HasPrefix(d.Text, "Issued at 14:57 (UTC-07:00) on 17 June 2003.\nSEVERE THUNDERSTORM WARNING\nAT 254 PM") {
		t.Errorf("A.2 text %q", d.Text)
	}
	if d2, _ := m.Map(a2, a2.Infos[0].Expires); d2.Action != Ignore || !strings.Contains(d2.Reason, "expired") {
		t.Errorf("A.2 at its expiry: %s %q", d2.Action, d2.Reason)
	}

	a3 := mustParse(t, "oasis-a3-earthquake.xml")
	d, err = m.Map(a3, at(a3))
	if err != nil || d.Action != Replace || d.Class != scheduler.Priority || d.Repeat != 0 ||
		d.SeriesID != "trinet@caltech.edu,TRI13970876.1" || !reflect.DeepEqual(d.Areas, []string{"ca/imperial/brawley"}) {
		t.Errorf("A.3: %+v %v", d, err)
	}
	if !d.Expires.Equal(a3.Sent.Add(12 * time.Hour)) {
		t.Errorf("A.3 without expires: %v, want sent+12h", d.Expires)
	}

	a4 := mustParse(t, "oasis-a4-amber.xml")
	d, err = m.Map(a4, at(a4))
	if err != nil || d.Language != "es-US" || d.Title != "Alerta Amber en el condado de Los Ángeles" ||
		d.Class != scheduler.Emergency || d.Repeat != 0 || !reflect.DeepEqual(d.Areas, []string{"ca/los-angeles"}) {
		t.Errorf("A.4: %+v %v", d, err)
	}
}

// stormWith returns the parsed Quảng Nam alert with f applied.
func stormWith(t testing.TB, f func(a *Alert)) *Alert {
	a := mustParse(t, "quang-nam-storm.xml")
	if f != nil {
		f(a)
	}
	return a
}

func eachInfo(f func(in *Info)) func(a *Alert) {
	return func(a *Alert) {
		for i := range a.Infos {
			f(&a.Infos[i])
		}
	}
}

func TestMapClassRules(t *testing.T) {
	cases := []struct {
		severity, urgency string
		want              scheduler.Class
	}{
		{"Extreme", "Immediate", scheduler.Emergency},
		{"Extreme", "Expected", scheduler.Emergency},
		{"Severe", "Immediate", scheduler.Emergency},
		{"Severe", "Expected", scheduler.Emergency},
		{"Severe", "Future", scheduler.Priority},
		{"Extreme", "Past", scheduler.Priority},
		{"Extreme", "Unknown", scheduler.Priority},
		{"Moderate", "Immediate", scheduler.Priority},
		{"Minor", "Expected", scheduler.Priority},
		{"Unknown", "Unknown", scheduler.Priority},
	}
	m := newMapper(t, Config{})
	for _, c := range cases {
		a := stormWith(t, eachInfo(func(in *Info) { in.Severity, in.Urgency = c.severity, c.urgency }))
		d, err := m.Map(a, stormNow)
		if err != nil {
			t.Fatal(err)
		}
		if d.Action != Create || d.Class != c.want {
			t.Errorf("%s/%s: %s %s, want create %s", c.severity, c.urgency, d.Action, d.Class, c.want)
		}
		if wantRepeat := c.want == scheduler.Emergency; (d.Repeat == 2*time.Hour) != wantRepeat {
			t.Errorf("%s/%s: repeat %v", c.severity, c.urgency, d.Repeat)
		}
	}
}

func TestMapConfiguredRules(t *testing.T) {
	m := newMapper(t, Config{
		Rules: []ClassRule{
			{Urgency: []string{"Past"}, Class: "ignore"},
			{Severity: []string{"Extreme", "Severe", "Moderate"}, Certainty: []string{"Observed", "Likely"}, Class: "emergency"},
		},
		DefaultClass: "normal",
		Repeats:      []RepeatRule{{Categories: []string{"Geo", "Met"}, Every: 90 * time.Minute}},
	})
	cases := []struct {
		sev, urg, cert string
		action         Action
		class          scheduler.Class
	}{
		{"Extreme", "Past", "Observed", Ignore, 0},
		{"Moderate", "Future", "Likely", Create, scheduler.Emergency},
		{"Moderate", "Future", "Possible", Create, scheduler.Normal},
		{"Minor", "Immediate", "Observed", Create, scheduler.Normal},
	}
	for _, c := range cases {
		a := stormWith(t, eachInfo(func(in *Info) { in.Severity, in.Urgency, in.Certainty = c.sev, c.urg, c.cert }))
		d, err := m.Map(a, stormNow)
		if err != nil {
			t.Fatal(err)
		}
		if d.Action != c.action || (c.action != Ignore && d.Class != c.class) {
			t.Errorf("%s/%s/%s: %s %s, want %s %s", c.sev, c.urg, c.cert, d.Action, d.Class, c.action, c.class)
		}
		if c.action == Ignore && !strings.Contains(d.Reason, "class rules say ignore") {
			t.Errorf("reason %q", d.Reason)
		}
		if c.action == Create && d.Repeat != 90*time.Minute {
			t.Errorf("repeat %v, want 90m from a class-less rule", d.Repeat)
		}
	}
}

func TestMapStatusScopeAndType(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		edit   func(a *Alert)
		action Action
		reason string // for Ignore; for others a text fragment
	}{
		{"actual", Config{}, nil, Create, "Cảnh báo bão"},
		{"test, not allowed", Config{}, func(a *Alert) { a.Status = "Test" }, Ignore, "allow_test is off"},
		{"exercise, not allowed", Config{AllowTest: true}, func(a *Alert) { a.Status = "Exercise" }, Ignore, "allow_exercise is off"},
		{"test, allowed", Config{AllowTest: true}, func(a *Alert) { a.Status = "Test" }, Create, "Đây là tin thử nghiệm."},
		{"exercise, allowed", Config{AllowExercise: true}, func(a *Alert) { a.Status = "Exercise" }, Create, "Đây là tin diễn tập."},
		{"draft, everything allowed", Config{AllowTest: true, AllowExercise: true}, func(a *Alert) { a.Status = "Draft" }, Ignore, "status Draft never"},
		{"system, everything allowed", Config{AllowTest: true, AllowExercise: true}, func(a *Alert) { a.Status = "System" }, Ignore, "status System never"},
		{"restricted", Config{}, func(a *Alert) { a.Scope = "Restricted" }, Ignore, "only Public"},
		{"ack", Config{}, func(a *Alert) { a.MsgType = "Ack" }, Ignore, "msgType Ack"},
		{"error", Config{}, func(a *Alert) { a.MsgType = "Error" }, Ignore, "msgType Error"},
		{"no info", Config{}, func(a *Alert) { a.Infos = nil }, Ignore, "no <info>"},
		{"expired", Config{}, eachInfo(func(in *Info) { in.Expires = stormNow }), Ignore, "expired at 2026-11-26T09:00:00+07:00"},
		{"test cancel, not allowed", Config{}, func(a *Alert) { a.Status, a.MsgType = "Test", "Cancel" }, Ignore, "allow_test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := newMapper(t, c.cfg).Map(stormWith(t, c.edit), stormNow)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != c.action {
				t.Fatalf("action %s (%s), want %s", d.Action, d.Reason, c.action)
			}
			if c.action == Ignore && !strings.Contains(d.Reason, c.reason) {
				t.Errorf("reason %q, want %q", d.Reason, c.reason)
			}
			if c.action != Ignore && !strings.Contains(d.Text, c.reason) {
				t.Errorf("text %q lacks %q", d.Text, c.reason)
			}
		})
	}
}

func TestMapLanguageChoice(t *testing.T) {
	cases := []struct {
		prefs []string
		want  string
	}{
		{nil, "vi-VN"},
		{[]string{"en"}, "en-US"},
		{[]string{"en-US", "vi"}, "en-US"},
		{[]string{"co", "vi"}, "vi-VN"}, // Cơ Tu first, absent: Vietnamese
		{[]string{"fr"}, "en-US"},       // none: the first block's language, with a warning
		{[]string{"VI"}, "vi-VN"},       // case does not matter
		{[]string{"v"}, "en-US"},        // a prefix of a subtag is not a match
	}
	for _, c := range cases {
		d, err := newMapper(t, Config{Languages: c.prefs}).Map(stormWith(t, nil), stormNow)
		if err != nil {
			t.Fatal(err)
		}
		if d.Language != c.want {
			t.Errorf("prefs %v: %s, want %s", c.prefs, d.Language, c.want)
		}
		if c.prefs != nil && c.prefs[0] == "fr" && (len(d.Warnings) != 1 || d.Warnings[0] != "no info block in fr: using en-US") {
			t.Errorf("prefs %v: warnings %v", c.prefs, d.Warnings)
		}
		if d.Language == "en-US" && !strings.HasPrefix(d.Text, "Issued at 08:00 (UTC+07:00) on 26 November 2026.\nTyphoon No. 12 warning") {
			t.Errorf("prefs %v: text %q", c.prefs, d.Text)
		}
	}
}

func TestMapAreasAndAudio(t *testing.T) {
	m := newMapper(t, Config{})
	farAway := Area{Desc: "Biển Đông", Polygons: []Polygon{{{12, 112}, {12, 113}, {13, 113}, {12, 112}}}}

	// One block maps, one does not: broadcast where it maps, warn about the rest.
	d, err := m.Map(stormWith(t, func(a *Alert) { a.Infos[1].Areas = append(a.Infos[1].Areas, farAway) }), stormNow)
	if err != nil || len(d.Areas) != 2 || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], `info[2]/area[2] "Biển Đông" (1 polygon(s)) matches no hub area`) {
		t.Errorf("partial: %v %v %v", d.Areas, d.Warnings, err)
	}
	// Nothing maps: an error, and no areas.
	d, err = m.Map(stormWith(t, func(a *Alert) { a.Infos[1].Areas = []Area{farAway} }), stormNow)
	if !errors.Is(err, ErrUnmapped) || len(d.Areas) != 0 || !strings.Contains(err.Error(), "Biển Đông") {
		t.Errorf("unmapped: %v %v", d.Areas, err)
	}
	// No area at all: never the whole province.
	_, err = m.Map(stormWith(t, func(a *Alert) { a.Infos[1].Areas = nil }), stormNow)
	if !errors.Is(err, ErrUnmapped) || !strings.Contains(err.Error(), "info[2] has no <area>") {
		t.Errorf("no area: %v", err)
	}
	// Audio: relative or missing URIs are skipped with a warning; the text remains.
	d, err = m.Map(stormWith(t, func(a *Alert) { a.Infos[1].Resources[0].URI = "ts12.mp3" }), stormNow)
	if err != nil || d.AudioURL != "" || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "spoken instead") || d.Text == "" {
		t.Errorf("relative audio: %q %v %v", d.AudioURL, d.Warnings, err)
	}
	d, err = m.Map(stormWith(t, func(a *Alert) { a.Infos[1].Resources[0].MimeType = "image/png" }), stormNow)
	if err != nil || d.AudioURL != "" || len(d.Warnings) != 0 {
		t.Errorf("image resource: %q %v %v", d.AudioURL, d.Warnings, err)
	}
	// Effective in the future: the bulletin starts then.
	later := stormNow.Add(3 * time.Hour)
	d, _ = m.Map(stormWith(t, eachInfo(func(in *Info) { in.Effective = later })), stormNow)
	if !d.Start.Equal(later) {
		t.Errorf("start %v, want %v", d.Start, later)
	}
	d, _ = m.Map(stormWith(t, eachInfo(func(in *Info) { in.Effective = stormNow.Add(-time.Hour) })), stormNow)
	if !d.Start.IsZero() {
		t.Errorf("past effective: start %v, want now (zero)", d.Start)
	}
}

func TestMapIssueTimeInConfiguredZone(t *testing.T) {
	utc := newMapper(t, Config{Location: time.UTC})
	d, err := utc.Map(stormWith(t, nil), stormNow)
	if err != nil || !strings.HasPrefix(d.Text, "Bản tin phát hành lúc 1 giờ 00 ngày 26/11/2026.") {
		t.Errorf("%q %v", d.Text, err)
	}
}

func TestNewMapperRefusesBadConfig(t *testing.T) {
	areas := loadAreas(t)
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"class":         {Config{Rules: []ClassRule{{Class: "urgent"}}}, `rules[1].class: "urgent"`},
		"severity":      {Config{Rules: []ClassRule{{Severity: []string{"High"}, Class: "emergency"}}}, `rules[1].severity: "High"`},
		"default class": {Config{DefaultClass: "loud"}, "default_class"},
		"repeat every":  {Config{Repeats: []RepeatRule{{Class: "emergency"}}}, "repeats[1].every"},
		"repeat cat":    {Config{Repeats: []RepeatRule{{Categories: []string{"Storm"}, Every: time.Hour}}}, `repeats[1].categories: "Storm"`},
		"lifetime":      {Config{Lifetime: -time.Hour}, "lifetime"},
	} {
		if _, err := NewMapper(c.cfg, areas); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := NewMapper(Config{}, nil); err == nil {
		t.Error("nil area map accepted")
	}
}

// The configuration shown in docs/cap.md is the default: it must parse and decide the same.
const documentedConfig = `
languages: [vi, en]
rules:
  - {severity: [Extreme, Severe], urgency: [Immediate, Expected], class: emergency}
default_class: priority
allow_test: false
allow_exercise: false
repeats:
  - {categories: [Met], class: emergency, every: 2h}
lifetime: 12h        # ends a bulletin whose info blocks carry no expires
`

func TestParseConfigDocumentedEqualsDefault(t *testing.T) {
	cfg, err := ParseConfig([]byte(documentedConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Repeats[0].Every != 2*time.Hour || cfg.Lifetime != 12*time.Hour {
		t.Fatalf("durations: %+v", cfg)
	}
	for _, edit := range []func(a *Alert){nil, eachInfo(func(in *Info) { in.Severity = "Moderate" }), func(a *Alert) { a.Infos = a.Infos[:1] }} {
		a := stormWith(t, edit)
		want, err1 := newMapper(t, Config{}).Map(a, stormNow)
		got, err2 := newMapper(t, cfg).Map(a, stormNow)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("documented config decides\n%+v (%v)\ndefault decides\n%+v (%v)", got, err2, want, err1)
		}
	}
	for y, want := range map[string]string{
		"allow_tests: true\n":                              "field allow_tests not found",
		"repeats:\n  - {class: emergency, every: often}\n": "often",
		"lifetime: [1]\n":                                  "CAP config",
	} {
		if _, err := ParseConfig([]byte(y)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", y, err, want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(documentedConfig))
	f.Add([]byte("rules:\n  - {urgency: [Past], class: ignore}\nlifetime: 1h\n"))
	areas, err := ParseAreaMap(readFile(f, "quang-nam-areas.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	a := mustParse(f, "quang-nam-storm.xml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		m, err := NewMapper(cfg, areas)
		if err != nil {
			return
		}
		d, err := m.Map(a, stormNow)
		if err == nil && d.Action != Ignore && d.Action != Create {
			t.Fatalf("an Alert became %s", d.Action)
		}
	})
}
