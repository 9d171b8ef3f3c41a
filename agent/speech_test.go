package agent_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"

	"github.com/loa-project/loa/protocol"
)

// TestAgentSpeaksTextOnTheSpeakers: a bulletin given only as text is spoken (espeak-ng,
// Vietnamese voice) rather than silent.
func TestAgentSpeaksTextOnTheSpeakers(t *testing.T) {
	b := newBox(t, "")
	start := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: tts\nrevision: 1\ntimezone: UTC\nprograms:\n"+
		"  - {id: storm, class: emergency, at: %q, items: [{text: \"Cảnh báo bão số 13. Đề nghị bà con không ra biển.\", duration: 10s}]}\n", at(start)))
	b.start()
	recs := b.waitFor("the spoken warning", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 1 })
	time.Sleep(time.Second)
	b.stop()
	r := recs[0]
	if r.Result != protocol.ResultCompleted || protocol.Duration(r.PlayedS) < time.Second || peakOf(r) < -30 {
		t.Fatalf("spoken warning: %s, played %s, peak %.1f dBFS\n%s", r.Result, protocol.Duration(r.PlayedS), peakOf(r), b.logText())
	}
	samples, _ := b.captures[0].Samples()
	if runs := soundRuns(samples, 48000); len(runs) == 0 {
		t.Fatal("the sound card heard nothing")
	}
}

// TestAgentSpeaksFallbackOfMissingItem: an emergency whose recording is not on the device is
// spoken from its fallback text, and the record says it completed with sound.
func TestAgentSpeaksFallbackOfMissingItem(t *testing.T) {
	b := newBox(t, "")
	start := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	b.writeSchedule(fmt.Sprintf("version: 1\nid: fallback\nrevision: 1\ntimezone: UTC\nprograms:\n"+
		"  - {id: storm, class: emergency, at: %q, items: [{file: /nonexistent/storm-13.mp3, fallback_text: \"Cảnh báo bão số 13.\"}]}\n", at(start)))
	b.start()
	recs := b.waitFor("the spoken fallback", 30*time.Second, func(r []journal.Record) bool { return len(closed(r)) >= 1 })
	time.Sleep(time.Second)
	b.stop()
	r := closed(recs)[0]
	if r.Result != protocol.ResultCompleted || protocol.Duration(r.PlayedS) < 500*time.Millisecond || peakOf(r) < -30 {
		t.Fatalf("fallback: %s, played %s, peak %.1f dBFS\n%s", r.Result, protocol.Duration(r.PlayedS), peakOf(r), b.logText())
	}
	if !strings.Contains(b.logText(), "speaking its fallback text") {
		t.Fatalf("the log does not say the fallback was spoken:\n%s", b.logText())
	}
	samples, _ := b.captures[0].Samples()
	if runs := soundRuns(samples, 48000); len(runs) == 0 {
		t.Fatal("the sound card heard nothing")
	}
}

// peakOf is a record's peak level, -Inf when none was measured.
func peakOf(r journal.Record) float64 {
	if r.PeakDBFS == nil {
		return math.Inf(-1)
	}
	return *r.PeakDBFS
}
