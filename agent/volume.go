package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/loa-project/loa/scheduler"
)

// VolumeStep lowers (or raises) the device volume during a daily stretch of time, e.g. softer
// at dawn. Times are read in the schedule's time zone; a stretch may cross midnight.
type VolumeStep struct {
	From   string  `yaml:"from"`
	To     string  `yaml:"to"`
	Volume float64 `yaml:"volume"`
}

// volume is the device's own volume: one figure for the site (how loud this cluster's horns
// are), and a daily schedule. Emergencies take the device volume but not the schedule: a
// warning at dawn is not played softer.
type volume struct {
	mu     sync.Mutex
	device float64
	steps  []volumeStep
}

func (v *volume) setDevice(g float64) {
	v.mu.Lock()
	v.device = g
	v.mu.Unlock()
}

type volumeStep struct {
	from, to int // minutes after midnight
	gain     float64
}

func newVolume(device *float64, steps []VolumeStep) (*volume, error) {
	v := &volume{device: 1}
	if device != nil {
		if *device < 0 || *device > 1 {
			return nil, fmt.Errorf("volume %g: give a number from 0 to 1", *device)
		}
		v.device = *device
	}
	for i, st := range steps {
		from, err1 := minutesOf(st.From)
		to, err2 := minutesOf(st.To)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("volume_schedule[%d]: from %q and to %q must be HH:MM", i, st.From, st.To)
		}
		if st.Volume < 0 || st.Volume > 1 {
			return nil, fmt.Errorf("volume_schedule[%d]: volume %g: give a number from 0 to 1", i, st.Volume)
		}
		v.steps = append(v.steps, volumeStep{from, to, st.Volume})
	}
	return v, nil
}

func minutesOf(hhmm string) (int, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// now is the device gain at t for a scheduled (not emergency) play, read in the active
// schedule's zone (UTC without one): what status and the heartbeat report.
func (v *volume) now(t time.Time, doc *scheduler.Document) float64 {
	loc := time.UTC
	if doc != nil && doc.Location() != nil {
		loc = doc.Location()
	}
	return v.at(&scheduler.Run{Start: t.In(loc)})
}

// at is the device gain for a run, decided by the time of day of its start.
func (v *volume) at(run *scheduler.Run) float64 {
	if v == nil {
		return 1
	}
	v.mu.Lock()
	g := v.device
	v.mu.Unlock()
	if run.Class == scheduler.Emergency {
		return g
	}
	m := run.Start.Hour()*60 + run.Start.Minute()
	for _, st := range v.steps {
		in := m >= st.from && m < st.to
		if st.from > st.to { // crosses midnight
			in = m >= st.from || m < st.to
		}
		if in {
			return g * st.gain
		}
	}
	return g
}
