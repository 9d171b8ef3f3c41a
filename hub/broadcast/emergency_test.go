package broadcast

import (
	"testing"
	"time"
)

func TestRepeatCount(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		until time.Duration
		every time.Duration
		want  int
	}{{time.Hour, 20 * time.Minute, 2}, {61 * time.Minute, 20 * time.Minute, 3}, {12 * time.Hour, 2 * time.Hour, 5},
		{time.Hour, 0, 0}, {time.Minute, time.Hour, 0}, {1000 * time.Hour, time.Second, maxRepeats}} {
		if got := repeatCount(t0, t0.Add(c.until), c.every); got != c.want {
			t.Errorf("repeatCount(until +%s, every %s) = %d, want %d", c.until, c.every, got, c.want)
		}
	}
}
