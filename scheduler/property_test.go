package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestTimelineProperties checks, for random schedules, the invariants every timeline keeps:
// no two audible segments overlap on one output; no segment starts before its programme's
// start; and at every sampled moment the output plays the highest-ranked programme still
// wanting it (or nothing, when none does).
func TestTimelineProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		type progSpec struct {
			id          string
			class, prio int
			hour, min   int
			items       []int // minutes
			maxDur      int   // minutes, 0 for none
			policy      string
			outputs     []string
		}
		n := rapid.IntRange(1, 7).Draw(rt, "programs")
		var specs []progSpec
		var b strings.Builder
		b.WriteString(header + "programs:\n")
		for i := 0; i < n; i++ {
			s := progSpec{
				id:     fmt.Sprintf("p%d", i),
				class:  rapid.IntRange(0, 2).Draw(rt, "class"),
				prio:   rapid.IntRange(0, 2).Draw(rt, "prio"),
				hour:   rapid.IntRange(6, 7).Draw(rt, "hour"),
				min:    rapid.IntRange(0, 59).Draw(rt, "min"),
				policy: rapid.SampledFrom([]string{"resume", "restart", "skip"}).Draw(rt, "policy"),
			}
			for k := rapid.IntRange(1, 3).Draw(rt, "nitems"); k > 0; k-- {
				s.items = append(s.items, rapid.IntRange(1, 25).Draw(rt, "itemmin"))
			}
			if rapid.Bool().Draw(rt, "hasmax") {
				s.maxDur = rapid.IntRange(1, 90).Draw(rt, "maxdur")
			}
			s.outputs = []string{"speakers"}
			if rapid.Bool().Draw(rt, "board") {
				s.outputs = append(s.outputs, "board")
			}
			specs = append(specs, s)
			fmt.Fprintf(&b, "  - id: %s\n    class: %s\n    priority: %d\n    cron: \"0 %d %d * * *\"\n    on_interrupt: %s\n    outputs: [%s]\n",
				s.id, Class(s.class), s.prio, s.min, s.hour, s.policy, strings.Join(s.outputs, ", "))
			if s.maxDur > 0 {
				fmt.Fprintf(&b, "    max_duration: %dm\n", s.maxDur)
			}
			b.WriteString("    items:\n")
			for _, m := range s.items {
				fmt.Fprintf(&b, "      - {file: x.mp3, duration: %dm}\n", m)
			}
		}
		doc, err := Parse("prop.yaml", []byte(b.String()))
		if err != nil {
			rt.Fatalf("parse: %v\n%s", err, b.String())
		}
		loc := doc.Location()
		from := time.Date(2026, 11, 2, 5, 0, 0, 0, loc)
		until := time.Date(2026, 11, 2, 12, 0, 0, 0, loc)
		tl, err := Compile(doc, from, until, CompileOptions{})
		if err != nil {
			rt.Fatal(err)
		}

		type occ struct {
			spec       progSpec
			start, end time.Time
			items      []time.Duration
		}
		occs := map[string]occ{}
		for _, s := range specs {
			start := time.Date(2026, 11, 2, s.hour, s.min, 0, 0, loc)
			var total time.Duration
			var items []time.Duration
			for _, m := range s.items {
				items = append(items, time.Duration(m)*time.Minute)
				total += time.Duration(m) * time.Minute
			}
			end := start.Add(total)
			if s.maxDur > 0 {
				end = start.Add(time.Duration(s.maxDur) * time.Minute)
			}
			occs[s.id] = occ{s, start, end, items}
		}
		rank := func(s progSpec) int { return s.class*10 + s.prio }

		byOut := map[string][]Segment{}
		for _, s := range tl.Segments {
			o := occs[s.Program]
			if s.Start.Before(o.start) {
				rt.Fatalf("segment %v starts before its programme's start %s", compact(&Timeline{Segments: []Segment{s}}), o.start)
			}
			if s.End.After(o.end) {
				rt.Fatalf("segment %v runs past its window's end %s", compact(&Timeline{Segments: []Segment{s}}), o.end)
			}
			if s.Audible() {
				byOut[s.Output] = append(byOut[s.Output], s)
			}
		}
		for out, segs := range byOut {
			for i := 1; i < len(segs); i++ {
				if segs[i].Start.Before(segs[i-1].End) {
					rt.Fatalf("%s: segments overlap:\n%v", out, compact(&Timeline{Segments: segs[i-1 : i+1]}))
				}
			}
		}
		// finishedBy: the occurrence played its last item to the end before t.
		finishedBy := func(out, id string, t time.Time) bool {
			o := occs[id]
			last := len(o.items) - 1
			for _, s := range byOut[out] {
				if s.Program == id && s.Item == last && !s.End.After(t) && s.Offset+s.End.Sub(s.Start) == o.items[last] {
					return true
				}
			}
			return false
		}
		// skippedBy: a skip-policy occurrence that lost (or never got) the output before t.
		skippedBy := func(out, id string, t time.Time) bool {
			for _, s := range tl.Segments {
				if s.Output == out && s.Program == id && !s.End.After(t) &&
					(s.Status == StatusSkipped || (s.Status == StatusPreempted && occs[id].spec.policy == "skip")) {
					return true
				}
			}
			return false
		}
		for _, out := range []string{"speakers", "board"} {
			for t := from; t.Before(until); t = t.Add(30 * time.Second) {
				var playing *Segment
				for i, s := range byOut[out] {
					if !s.Start.After(t) && s.End.After(t) {
						playing = &byOut[out][i]
					}
				}
				for id, o := range occs {
					wants := false
					for _, x := range o.spec.outputs {
						wants = wants || x == out
					}
					if !wants || t.Before(o.start) || !t.Before(o.end) || finishedBy(out, id, t) || skippedBy(out, id, t) {
						continue
					}
					if playing == nil {
						rt.Fatalf("%s at %s: nothing plays but %s wants the output\n%s", out, t.Format("15:04:05"), id, strings.Join(compact(tl), "\n"))
					}
					if rank(o.spec) > rank(occs[playing.Program].spec) {
						rt.Fatalf("%s at %s: %s plays but higher %s wants the output\n%s", out, t.Format("15:04:05"), playing.Program, id, strings.Join(compact(tl), "\n"))
					}
				}
			}
		}
	})
}
