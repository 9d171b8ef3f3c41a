package protocol

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func releaseKey(t *testing.T) (TrustedKeys, ed25519.PrivateKey) {
	t.Helper()
	pub, priv := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey), ed25519.NewKeyFromSeed(make([]byte, 32))
	return TrustedKeys{"release-2026": pub}, priv
}

func signedRelease(t *testing.T) (ReleasePackage, TrustedKeys) {
	keys, priv := releaseKey(t)
	p := ReleasePackage{Name: ReleaseName, Version: "1.4.0~rc1", Arch: "arm64", Size: 9_812_344,
		SHA256: strings.Repeat("ab", 32)}
	SignRelease(&p, "release-2026", priv)
	return p, keys
}

// TestReleaseSignature: a signed statement verifies; any change of what it names, an
// untrusted key or a schedule key does not.
func TestReleaseSignature(t *testing.T) {
	p, keys := signedRelease(t)
	if err := VerifyRelease(&p, keys); err != nil {
		t.Fatalf("a signed release did not verify: %v", err)
	}
	for name, change := range map[string]func(*ReleasePackage){
		"version": func(p *ReleasePackage) { p.Version = "1.4.1" },
		"arch":    func(p *ReleasePackage) { p.Arch = "armhf" },
		"size":    func(p *ReleasePackage) { p.Size++ },
		"sha256":  func(p *ReleasePackage) { p.SHA256 = strings.Repeat("cd", 32) },
		"key":     func(p *ReleasePackage) { p.KeyID = "hub-2026" },
		"sig":     func(p *ReleasePackage) { p.Signature = "00" + p.Signature[2:] },
		"name":    func(p *ReleasePackage) { p.Name = "loa-hub" },
	} {
		q := p
		change(&q)
		err := VerifyRelease(&q, keys)
		if !errors.Is(err, ErrReleaseRefused) {
			t.Errorf("%s changed: got %v, want a refusal", name, err)
		}
	}
	if err := VerifyRelease(&p, exampleKeys()); !errors.Is(err, ErrReleaseRefused) || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("a release checked against schedule keys: got %v, want not trusted", err)
	}
}

func TestParseWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 5, h, m, 0, 0, time.UTC) }
	for _, c := range []struct {
		s        string
		in, out  []time.Time
		wantText string
	}{
		{"02:00-04:00", []time.Time{at(2, 0), at(3, 59)}, []time.Time{at(1, 59), at(4, 0), at(12, 0)}, ""},
		{"23:00-01:00", []time.Time{at(23, 30), at(0, 30)}, []time.Time{at(1, 0), at(22, 59)}, ""},
		{"", []time.Time{at(0, 0), at(12, 0)}, nil, ""},
		{"2:00-4:00", nil, nil, "HH:MM-HH:MM"},
		{"02:00-24:00", nil, nil, "HH:MM-HH:MM"},
		{"03:00-03:00", nil, nil, "same time"},
		{"0200", nil, nil, "HH:MM-HH:MM"},
	} {
		w, err := ParseWindow(c.s)
		if c.wantText != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantText) {
				t.Errorf("ParseWindow(%q): got %v, want an error saying %q", c.s, err, c.wantText)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseWindow(%q): %v", c.s, err)
		}
		if w.String() != c.s {
			t.Errorf("ParseWindow(%q).String() = %q", c.s, w.String())
		}
		for _, x := range c.in {
			if !w.Contains(x) {
				t.Errorf("%q does not contain %s", c.s, x.Format("15:04"))
			}
		}
		for _, x := range c.out {
			if w.Contains(x) {
				t.Errorf("%q contains %s", c.s, x.Format("15:04"))
			}
		}
	}
}

func TestUpgradeMessageChecked(t *testing.T) {
	p, _ := signedRelease(t)
	prev := p
	prev.Version = "1.3.2"
	good := Upgrade{Header: Header{ID: "u1"}, Rollout: "r-7", Package: p, Previous: &prev, Window: "02:00-04:00", HealthyWithinS: 300}
	if _, err := Encode(&good); err != nil {
		t.Fatalf("a good upgrade does not encode: %v", err)
	}
	for field, change := range map[string]func(*Upgrade){
		"package.sha256":   func(u *Upgrade) { u.Package.SHA256 = "xyz" },
		"previous.arch":    func(u *Upgrade) { q := *u.Previous; q.Arch = "amd64"; u.Previous = &q },
		"window":           func(u *Upgrade) { u.Window = "late" },
		"healthy_within_s": func(u *Upgrade) { u.HealthyWithinS = 0 },
		"package.version":  func(u *Upgrade) { u.Package.Version = "v1; rm -rf /" },
		"package.url":      func(u *Upgrade) { u.Package.URL = "http://elsewhere/x.deb" },
		"rollout":          func(u *Upgrade) { u.Rollout = "" },
	} {
		u := good
		change(&u)
		_, err := Encode(&u)
		var me *MessageError
		if !errors.As(err, &me) || me.Field != field {
			t.Errorf("%s wrong: got %v, want an error naming %s", field, err, field)
		}
	}
}
