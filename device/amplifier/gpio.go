package amplifier

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// SysfsGPIORoot is where the kernel's GPIO sysfs interface lives.
const SysfsGPIORoot = "/sys/class/gpio"

// SysfsGPIO drives a relay module on a GPIO line through the sysfs interface
// (CONFIG_GPIO_SYSFS; deprecated upstream but still enabled on Raspberry Pi OS, Armbian and
// Debian's arm kernels). The line is exported on first use and left exported on Close: an
// unexported line floats, which could switch the amplifier at random.
type SysfsGPIO struct {
	root      string
	chip      string
	line      int
	activeLow bool

	mu    sync.Mutex
	value string // path of the line's value file once set up; "" until then or after a failure
}

// NewSysfsGPIO returns the driver for line (an offset on chip) under root (SysfsGPIORoot;
// tests pass a fixture tree). chip is as in GPIOConfig.Chip. Nothing is touched yet.
func NewSysfsGPIO(root, chip string, line int, activeLow bool) *SysfsGPIO {
	return &SysfsGPIO{root: root, chip: strings.TrimPrefix(chip, "/dev/"), line: line, activeLow: activeLow}
}

// Set implements Relay.
func (g *SysfsGPIO) Set(on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.value == "" {
		v, err := g.setup(on)
		if err != nil {
			return fmt.Errorf("GPIO relay %s line %d: %w", g.chip, g.line, err)
		}
		g.value = v
		return nil // setup drove the line to the wanted level
	}
	if err := writeAttr(g.value, g.raw(on)); err != nil {
		g.value = ""
		return fmt.Errorf("GPIO relay %s line %d: %w", g.chip, g.line, err)
	}
	return nil
}

// raw is the level to drive: active-low relay modules close when the line is low. The kernel's
// own active_low attribute is reset to 0 in setup so that this is the only inversion.
func (g *SysfsGPIO) raw(on bool) string {
	if on != g.activeLow {
		return "1"
	}
	return "0"
}

// setup exports the line if needed and makes it an output at the wanted level in one write
// ("high"/"low" to direction), so it never glitches through the other level.
func (g *SysfsGPIO) setup(on bool) (string, error) {
	base, ngpio, err := g.findChip()
	if err != nil {
		return "", err
	}
	if g.line >= ngpio {
		return "", fmt.Errorf("line %d does not exist: the chip has %d lines (0..%d)", g.line, ngpio, ngpio-1)
	}
	num := base + g.line
	dir := filepath.Join(g.root, "gpio"+strconv.Itoa(num))
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := writeAttr(filepath.Join(g.root, "export"), strconv.Itoa(num)); err != nil {
			return "", fmt.Errorf("export GPIO %d: %w (is the line used by another driver or in the device tree?)", num, err)
		}
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("exported GPIO %d but %s did not appear: %w", num, dir, err)
		}
	} else if err != nil {
		return "", err
	}
	if err := writeAttr(filepath.Join(dir, "active_low"), "0"); err != nil {
		return "", err
	}
	level := "low"
	if g.raw(on) == "1" {
		level = "high"
	}
	if err := writeAttr(filepath.Join(dir, "direction"), level); err != nil {
		return "", err
	}
	return filepath.Join(dir, "value"), nil
}

// findChip finds the chip's sysfs directory: by its own name, by the gpiochipN device it
// belongs to (its "device" link), or by label; and returns its base and line count.
func (g *SysfsGPIO) findChip() (base, ngpio int, err error) {
	entries, err := os.ReadDir(g.root)
	if err != nil {
		return 0, 0, fmt.Errorf("GPIO sysfs not available (kernel without CONFIG_GPIO_SYSFS?): %w", err)
	}
	var seen []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "gpiochip") {
			continue
		}
		d := filepath.Join(g.root, name)
		label := readTrim(filepath.Join(d, "label"))
		dev := ""
		if t, err := os.Readlink(filepath.Join(d, "device")); err == nil {
			dev = filepath.Base(t)
		}
		seen = append(seen, fmt.Sprintf("%s (%s, label %q)", name, dev, label))
		if g.chip != name && g.chip != dev && g.chip != label {
			continue
		}
		base, err := parseSysfsInt(filepath.Join(d, "base"))
		if err != nil {
			return 0, 0, err
		}
		ngpio, err := parseSysfsInt(filepath.Join(d, "ngpio"))
		if err != nil {
			return 0, 0, err
		}
		return base, ngpio, nil
	}
	return 0, 0, fmt.Errorf("no GPIO chip %q under %s; chips there: %s", g.chip, g.root, strings.Join(seen, ", "))
}

// writeAttr writes a sysfs attribute. It never creates the file: a missing attribute means
// the line is not set up (or the tree is not sysfs), which must be an error.
func writeAttr(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// parseSysfsInt reads a small non-negative decimal attribute such as base or ngpio.
func parseSysfsInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseAttrInt(path, b)
}

func parseAttrInt(path string, b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("%s: %q is not a GPIO number", path, s)
	}
	return n, nil
}

// Close implements Relay. The line stays exported and at its last level (see SysfsGPIO).
func (g *SysfsGPIO) Close() error {
	g.mu.Lock()
	g.value = ""
	g.mu.Unlock()
	return nil
}
