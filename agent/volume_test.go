package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/scheduler"
)

func TestVolumeSchedule(t *testing.T) {
	dev := 0.8
	v, err := newVolume(&dev, []VolumeStep{{From: "05:00", To: "06:30", Volume: 0.5}, {From: "21:00", To: "01:00", Volume: 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	hcm, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	cases := []struct {
		at    string
		class scheduler.Class
		want  float64
	}{
		{"04:59", scheduler.Normal, 0.8},
		{"05:00", scheduler.Normal, 0.4},
		{"06:29", scheduler.Priority, 0.4},
		{"06:30", scheduler.Normal, 0.8},
		{"23:30", scheduler.Normal, 0.2}, // crosses midnight
		{"00:30", scheduler.Normal, 0.2},
		{"05:30", scheduler.Emergency, 0.8}, // a warning is not played softer at dawn
	}
	for _, c := range cases {
		hm, _ := time.Parse("15:04", c.at)
		run := &scheduler.Run{Class: c.class, Start: time.Date(2026, 12, 1, hm.Hour(), hm.Minute(), 0, 0, hcm)}
		if got := v.at(run); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("%s %s: volume %g, want %g", c.at, c.class, got, c.want)
		}
	}
	for _, bad := range []struct {
		dev   float64
		steps []VolumeStep
		want  string
	}{
		{1.5, nil, "volume 1.5"},
		{1, []VolumeStep{{From: "5am", To: "06:00", Volume: 0.5}}, "volume_schedule[0]: from \"5am\""},
		{1, []VolumeStep{{From: "05:00", To: "06:00", Volume: -1}}, "volume_schedule[0]: volume -1"},
	} {
		if _, err := newVolume(&bad.dev, bad.steps); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("newVolume(%g, %v): error %v, want one naming %q", bad.dev, bad.steps, err, bad.want)
		}
	}
}
