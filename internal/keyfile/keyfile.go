// Package keyfile writes a new ed25519 signing key to a file that only its owner reads, for
// the keys Loa signs with: the hub's schedule key and the release keys of agent upgrades.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"

	"github.com/loa-project/loa/protocol"
)

// New writes a new private key to path (mode 0600, never over an existing file: the error
// then wraps os.ErrExist) and returns its public key.
func New(path string) (ed25519.PublicKey, error) {
	pub, priv, err := protocol.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(protocol.FormatPrivateKey(priv) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return pub, f.Close()
}
