package sign

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Alpha Sign Communications Protocol control bytes.
const (
	nul = 0x00
	soh = 0x01
	stx = 0x02
	etx = 0x03
	eot = 0x04
	esc = 0x1B
)

// Command codes (the byte after STX).
const (
	cmdWriteText    = 'A'
	cmdWriteSpecial = 'E'
	cmdReadSpecial  = 'F'
)

// Special function labels (the byte after 'E' / 'F').
const (
	fnTimeOfDay   = ' '
	fnClearMemory = '$'
	fnDayOfWeek   = '&'
	fnTimeFormat  = '\''
	fnDate        = ';'
)

// Type codes (which signs on the line obey). Any byte 0x20–0x7E is accepted
// by Frame; these are the usual ones.
const (
	TypeAllSigns byte = 'Z' // all signs ("all verification signs" in the spec)
	TypeOneLine  byte = '1'
	TypeTwoLine  byte = '2'
	TypeAny      byte = '?' // all signs, any type
	typeResponse byte = '0' // what a sign puts in its answers
)

// Address "00" is broadcast: every sign of the type code obeys.
const Broadcast = "00"

// Frame wraps one command (command code + data) in an Alpha packet:
// 5×NUL (the sign's baud sync), SOH, type code, two-character address, STX,
// command, then, with checksum, ETX and the 16-bit sum of every byte from STX
// through ETX as four uppercase hex digits, and EOT.
func Frame(typeCode byte, address string, checksum bool, command []byte) ([]byte, error) {
	if typeCode < 0x20 || typeCode > 0x7E {
		return nil, fmt.Errorf("alpha frame: type code 0x%02X is not a printable ASCII byte", typeCode)
	}
	if err := checkAddress(address); err != nil {
		return nil, err
	}
	if len(command) == 0 {
		return nil, fmt.Errorf("alpha frame: empty command")
	}
	for i, c := range command {
		if c == soh || c == stx || c == etx || c == eot || c == nul {
			return nil, fmt.Errorf("alpha frame: command byte %d is a framing byte 0x%02X", i, c)
		}
	}
	f := make([]byte, 0, len(command)+16)
	f = append(f, nul, nul, nul, nul, nul, soh, typeCode, address[0], address[1], stx)
	f = append(f, command...)
	if checksum {
		f = append(f, etx)
		f = append(f, Checksum(f[9:])...)
	}
	return append(f, eot), nil
}

func checkAddress(a string) error {
	if len(a) != 2 || !isHex(a[0]) || !isHex(a[1]) {
		return fmt.Errorf("alpha frame: sign address %q must be two hex digits (\"00\" = broadcast)", a)
	}
	return nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f')
}

// Checksum is the Alpha checksum of b (STX through ETX inclusive): the sum of
// the bytes modulo 65536 as four uppercase hex digits.
func Checksum(b []byte) []byte {
	var sum uint16
	for _, c := range b {
		sum += uint16(c)
	}
	return fmt.Appendf(nil, "%04X", sum)
}

// Alpha display position codes (after ESC in a TEXT file).
func positionCode(p Position) (byte, error) {
	switch p {
	case Middle:
		return 0x20, nil
	case Top:
		return 0x22, nil
	case Bottom:
		return 0x26, nil
	case Fill, "":
		return 0x30, nil
	case Left:
		return 0x31, nil
	case Right:
		return 0x32, nil
	}
	return 0, fmt.Errorf("alpha: unknown position %q (middle, top, bottom, fill, left, right)", p)
}

// Alpha mode codes (after the position).
func modeCode(m Mode) (byte, error) {
	switch m {
	case Rotate:
		return 'a', nil
	case Hold:
		return 'b', nil
	case Flash:
		return 'c', nil
	case RollUp:
		return 'e', nil
	case Scroll:
		return 'm', nil
	case Auto, "":
		return 'o', nil
	case WipeIn:
		return 'r', nil
	case Compact:
		return 't', nil
	}
	return 0, fmt.Errorf("alpha: unknown mode %q (auto, hold, rotate, scroll, flash, roll_up, wipe_in, compressed_rotate)", m)
}

// WriteText is the "write TEXT file" command: 'A', the file label, ESC,
// display position, mode code, then the message. The message must already be
// printable ASCII (see Sanitize); label is 0x20–0x75 except '0', which is the
// priority TEXT file, allowed on purpose.
func WriteText(label byte, t Text) ([]byte, error) {
	if label < 0x20 || label > 0x75 {
		return nil, fmt.Errorf("alpha: file label 0x%02X out of range 0x20-0x75", label)
	}
	pos, err := positionCode(t.Position)
	if err != nil {
		return nil, err
	}
	mode, err := modeCode(t.Mode)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(t.Message); i++ {
		if c := t.Message[i]; c < 0x20 || c > 0x7E {
			return nil, fmt.Errorf("alpha: message byte %d is 0x%02X, not printable ASCII (pass it through Sanitize)", i, c)
		}
	}
	cmd := make([]byte, 0, len(t.Message)+5)
	cmd = append(cmd, cmdWriteText, label, esc, pos, mode)
	return append(cmd, t.Message...), nil
}

