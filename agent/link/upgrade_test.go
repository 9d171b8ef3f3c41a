package link

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loa-project/loa/protocol"
)

type testUpgrades struct {
	mu  sync.Mutex
	got []*protocol.Upgrade
}

func (u *testUpgrades) Upgrade(m *protocol.Upgrade) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, m)
}

func (u *testUpgrades) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

func testUpgradeMessage() *protocol.Upgrade {
	return &protocol.Upgrade{Header: protocol.Header{ID: "h-1"}, Rollout: "r-1", HealthyWithinS: 60, Package: protocol.ReleasePackage{
		Name: protocol.ReleaseName, Version: "1.4.0", Arch: "arm64", Size: 10, SHA256: strings.Repeat("ab", 32),
		KeyID: "release-2026", Signature: strings.Repeat("00", 64), URL: "/api/releases/1.4.0/arm64/package"}}
}

// An agent that trusts a release key says so in hello, with its architecture, and the hub's
// upgrade reaches its upgrader; one that does not says upgrades: false and ignores the message.
func TestUpgradesInHelloAndHandedOver(t *testing.T) {
	for _, trusts := range []bool{true, false} {
		h := newHub(t, testSecret)
		a := newTestAgent(t, h, testSecret, func(c *Config) { c.Arch, c.Upgrades = "arm64", trusts })
		up := &testUpgrades{}
		if trusts {
			a.link.d.Upgrades = up
		}
		a.start()
		conn := h.nextConn(t)
		waitFor(t, "the welcome", 10*time.Second, a.link.Connected)
		h.mu.Lock()
		hello := h.hellos[0]
		h.mu.Unlock()
		if hello.Arch != "arm64" || hello.Upgrades != trusts {
			t.Errorf("trusts %v: hello says arch %q upgrades %v", trusts, hello.Arch, hello.Upgrades)
		}
		conn.send(t, testUpgradeMessage())
		if trusts {
			waitFor(t, "the upgrade handed over", 10*time.Second, func() bool { return up.count() == 1 })
		} else {
			waitFor(t, "the upgrade logged as ignored", 10*time.Second, func() bool {
				return a.logs.count(slog.LevelWarn, "ignoring an upgrade: this agent trusts no release key") == 1
			})
		}
		a.stop()
	}
}
