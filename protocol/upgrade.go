package protocol

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A release is a package of loa-agent (the .deb `make package` builds) for one architecture,
// signed offline with a release key. Release keys are not schedule keys: whoever may push a
// schedule to a district must not be able to replace the program that checks its signature
// (docs/upgrades.md). The signature covers the package's name, version, architecture, size and
// sha256, so a signed statement can never be taken for another package or version.

// ReleaseName is the only package a release may carry.
const ReleaseName = "loa-agent"

// ReleaseArches are the architectures packages are built for (Debian's names).
var ReleaseArches = []string{"amd64", "arm64", "armhf"}

// ReleasePackage is one signed package: what `loa release sign` writes beside a .deb (without
// URL), what the hub stores at upload, and what an upgrade message carries (with URL, the
// path on the hub to download it with the device's credentials).
type ReleasePackage struct {
	Name      string `json:"name"`    // ReleaseName
	Version   string `json:"version"` // Debian version, e.g. "1.4.0" or "1.4.0~rc1"
	Arch      string `json:"arch"`    // one of ReleaseArches
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"` // lower-case hex of the .deb's bytes
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // hex ed25519 signature over statement()
	URL       string `json:"url,omitempty"`
}

// statement is the byte string a release key signs.
func (p *ReleasePackage) statement() []byte {
	return []byte("loa release v1\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch + "\x00" +
		strconv.FormatInt(p.Size, 10) + "\x00" + p.SHA256)
}

// SignRelease sets KeyID and Signature of p with a release key.
func SignRelease(p *ReleasePackage, keyID string, priv ed25519.PrivateKey) {
	p.KeyID = keyID
	p.Signature = hex.EncodeToString(ed25519.Sign(priv, p.statement()))
}

// ErrReleaseRefused is wrapped by every refusal of VerifyRelease.
var ErrReleaseRefused = errors.New("release refused")

// VerifyRelease checks the shape of p and its signature against the trusted release keys.
// It does not read the package: the caller compares Size and SHA256 with the bytes it holds.
func VerifyRelease(p *ReleasePackage, keys TrustedKeys) error {
	if err := CheckRelease(p); err != nil {
		return fmt.Errorf("%w: %v", ErrReleaseRefused, err)
	}
	pub, ok := keys[p.KeyID]
	if !ok {
		return fmt.Errorf("%w: signed with release key %q, which is not trusted here (trusted: %s)",
			ErrReleaseRefused, clip(p.KeyID), strings.Join(keys.IDs(), ", "))
	}
	sig, err := hex.DecodeString(p.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is not %d bytes of hex", ErrReleaseRefused, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, p.statement(), sig) {
		return fmt.Errorf("%w: the signature of %s %s (%s) does not match its name, version, size and sha256 under key %s: the package or its statement was changed after signing",
			ErrReleaseRefused, p.Name, clip(p.Version), p.Arch, p.KeyID)
	}
	return nil
}

// CheckRelease checks the fields of a release statement, naming each that is wrong.
func CheckRelease(p *ReleasePackage) error {
	c := &checker{t: "release"}
	c.release("", p)
	return c.err
}

func (c *checker) release(prefix string, p *ReleasePackage) {
	if p.Name != ReleaseName {
		c.fail(prefix+"name", ErrInvalidField, "%q: a release is a %s package", clip(p.Name), ReleaseName)
	}
	if err := CheckVersion(p.Version); err != nil {
		c.fail(prefix+"version", ErrInvalidField, "%v", err)
	}
	if !isReleaseArch(p.Arch) {
		c.fail(prefix+"arch", ErrInvalidField, "%q is not one of %s", clip(p.Arch), strings.Join(ReleaseArches, ", "))
	}
	if p.Size <= 0 || p.Size > MaxReleaseBytes {
		c.fail(prefix+"size", ErrInvalidField, "%d is not 1..%d bytes", p.Size, MaxReleaseBytes)
	}
	if len(p.SHA256) != 64 || strings.ToLower(p.SHA256) != p.SHA256 {
		c.fail(prefix+"sha256", ErrInvalidField, "%q is not 64 lower-case hex digits", clip(p.SHA256))
	} else if _, err := hex.DecodeString(p.SHA256); err != nil {
		c.fail(prefix+"sha256", ErrInvalidField, "%q is not 64 lower-case hex digits", clip(p.SHA256))
	}
	c.id(prefix+"key_id", p.KeyID)
	if p.Signature == "" {
		c.fail(prefix+"signature", ErrMissingField, "required (hex, from `loa release sign`)")
	}
	if len(p.URL) > 512 || (p.URL != "" && !strings.HasPrefix(p.URL, "/")) {
		c.fail(prefix+"url", ErrInvalidField, "%q is not a path on the hub (starting with /, at most 512 bytes)", clip(p.URL))
	}
}

// MaxReleaseBytes bounds a package (the agent's .deb is ~10 MB).
const MaxReleaseBytes = 256 << 20

func isReleaseArch(a string) bool { return slices.Contains(ReleaseArches, a) }

// CheckVersion accepts a Debian package version: 1-64 bytes of digits, letters and . + ~ - :,
// starting with a digit (e.g. "1.4.0", "1.4.0~rc1", "1:2.0-3").
func CheckVersion(v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("%q: a version is 1-64 bytes, e.g. 1.4.0", clip(v))
	}
	if v[0] < '0' || v[0] > '9' {
		return fmt.Errorf("%q: a version starts with a digit, e.g. 1.4.0", clip(v))
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+~-:", r)) {
			return fmt.Errorf("%q: a version has only digits, letters and . + ~ - :", clip(v))
		}
	}
	return nil
}

