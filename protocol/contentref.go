package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// refPrefix is the only hash Loa speaks. Content references are written exactly this way in
// schedules, on the wire, in the journal and at the hub, so the one parser is strict: no upper
// case, no other algorithm. (The hub lowercases what staff type before parsing it.)
const refPrefix = ContentRefPrefix

// ContentRefPrefix begins every content reference.
const ContentRefPrefix = "sha256:"

// ContentRef names a content item by the sha256 of its bytes. The zero ContentRef means "no
// ref" (the content store's Put with a zero ref does not check what it stores).
type ContentRef [sha256.Size]byte

// ParseContentRef reads "sha256:" followed by exactly 64 lowercase hex digits.
func ParseContentRef(s string) (ContentRef, error) {
	var r ContentRef
	if len(s) < len(refPrefix) || s[:len(refPrefix)] != refPrefix {
		return r, fmt.Errorf("content ref %s: must start with %q", quoteRef(s), refPrefix)
	}
	h := s[len(refPrefix):]
	if len(h) != 2*sha256.Size {
		return r, fmt.Errorf("content ref %s: want %d hex digits after %q, got %d characters",
			quoteRef(s), 2*sha256.Size, refPrefix, len(h))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return r, fmt.Errorf("content ref %s: character %q at position %d is not a lowercase hex digit",
				quoteRef(s), c, len(refPrefix)+i)
		}
	}
	if _, err := hex.Decode(r[:], []byte(h)); err != nil { // cannot fail after the loop above
		return ContentRef{}, fmt.Errorf("content ref %s: %v", quoteRef(s), err)
	}
	return r, nil
}

// ContentRefOf returns the ref of b.
func ContentRefOf(b []byte) ContentRef { return ContentRef(sha256.Sum256(b)) }

// String returns "sha256:<64 hex>".
func (r ContentRef) String() string { return refPrefix + hex.EncodeToString(r[:]) }

// Hex returns the 64 hex digits alone (the file name in the store).
func (r ContentRef) Hex() string { return hex.EncodeToString(r[:]) }

// IsZero reports whether r is the zero ContentRef.
func (r ContentRef) IsZero() bool { return r == ContentRef{} }

// MarshalText writes the "sha256:<hex>" form, so a Ref is a string in JSON and YAML.
func (r ContentRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses with ParseContentRef.
func (r *ContentRef) UnmarshalText(b []byte) error {
	v, err := ParseContentRef(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteRef(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
