package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Receipts from several processes are measured from the one push instant, and the
// percentiles are over every agent, not averaged per process.
func TestLatenciesAcrossFleets(t *testing.T) {
	start := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	at := func(ms ...int) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, start.Add(time.Duration(m)*time.Millisecond).UnixNano())
		}
		return out
	}
	// A fast fleet and a slow one: per-fleet medians would be 20 ms and 3 s.
	rs := []result{{At: at(10, 20, 30)}, {At: at(1000, 3000, 5000, 7000)}}
	lat, err := latencies(rs, start, 7)
	if err != nil {
		t.Fatal(err)
	}
	med, p99, mx := percentiles(lat)
	if med != time.Second || p99 != 7*time.Second || mx != 7*time.Second {
		t.Errorf("median %s p99 %s max %s, want 1s 7s 7s", med, p99, mx)
	}
	if _, err := latencies(rs, start, 8); err == nil || !strings.Contains(err.Error(), "7 receipts") {
		t.Errorf("a missing receipt: err %v, want one naming the 7 receipts", err)
	}
}

// Confirmations per second are every fleet's records over the span they ran in together.
func TestRateAcrossFleets(t *testing.T) {
	s := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	rs := []result{
		{Records: 10000, Start: s + sec, End: s + 3*sec},
		{Records: 30000, Start: s, End: s + 4*sec},
	}
	r, n := rate(rs)
	if n != 40000 || r != 10000 {
		t.Errorf("rate %v over %d records, want 10000/s over 40000", r, n)
	}
	if r, _ := rate([]result{{Records: 5, Start: s, End: s}}); r != 0 {
		t.Errorf("no time elapsed: rate %v, want 0", r)
	}
}

// A worker answers each step with one line; an unknown step is an error naming it, and the
// worker carries on.
func TestWorkerAnswersEachStep(t *testing.T) {
	in := strings.NewReader(`{"op":"fly"}` + "\n" + `{"op":"receipts"}` + "\n")
	var out bytes.Buffer
	if err := serveWorker(in, &out); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	var a, b result
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Err, `"fly"`) {
		t.Errorf("unknown step: err %q, want it named", a.Err)
	}
	if b.Err != "" || b.N != 0 || len(b.At) != 0 {
		t.Errorf("receipts of an empty fleet: %+v, want none and no error", b)
	}
	if err := serveWorker(strings.NewReader("{not json"), &out); err == nil {
		t.Error("a step that is not JSON: no error")
	}
}
