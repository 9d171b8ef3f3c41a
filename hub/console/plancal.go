package console

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
)

// calSeg is one segment of a compiled timeline as the calendar draws it.
type calSeg struct {
	Output, Program, Title, Class, Item, Status string
	Start, End, Scheduled                       time.Time
	// Change is "added", "removed" or "moved" in a push preview, "" otherwise.
	Change string
	// Top and Height place the segment in its day column, in minutes of the day (the classes
	// t<minute> and h<minutes> of gridCSS: the console's CSP allows no inline styles).
	Top, Height int
}

// Label is what the segment's box says: the programme's title, else its id.
func (s calSeg) Label() string {
	if s.Title != "" {
		return s.Title
	}
	return s.Program
}

// planSegs are the plan's segments as the calendar draws them, their times in loc.
func planSegs(p api.PlanJSON, loc *time.Location) []calSeg {
	out := make([]calSeg, len(p.Segments))
	for i, sg := range p.Segments {
		out[i] = calSeg{Output: sg.Output, Program: sg.Program, Title: sg.Title, Class: sg.Class, Item: sg.Item, Status: sg.Status,
			Start: sg.Start.In(loc), End: sg.End.In(loc), Scheduled: sg.Scheduled.In(loc)}
	}
	return out
}

type calBox struct{ Top, Height int }

type calDay struct {
	Date  time.Time
	Segs  []calSeg
	Quiet []calBox
}

type calOutput struct {
	Name string
	Days []calDay
}

// calendar is a week (or a day) of one timeline, by output, each day a column.
type calendar struct {
	From    time.Time
	Days    []time.Time
	Outputs []calOutput
	Hours   []calHour
	To      string // the target, for links to a day; "" in a preview
}

type calHour struct {
	Label string
	Top   int
}

// startOfWeek is the Monday 00:00 of t's week in loc (a Vietnamese week begins on Thứ Hai).
func startOfWeek(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, loc)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}

// buildCalendar lays segs out over days days from `from` (a midnight in loc). A segment is
// drawn in the day it starts, cut at that day's end on screen (its data keeps its times).
func buildCalendar(segs []calSeg, quiet []api.PlanQuiet, from time.Time, days int, loc *time.Location) calendar {
	cal := calendar{From: from}
	for h := 0; h < 24; h += 3 {
		cal.Hours = append(cal.Hours, calHour{fmt.Sprintf("%02d:00", h), h * 60})
	}
	starts := make([]time.Time, days+1)
	for i := range starts {
		starts[i] = from.AddDate(0, 0, i) // AddDate keeps midnight across a DST change
	}
	cal.Days = starts[:days]
	outs := map[string]bool{"speakers": true}
	for _, s := range segs {
		outs[s.Output] = true
	}
	var names []string
	for _, o := range outputNames {
		if outs[o] {
			names = append(names, o)
			delete(outs, o)
		}
	}
	for o := range outs {
		names = append(names, o)
	}
	sort.Strings(names[len(names)-len(outs):])
	byOut := map[string]int{}
	for i, n := range names {
		byOut[n] = i
		co := calOutput{Name: n}
		for d := 0; d < days; d++ {
			day := calDay{Date: starts[d]}
			if n == "speakers" { // quiet hours silence the speakers only
				day.Quiet = quietBoxes(quiet)
			}
			co.Days = append(co.Days, day)
		}
		cal.Outputs = append(cal.Outputs, co)
	}
	for _, s := range segs {
		d := sort.Search(days, func(i int) bool { return starts[i+1].After(s.Start) })
		if d >= days || !s.End.After(starts[0]) {
			continue
		}
		// In minutes of a 24-hour column (a day of a DST change is scaled to fit).
		dayLen := starts[d+1].Sub(starts[d]).Minutes()
		top := s.Start.Sub(starts[d]).Minutes() * 1440 / dayLen
		if top < 0 {
			top = 0
		}
		end := s.End.Sub(starts[d]).Minutes() * 1440 / dayLen
		if end > 1440 {
			end = 1440
		}
		s.Top = int(math.Floor(top))
		if s.Top > 1439 {
			s.Top = 1439
		}
		s.Height = max(1, int(math.Ceil(end))-s.Top)
		o := &cal.Outputs[byOut[s.Output]].Days[d]
		o.Segs = append(o.Segs, s)
	}
	return cal
}

