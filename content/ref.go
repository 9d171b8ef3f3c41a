package content

import "github.com/loa-project/loa/protocol"

// Ref names a content item by the sha256 of its bytes: the project's one content reference,
// protocol.ContentRef. The zero Ref means "no ref" (Put with a zero ref does not check what it
// stores).
type Ref = protocol.ContentRef

// ParseRef reads "sha256:" followed by exactly 64 lowercase hex digits (protocol.ParseContentRef).
func ParseRef(s string) (Ref, error) { return protocol.ParseContentRef(s) }

// RefOf returns the ref of b.
func RefOf(b []byte) Ref { return protocol.ContentRefOf(b) }
