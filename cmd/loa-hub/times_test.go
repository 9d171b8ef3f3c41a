package main

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

// writeTone writes a second of 440 Hz, mono 16-bit 48 kHz WAV.
func writeTone(t *testing.T, path string) {
	t.Helper()
	const rate, n = 48000, 48000
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i)/rate))))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Dates are days in the hub's zone (Vietnam), not UTC; a bare duration on a filter that
// looks back is refused saying to write -24h; --limit keeps the newest; tables show titles.
func TestConfirmationTimesInHubZone(t *testing.T) {
	h := startHubProc(t, nil)
	h.env = append(h.env, "TZ=UTC") // the laptop's own zone must not matter
	h.loaOK(t, "area", "add", "qn/tk")
	tone := filepath.Join(h.dir, "tone.wav")
	writeTone(t, tone)
	out := h.loaOK(t, "content", "add", tone, "--title", "Thông báo tiêm chủng")
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	a := enrolAgent(t, h, "tk/cl-01", "qn/tk")
	doc := filepath.Join(h.dir, "s.yaml")
	os.WriteFile(doc, []byte("version: 1\nid: tk\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: morning\n    title: Bản tin sáng\n    cron: \"0 30 5 * * *\"\n    items:\n      - content: "+ref+"\n"), 0o644)
	h.loaOK(t, "schedule", "push", doc, "--to", "qn/tk")
	p := a.schedule()
	rec := func(seq uint64, start time.Time) protocol.Confirmation {
		return protocol.Confirmation{Device: "tk/cl-01", Seq: seq, ScheduleID: p.ScheduleID, Revision: p.Revision,
			Program: "qn/tk/morning", Item: ref, Start: start, End: start.Add(time.Second), Proof: protocol.Proof{PlayedS: 1}, Result: protocol.ResultCompleted}
	}
	a.confirm(
		rec(1, time.Date(2026, 12, 2, 22, 30, 0, 0, time.UTC)), // 05:30 on 03/12 in Vietnam
		rec(2, time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)),  // 17:00 on 03/12
		rec(3, time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)),  // 01:00 on 04/12
	)

	table := h.loaOK(t, "confirmations", "--since", "2026-12-03", "--until", "04/12/2026")
	if !strings.Contains(table, "2026-12-03 05:30:00") || !strings.Contains(table, "2026-12-03 17:00:00") ||
		strings.Contains(table, "2026-12-04") || !strings.Contains(table, "2 confirmation(s), times in Asia/Ho_Chi_Minh") {
		t.Fatalf("03/12 in Vietnam is not the day shown:\n%s", table)
	}
	if !strings.Contains(table, "Bản tin sáng") || !strings.Contains(table, "Thông báo tiêm chủng") || strings.Contains(table, "sha256:") {
		t.Fatalf("the table shows ids and hashes, not titles:\n%s", table)
	}
	// The newest with --limit, newest first.
	last := h.loaOK(t, "confirmations", "--limit", "2")
	if i, j := strings.Index(last, "2026-12-04 01:00:00"), strings.Index(last, "2026-12-03 17:00:00"); i < 0 || j < 0 || i > j || strings.Contains(last, "05:30") {
		t.Fatalf("--limit 2 is not the newest two, newest first:\n%s", last)
	}
	// One rule for durations: counted from now, '-' for the past.
	code, _, errs := h.loa(t, "confirmations", "--since", "24h")
	if code != 1 || !strings.Contains(errs, "write -24h") {
		t.Fatalf("--since 24h: %d %s", code, errs)
	}
	h.loaOK(t, "confirmations", "--since", "-7d", "--until", "+1h")
	// What plays now, by title in `loa status` too.
	a.send(&protocol.Status{Header: protocol.Header{ID: "st-1"}, At: time.Now(), NowPlaying: []protocol.NowPlaying{{Output: "speakers",
		ScheduleID: p.ScheduleID, Revision: p.Revision, Program: "qn/tk/morning", Item: ref}}})
	var status string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if status = h.loaOK(t, "status"); strings.Contains(status, "speakers: Bản tin sáng (Thông báo tiêm chủng)") {
			break
		}
	}
	if !strings.Contains(status, "speakers: Bản tin sáng (Thông báo tiêm chủng)") {
		t.Fatalf("loa status does not name what plays by its titles:\n%s", status)
	}
	// A user's own zone, from LOA_TIMEZONE: the same instant shown in it, and dates in it.
	h.env = append(h.env, "LOA_TIMEZONE=Asia/Tokyo")
	tokyo := h.loaOK(t, "confirmations", "--since", "2026-12-03 07:00", "--until", "2026-12-03 08:00")
	if !strings.Contains(tokyo, "2026-12-03 07:30:00") || !strings.Contains(tokyo, "1 confirmation(s), times in Asia/Tokyo") {
		t.Fatalf("in the user's zone:\n%s", tokyo)
	}
}
