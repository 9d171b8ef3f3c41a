package link

import "time"

// clockFilter picks the agent's clock offset from the samples of one session, as NTP's clock
// filter does: of the last few, the one with the shortest round trip, since a slow round trip
// is usually an unequal one (a 3G uplink queue) and halving it misjudges the offset by up to
// half the difference. A sample far from the others (beyond both round trips and a margin)
// means a clock was stepped: the window starts again from it.
type clockFilter struct {
	samples []clockSample
}

type clockSample struct {
	offset, rtt time.Duration
	at          time.Time // the machine's monotonic reading, to age samples out
}

const (
	clockWindow  = 8
	clockMaxAge  = 15 * time.Minute
	clockStepGap = 500 * time.Millisecond
)

// add takes a sample and returns the best of the window.
func (f *clockFilter) add(s clockSample) clockSample {
	if len(f.samples) > 0 {
		b := f.best()
		if d := s.offset - b.offset; d > s.rtt+b.rtt+clockStepGap || -d > s.rtt+b.rtt+clockStepGap {
			f.samples = f.samples[:0] // a step: the old samples describe another clock
		}
	}
	kept := f.samples[:0]
	for _, o := range f.samples {
		if s.at.Sub(o.at) < clockMaxAge {
			kept = append(kept, o)
		}
	}
	f.samples = append(kept, s)
	if len(f.samples) > clockWindow {
		f.samples = f.samples[len(f.samples)-clockWindow:]
	}
	return f.best()
}

func (f *clockFilter) best() clockSample {
	b := f.samples[0]
	for _, o := range f.samples[1:] {
		if o.rtt < b.rtt {
			b = o
		}
	}
	return b
}
