package scheduler

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// planLine is one segment as `loa-agent plan` prints it: times in the schedule's zone with
// their offset, durations in seconds.
type planLine struct {
	Output    string  `json:"output"`
	Program   string  `json:"program"`
	Title     string  `json:"title,omitempty"`
	Item      int     `json:"item"`
	Ref       string  `json:"ref"`
	Class     string  `json:"class"`
	Priority  int     `json:"priority"`
	Scheduled string  `json:"scheduled"`
	Start     string  `json:"start"`
	End       string  `json:"end"`
	Seconds   float64 `json:"seconds"`
	Offset    float64 `json:"offset"`
	Status    Status  `json:"status"`
	Play      int     `json:"play,omitempty"`
	Gain      float64 `json:"gain"`
}

func toPlanLine(s Segment) planLine {
	return planLine{
		Output: s.Output, Program: s.Program, Title: s.Title, Item: s.Item, Ref: s.Ref,
		Class: s.Class.String(), Priority: s.Priority,
		Scheduled: s.Scheduled.Format(time.RFC3339), Start: s.Start.Format(time.RFC3339Nano),
		End: s.End.Format(time.RFC3339Nano), Seconds: s.End.Sub(s.Start).Seconds(),
		Offset: s.Offset.Seconds(), Status: s.Status, Play: s.Play, Gain: s.Gain,
	}
}

// WriteJSONLines prints the timeline as one JSON object per segment, in timeline order.
func (tl *Timeline) WriteJSONLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, s := range tl.Segments {
		if err := enc.Encode(toPlanLine(s)); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable prints the timeline for people, ordered by time across outputs.
func (tl *Timeline) WriteTable(w io.Writer) error {
	segs := make([]Segment, len(tl.Segments))
	copy(segs, tl.Segments)
	sortByStart(segs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tEND\tOUTPUT\tPROGRAM\tCLASS\tITEM\tSTATUS")
	for _, s := range segs {
		ref := s.Ref
		if len(ref) > 40 {
			ref = ref[:37] + "..."
		}
		item := fmt.Sprintf("%d %s", s.Item+1, ref)
		if s.Offset > 0 {
			item += fmt.Sprintf(" (from %s)", s.Offset.Round(time.Second))
		}
		program := s.Program
		if s.Play > 0 {
			program += fmt.Sprintf(" (repeat %d)", s.Play)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			s.Start.Format("2006-01-02 15:04:05"), s.End.Format("15:04:05"),
			s.Output, program, s.Class, strings.ReplaceAll(item, "\t", " "), s.Status)
	}
	return tw.Flush()
}