// Window is a daily time of day in which an agent may install, in its local time, e.g.
// "02:00-04:00"; it may cross midnight ("23:00-01:00"). The zero Window is any time.
type Window struct {
	Start, End time.Duration // since midnight; Start == End only for the zero Window
}

// ParseWindow parses "HH:MM-HH:MM"; "" is any time.
func ParseWindow(s string) (Window, error) {
	if s == "" {
		return Window{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not HH:MM-HH:MM, e.g. 02:00-04:00", clip(s))
	}
	start, err1 := parseClock(a)
	end, err2 := parseClock(b)
	if err1 != nil || err2 != nil {
		return Window{}, fmt.Errorf("%q is not HH:MM-HH:MM, e.g. 02:00-04:00", clip(s))
	}
	if start == end {
		return Window{}, fmt.Errorf("%q starts and ends at the same time; leave the window out for any time", s)
	}
	return Window{Start: start, End: end}, nil
}

func parseClock(s string) (time.Duration, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, errors.New("not HH:MM")
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, errors.New("not HH:MM")
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// String is the wire form, "" for any time.
func (w Window) String() string {
	if w == (Window{}) {
		return ""
	}
	f := func(d time.Duration) string {
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return f(w.Start) + "-" + f(w.End)
}

// Contains reports whether t's local time of day (in t's location) is inside the window.
func (w Window) Contains(t time.Time) bool {
	if w == (Window{}) {
		return true
	}
	y, mo, d := t.Date()
	day := t.Sub(time.Date(y, mo, d, 0, 0, 0, 0, t.Location()))
	if w.Start < w.End {
		return day >= w.Start && day < w.End
	}
	return day >= w.Start || day < w.End
}

// Upgrade tells an agent to install a release (docs/upgrades.md). The hub sends it only to an
// agent whose hello said upgrades: true (one that trusts a release key), once per rollout per
// connection until the agent's status reports the rollout healthy, rolled back or refused.
type Upgrade struct {
	Header
	// Rollout identifies the staged rollout this step belongs to; the agent reports it back.
	Rollout string `json:"rollout"`
	// Package is the release to install, for this agent's architecture.
	Package ReleasePackage `json:"package"`
	// Previous is the release the agent runs now, to reinstall if the new one is not healthy
	// in time; absent when the hub does not hold it (the agent then rolls back only if it
	// kept the package it last installed, and otherwise refuses the upgrade).
	Previous *ReleasePackage `json:"previous,omitempty"`
	// Window limits installing to a time of day, in the agent's local time; "" is any time.
	// The agent never installs during a scheduled session or an emergency, window or not.
	Window string `json:"window,omitempty"`
	// HealthyWithinS is how long the new version has, after it starts, to report healthy
	// (connected, schedule active, audio output consuming, watchdog pinging) before the
	// agent reinstalls Previous by itself.
	HealthyWithinS int `json:"healthy_within_s"`
	// Cancel: the rollout was stopped; an agent that has not begun installing drops it.
	Cancel bool `json:"cancel,omitempty"`
}

func (*Upgrade) Type() Type { return TypeUpgrade }

func (m *Upgrade) validate(c *checker) {
	c.header(&m.Header)
	c.id("rollout", m.Rollout)
	c.release("package.", &m.Package)
	if m.Previous != nil {
		c.release("previous.", m.Previous)
		if m.Previous.Arch != m.Package.Arch {
			c.fail("previous.arch", ErrInvalidField, "%q differs from package.arch %q", clip(m.Previous.Arch), clip(m.Package.Arch))
		}
	}
	if _, err := ParseWindow(m.Window); err != nil {
		c.fail("window", ErrInvalidField, "%v", err)
	}
	if m.HealthyWithinS < 1 || m.HealthyWithinS > 86400 {
		c.fail("healthy_within_s", ErrInvalidField, "%d is not 1..86400 seconds", m.HealthyWithinS)
	}
}

// Upgrade states an agent reports in its status (UpgradeStatus.State), in the order they
// happen. Healthy, RolledBack, Refused and Failed are final for a rollout.
const (
	UpgradeDownloading = "downloading" // fetching and verifying the package(s)
	UpgradeWaiting     = "waiting"     // verified; waiting for the window and for no session or emergency
	UpgradeInstalling  = "installing"  // dpkg is installing the new version
	UpgradeChecking    = "checking"    // the new version runs and is checking its health
	UpgradeHealthy     = "healthy"     // the new version passed its health check
	UpgradeRolledBack  = "rolled_back" // not healthy in time: the previous version was reinstalled
	UpgradeRefused     = "refused"     // the package was not trusted (signature, sha256, size) or cannot roll back
	UpgradeFailed      = "failed"      // something else went wrong; Error says what
)

// UpgradeStatus is where an agent is in the last upgrade it was sent, in its status. It stays
// in the status (final state included) until a newer upgrade replaces it, so a hub that missed
// a status still learns the outcome.
type UpgradeStatus struct {
	Rollout string    `json:"rollout"`
	Version string    `json:"version"`        // the version being installed
	From    string    `json:"from,omitempty"` // the version before
	State   string    `json:"state"`
	Error   string    `json:"error,omitempty"` // why it rolled back, was refused or failed
	Since   time.Time `json:"since,omitzero"`
}

func (c *checker) upgradeStatus(u *UpgradeStatus) {
	if u == nil {
		return
	}
	c.id("upgrade.rollout", u.Rollout)
	if err := CheckVersion(u.Version); err != nil {
		c.fail("upgrade.version", ErrInvalidField, "%v", err)
	}
	if u.From != "" && len(u.From) > 64 {
		c.fail("upgrade.from", ErrInvalidField, "longer than 64 bytes")
	}
	c.word("upgrade.state", u.State)
	if len(u.Error) > 1024 {
		c.fail("upgrade.error", ErrInvalidField, "longer than 1024 bytes")
	}
}
