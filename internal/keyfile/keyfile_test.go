package keyfile

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loa-project/loa/protocol"
)

// The key file is its owner's alone, holds the private key of the public key returned, and
// is never written over.
func TestNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "release.key")
	pub, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	priv, err := protocol.ParsePrivateKey(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public().(ed25519.PublicKey)) {
		t.Fatal("the file's key is not the one whose public key was returned")
	}
	if _, err := New(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a second key over the first: %v", err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Fatal("the first key was changed")
	}
}