// SetTimeOfDay is 'E' ' ' HHMM (24-hour).
func SetTimeOfDay(t time.Time) []byte {
	return fmt.Appendf(nil, "%c%c%02d%02d", cmdWriteSpecial, fnTimeOfDay, t.Hour(), t.Minute())
}

// SetDate is 'E' ';' MMDDYY.
func SetDate(t time.Time) []byte {
	return fmt.Appendf(nil, "%c%c%02d%02d%02d", cmdWriteSpecial, fnDate, int(t.Month()), t.Day(), t.Year()%100)
}

// SetDayOfWeek is 'E' '&' followed by '1' (Sunday) … '7' (Saturday).
func SetDayOfWeek(t time.Time) []byte {
	return []byte{cmdWriteSpecial, fnDayOfWeek, byte('1' + int(t.Weekday()))}
}

// SetTimeFormat24 is 'E' '\” 'M': the sign shows military (24 h) time, as
// Vietnam does.
func SetTimeFormat24() []byte { return []byte{cmdWriteSpecial, fnTimeFormat, 'M'} }

// ClearMemory is 'E' '$' with no table: every file is deleted. Signs then
// need files configured again before anything but their default file shows,
// so Alpha.Clear blanks the text file instead.
func ClearMemory() []byte { return []byte{cmdWriteSpecial, fnClearMemory} }

// ReadTimeOfDay is 'F' ' ': ask the sign for its time; the answer proves the
// sign is there.
func ReadTimeOfDay() []byte { return []byte{cmdReadSpecial, fnTimeOfDay} }

// Reply is one packet a sign sent back.
type Reply struct {
	Type     byte   // '0' for a response
	Address  string // the answering sign's address
	Command  byte   // e.g. 'E' for a special function value
	Data     []byte // after the command byte, up to ETX/EOT
	Checksum bool   // the packet carried a checksum (and it matched)
}

// ParseReply parses one packet as a sign sends it: any number of NULs, SOH,
// type, address, STX, command, data, optional ETX + 4 hex checksum, EOT.
// Errors name the byte offset and what was expected there.
func ParseReply(p []byte) (Reply, error) {
	i := 0
	for i < len(p) && p[i] == nul {
		i++
	}
	if i >= len(p) || p[i] != soh {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: expected SOH (0x01), got %s", i, at(p, i))
	}
	i++
	if len(p) < i+4 {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: packet too short for type, address and STX", i)
	}
	r := Reply{Type: p[i], Address: string(p[i+1 : i+3])}
	if err := checkAddress(r.Address); err != nil {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: %w", i+1, err)
	}
	i += 3
	if p[i] != stx {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: expected STX (0x02), got %s", i, at(p, i))
	}
	start := i
	i++
	if i >= len(p) || p[i] == etx || p[i] == eot {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: expected a command code, got %s", i, at(p, i))
	}
	r.Command = p[i]
	i++
	end := bytes.IndexAny(p[i:], "\x03\x04")
	if end < 0 {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: no ETX or EOT before the end of the packet", len(p))
	}
	r.Data = append([]byte(nil), p[i:i+end]...)
	i += end
	if p[i] == etx {
		if len(p) < i+6 {
			return Reply{}, fmt.Errorf("alpha reply: offset %d: ETX must be followed by 4 hex digits and EOT", i)
		}
		got := p[i+1 : i+5]
		want := Checksum(p[start : i+1])
		if _, err := strconv.ParseUint(string(got), 16, 16); err != nil {
			return Reply{}, fmt.Errorf("alpha reply: offset %d: checksum %q is not 4 hex digits", i+1, got)
		}
		if !bytes.EqualFold(got, want) {
			return Reply{}, fmt.Errorf("alpha reply: offset %d: checksum %s does not match the packet (%s): line noise or a wrong baud rate/parity", i+1, got, want)
		}
		r.Checksum = true
		i += 5
	}
	if p[i] != eot {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: expected EOT (0x04), got %s", i, at(p, i))
	}
	if i != len(p)-1 {
		return Reply{}, fmt.Errorf("alpha reply: offset %d: %d bytes after EOT", i+1, len(p)-1-i)
	}
	return r, nil
}

func at(p []byte, i int) string {
	if i >= len(p) {
		return "end of packet"
	}
	return fmt.Sprintf("0x%02X", p[i])
}
