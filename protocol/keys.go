package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Key text forms (docs/protocol.md, "Keys"):
//
//	public:  ed25519:<base64 of the 32-byte public key>
//	private: ed25519-seed:<base64 of the 32-byte seed>
//
// The parsers also take the bare 64 hex digits of the 32 bytes, and base64 without the prefix
// or padding, URL alphabet or standard, because keys get pasted from many tools.
const (
	publicKeyPrefix  = "ed25519:"
	privateKeyPrefix = "ed25519-seed:"
)

// GenerateKey makes a signing key pair from rand (crypto/rand.Reader in production).
func GenerateKey(rand io.Reader) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("protocol: generating ed25519 key: %w", err)
	}
	return pub, priv, nil
}

// FormatPublicKey writes a public key as "ed25519:<base64>".
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// FormatPrivateKey writes a private key as "ed25519-seed:<base64 of its seed>". Keep it out of
// logs and agent configs: only the hub holds it.
func FormatPrivateKey(priv ed25519.PrivateKey) string {
	return privateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed())
}

// ParsePublicKey reads a public key in any form described above.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	if strings.HasPrefix(s, privateKeyPrefix) {
		return nil, fmt.Errorf("this is a private key (%s…); agents need the public key (%s…)", privateKeyPrefix, publicKeyPrefix)
	}
	b, err := key32(s, publicKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey reads a private key written by FormatPrivateKey (or its seed as hex).
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	if strings.HasPrefix(s, publicKeyPrefix) {
		return nil, fmt.Errorf("this is a public key (%s…); signing needs the private key (%s…)", publicKeyPrefix, privateKeyPrefix)
	}
	b, err := key32(s, privateKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// key32 decodes 32 key bytes from text with an optional prefix.
func key32(s, prefix string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty; expected %s<base64 of 32 bytes>", prefix)
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && s[:i+1] != prefix {
		return nil, fmt.Errorf("unknown key type %q; expected %s<base64 of 32 bytes>", clip(s[:i+1]), prefix)
	}
	body := strings.TrimPrefix(s, prefix)
	if len(body) == 64 {
		if b, err := hex.DecodeString(body); err == nil {
			return b, nil
		}
	}
	trimmed := strings.TrimRight(body, "=")
	var b []byte
	var err error
	if strings.ContainsAny(trimmed, "-_") {
		b, err = base64.RawURLEncoding.DecodeString(trimmed)
	} else {
		b, err = base64.RawStdEncoding.DecodeString(trimmed)
	}
	if err != nil {
		return nil, fmt.Errorf("%q is neither base64 nor 64 hex digits: %v", clip(body), err)
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%d bytes, an ed25519 key has 32", len(b))
	}
	return b, nil
}
