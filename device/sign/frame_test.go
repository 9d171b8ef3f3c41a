package sign

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sum16 computes the expected checksum independently of Checksum: a plain
// integer sum rendered with strconv-free formatting, masked to 16 bits.
func sum16(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		n += int(s[i])
	}
	return strings.ToUpper(fmt.Sprintf("%04x", n&0xFFFF))
}

func TestFrameProtocolExamples(t *testing.T) {
	const sync = "\x00\x00\x00\x00\x00"
	cases := []struct {
		name     string
		typ      byte
		addr     string
		checksum bool
		cmd      string
		want     string
	}{
		// The protocol document's first example: write TEXT file A with
		// "HELLO" to all signs, broadcast address, no checksum.
		{"hello", 'Z', "00", false, "AAHELLO", sync + "\x01Z00\x02AAHELLO\x04"},
		// The same with checksum: STX+'A'+'A'+"HELLO"+ETX = 2+65+65+372+3 = 507 = 0x01FB.
		{"hello checksum", 'Z', "00", true, "AAHELLO", sync + "\x01Z00\x02AAHELLO\x03" + "01FB" + "\x04"},
		// With display position (middle line) and mode (rotate).
		{"hello middle rotate", 'Z', "00", true, "AA\x1b aHELLO",
			sync + "\x01Z00\x02AA\x1b aHELLO\x03" + sum16("\x02AA\x1b aHELLO\x03") + "\x04"},
		// Set time of day 13:45 on sign 01 of type one-line.
		{"time", '1', "01", true, "E 1345", sync + "\x011" + "01\x02E 1345\x03" + sum16("\x02E 1345\x03") + "\x04"},
		// Clear memory, no checksum.
		{"clear memory", 'Z', "00", false, "E$", sync + "\x01Z00\x02E$\x04"},
	}
	for _, c := range cases {
		got, err := Frame(c.typ, c.addr, c.checksum, []byte(c.cmd))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	if sum16("\x02AAHELLO\x03") != "01FB" {
		t.Fatalf("hand-computed checksum disagrees with sum16")
	}
}

func TestChecksumWraps16Bits(t *testing.T) {
	b := bytes.Repeat([]byte{0xFF}, 300) // 76500 = 0x12AD4 -> 2AD4
	if got := string(Checksum(b)); got != "2AD4" {
		t.Fatalf("Checksum = %s, want 2AD4", got)
	}
}

func TestWriteTextPositionsAndModes(t *testing.T) {
	cases := []struct {
		t    Text
		want string
	}{
		{Text{Message: "HELLO"}, "AA\x1b0oHELLO"},
		{Text{Message: "X", Position: Middle, Mode: Rotate}, "AA\x1b aX"},
		{Text{Message: "X", Position: Top, Mode: Hold}, "AA\x1b\"bX"},
		{Text{Message: "X", Position: Bottom, Mode: Flash}, "AA\x1b&cX"},
		{Text{Message: "X", Position: Fill, Mode: Scroll}, "AA\x1b0mX"},
		{Text{Message: "X", Position: Left, Mode: RollUp}, "AA\x1b1eX"},
		{Text{Message: "X", Position: Right, Mode: WipeIn}, "AA\x1b2rX"},
		{Text{Message: "X", Mode: Compact}, "AA\x1b0tX"},
	}
	for _, c := range cases {
		got, err := WriteText('A', c.t)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("%+v: got %q want %q", c.t, got, c.want)
		}
	}
}

func TestWriteTextRejects(t *testing.T) {
	for _, c := range []struct {
		label byte
		t     Text
		want  string
	}{
		{'A', Text{Message: "a\x04b"}, "byte 1"},
		{'A', Text{Message: "é"}, "not printable ASCII"},
		{'A', Text{Mode: "sparkle"}, "unknown mode"},
		{'A', Text{Position: "center"}, "unknown position"},
		{0x80, Text{}, "file label"},
	} {
		_, err := WriteText(c.label, c.t)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %+v: err %v, want it to mention %q", c.label, c.t, err, c.want)
		}
	}
	if _, err := Frame('Z', "0G", true, []byte("AA")); err == nil {
		t.Error("address 0G accepted")
	}
	if _, err := Frame('Z', "00", true, []byte("AA\x03")); err == nil {
		t.Error("ETX inside a command accepted")
	}
}

func TestClockCommands(t *testing.T) {
	// Thursday 26 November 2026, 07:05 in Hanoi.
	now := time.Date(2026, 11, 26, 7, 5, 0, 0, time.FixedZone("ICT", 7*3600))
	got := clockCommands(now)
	want := []string{"E'M", "E;112626", "E&5", "E 0705"}
	if len(got) != len(want) {
		t.Fatalf("got %d commands", len(got))
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("command %d: got %q want %q", i, got[i], want[i])
		}
	}
}

func TestParseReply(t *testing.T) {
	body := "\x02E 0705\x03"
	p := "\x00\x00\x00\x01" + "000" + body + sum16(body) + "\x04"
	r, err := ParseReply([]byte(p))
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != '0' || r.Address != "00" || r.Command != 'E' || string(r.Data) != " 0705" || !r.Checksum {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := ParseReply([]byte("\x01000\x02E 0705\x04")); err != nil {
		t.Fatalf("no-checksum reply: %v", err)
	}
	for _, bad := range []struct{ p, want string }{
		{"", "expected SOH"},
		{"\x01000\x02E 0705\x03FFFF\x04", "does not match"},
		{"\x01000\x02E 0705\x03ZZZZ\x04", "not 4 hex"},
		{"\x01000\x02E 0705", "no ETX or EOT"},
		{"\x01000E", "expected STX"},
		{"\x01000\x02E\x04junk", "bytes after EOT"},
		{"\x01", "too short"},
	} {
		_, err := ParseReply([]byte(bad.p))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err %v, want %q", bad.p, err, bad.want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	body := "\x02E 0705\x03"
	f.Add([]byte("\x00\x01000" + body + sum16(body) + "\x04"))
	f.Add([]byte("\x01000\x02E 0705\x04"))
	f.Add([]byte("\x01000\x02E\x03"))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseReply(p)
		if err != nil {
			return
		}
		// A parsed reply re-framed must parse to the same thing.
		if bytes.ContainsAny(r.Data, "\x00\x01\x02\x03\x04") || r.Command <= 4 {
			return // not re-frameable; parse accepted it as data, which is fine
		}
		if r.Type < 0x20 || r.Type > 0x7E {
			return
		}
		f2, err := Frame(r.Type, r.Address, true, append([]byte{r.Command}, r.Data...))
		if err != nil {
			t.Fatalf("cannot re-frame %+v: %v", r, err)
		}
		r2, err := ParseReply(f2)
		if err != nil || r2.Command != r.Command || !bytes.Equal(r2.Data, r.Data) || r2.Address != r.Address {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", r, f2, r2, err)
		}
	})
}
