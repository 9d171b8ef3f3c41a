package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/agent/upgrade"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// UpgradeConfig is the config's upgrade section (docs/agent.md, "Upgrades"). Without release
// keys the agent installs no upgrade from the hub.
type UpgradeConfig struct {
	// ReleaseKeys are the public release keys by key id ("ed25519:…", as `loa release keygen`
	// prints them): a package is installed only when one of them signed it. They are not the
	// hub's schedule keys.
	ReleaseKeys map[string]string `yaml:"release_keys"`
	// Margin: no install when a session starts within it (default 10m).
	Margin scheduler.Duration `yaml:"margin"`
}

func (c UpgradeConfig) check(hubURLs []string) []error {
	if len(c.ReleaseKeys) == 0 {
		return nil
	}
	var errs []error
	if _, err := protocol.ParseTrustedKeys(c.ReleaseKeys); err != nil {
		errs = append(errs, fmt.Errorf("upgrade.release_keys: %w", err))
	}
	if len(hubURLs) == 0 {
		errs = append(errs, errors.New("upgrade.release_keys is set but hub.url is not: upgrades come from the hub"))
	}
	if c.Margin < 0 || c.Margin.D() > 6*time.Hour {
		errs = append(errs, fmt.Errorf("upgrade.margin %s: give 0 to 6h, e.g. margin: 10m", c.Margin.D()))
	}
	return errs
}

func (c *Config) upgradeDir() string { return filepath.Join(c.DataDir, "upgrade") }

// DebianArch is the Debian architecture of this binary (what a release is built for): amd64,
// arm64 or armhf; "" on any other, for which no release is built.
func DebianArch() string {
	arch := runtime.GOARCH
	if arch == "arm" {
		arch = "armhf"
	}
	if !slices.Contains(protocol.ReleaseArches, arch) {
		return ""
	}
	return arch
}

// upgradesOn: release keys are trusted and releases are built for this architecture.
func (c *Config) upgradesOn() bool { return len(c.Upgrade.ReleaseKeys) > 0 && DebianArch() != "" }

// RunningVersion is the package version of this binary ("1.4.0"), from SoftwareVersion.
func RunningVersion() string { return strings.TrimPrefix(SoftwareVersion, "loa-agent/") }

// newUpgrader builds the upgrader, or returns nil when no release key is trusted.
func (a *Agent) newUpgrader() (*upgrade.Manager, error) {
	if !a.cfg.upgradesOn() || a.link == nil {
		return nil, nil
	}
	keys, err := protocol.ParseTrustedKeys(a.cfg.Upgrade.ReleaseKeys)
	if err != nil {
		return nil, fmt.Errorf("upgrade.release_keys: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("upgrades: cannot find this program's path: %w", err)
	}
	systemd := upgrade.UnderSystemd()
	return upgrade.New(upgrade.Config{Dir: a.cfg.upgradeDir(), Keys: keys, Running: RunningVersion(), Arch: DebianArch(),
		Margin: a.cfg.Upgrade.Margin.D()}, upgrade.Deps{
		Log: a.log.With("component", "upgrade"), Now: a.clock.Now,
		Fetcher: hubFetcher{a}, Busy: a, Health: a,
		Launcher: upgrade.Detached{Exe: strings.TrimSuffix(exe, " (deleted)"), Systemd: systemd},
	})
}

// upgradesFor is what the link hands the hub's upgrade messages to: nil (logged and ignored)
// without release keys.
func (a *Agent) upgradesFor() link.Upgrades {
	if !a.cfg.upgradesOn() {
		return nil
	}
	return linkUpgrades{a}
}

// linkUpgrades passes upgrades to the upgrader, which Run builds after the link.
type linkUpgrades struct{ a *Agent }

func (u linkUpgrades) Upgrade(m *protocol.Upgrade) {
	if u.a.upgrader != nil {
		u.a.upgrader.Upgrade(m)
	}
}

// hubFetcher downloads a release package from the hub with the device's credentials.
type hubFetcher struct{ a *Agent }

func (f hubFetcher) Fetch(ctx context.Context, path string, from int64) (io.ReadCloser, bool, error) {
	client := f.a.contentClient()
	if client == nil {
		return nil, false, errors.New("no hub credentials")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.a.link.HubURL(path), nil)
	if err != nil {
		return nil, false, err
	}
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, false, nil
	case http.StatusPartialContent:
		return resp.Body, true, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return nil, false, fmt.Errorf("the hub answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

// emergencyActive: an emergency run within this much of now counts as an active emergency
// (storm bulletins repeat every 2 h until replaced).
const emergencyActive = 2 * time.Hour

// UpgradeBusy implements upgrade.Busy: a programme playing, a session due within margin, or
// an emergency active (played within the last 2 h or due within the next) keeps the upgrade
// waiting.
func (a *Agent) UpgradeBusy(now time.Time, margin time.Duration) string {
	a.mu.Lock()
	for _, np := range a.nowPlaying {
		a.mu.Unlock()
		return fmt.Sprintf("programme %s (%s) plays on %s", np.Program, np.Class, np.Output)
	}
	a.mu.Unlock()
	doc := a.sched.active()
	if doc == nil {
		return ""
	}
	tl, err := scheduler.Compile(doc, now.Add(-emergencyActive), now.Add(max(margin, emergencyActive)), scheduler.CompileOptions{ItemLength: a.itemLength})
	if err != nil {
		return "" // a schedule that does not compile plays nothing
	}
	for _, r := range tl.Runs() {
		if !r.Segments[0].Audible() {
			continue
		}
		if r.Class == scheduler.Emergency && r.End.After(now.Add(-emergencyActive)) && r.Start.Before(now.Add(emergencyActive)) {
			return fmt.Sprintf("emergency %s is active (a broadcast at %s)", r.Program, r.Start.Format(time.RFC3339))
		}
		if r.End.After(now) && r.Start.Before(now.Add(margin)) {
			return fmt.Sprintf("programme %s is due at %s", r.Program, r.Start.Format(time.RFC3339))
		}
	}
	return ""
}

// UpgradeHealth implements upgrade.Health, the new version's health check: connected to the
// hub, the schedule it holds active, the audio output open and consuming during a play, and
// systemd's watchdog pinged when the service asks for it.
func (a *Agent) UpgradeHealth() error {
	var fails []string
	if a.link != nil && !a.link.Connected() {
		fails = append(fails, "not connected to the hub")
	}
	if len(a.sched.heldRevisions()) > 0 && a.sched.active() == nil {
		fails = append(fails, "it holds a schedule but none is active")
	}
	if why := a.health.outputStuck(); why != "" {
		fails = append(fails, why)
	}
	if iv := watchdogInterval(); iv > 0 {
		if last := a.health.lastPing.Load(); last == 0 || time.Since(time.Unix(0, last)) > iv {
			fails = append(fails, "the systemd watchdog has not been pinged within WatchdogSec")
		}
	}
	if len(fails) > 0 {
		return errors.New(strings.Join(fails, "; "))
	}
	return nil
}
