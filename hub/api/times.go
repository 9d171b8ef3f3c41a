package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ZoneHeader carries a time zone (IANA name): the hub names its own on every staff answer,
// and the CLI sends the user's configured one, in which the hub then reads dates and times.
const ZoneHeader = "Loa-Timezone"

// TimeRule is how staff write a time, said once for every flag that takes one.
const TimeRule = "a date (2026-12-03 or 03/12/2026: midnight), a date and time (2026-12-03 05:30), " +
	"a time today (05:30), all in the hub's zone, an RFC 3339 time (2026-12-03T05:30:00+07:00), " +
	"or a duration from now: -24h or -7d before now, 6h or +6h after it"

// ParseTime reads a time as staff write it (TimeRule): dates and clock times are in loc;
// a duration is counted from now, back when it starts with '-', ahead otherwise. The second
// result says a duration was given without a sign, for callers whose times look back.
func ParseTime(v string, now time.Time, loc *time.Location) (time.Time, bool, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, false, nil
	}
	for _, layout := range []string{"2006-01-02", "02/01/2006", "2006-01-02 15:04", "2006-01-02T15:04",
		"2006-01-02 15:04:05", "2006-01-02T15:04:05", "02/01/2006 15:04"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, false, nil
		}
	}
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			y, m, d := now.In(loc).Date()
			return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, loc), false, nil
		}
	}
	sign, body := 1, v
	switch {
	case strings.HasPrefix(v, "-"):
		sign, body = -1, v[1:]
	case strings.HasPrefix(v, "+"):
		body = v[1:]
	}
	if d, ok := parseDuration(body); ok && d > 0 {
		return now.Add(time.Duration(sign) * d), sign == 1 && body == v, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not a time: write %s", v, TimeRule)
}

// parseDuration is time.ParseDuration plus whole days ("7d").
func parseDuration(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 3660 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// LoadZone reads an IANA zone name; Vietnam's zone stands in when the host has no tzdata
// for it (Vietnam has no daylight saving time).
func LoadZone(name string) (*time.Location, error) {
	loc, err := time.LoadLocation(name)
	if err != nil && name == "Asia/Ho_Chi_Minh" {
		return time.FixedZone("+07", 7*3600), nil
	}
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA zone name (e.g. Asia/Ho_Chi_Minh)", name)
	}
	return loc, nil
}
