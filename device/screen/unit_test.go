package screen

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestEscapeASS(t *testing.T) {
	cases := map[string]string{
		"Bão số 13":            "Bão số 13",
		"a{\\b1}b":             "a\\{\\\u2060b1\\}b",
		"line1\nline2\r\nl3":   `line1\Nline2\Nl3`,
		"tab\there\x00\x07end": "tab hereend",
		`C:\new\Notes`:         "C:\\\u2060new\\\u2060Notes",
		"bad \xff byte":        "bad ? byte",
	}
	for in, want := range cases {
		if got := escapeASS(in); got != want {
			t.Errorf("escapeASS(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEscapeASS: whatever staff type, the event text cannot open an override block, break a
// line of the script, or form a backslash escape other than the ones escapeASS writes.
func FuzzEscapeASS(f *testing.F) {
	for _, s := range []string{"Thông báo", "{\\pos(0,0)}x", "a\\Nb", "\n\r\x00", "\\{", "}{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := escapeASS(s)
		if strings.ContainsAny(out, "\n\r") {
			t.Fatalf("line break in %q", out)
		}
		for i := 0; i < len(out); i++ {
			switch out[i] {
			case '{', '}':
				if i == 0 || out[i-1] != '\\' {
					t.Fatalf("unescaped brace at %d in %q", i, out)
				}
			case '\\':
				rest := out[i+1:]
				if !strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, "}") && !strings.HasPrefix(rest, "N") &&
					!strings.HasPrefix(rest, "\u2060") {
					t.Fatalf("bare backslash at %d in %q", i, out)
				}
				if strings.HasPrefix(rest, "N") && (i > 0 && out[i-1] == '\\') {
					t.Fatalf("escaped backslash before N in %q", out)
				}
			}
		}
	})
}

func TestParseMessage(t *testing.T) {
	m, err := parseMessage([]byte(`{"event":"end-file","reason":"error","playlist_entry_id":3,"file_error":"loading failed"}`))
	if err != nil || m.Event != "end-file" || m.EntryID != 3 || m.Reason != "error" || m.FileError != "loading failed" {
		t.Errorf("end-file: %+v %v", m, err)
	}
	m, err = parseMessage([]byte(`{"data":{"playlist_entry_id":1},"request_id":7,"error":"success"}`))
	if err != nil || *m.RequestID != 7 || m.Error != "success" || string(m.Data) != `{"playlist_entry_id":1}` {
		t.Errorf("reply: %+v %v", m, err)
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"request_id":1}`, `"x"`, `{"event":`} {
		if _, err := parseMessage([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseMessage: nothing mpv (or something else on the socket) sends can crash the reader;
// what is accepted is an event or a reply with an error field.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"event":"start-file","playlist_entry_id":1}`,
		`{"event":"property-change","id":1,"name":"playback-time","data":0.04}`,
		`{"request_id":0,"error":"invalid parameter"}`,
		`{"event":"log-message","prefix":"cplayer","level":"error","text":"x\n"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			return
		}
		if m.Event == "" && (m.RequestID == nil || m.Error == "") {
			t.Fatalf("accepted %q as %+v", b, m)
		}
	})
}

func TestReadLineBoundsLongLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	r := bufio.NewReaderSize(strings.NewReader(long+"\n{\"event\":\"idle\"}\n"), 64<<10)
	l, err := readLine(r)
	if err != nil || l != nil {
		t.Fatalf("over-long line: %d bytes, %v; want it skipped", len(l), err)
	}
	l, err = readLine(r)
	if err != nil || string(l) != `{"event":"idle"}` {
		t.Fatalf("next line: %q %v", l, err)
	}
}

func TestSniff(t *testing.T) {
	cases := map[string]string{
		"\x89PNG\r\n\x1a\n....":         "image",
		"\xff\xd8\xff\xe0..JFIF":        "image",
		"GIF89a....":                    "image",
		"BM......":                      "image",
		"RIFF\x00\x00\x00\x00WEBPVP8 ":  "image",
		"RIFF\x00\x00\x00\x00AVI LIST":  "video",
		"\x00\x00\x00\x20ftypisom\x00":  "video",
		"\x1a\x45\xdf\xa3 matroska ...": "video",
		"":                              "video",
	}
	for in, want := range cases {
		if got := sniffBytes([]byte(in)); got != want {
			t.Errorf("sniff(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestBuildASS(t *testing.T) {
	l := layout{W: 1920, H: 1080, Font: "DejaVu Sans", Text: "Bão {số} 13", Ticker: "Tin   mới\nhôm nay",
		Foreground: rgb{255, 255, 255}, TickerBand: rgb{255, 210, 0}, TickerText: rgb{0, 0, 0}, TickerSpeed: 160,
		Duration: 95 * time.Second}
	out := buildASS(l)
	for _, want := range []string{
		"PlayResX: 1920\nPlayResY: 1080",
		"Style: Body,DejaVu Sans,",
		"&H00FFFFFF", // white letters
		"&H0000D2FF", // the yellow band, in ASS's BGR order
		"0:00:00.00,0:01:35.00,Body,,0,0,0,,{\\an5\\pos(960,480)}Bão \\{số\\} 13",
		"\\p1}m 0 0 l 1920 0 1920 120 0 120{\\p0}",
		"{\\an4\\q2\\move(1920,1020,", // the ticker starts at the right edge, in the band's middle
		"}Tin mới hôm nay\n",          // one line, spaces collapsed
	} {
		if !strings.Contains(out, want) {
			t.Errorf("script lacks %q:\n%s", want, out)
		}
	}
	// Passes follow each other until the end and none outlasts the bulletin.
	passes := strings.Count(out, "\\move(")
	if passes < 2 {
		t.Errorf("%d ticker passes in 95 s", passes)
	}
	if strings.Contains(out, "0:01:36") {
		t.Errorf("an event outlasts the bulletin:\n%s", out)
	}
	if got := assTime(3*time.Hour + 2*time.Minute + 5*time.Second + 678*time.Millisecond); got != "3:02:05.67" {
		t.Errorf("assTime = %s", got)
	}
}

func TestParseColour(t *testing.T) {
	if c, err := parseColour("#0b2E59"); err != nil || c != (rgb{0x0b, 0x2e, 0x59}) || c.lavfi() != "0x0B2E59" || c.ass() != "&H00592E0B" {
		t.Errorf("parseColour: %+v %v", c, err)
	}
	for _, bad := range []string{"", "red", "#12345", "#12345G", "#1234567"} {
		if _, err := parseColour(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Background: "navy"},
		{Font: "DejaVu, Sans"},
		{Width: 10, Height: 10},
		{Dir: "/tmp/a:b"},
		{MPV: "/nonexistent/mpv", Dir: t.TempDir()},
	} {
		if s, err := Open(c, nil, nil); err == nil {
			s.Close()
			t.Errorf("%+v accepted", c)
		} else {
			t.Log(err)
		}
	}
}

// TestPrepareStillJoinedMidway: a still joined part-way through its time (a restart continues
// where the timeline is) shows for what is left of it, not its whole duration again.
func TestPrepareStillJoinedMidway(t *testing.T) {
	s := &Screen{cfg: Config{Width: 320, Height: 180, ImageDuration: 10 * time.Second}}
	opts := func(at time.Duration) string {
		pr := s.prepare(Item{Path: "testdata/bulletin-vi.png", Duration: 8 * time.Second}, 1, 0, at)
		if pr.err != nil || pr.kind != "image" {
			t.Fatalf("prepare: %v (%s)", pr.err, pr.kind)
		}
		return strings.Join(pr.opts, " ")
	}
	if got := opts(0); !strings.Contains(got, "image-display-duration=8.000") {
		t.Errorf("from its beginning: %s", got)
	}
	if got := opts(3 * time.Second); !strings.Contains(got, "image-display-duration=5.000") {
		t.Errorf("joined 3 s in: %s, want the 5 s left", got)
	}
}
