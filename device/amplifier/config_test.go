package amplifier

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("driver: lcus\nport: /dev/ttyUSB0\nchannel: 2\nwarm_up: 3s\noff_delay: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Driver, want.Port, want.Channel, want.WarmUp, want.OffDelay = "lcus", "/dev/ttyUSB0", 2, 3*time.Second, 0
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}

	c, err = ParseConfig([]byte("driver: gpio\ngpio: {chip: gpiochip0, line: 17, active_low: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GPIO != (GPIOConfig{Chip: "gpiochip0", Line: 17, ActiveLow: true}) || c.WarmUp != DefaultConfig().WarmUp {
		t.Fatalf("gpio config = %+v", c)
	}

	c, err = ParseConfig(nil)
	if err != nil || c != DefaultConfig() {
		t.Fatalf("empty config = %+v, %v; want the defaults", c, err)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"driver: relay\n", `unknown driver "relay"`},
		{"driver: ''\n", "driver is empty"},
		{"driver: lcus\n", "needs port"},
		{"driver: lcus\nport: /dev/ttyUSB0\nchannel: 0\n", "channel 0 out of range"},
		{"driver: lcus\nport: /dev/ttyUSB0\nchannel: 300\n", "channel 300"},
		{"driver: gpio\n", "needs gpio.chip"},
		{"driver: gpio\ngpio: {chip: gpiochip0, line: -1}\n", "gpio.line -1"},
		{"driver: none\nwarm_up: 2\n", "line 2: cannot unmarshal !!int `2` into time.Duration"},
		{"driver: none\noff_delay: -1s\n", "off_delay -1s is negative"},
		{"driver: none\nwarm_up: 1h\n", "warm_up 1h0m0s is longer"},
		{"driver: none\nwarmup: 2s\n", "field warmup not found"},
		{"driver: none\nwarm_up: soon\n", "amplifier config"},
		{"[1, 2]\n", "amplifier config"},
	} {
		_, err := ParseConfig([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to say %q", tc.in, err, tc.want)
		}
	}
}

// JSON (or a caller building Config by hand) can give a bare number, which is nanoseconds.
func TestValidateCatchesMissingUnit(t *testing.T) {
	c := DefaultConfig()
	c.OffDelay = 30
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "off_delay 30ns is under a millisecond; write a unit") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenRelay(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Driver: "none"}, "amplifier.NoRelay"},
		{Config{Driver: "lcus", Port: "/dev/ttyUSB0", Channel: 1}, "*amplifier.LCUS"},
		{Config{Driver: "gpio", GPIO: GPIOConfig{Chip: "gpiochip0", Line: 4}}, "*amplifier.SysfsGPIO"},
	} {
		r, err := OpenRelay(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := typeName(r); got != tc.want {
			t.Errorf("%s: relay %s, want %s", tc.cfg.Driver, got, tc.want)
		}
	}
	if _, err := OpenRelay(Config{Driver: "lcus"}); err == nil {
		t.Error("OpenRelay accepted lcus without a port")
	}
}

func typeName(v any) string {
	switch v.(type) {
	case NoRelay:
		return "amplifier.NoRelay"
	case *LCUS:
		return "*amplifier.LCUS"
	case *SysfsGPIO:
		return "*amplifier.SysfsGPIO"
	}
	return "?"
}

// The amplifier over the GPIO driver on the fixture tree: the line follows the plays.
func TestAmplifierOverSysfsGPIO(t *testing.T) {
	root := sysfsFixture(t)
	dir := kernelExports(t, root, "529")
	clk := newFakeClock()
	a := New(testConfig(), NewSysfsGPIO(root, "gpiochip0", 17, false), clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	value := filepath.Join(dir, "value")

	testkit.WaitFor(t, "line set up off", 10*time.Second, func() bool { return a.State().Relay == "off" })
	if got := readAttr(t, filepath.Join(dir, "direction")); got != "low" {
		t.Fatalf("direction = %q, want low", got)
	}
	res := acquire(a)
	testkit.WaitFor(t, "relay on", 10*time.Second, func() bool { return a.State().Relay == "on" })
	if got := readAttr(t, value); got != "1" {
		t.Fatalf("value during warm-up = %q, want 1", got)
	}
	clk.Advance(2 * time.Second)
	waitResult(t, res)
	a.Release()
	clk.Advance(30 * time.Second)
	testkit.WaitFor(t, "relay off", 10*time.Second, func() bool { return a.State().Relay == "off" })
	if got := readAttr(t, value); got != "0" {
		t.Fatalf("value after the off-delay = %q, want 0", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"driver: lcus\nport: /dev/ttyUSB0\nchannel: 1\n",
		"driver: gpio\ngpio: {chip: gpiochip0, line: 17, active_low: true}\nwarm_up: 2s\n",
		"driver: none\n", "{}", "driver: [", "warm_up: 9999999999h\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig returned an invalid config: %v", err)
		}
		if _, err := OpenRelay(c); err != nil {
			t.Fatalf("OpenRelay refused a parsed config: %v", err)
		}
	})
}
