package protocol

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A device secret is 32 random bytes written as "loa-ds1-" and 52 lower-case base32 letters
// and digits (no padding): printable, no symbols a shell or a config file would mangle, and
// case-insensitive when a technician types it.
const deviceSecretPrefix = "loa-ds1-"

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewDeviceSecret makes a per-device secret from rand (crypto/rand.Reader in production). The
// hub shows it once, at enrolment, and keeps only HashDeviceSecret of it.
func NewDeviceSecret(rand io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("protocol: generating device secret: %w", err)
	}
	return deviceSecretPrefix + strings.ToLower(secretEncoding.EncodeToString(b[:])), nil
}

func parseDeviceSecret(secret string) ([]byte, error) {
	s := strings.TrimSpace(secret)
	if !strings.HasPrefix(strings.ToLower(s), deviceSecretPrefix) {
		return nil, fmt.Errorf("protocol: a device secret starts with %q", deviceSecretPrefix)
	}
	b, err := secretEncoding.DecodeString(strings.ToUpper(s[len(deviceSecretPrefix):]))
	if err != nil || len(b) != 32 {
		return nil, errors.New("protocol: device secret is damaged: expected 52 letters and digits after the prefix")
	}
	return b, nil
}

// HashDeviceSecret returns what the hub stores for a secret: "sha256:<hex>" of its 32 bytes.
//
// A plain SHA-256 is enough here, unlike for passwords: slow, salted hashes (bcrypt, argon2)
// exist to make guessing low-entropy passwords expensive, but these secrets are 256 random
// bits, so a stolen hash cannot be reversed or guessed, fast hash or not. A fast hash also
// keeps 10,000 devices reconnecting at once cheap for the hub.
func HashDeviceSecret(secret string) (string, error) {
	b, err := parseDeviceSecret(secret)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// CheckDeviceSecret reports whether secret matches a stored hash, comparing in constant time
// so that response timing reveals nothing about the stored hash.
func CheckDeviceSecret(secret, storedHash string) bool {
	h, err := HashDeviceSecret(secret)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h), []byte(storedHash)) == 1
}

// DeviceAuthScheme is the HTTP Authorization scheme an agent presents on the websocket
// upgrade: "Authorization: Loa-Device <device-id>:<secret>". The hub checks it before
// upgrading, so a wrong or revoked secret costs it no websocket.
const DeviceAuthScheme = "Loa-Device"

// FormatDeviceAuth returns the Authorization header value for a device.
func FormatDeviceAuth(deviceID, secret string) string {
	return DeviceAuthScheme + " " + deviceID + ":" + secret
}

// ParseDeviceAuth reads an Authorization header value written by FormatDeviceAuth. It checks
// the form only; CheckDeviceSecret checks the secret.
func ParseDeviceAuth(header string) (deviceID, secret string, err error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, DeviceAuthScheme) {
		return "", "", fmt.Errorf("protocol: authorization must be %q", DeviceAuthScheme+" <device-id>:<secret>")
	}
	rest = strings.TrimSpace(rest)
	// The secret has no colon; a device id might.
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return "", "", fmt.Errorf("protocol: authorization must be %q", DeviceAuthScheme+" <device-id>:<secret>")
	}
	deviceID, secret = rest[:i], rest[i+1:]
	if err := checkID(deviceID); err != nil {
		return "", "", fmt.Errorf("protocol: authorization device id: %v", err)
	}
	if _, err := parseDeviceSecret(secret); err != nil {
		return "", "", err
	}
	return deviceID, secret, nil
}
