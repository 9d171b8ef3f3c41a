package protocol

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestDeviceSecret(t *testing.T) {
	a, err := NewDeviceSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewDeviceSecret(rand.Reader)
	if a == b {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(a, "loa-ds1-") || len(a) != len("loa-ds1-")+52 || strings.ToLower(a) != a {
		t.Fatalf("secret %q is not in the documented form", a)
	}
	h, err := HashDeviceSecret(a)
	if err != nil || !strings.HasPrefix(h, "sha256:") || len(h) != 7+64 || strings.Contains(h, a[8:]) {
		t.Fatalf("hash %q, %v", h, err)
	}
	if !CheckDeviceSecret(a, h) {
		t.Error("the secret does not match its own hash")
	}
	if !CheckDeviceSecret(strings.ToUpper(a)+"\n", h) {
		t.Error("typed in upper case with a newline, the secret no longer matches")
	}
	if CheckDeviceSecret(b, h) {
		t.Error("another device's secret matches")
	}
	// One character changed.
	c := []byte(a)
	c[20] = map[bool]byte{true: 'b', false: 'a'}[c[20] == 'a']
	if CheckDeviceSecret(string(c), h) {
		t.Error("a secret with one character changed matches")
	}
	for _, s := range []string{"", "loa-ds1-", "loa-ds1-abc", a[8:], "loa-ds1-" + strings.Repeat("1", 52)} {
		if CheckDeviceSecret(s, h) {
			t.Errorf("%q matches", s)
		}
		if _, err := HashDeviceSecret(s); err == nil {
			t.Errorf("%q hashed", s)
		}
	}
	if CheckDeviceSecret(a, "") || CheckDeviceSecret(a, h[:20]) {
		t.Error("matches a damaged stored hash")
	}
	// A short random source is an error, not a weak secret.
	if _, err := NewDeviceSecret(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("secret from 31 random bytes")
	}
}

func TestDeviceAuth(t *testing.T) {
	secret, _ := NewDeviceSecret(rand.Reader)
	for _, id := range []string{"cl-07", "tam-thanh/cl-07", "urn:loa:cl:7"} {
		h := FormatDeviceAuth(id, secret)
		gotID, gotSecret, err := ParseDeviceAuth(h)
		if err != nil || gotID != id || gotSecret != secret {
			t.Errorf("ParseDeviceAuth(%q) = %q %q %v", h, gotID, gotSecret, err)
		}
	}
	for in, want := range map[string]string{
		"":                               `authorization must be "Loa-Device <device-id>:<secret>"`,
		"Bearer abc":                     `authorization must be "Loa-Device <device-id>:<secret>"`,
		"Loa-Device cl-07":               `authorization must be "Loa-Device <device-id>:<secret>"`,
		"Loa-Device :" + secret:          `authorization must be`,
		"Loa-Device cl-07:":              `authorization must be`,
		"Loa-Device cl-07:loa-ds1-short": "device secret is damaged",
		"Loa-Device cl\x0107:" + secret:  "unprintable character",
	} {
		if _, _, err := ParseDeviceAuth(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDeviceAuth(%q) = %v, want %q", in, err, want)
		}
	}
}
