package amplifier

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sysfsFixture lays out /sys/class/gpio as a Raspberry Pi 4 on kernel 6.6 shows it: the
// 54-line SoC chip is gpiochip0 in /dev and gpiochip512 in sysfs (base 512).
func sysfsFixture(t *testing.T) string {
	t.Helper()
	sys := t.TempDir()
	root := filepath.Join(sys, "class", "gpio")
	dev := filepath.Join(sys, "devices", "platform", "soc", "fe200000.gpio", "gpiochip0")
	for _, d := range []string{root, dev, filepath.Join(root, "gpiochip512"), filepath.Join(root, "gpiochip570")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, v string) {
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "export"), "")
	write(filepath.Join(root, "gpiochip512", "base"), "512\n")
	write(filepath.Join(root, "gpiochip512", "ngpio"), "54\n")
	write(filepath.Join(root, "gpiochip512", "label"), "pinctrl-bcm2711\n")
	if err := os.Symlink(dev, filepath.Join(root, "gpiochip512", "device")); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(root, "gpiochip570", "base"), "570\n")
	write(filepath.Join(root, "gpiochip570", "ngpio"), "8\n")
	write(filepath.Join(root, "gpiochip570", "label"), "raspberrypi-exp-gpio\n")
	return root
}

// kernelExports does what the kernel does on a write to export: the line's directory appears.
func kernelExports(t *testing.T, root string, num string) string {
	t.Helper()
	dir := filepath.Join(root, "gpio"+num)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"direction": "in\n", "value": "0\n", "active_low": "1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readAttr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSysfsGPIOActiveLow(t *testing.T) {
	root := sysfsFixture(t)
	g := NewSysfsGPIO(root, "/dev/gpiochip0", 17, true)

	// The fixture does not create the line's directory on export: the error says so, and the
	// export request went to the right global number (512 + 17).
	err := g.Set(false)
	if err == nil || !strings.Contains(err.Error(), "did not appear") {
		t.Fatalf("err = %v, want the missing gpio529 reported", err)
	}
	if got := readAttr(t, filepath.Join(root, "export")); got != "529" {
		t.Fatalf("export got %q, want 529", got)
	}

	dir := kernelExports(t, root, "529")
	if err := g.Set(false); err != nil {
		t.Fatal(err)
	}
	// Output at the "off" level in one write; active-low off is electrically high. The
	// kernel's own inversion is cleared so ours is the only one.
	if got := readAttr(t, filepath.Join(dir, "direction")); got != "high" {
		t.Fatalf("direction = %q, want high (off, active low)", got)
	}
	if got := readAttr(t, filepath.Join(dir, "active_low")); got != "0" {
		t.Fatalf("active_low = %q, want 0", got)
	}
	for _, tc := range []struct {
		on   bool
		want string
	}{{true, "0"}, {false, "1"}, {true, "0"}} {
		if err := g.Set(tc.on); err != nil {
			t.Fatal(err)
		}
		if got := readAttr(t, filepath.Join(dir, "value")); got != tc.want {
			t.Fatalf("Set(%v): value = %q, want %q", tc.on, got, tc.want)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSysfsGPIOActiveHighByLabelAlreadyExported(t *testing.T) {
	root := sysfsFixture(t)
	dir := kernelExports(t, root, "573")
	g := NewSysfsGPIO(root, "raspberrypi-exp-gpio", 3, false)
	if err := g.Set(true); err != nil {
		t.Fatal(err)
	}
	if got := readAttr(t, filepath.Join(dir, "direction")); got != "high" {
		t.Fatalf("direction = %q, want high", got)
	}
	if got := readAttr(t, filepath.Join(root, "export")); got != "" {
		t.Fatalf("export written (%q) for a line already exported", got)
	}
	if err := g.Set(false); err != nil {
		t.Fatal(err)
	}
	if got := readAttr(t, filepath.Join(dir, "value")); got != "0" {
		t.Fatalf("value = %q, want 0", got)
	}

	// The line vanishes (e.g. unexported by hand): reported, then set up again once it is back.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := g.Set(true); err == nil {
		t.Fatal("Set succeeded on a vanished line")
	}
	dir = kernelExports(t, root, "573")
	if err := g.Set(true); err != nil {
		t.Fatal(err)
	}
	if got := readAttr(t, filepath.Join(dir, "direction")); got != "high" {
		t.Fatalf("after re-setup direction = %q, want high", got)
	}
}

func TestSysfsGPIOBadLine(t *testing.T) {
	root := sysfsFixture(t)
	for _, tc := range []struct {
		chip string
		line int
		want string
	}{
		{"gpiochip0", 54, "line 54 does not exist: the chip has 54 lines"},
		{"gpiochip7", 1, `no GPIO chip "gpiochip7"`},
		{"gpiochip512", 60, "the chip has 54 lines"},
	} {
		err := NewSysfsGPIO(root, tc.chip, tc.line, false).Set(true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s line %d: err = %v, want it to say %q", tc.chip, tc.line, err, tc.want)
		}
	}
	err := NewSysfsGPIO(filepath.Join(t.TempDir(), "nope"), "gpiochip0", 1, false).Set(true)
	if err == nil || !strings.Contains(err.Error(), "CONFIG_GPIO_SYSFS") {
		t.Errorf("missing sysfs: err = %v", err)
	}
	// A corrupt base attribute is an error naming the file, not a panic.
	if err := os.WriteFile(filepath.Join(root, "gpiochip570", "base"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = NewSysfsGPIO(root, "gpiochip570", 1, false).Set(true)
	if err == nil || !strings.Contains(err.Error(), "base") {
		t.Errorf("corrupt base: err = %v", err)
	}
}

func FuzzParseAttrInt(f *testing.F) {
	for _, s := range []string{"512\n", "0", "-1", "x", "99999999999999999999", " 7 "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseAttrInt("base", b)
		if err == nil && (n < 0 || n > 1<<20) {
			t.Fatalf("accepted %d", n)
		}
	})
}
