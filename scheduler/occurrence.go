package scheduler

import (
	"fmt"
	"sort"
	"time"

	"github.com/robfig/cron/v3"
)

// programPlan is a programme's start rule, ready to expand into start times.
type programPlan struct {
	cron cron.Schedule // nil for a one-off `at`
	at   time.Time
}

func newProgramPlan(p *Program, loc *time.Location) (programPlan, error) {
	switch {
	case p.Cron != "":
		s, err := parseCron(p.Cron)
		if err != nil {
			return programPlan{}, err
		}
		return programPlan{cron: s}, nil
	case p.At != "":
		t, err := parseAt(p.At, loc)
		if err != nil {
			return programPlan{}, err
		}
		return programPlan{at: t}, nil
	}
	return programPlan{}, nil // already reported by validateProgram
}

// starts returns the programme's first-play start times in [from, until), in order, without
// duplicates, honouring valid_from/valid_until (inclusive days in loc).
//
// Cron is evaluated on wall-clock time in the schedule's zone, not on instants: a programme
// at 06:30 plays at 06:30 local on every day, whatever the UTC offset. Across DST, a wall time
// that does not exist (spring forward) plays at the first instant after the gap, and one that
// occurs twice (fall back) plays once, at its first occurrence. This differs from robfig/cron's
// own handling, which skips the former and plays the latter twice.
func (pp programPlan) starts(p *Program, loc *time.Location, from, until time.Time) []time.Time {
	var out []time.Time
	valid := func(t time.Time) bool {
		d := dateOf(t.In(loc))
		if p.ValidFrom != nil && d.before(*p.ValidFrom) {
			return false
		}
		if p.ValidUntil != nil && p.ValidUntil.before(d) {
			return false
		}
		return t.Before(until) && !t.Before(from)
	}
	if pp.cron == nil {
		if !pp.at.IsZero() && valid(pp.at) {
			out = append(out, pp.at)
		}
		return out
	}
	// Walk wall times, starting a little before `from` so that a wall time whose instant
	// falls at or after `from` (DST shifts wall and instant apart by up to a few hours) is seen.
	w := wallOf(from.In(loc)).Add(-3 * time.Hour)
	end := wallOf(until.In(loc)).Add(3 * time.Hour)
	var last time.Time
	for {
		w = pp.cron.Next(w)
		if w.IsZero() || w.After(end) {
			break
		}
		t := wallToInstant(w, loc)
		if !valid(t) || t.Equal(last) {
			continue
		}
		out = append(out, t)
		last = t
	}
	// Gap-mapped instants can come out of order by at most the gap's length.
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return dedupe(out)
}

func dedupe(ts []time.Time) []time.Time {
	out := ts[:0]
	for i, t := range ts {
		if i > 0 && t.Equal(out[len(out)-1]) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// wallOf returns t's wall-clock reading as a UTC time, a zone without DST, so cron can walk
// wall time without seeing transitions.
func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// wallToInstant maps a wall-clock reading (carried as UTC) to the instant it names in loc:
// the earlier one when it names two, the end of the gap when it names none.
func wallToInstant(w time.Time, loc *time.Location) time.Time {
	_, offBefore := w.Add(-24 * time.Hour).In(loc).Zone()
	_, offAfter := w.Add(24 * time.Hour).In(loc).Zone()
	var best time.Time
	for _, off := range []int{offBefore, offAfter} {
		t := w.Add(-time.Duration(off) * time.Second).In(loc)
		if wallOf(t).Equal(w) && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	if !best.IsZero() {
		return best
	}
	t := w.Add(-time.Duration(offBefore) * time.Second).In(loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	return start.In(loc)
}

// lengthOf works out how long one play of the programme lasts and each item's share. An item
// whose length is unknown runs until the programme's max_duration cuts it (unbounded = -1).
func lengthOf(p *Program, itemLength func(Item) (time.Duration, bool)) (total time.Duration, items []time.Duration, err error) {
	items = make([]time.Duration, len(p.Items))
	for i, it := range p.Items {
		d := it.Duration.D()
		if d <= 0 && itemLength != nil {
			if l, ok := itemLength(it); ok {
				d = l
			}
		}
		if d <= 0 {
			if p.MaxDuration <= 0 {
				return 0, nil, fmt.Errorf("items[%d] (%s): length unknown; give the item a duration or the program a max_duration", i, it.Ref())
			}
			items[i] = -1
			total = -1
			continue
		}
		items[i] = d
		if total >= 0 {
			total += d
		}
	}
	return total, items, nil
}
