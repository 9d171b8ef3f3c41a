package amplifier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the `amplifier:` block of the agent configuration. Start from DefaultConfig and
// decode the YAML over it, so that omitted fields keep their defaults and an explicit 0s means 0.
//
//	amplifier:
//	  driver: lcus                 # lcus | gpio | none
//	  port: /dev/serial/by-id/usb-1a86_USB_Serial-if00-port0
//	  channel: 1
//	  warm_up: 2s
//	  off_delay: 30s
type Config struct {
	// Driver is the relay type: "lcus" (USB serial relay board), "gpio" (a GPIO line through
	// the kernel's sysfs interface) or "none" (no relay; the amplifier is always on).
	Driver string `yaml:"driver" json:"driver"`
	// Port is the LCUS board's serial device. Prefer /dev/serial/by-id/...: it keeps its name
	// when the board is replugged into another USB socket.
	Port string `yaml:"port,omitempty" json:"port,omitempty"`
	// Channel is the LCUS relay channel, 1 for single-relay boards.
	Channel int `yaml:"channel,omitempty" json:"channel,omitempty"`
	// GPIO names the line for driver gpio.
	GPIO GPIOConfig `yaml:"gpio,omitempty" json:"gpio,omitempty"`
	// WarmUp is waited after switching the amplifier on, before the first sample.
	WarmUp time.Duration `yaml:"warm_up" json:"warm_up"`
	// OffDelay is how long the speakers must be idle before the amplifier is switched off.
	OffDelay time.Duration `yaml:"off_delay" json:"off_delay"`
	// Refresh re-sends the wanted relay state this often (0: never), to notice an unplugged
	// relay while idle and to restore a replugged one.
	Refresh time.Duration `yaml:"refresh" json:"refresh"`
	// RetryMax caps the backoff between retries of a failing relay.
	RetryMax time.Duration `yaml:"retry_max" json:"retry_max"`
}

// GPIOConfig names a GPIO line the way the kernel's gpio tools do.
type GPIOConfig struct {
	// Chip is the chip's name ("gpiochip0", as /dev/gpiochip0 and gpioinfo show it), its
	// sysfs name ("gpiochip512") or its label ("pinctrl-bcm2711").
	Chip string `yaml:"chip,omitempty" json:"chip,omitempty"`
	// Line is the line offset on the chip (gpioinfo's "line N"; BCM number on a Raspberry Pi).
	Line int `yaml:"line,omitempty" json:"line,omitempty"`
	// ActiveLow: the relay closes when the line is driven low (common on relay modules).
	ActiveLow bool `yaml:"active_low,omitempty" json:"active_low,omitempty"`
}

// Drivers.
const (
	DriverLCUS = "lcus"
	DriverGPIO = "gpio"
	DriverNone = "none"
)

// DefaultConfig is no relay, with delays suited to a typical PA amplifier once one is set.
func DefaultConfig() Config {
	return Config{
		Driver:   DriverNone,
		Channel:  1,
		WarmUp:   2 * time.Second,
		OffDelay: 30 * time.Second,
		Refresh:  30 * time.Second,
		RetryMax: time.Minute,
	}
}

// ParseConfig reads an amplifier block (YAML or JSON) over DefaultConfig and validates it.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("amplifier config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports the first thing wrong with c, naming the field.
func (c Config) Validate() error {
	switch c.Driver {
	case DriverNone:
	case DriverLCUS:
		if c.Port == "" {
			return errors.New("amplifier config: driver lcus needs port (e.g. /dev/serial/by-id/usb-1a86_USB_Serial-if00-port0)")
		}
		if c.Channel < 1 || c.Channel > 255 {
			return fmt.Errorf("amplifier config: channel %d out of range 1..255", c.Channel)
		}
	case DriverGPIO:
		if c.GPIO.Chip == "" {
			return errors.New("amplifier config: driver gpio needs gpio.chip (e.g. gpiochip0)")
		}
		if c.GPIO.Line < 0 {
			return fmt.Errorf("amplifier config: gpio.line %d is negative", c.GPIO.Line)
		}
	case "":
		return errors.New("amplifier config: driver is empty (lcus, gpio or none)")
	default:
		return fmt.Errorf("amplifier config: unknown driver %q (lcus, gpio or none)", c.Driver)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		max  time.Duration
	}{
		{"warm_up", c.WarmUp, 5 * time.Minute},
		{"off_delay", c.OffDelay, 24 * time.Hour},
		{"refresh", c.Refresh, 24 * time.Hour},
		{"retry_max", c.RetryMax, 24 * time.Hour},
	} {
		switch {
		case d.v < 0:
			return fmt.Errorf("amplifier config: %s %v is negative", d.name, d.v)
		case d.v > 0 && d.v < time.Millisecond:
			// A bare number decodes as nanoseconds: "warm_up: 2" is almost certainly "2s".
			return fmt.Errorf("amplifier config: %s %v is under a millisecond; write a unit, e.g. 2s", d.name, d.v)
		case d.v > d.max:
			return fmt.Errorf("amplifier config: %s %v is longer than %v", d.name, d.v, d.max)
		}
	}
	return nil
}

// OpenRelay returns the relay cfg names. It does not touch the hardware yet: the device is
// opened on the first Set, so a relay missing at boot is reported and retried like an
// unplugged one instead of stopping the agent.
func OpenRelay(cfg Config) (Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Driver {
	case DriverLCUS:
		return NewLCUS(cfg.Port, cfg.Channel), nil
	case DriverGPIO:
		return NewSysfsGPIO(SysfsGPIORoot, cfg.GPIO.Chip, cfg.GPIO.Line, cfg.GPIO.ActiveLow), nil
	default:
		return NoRelay{}, nil
	}
}
