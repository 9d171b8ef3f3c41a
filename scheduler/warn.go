package scheduler

import (
	"fmt"
	"sort"
	"time"
)

// Warning is something a valid document may not mean: it plays, but perhaps not as its
// author thinks. Path names the field as validation errors do (programs[2].max_duration).
type Warning struct {
	Program string `json:"program,omitempty"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Message }

// Warnings looks at a parsed document and its compiled timeline for what staff most often get
// wrong without an error: two programmes at the same class and priority overlapping on an
// output (the earlier start wins and the other waits or is cut: rarely what was meant), and a
// programme whose items are longer than its max_duration (the end is always cut). Overlaps are
// looked for over [from, until).
func Warnings(doc *Document, from, until time.Time) []Warning {
	var out []Warning
	index := map[string]int{}
	for i := range doc.Programs {
		index[doc.Programs[i].ID] = i
	}
	for i := range doc.Programs {
		p := &doc.Programs[i]
		if p.MaxDuration <= 0 {
			continue
		}
		var total time.Duration
		for _, it := range p.Items {
			total += it.Duration.D()
		}
		if total > p.MaxDuration.D() {
			out = append(out, Warning{Program: p.ID, Path: fmt.Sprintf("programs[%d].max_duration", i),
				Message: fmt.Sprintf("program %q: its items last %s, longer than its max_duration %s: every play is cut", p.ID, total, p.MaxDuration.D())})
		}
	}
	// Each occurrence holds its outputs from its start for its window (max_duration, else its
	// natural length), whatever the timeline then makes of it: a programme that never gets its
	// output at all overlaps as much as one that is cut.
	type occ struct {
		output, program string
		class           Class
		priority        int
		start, end      time.Time
	}
	var occs []occ
	for i := range doc.Programs {
		p := &doc.Programs[i]
		total, _, err := lengthOf(p, nil)
		if err != nil || len(doc.plans) != len(doc.Programs) {
			continue // an item of unknown length: Compile reports it
		}
		outs := p.Outputs
		if len(outs) == 0 {
			outs = defaultOutputs
		}
		for _, base := range doc.plans[i].starts(p, doc.loc, from, until) {
			for _, start := range repeatStarts(p, base, total) {
				for _, o := range outs {
					occs = append(occs, occ{o, p.ID, p.Class, p.Priority, start, start.Add(windowLength(p, total))})
				}
			}
			if len(occs) > MaxPlaysPerCompile {
				return out
			}
		}
	}
	sort.SliceStable(occs, func(i, j int) bool {
		if occs[i].output != occs[j].output {
			return occs[i].output < occs[j].output
		}
		return occs[i].start.Before(occs[j].start)
	})
	seen := map[string]bool{}
	for i, a := range occs {
		for _, b := range occs[i+1:] {
			if b.output != a.output || !b.start.Before(a.end) {
				break
			}
			if a.program == b.program || a.class != b.class || a.priority != b.priority {
				continue
			}
			pair := a.program + "\x00" + b.program
			if seen[pair] {
				continue
			}
			seen[pair] = true
			out = append(out, Warning{Program: b.program, Path: fmt.Sprintf("programs[%d]", index[b.program]),
				Message: fmt.Sprintf("programs %q and %q overlap on %s at the same class (%s) and priority (%d), first at %s: the later one waits or is cut; give one a higher priority or move it",
					a.program, b.program, a.output, a.class, a.priority, b.start.In(doc.loc).Format("2006-01-02 15:04"))})
		}
	}
	return out
}
