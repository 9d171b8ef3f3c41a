package protocol

import (
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxIDBytes bounds ids on the wire: message ids, device ids, schedule ids, key ids.
const MaxIDBytes = 128

// checker collects the first fault of a message's fields.
type checker struct {
	t      Type
	limits Limits
	err    error
}

func (c *checker) fail(field string, sentinel error, format string, a ...any) {
	if c.err == nil {
		c.err = &MessageError{Type: c.t, Field: field, Offset: -1, Err: sentinel, Reason: fmt.Sprintf(format, a...)}
	}
}

// id checks a required identifier.
func (c *checker) id(field, s string) {
	if s == "" {
		c.fail(field, ErrMissingField, "required")
		return
	}
	c.optID(field, s)
}

// optID checks an identifier that may be absent.
func (c *checker) optID(field, s string) {
	if s == "" {
		return
	}
	if err := checkID(s); err != nil {
		c.fail(field, ErrInvalidField, "%v", err)
	}
}

// checkID accepts printable text without spaces, up to MaxIDBytes: ids are shown in logs and
// tables and typed by staff, so nothing invisible.
func checkID(s string) error {
	if len(s) > MaxIDBytes {
		return fmt.Errorf("%d bytes long, at most %d allowed", len(s), MaxIDBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", clip(s))
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%q contains a space or an unprintable character", clip(s))
		}
	}
	return nil
}

// word checks a required lower-case token such as a result or a state: not an enumeration
// (a newer peer may send a value this side does not know, and refusing it would block e.g.
// the journal for ever), only its shape.
func (c *checker) word(field, s string) {
	if s == "" {
		c.fail(field, ErrMissingField, "required")
		return
	}
	c.optWord(field, s)
}

func (c *checker) optWord(field, s string) {
	if len(s) > 32 {
		c.fail(field, ErrInvalidField, "%q is longer than 32 bytes", clip(s))
		return
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			c.fail(field, ErrInvalidField, "%q must be lower-case letters, digits, _ or -", clip(s))
			return
		}
	}
}

func (c *checker) time(field string, t time.Time) {
	if t.IsZero() {
		c.fail(field, ErrMissingField, "required (an RFC 3339 time)")
	}
}

// finite refuses NaN and infinities, which JSON cannot carry.
func (c *checker) finite(field string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		c.fail(field, ErrInvalidField, "%v is not a finite number", f)
	}
}

func (c *checker) optFinite(field string, f *float64) {
	if f != nil {
		c.finite(field, *f)
	}
}

func (c *checker) nonNegative(field string, f float64) {
	c.finite(field, f)
	if f < 0 {
		c.fail(field, ErrInvalidField, "%v is negative", f)
	}
}

// MaxCounter bounds every sequence number, revision and count on the wire: 2^53−1, exact in
// every JSON implementation and far enough below the end of int64 that a peer's sums over
// them (an offset added to a sequence, a revision plus one) cannot overflow.
const MaxCounter = 1<<53 - 1

// MaxSeconds bounds durations and clock offsets on the wire (a century): a peer turns them
// into time.Duration, which ends at 292 years.
const MaxSeconds = 100 * 365.25 * 86400

func (c *checker) counter(field string, v uint64) {
	if v > MaxCounter {
		c.fail(field, ErrInvalidField, "%d is beyond the largest counter the protocol carries (2^53-1)", v)
	}
}

func (c *checker) count(field string, v int) {
	if v < 0 || uint64(v) > MaxCounter {
		c.fail(field, ErrInvalidField, "%d is not a count between 0 and 2^53-1", v)
	}
}

// seconds checks a duration: finite, not negative, at most MaxSeconds.
func (c *checker) seconds(field string, f float64) {
	c.nonNegative(field, f)
	if f > MaxSeconds {
		c.fail(field, ErrInvalidField, "%v s is more than a century", f)
	}
}

func (c *checker) unit(field string, f *float64) {
	if f == nil {
		return
	}
	c.finite(field, *f)
	if *f < 0 || *f > 1 {
		c.fail(field, ErrInvalidField, "%v is outside 0..1", *f)
	}
}

func (c *checker) header(h *Header) {
	c.id("id", h.ID)
	c.optID("re", h.Re)
}
