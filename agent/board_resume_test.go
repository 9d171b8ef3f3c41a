package agent

import (
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

// TestBoardTextsFromPosition: a board run joined part-way (a restart) shows the bulletin the
// timeline has now and the ones after it, never the ones it already passed.
func TestBoardTextsFromPosition(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC)
	run := &scheduler.Run{Title: "Bản tin", Segments: []scheduler.Segment{
		{Item: 0, Ref: "text:Một", Source: scheduler.Item{Text: "Một"}, Start: t0, End: t0.Add(time.Minute)},
		{Item: 1, Ref: "text:Hai", Source: scheduler.Item{Text: "Hai"}, Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute)},
		{Item: 2, Ref: "text:Ba", Source: scheduler.Item{Text: "Ba"}, Start: t0.Add(2 * time.Minute), End: t0.Add(3 * time.Minute)},
	}}
	segs, texts := boardTexts(run, 1)
	if len(segs) != 2 || texts[0] != "Hai" || texts[1] != "Ba" || segs[0].Item != 1 {
		t.Errorf("from segment 1: %v", texts)
	}
	// A programme without texts shows its title, from where the timeline is.
	for i, f := range []string{"a.mp3", "b.mp3", "c.mp3"} {
		run.Segments[i].Ref, run.Segments[i].Source = "file:"+f, scheduler.Item{File: f}
	}
	segs, texts = boardTexts(run, 2)
	if len(segs) != 1 || texts[0] != "Bản tin" || segs[0].Item != 2 {
		t.Errorf("title from segment 2: %v %+v", texts, segs)
	}
}
