package main

import (
	"fmt"
	"time"
)

// latencies combines the fleets' receipts: each agent's time from the push (start, wall
// clock) to its schedule, over every fleet. Every one of want agents must have answered.
func latencies(rs []result, start time.Time, want int) ([]time.Duration, error) {
	var out []time.Duration
	for _, r := range rs {
		for _, at := range r.At {
			out = append(out, time.Unix(0, at).Sub(start))
		}
	}
	if len(out) != want {
		return nil, fmt.Errorf("%d receipts from the fleets, want one per agent (%d)", len(out), want)
	}
	return out, nil
}

// rate combines the fleets' confirmations: every record over the time from the first fleet's
// first batch to the last fleet's last ack (they ran at once), per second.
func rate(rs []result) (float64, int) {
	var records int
	var first, last int64
	for i, r := range rs {
		records += r.Records
		if i == 0 || r.Start < first {
			first = r.Start
		}
		last = max(last, r.End)
	}
	if last <= first {
		return 0, records
	}
	return float64(records) / time.Duration(last-first).Seconds(), records
}
