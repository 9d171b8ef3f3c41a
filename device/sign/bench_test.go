package sign

import (
	"strings"
	"testing"
)

var bulletin = strings.Repeat("Thông báo lịch tiêm chủng đợt 2 tại trạm y tế xã Tam Thanh. ", 4)

// BenchmarkSanitize is the cost of transliterating a ~250-character
// Vietnamese bulletin; BenchmarkSanitizeReference (strings.ToValidUTF8 over
// the same text, one pass that also decodes every rune) is the yardstick.
func BenchmarkSanitize(b *testing.B) {
	b.SetBytes(int64(len(bulletin)))
	for b.Loop() {
		Sanitize(bulletin)
	}
}

func BenchmarkSanitizeReference(b *testing.B) {
	b.SetBytes(int64(len(bulletin)))
	for b.Loop() {
		strings.ToValidUTF8(bulletin+"\xff", "?")
	}
}

// BenchmarkShowFrame: sanitise, build the TEXT command and frame it with checksum.
func BenchmarkShowFrame(b *testing.B) {
	for b.Loop() {
		cmd, err := WriteText('A', Text{Message: Sanitize(bulletin), Mode: Rotate})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Frame('Z', "00", true, cmd); err != nil {
			b.Fatal(err)
		}
	}
}
