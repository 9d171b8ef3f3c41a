package store

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/loa-project/loa/protocol"
)

// Limits on ids; generous for real names, small enough to keep indexes and logs sane.
const (
	MaxSegment   = 63  // characters in one segment of an id
	MaxIDLength  = 255 // characters in a whole id
	MaxAreaDepth = 32  // levels in the area tree
	MaxDeviceSeg = 4   // segments in a device id
	maxText      = 4096
)

// checkSegment reports what is wrong with one segment of an id: lowercase ASCII letters,
// digits, '-', '_' and '.', starting with a letter or digit (slugs such as "tam-thanh").
func checkSegment(seg string) error {
	if seg == "" {
		return fmt.Errorf("empty segment (two '/' in a row, or a leading or trailing '/')")
	}
	if len(seg) > MaxSegment {
		return fmt.Errorf("segment %q is longer than %d characters", seg, MaxSegment)
	}
	// By rune, so a Vietnamese letter is named as typed (not as one of its UTF-8 bytes).
	pos := 0
	for _, c := range seg {
		pos++
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if pos > 1 {
			ok = ok || c == '-' || c == '_' || c == '.'
		}
		if !ok {
			return fmt.Errorf("segment %q has %q at position %d: use lowercase letters without accents, digits, '-', '_' or '.', starting with a letter or digit (e.g. tam-thanh for Tam Thạnh)", seg, c, pos)
		}
	}
	return nil
}

func checkPath(what, id string, maxSegs int) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s id", ErrInvalid, what)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: %s id %.40q… is longer than %d characters", ErrInvalid, what, id, MaxIDLength)
	}
	segs := strings.Split(id, "/")
	if len(segs) > maxSegs {
		return fmt.Errorf("%w: %s id %q has %d levels, at most %d", ErrInvalid, what, id, len(segs), maxSegs)
	}
	for _, s := range segs {
		if err := checkSegment(s); err != nil {
			return fmt.Errorf("%w: %s id %q: %v", ErrInvalid, what, id, err)
		}
	}
	return nil
}

// ValidateAreaID checks an area id: its path from the root, segments joined by '/', e.g.
// "quang-nam/tam-ky/tam-thanh" (or "quang-nam/tam-thanh" where there is no district level).
func ValidateAreaID(id string) error { return checkPath("area", id, MaxAreaDepth) }

// ValidateDeviceID checks a device id: one to four slug segments. The convention is
// "<commune>/<device>" (e.g. "tam-thanh/cl-07"), but the id does not encode the area: a device
// can move between areas without a new id, secret or agent config.
func ValidateDeviceID(id string) error { return checkPath("device", id, MaxDeviceSeg) }

// ParentArea is the parent of an area id ("" for a root).
func ParentArea(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[:i]
	}
	return ""
}

// IsWithin reports whether area is ancestor or lies below it. Area ids are paths from the
// root, so this is a prefix test on whole segments and needs no lookup. Empty ids are never
// within anything and nothing is within an empty ancestor.
func IsWithin(area, ancestor string) bool {
	if area == "" || ancestor == "" {
		return false
	}
	return area == ancestor || strings.HasPrefix(area, ancestor) && area[len(ancestor)] == '/'
}

// Allowed reports whether staff scoped to scope may act on target (an area id): only on their
// own area and the areas below it. A commune's staff cannot act on another commune.
func Allowed(scope, target string) bool { return IsWithin(target, scope) }

// ParseRef checks a content reference "sha256:<64 hex>" typed by staff and returns it in
// canonical form with the digest. Staff may type the hex in upper case (copied from another
// tool); it is lowercased, then read by the one parser (protocol.ParseContentRef).
func ParseRef(ref string) (string, [32]byte, error) {
	if hexPart, ok := strings.CutPrefix(ref, protocol.ContentRefPrefix); ok {
		ref = protocol.ContentRefPrefix + strings.ToLower(hexPart)
	}
	r, err := protocol.ParseContentRef(ref)
	if err != nil {
		return "", [32]byte{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return r.String(), r, nil
}

// checkText refuses text that would make a bad row: invalid UTF-8, NUL bytes or too long.
func checkText(what, s string, required bool, max int) error {
	if required && strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, what)
	}
	return nil
}
