package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ntpReport is how well the device's NTP client says the system clock is held: an error
// bound in seconds and which client said it. Two clusters are only as close as their clocks
// (docs/sync.md), and the offset the hub measures over 3G tells seconds, not milliseconds.
type ntpReport struct {
	Source string  // "chrony" or "timesyncd"
	ErrorS float64 // how far the clock may be from true time
	Synced bool
}

// parseChronyTracking reads `chronyc -c tracking`: reference id, name, stratum, reference
// time, system time (the clock's offset now), last offset, RMS offset, frequency, residual
// frequency, skew, root delay, root dispersion, update interval, leap status. The bound is
// what chrony's own documentation gives: |system time| + root delay/2 + root dispersion.
func parseChronyTracking(out string) (ntpReport, error) {
	f := strings.Split(strings.TrimSpace(out), ",")
	if len(f) < 14 {
		return ntpReport{}, fmt.Errorf("chronyc tracking: %d fields, want 14 (chronyc -c tracking)", len(f))
	}
	num := func(i int, name string) (float64, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(f[i]), 64)
		if err != nil || math.IsNaN(v) || math.Abs(v) > 1e9 { // NaN, ±Inf and absurd values
			return 0, fmt.Errorf("chronyc tracking: %s %q is not a number", name, clipText(f[i]))
		}
		return v, nil
	}
	offset, err := num(4, "system time")
	if err != nil {
		return ntpReport{}, err
	}
	delay, err := num(10, "root delay")
	if err != nil {
		return ntpReport{}, err
	}
	disp, err := num(11, "root dispersion")
	if err != nil {
		return ntpReport{}, err
	}
	stratum, err := num(2, "stratum")
	if err != nil {
		return ntpReport{}, err
	}
	leap := strings.TrimSpace(f[13])
	return ntpReport{Source: "chrony", ErrorS: math.Abs(offset) + math.Abs(delay)/2 + math.Abs(disp),
		Synced: stratum > 0 && stratum < 16 && leap != "Not synchronised"}, nil
}

// parseTimesyncStatus reads `timedatectl timesync-status` (systemd-timesyncd): "Offset:"
// and "Root distance:" lines. timesyncd keeps one server and does not filter, so its bound
// is |offset| + root distance + delay/2 of the last exchange.
func parseTimesyncStatus(out string) (ntpReport, error) {
	vals := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			vals[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	dur := func(name string) (time.Duration, error) {
		v, ok := vals[name]
		if !ok {
			return 0, fmt.Errorf("timesync-status: no %q line", name)
		}
		v, _, _ = strings.Cut(v, " ") // "1.234ms (max: 5s)"
		d, err := time.ParseDuration(strings.Replace(v, "us", "µs", 1))
		if err != nil {
			return 0, fmt.Errorf("timesync-status: %s %q is not a duration", name, clipText(v))
		}
		return d.Abs(), nil
	}
	offset, err := dur("Offset")
	if err != nil {
		return ntpReport{}, err
	}
	root, err := dur("Root distance")
	if err != nil {
		return ntpReport{}, err
	}
	delay, _ := dur("Delay") // older systemd does not print it
	return ntpReport{Source: "timesyncd", ErrorS: (offset + root + delay/2).Seconds(), Synced: vals["Leap"] != "not synchronized"}, nil
}

func clipText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// errNoNTPClient: neither chronyc nor timedatectl is there to ask.
var errNoNTPClient = errors.New("no NTP client to ask (chronyc or timedatectl)")

// readNTP asks chrony, else systemd-timesyncd, how well the clock is held.
func readNTP(ctx context.Context) (ntpReport, error) {
	ask := func(name string, args ...string) (string, error) {
		if _, err := exec.LookPath(name); err != nil {
			return "", errNoNTPClient
		}
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			return "", fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return string(out), nil
	}
	out, err := ask("chronyc", "-c", "tracking")
	if err == nil {
		return parseChronyTracking(out)
	}
	if !errors.Is(err, errNoNTPClient) {
		return ntpReport{}, err
	}
	if out, err = ask("timedatectl", "timesync-status"); err != nil {
		return ntpReport{}, err
	}
	return parseTimesyncStatus(out)
}

// watchNTP asks the NTP client once a minute and keeps its last answer for the heartbeat.
// It stops asking when there is no client to ask, or the first question fails (timedatectl
// without a running timesyncd, in a container).
func (a *Agent) watchNTP(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	logged, answered := false, false
	for {
		r, err := readNTP(ctx)
		switch {
		case err != nil && !answered:
			a.log.Debug("clock: the NTP client does not say how well the clock is held; the heartbeat carries no error bound", "err", err)
			return
		case err != nil:
			if !logged {
				a.log.Warn("clock: cannot ask the NTP client how well the clock is held; the heartbeat carries no error bound until it answers", "err", err)
				logged = true
			}
			a.ntp.Store(nil)
		default:
			logged, answered = false, true
			a.ntp.Store(&r)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
