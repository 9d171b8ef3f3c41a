package agent

import (
	"math"
	"strings"
	"testing"
)

// The NTP clients' own outputs (chrony 4.3, systemd 252 on Debian 12) give the error bound
// their documentation describes; broken output is an error naming the field.
func TestNTPReports(t *testing.T) {
	r, err := parseChronyTracking("C0A80101,192.168.1.1,3,1733380000.123456789,-0.000502765,-0.000101234,0.000208456,-7.123,-0.001,0.012,0.024000000,0.003000000,64.2,Normal\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.000502765 + 0.012 + 0.003; r.Source != "chrony" || !r.Synced || math.Abs(r.ErrorS-want) > 1e-9 {
		t.Errorf("chrony: %+v, want synced with error %.9f", r, want)
	}
	r, err = parseChronyTracking("00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n")
	if err != nil || r.Synced {
		t.Errorf("chrony unsynchronised: %+v %v, want not synced", r, err)
	}
	r, err = parseTimesyncStatus(`       Server: 192.168.1.1 (192.168.1.1)
Poll interval: 32min 0s (min: 32s; max 34min 8s)
         Leap: normal
      Version: 4
      Stratum: 2
    Reference: C0A80101
    Precision: 1us (-25)
Root distance: 1.234ms (max: 5s)
       Offset: -203us
        Delay: 30.5ms
       Jitter: 1.074ms
 Packet count: 34
    Frequency: -12.506ppm
`)
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.000203 + 0.001234 + 0.01525; r.Source != "timesyncd" || !r.Synced || math.Abs(r.ErrorS-want) > 1e-9 {
		t.Errorf("timesyncd: %+v, want synced with error %.6f", r, want)
	}
	for _, c := range []struct{ out, want string }{
		{"C0A80101,x,3", "14"},
		{"C0A80101,x,3,0,abc,0,0,0,0,0,0.01,0.01,64,Normal", "system time"},
		{"C0A80101,x,3,0,0.001,0,0,0,0,0,NaN,0.01,64,Normal", "root delay"},
	} {
		if _, err := parseChronyTracking(c.out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("chrony %q: %v, want an error naming %s", c.out, err, c.want)
		}
	}
	if _, err := parseTimesyncStatus("Offset: -203us\n"); err == nil || !strings.Contains(err.Error(), "Root distance") {
		t.Errorf("timesyncd without a root distance: %v", err)
	}
	if _, err := parseTimesyncStatus("Offset: soon\nRoot distance: 1ms\n"); err == nil || !strings.Contains(err.Error(), "Offset") {
		t.Errorf("timesyncd with a bad offset: %v", err)
	}
}

func FuzzNTPReports(f *testing.F) {
	f.Add("C0A80101,192.168.1.1,3,1733380000.1,-0.0005,-0.0001,0.0002,-7.1,-0.001,0.012,0.024,0.003,64.2,Normal")
	f.Add("Root distance: 1.234ms (max: 5s)\nOffset: -203us\nDelay: 30.5ms\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) (ntpReport, error){parseChronyTracking, parseTimesyncStatus} {
			r, err := parse(s)
			if err == nil && (math.IsNaN(r.ErrorS) || r.ErrorS < 0) {
				t.Errorf("%q gave error bound %v", s, r.ErrorS)
			}
		}
	})
}
