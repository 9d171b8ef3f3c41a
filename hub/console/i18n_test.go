package console

import (
	"io/fs"
	"regexp"
	"testing"
)

// Every key is in both languages, and every key a template names literally is in the catalogue.
func TestCatalogueComplete(t *testing.T) {
	for k := range catalogue["vi"] {
		if _, ok := catalogue["en"][k]; !ok {
			t.Errorf("%q has no English", k)
		}
	}
	for k := range catalogue["en"] {
		if _, ok := catalogue["vi"][k]; !ok {
			t.Errorf("%q has no Vietnamese", k)
		}
	}
	re := regexp.MustCompile(`\.T "([a-z.]+)"`)
	fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return nil
		}
		b, _ := fs.ReadFile(templateFS, path)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if _, ok := catalogue["vi"][m[1]]; !ok {
				t.Errorf("%s: key %q is not in the catalogue", path, m[1])
			}
		}
		return nil
	})
}

// Keys the code builds at run time are in the catalogue too.
func TestDynamicKeys(t *testing.T) {
	for _, k := range []string{"login.address", "alarm.relay", "alarm.sign", "alarm.screen", "alarm.audio", "alarm.disk", "alarm.clock", "alarm.refused",
		"alarm.offline", "alarm.never", "role.viewer", "role.operator", "role.emergency", "role.admin", "cmd.volume", "cmd.stop",
		"cmd.reload", "delivery.composed", "delivery.sent", "delivery.received", "delivery.content_ready", "delivery.active",
		"delivery.refused", "result.completed", "result.preempted", "result.interrupted", "result.missed", "result.failed",
		"result.suppressed", "kind.cluster", "kind.board", "kind.b.emergency", "kind.b.bulletin", "kind.b.live",
		"upgrade.downloading", "upgrade.waiting", "upgrade.installing", "upgrade.checking", "upgrade.healthy", "upgrade.rolled_back",
		"upgrade.refused", "upgrade.failed", "upgrade.pending", "upgrade.sent", "upgrade.cancelled", "upgrade.current", "upgrade.cannot"} {
		if _, ok := catalogue["vi"][k]; !ok {
			t.Errorf("%q is not in the catalogue", k)
		}
	}
}
