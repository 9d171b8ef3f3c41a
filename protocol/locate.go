package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// encoding/json says where a fault is only in part: a type error names the field without
// array indices ("records.seq"), and a bad time or base64 value names nothing. locate walks
// the tokens of the message to find the JSON path (records[3].seq) and byte offset.

type frame struct {
	arr     bool
	idx     int
	key     string
	wantKey bool
}

func pathOf(st []frame) string {
	var b strings.Builder
	for _, f := range st {
		if f.arr {
			b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	return b.String()
}

// locate returns the path and start offset of the first value (a scalar or the opening of an
// object or array) for which match is true; end is the offset just past the value's token.
func locate(b []byte, match func(path, key string, tok json.Token, end int64) bool) (string, int64, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var st []frame
	next := func() {
		if n := len(st); n > 0 {
			if st[n-1].arr {
				st[n-1].idx++
			} else {
				st[n-1].wantKey = true
			}
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return "", -1, false
		}
		end := dec.InputOffset()
		for start < end && bytes.IndexByte([]byte(" \t\r\n:,"), b[start]) >= 0 {
			start++
		}
		n := len(st)
		if n > 0 && !st[n-1].arr && st[n-1].wantKey {
			if k, ok := tok.(string); ok {
				st[n-1].key, st[n-1].wantKey = k, false
				continue
			}
			st = st[:n-1] // '}'
			next()
			continue
		}
		key := ""
		if n > 0 && !st[n-1].arr {
			key = st[n-1].key
		}
		if d, ok := tok.(json.Delim); ok && (d == ']' || d == '}') {
			st = st[:n-1]
			next()
			continue
		}
		if match(pathOf(st), key, tok, end) {
			return pathOf(st), start, true
		}
		switch tok {
		case json.Delim('{'):
			st = append(st, frame{wantKey: true})
		case json.Delim('['):
			st = append(st, frame{arr: true})
		default:
			next()
		}
	}
}

// locateOffset finds the path and start of the value that ends at or after offset (where
// encoding/json reports a type error).
func locateOffset(b []byte, offset int64) (string, int64, bool) {
	return locate(b, func(_, _ string, _ json.Token, end int64) bool { return end >= offset })
}

// Fields whose values encoding/json hands to an UnmarshalJSON method, which reports no place.
var (
	timeFields = map[string]bool{"sent_at": true, "hello_received_at": true, "hub_time": true,
		"scheduled": true, "start": true, "end": true, "since": true, "at": true,
		"issued_at": true, "expires_at": true}
	base64Fields = map[string]bool{"payload": true, "sig": true}
)

// locateBadValue finds a time or base64 field whose value does not parse, and says why.
func locateBadValue(b []byte) (path string, offset int64, reason string, ok bool) {
	path, offset, ok = locate(b, func(_, key string, tok json.Token, _ int64) bool {
		s, isString := tok.(string)
		switch {
		case !isString:
			return false
		case timeFields[key]:
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				reason = fmt.Sprintf("%q is not an RFC 3339 time with a zone, like 2026-11-26T06:30:00+07:00", clip(s))
				return true
			}
		case base64Fields[key]:
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				reason = fmt.Sprintf("not standard padded base64: %v", err)
				return true
			}
		}
		return false
	})
	return path, offset, reason, ok
}
