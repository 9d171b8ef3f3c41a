package content

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// refPrefix is the only hash the store speaks. Refs are written exactly this way in schedules,
// on the wire and in the journal, so the parser is strict: no upper case, no other algorithm.
const refPrefix = "sha256:"

// Ref names a content item by the sha256 of its bytes. The zero Ref means "no ref" (Put with
// a zero ref does not check what it stores).
type Ref [sha256.Size]byte

// ParseRef reads "sha256:" followed by exactly 64 lowercase hex digits.
func ParseRef(s string) (Ref, error) {
	var r Ref
	if len(s) < len(refPrefix) || s[:len(refPrefix)] != refPrefix {
		return r, fmt.Errorf("content ref %s: must start with %q", quoteShort(s), refPrefix)
	}
	h := s[len(refPrefix):]
	if len(h) != 2*sha256.Size {
		return r, fmt.Errorf("content ref %s: want %d hex digits after %q, got %d characters",
			quoteShort(s), 2*sha256.Size, refPrefix, len(h))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return r, fmt.Errorf("content ref %s: character %q at position %d is not a lowercase hex digit",
				quoteShort(s), c, len(refPrefix)+i)
		}
	}
	if _, err := hex.Decode(r[:], []byte(h)); err != nil { // cannot fail after the loop above
		return Ref{}, fmt.Errorf("content ref %s: %v", quoteShort(s), err)
	}
	return r, nil
}

// RefOf returns the ref of b.
func RefOf(b []byte) Ref { return Ref(sha256.Sum256(b)) }

// String returns "sha256:<64 hex>".
func (r Ref) String() string { return refPrefix + hex.EncodeToString(r[:]) }

// Hex returns the 64 hex digits alone (the file name in the store).
func (r Ref) Hex() string { return hex.EncodeToString(r[:]) }

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r == Ref{} }

// MarshalText writes the "sha256:<hex>" form, so a Ref is a string in JSON and YAML.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses with ParseRef.
func (r *Ref) UnmarshalText(b []byte) error {
	v, err := ParseRef(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