// segBoxes writes the boxes of one day column: what the calendar template would write, here
// because a dense week has thousands of them and html/template's reflection per box was most
// of the page's server time. Every value is escaped for a quoted attribute or text.
func segBoxes(v view, segs []calSeg) template.HTML {
	if len(segs) == 0 {
		return ""
	}
	words := map[string]string{} // the few class, status and change words, looked up once
	word := func(key string) string {
		w, ok := words[key]
		if !ok {
			w = html.EscapeString(v.T(key))
			words[key] = w
		}
		return w
	}
	var b strings.Builder
	b.Grow(len(segs) * 340)
	put := func(ss ...string) {
		for _, s := range ss {
			b.WriteString(s)
		}
	}
	for _, s := range segs {
		class, status, change := html.EscapeString(s.Class), html.EscapeString(s.Status), html.EscapeString(s.Change)
		start, label := s.Start.Format("15:04"), html.EscapeString(s.Label())
		put(`<div class="seg c-`, class, ` s-`, status, ` t`, strconv.Itoa(s.Top), ` h`, strconv.Itoa(s.Height))
		if change != "" {
			put(` ch-`, change)
		}
		put(`" tabindex="0" data-output="`, html.EscapeString(s.Output), `" data-program="`, html.EscapeString(s.Program),
			`" data-item="`, html.EscapeString(s.Item), `" data-start="`, s.Start.UTC().Format(time.RFC3339Nano),
			`" data-end="`, s.End.UTC().Format(time.RFC3339Nano), `" data-status="`, status, `"`)
		if change != "" {
			put(` data-change="`, change, `"`)
		}
		put(` title="`, start, `–`, s.End.Format("15:04"), ` `, label, ` · `, word("class."+s.Class), ` · `, word("st."+s.Status))
		if change != "" {
			put(` · `, word("ch."+s.Change))
		}
		put(`">`, start, ` `, label, "</div>")
	}
	return template.HTML(b.String())
}

// gridCSS places calendar boxes: .t<m> starts a box m minutes into the day, .h<m> makes it m
// minutes tall, as percentages of the day column. Served as a stylesheet (the CSP allows no
// inline styles); 2,880 short rules, cached by the browser.
var gridCSS = func() []byte {
	var b strings.Builder
	for m := 0; m <= 1440; m++ {
		p := strconv.FormatFloat(float64(m)/14.4, 'f', 3, 64)
		fmt.Fprintf(&b, ".t%d{top:%s%%}.h%d{height:%s%%}\n", m, p, m, p)
	}
	return []byte(b.String())
}()

// quietBoxes are the shaded spans of a day; a span across midnight is two boxes.
func quietBoxes(quiet []api.PlanQuiet) []calBox {
	var out []calBox
	min := func(s string) (int, bool) {
		var h, m int
		if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || h*60+m > 1440 {
			return 0, false
		}
		return h*60 + m, true
	}
	for _, q := range quiet {
		a, ok1 := min(q.From)
		b, ok2 := min(q.To)
		if !ok1 || !ok2 {
			continue
		}
		if b > a {
			out = append(out, calBox{a, b - a})
		} else {
			out = append(out, calBox{0, b}, calBox{a, 1440 - a})
		}
	}
	return out
}

// planChange is one difference between two timelines, as the push preview lists it.
type planChange struct {
	Kind     string // added, removed, moved
	Old, New calSeg // Old for removed and moved, New for added and moved
}

// diffTimelines matches the plays of two timelines and says which were added, removed or
// moved. A play is identified by its output, programme, item and the day its occurrence was
// scheduled, the n-th such on that day: the same play at another time (or cut or preempted
// differently) is moved; one with no counterpart is added or removed. The marks are set on
// the segments too (old: removed, moved; new: added, moved) for the calendars.
func diffTimelines(old, new []calSeg, loc *time.Location) []planChange {
	key := func(segs []calSeg) []string {
		n := map[string]int{}
		keys := make([]string, len(segs))
		for i, s := range segs {
			k := s.Output + "|" + s.Program + "|" + s.Item + "|" + s.Scheduled.In(loc).Format("2006-01-02")
			keys[i] = k + "|" + strconv.Itoa(n[k])
			n[k]++
		}
		return keys
	}
	sortSegs(old)
	sortSegs(new)
	oldKeys, newKeys := key(old), key(new)
	byKey := map[string]int{}
	for i, k := range oldKeys {
		byKey[k] = i
	}
	var out []planChange
	matched := make([]bool, len(old))
	for i, k := range newKeys {
		j, ok := byKey[k]
		if !ok {
			new[i].Change = "added"
			out = append(out, planChange{Kind: "added", New: new[i]})
			continue
		}
		matched[j] = true
		o := old[j]
		if !o.Start.Equal(new[i].Start) || !o.End.Equal(new[i].End) || o.Status != new[i].Status {
			old[j].Change, new[i].Change = "moved", "moved"
			out = append(out, planChange{Kind: "moved", Old: o, New: new[i]})
		}
	}
	for j, ok := range matched {
		if !ok {
			old[j].Change = "removed"
			out = append(out, planChange{Kind: "removed", Old: old[j]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at().Before(out[j].at()) })
	return out
}

func (c planChange) at() time.Time {
	if c.Kind == "removed" {
		return c.Old.Start
	}
	return c.New.Start
}

func sortSegs(s []calSeg) {
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Start.Equal(s[j].Start) {
			return s[i].Start.Before(s[j].Start)
		}
		return s[i].Output < s[j].Output
	})
}
