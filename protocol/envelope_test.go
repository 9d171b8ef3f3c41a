package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRoundTripEveryMessage(t *testing.T) {
	for _, m := range samples(t) {
		t.Run(string(m.Type()), func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.HasPrefix(b, []byte(`{"v":1,"type":"`+string(m.Type())+`","id":`)) {
				t.Fatalf("envelope not first: %s", b[:min(len(b), 60)])
			}
			if !json.Valid(b) {
				t.Fatalf("not valid JSON: %s", b)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip changed the message\nsent %+v\ngot  %+v", m, got)
			}
			// Not in Encode's canonical form (indented, type after id): same message.
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			reordered := bytes.Replace(pretty.Bytes(), []byte(`"type": "`+string(m.Type())+`",`), nil, 1)
			reordered = bytes.Replace(reordered, []byte(`"id": `), []byte(`"type": "`+string(m.Type())+`", "id": `), 1)
			for _, form := range [][]byte{pretty.Bytes(), reordered} {
				slow, err := Decode(form)
				if err != nil || !reflect.DeepEqual(slow, m) {
					t.Fatalf("non-canonical form decodes differently (%v):\n%s", err, form)
				}
			}
			again, err := Encode(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs (%v):\n%s\n%s", err, b, again)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	// A newer peer may add optional fields within version 1.
	m, err := Decode([]byte(`{"v":1,"type":"ack","id":"h-9","seq":7,"window":64,"extra":{"a":[1,2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m.(*Ack); !ok || a.Seq != 7 || a.ID != "h-9" {
		t.Fatalf("got %#v", m)
	}
}

// TestDecodeMalformed: every way a message can be wrong gives an error naming what and where.
func TestDecodeMalformed(t *testing.T) {
	rec := `{"device":"cl-07","seq":5,"result":"completed"}`
	cases := []struct {
		name, in string
		want     error
		text     string
	}{
		{"empty", ``, ErrBadJSON, "protocol: bad JSON: unexpected end of JSON input (at byte 0)"},
		{"truncated", `{"v":1,"type":"ack","id":"x"`, ErrBadJSON, "protocol: ack message: bad JSON: unexpected end of JSON input (at byte 28)"},
		{"garbage", `{"v":1,"type":"ack",,}`, ErrBadJSON, "protocol: ack message: bad JSON: invalid character ',' looking for beginning of object key string (at byte 21)"},
		{"trailing data", `{"v":1,"type":"ack","id":"x"} {}`, ErrBadJSON, "protocol: ack message: bad JSON: invalid character '{' after top-level value (at byte 31)"},
		{"array", `[{"v":1}]`, ErrBadJSON, "protocol: a message must be a JSON object, not array (at byte 1)"},
		{"null", `null`, ErrMissingField, "protocol: field v: required (the protocol version, 1)"},
		{"no version", `{"type":"ack","id":"x"}`, ErrMissingField, "protocol: field v: required (the protocol version, 1)"},
		{"version 2", `{"v":2,"type":"ack","id":"x"}`, ErrUnsupportedVersion, "protocol: field v: version 2 is not supported; this side speaks version 1"},
		{"version 0", `{"v":0,"type":"ack","id":"x"}`, ErrUnsupportedVersion, "protocol: field v: version 0 is not supported; this side speaks version 1"},
		{"version string", `{"v":"1","type":"ack","id":"x"}`, ErrInvalidField, "protocol: field v: expected an integer, got JSON string (at byte 5)"},
		{"no type", `{"v":1,"id":"x"}`, ErrMissingField, "protocol: field type: required"},
		{"unknown type", `{"v":1,"type":"reboot","id":"x"}`, ErrUnknownType, `protocol: field type: unknown message type "reboot" (known: hello, welcome, schedule, command, confirmations, ack, status, delivery, error, time, neighbours, upgrade)`},
		{"no id", `{"v":1,"type":"ack","seq":3}`, ErrMissingField, "protocol: ack message: field id: required"},
		{"id with space", `{"v":1,"type":"ack","id":"a b"}`, ErrInvalidField, `protocol: ack message: field id: "a b" contains a space or an unprintable character`},
		{"id too long", `{"v":1,"type":"ack","id":"` + strings.Repeat("x", 129) + `"}`, ErrInvalidField, "protocol: ack message: field id: 129 bytes long, at most 128 allowed"},
		{"negative seq", `{"v":1,"type":"ack","id":"x","seq":-1}`, ErrInvalidField, "protocol: ack message: field seq: expected a non-negative integer, got JSON number -1 (at byte 35)"},
		{"hello without device", `{"v":1,"type":"hello","id":"a-1","software_version":"0.4"}`, ErrMissingField, "protocol: hello message: field device_id: required"},
		{"hello without software", `{"v":1,"type":"hello","id":"a-1","device_id":"cl-07"}`, ErrMissingField, "protocol: hello message: field software_version: required"},
		{"hello bad revision", `{"v":1,"type":"hello","id":"a-1","device_id":"cl-07","software_version":"0.4","active_schedule":{"id":"s"}}`, ErrMissingField, "protocol: hello message: field active_schedule.revision: required (revisions start at 1)"},
		{"hello bad time", `{"v":1,"type":"hello","id":"a-1","device_id":"cl-07","software_version":"0.4","sent_at":"2026-11-26 06:30"}`, ErrInvalidField, `protocol: hello message: field sent_at: "2026-11-26 06:30" is not an RFC 3339 time with a zone, like 2026-11-26T06:30:00+07:00 (at byte 88)`},
		{"welcome without time", `{"v":1,"type":"welcome","id":"h-1","hello_received_at":"2026-11-26T06:30:00Z","resend_from":1}`, ErrMissingField, "protocol: welcome message: field hub_time: required (an RFC 3339 time)"},
		{"welcome resend 0", `{"v":1,"type":"welcome","id":"h-1","hello_received_at":"2026-11-26T06:30:00Z","hub_time":"2026-11-26T06:30:00Z"}`, ErrMissingField, "protocol: welcome message: field resend_from: required (sequences start at 1)"},
		{"schedule unsigned", `{"v":1,"type":"schedule","id":"h-2"}`, ErrMissingField, "protocol: schedule message: field signed: required (the signed schedule document)"},
		{"schedule bad base64", `{"v":1,"type":"schedule","id":"h-2","signed":{"key_id":"k","payload":"%%%","sig":""}}`, ErrInvalidField, "protocol: schedule message: field signed.payload: not standard padded base64: illegal base64 data at input byte 0 (at byte 69)"},
		{"command signed not object", `{"v":1,"type":"command","id":"h-3","signed":"yes"}`, ErrInvalidField, "protocol: command message: field signed: expected an object, got JSON string (at byte 44)"},
		{"no records", `{"v":1,"type":"confirmations","id":"a-2","records":[]}`, ErrMissingField, "protocol: confirmations message: field records: required (at least one record)"},
		{"hello revision past 2^53", `{"v":1,"type":"hello","id":"a-1","device_id":"cl-07","software_version":"0.4","active_schedule":{"id":"s","revision":9223372036854775806}}`, ErrInvalidField, "protocol: hello message: field active_schedule.revision: 9223372036854775806 is beyond the largest counter the protocol carries (2^53-1)"},
		{"record seq past 2^53", `{"v":1,"type":"confirmations","id":"a-2","records":[{"device":"cl-07","seq":9007199254740992,"result":"completed"}]}`, ErrInvalidField, "protocol: confirmations message: field records[0].seq: 9007199254740992 is beyond the largest counter the protocol carries (2^53-1)"},
		{"uptime past a century", `{"v":1,"type":"status","id":"a-3","at":"2026-11-26T06:30:00Z","uptime_s":1e300}`, ErrInvalidField, "protocol: status message: field uptime_s: 1e+300 s is more than a century"},
		{"record without seq", `{"v":1,"type":"confirmations","id":"a-2","records":[` + rec + `,{"device":"cl-07","result":"completed"}]}`, ErrMissingField, "protocol: confirmations message: field records[1].seq: required (sequences start at 1)"},
		{"record seq string", `{"v":1,"type":"confirmations","id":"a-2","records":[` + rec + `,` + rec + `,{"device":"cl-07","seq":"7"}]}`, ErrInvalidField, "protocol: confirmations message: field records[2].seq: expected a non-negative integer, got JSON string (at byte 172)"},
		{"record bad result", `{"v":1,"type":"confirmations","id":"a-2","records":[{"device":"cl-07","seq":5,"result":"OK!"}]}`, ErrInvalidField, `protocol: confirmations message: field records[0].result: "OK!" must be lower-case letters, digits, _ or -`},
		{"record negative played", `{"v":1,"type":"confirmations","id":"a-2","records":[{"device":"cl-07","seq":5,"result":"completed","played_s":-3}]}`, ErrInvalidField, "protocol: confirmations message: field records[0].played_s: -3 is negative"},
		{"record bad end", `{"v":1,"type":"confirmations","id":"a-2","records":[` + rec + `,{"device":"cl-07","seq":6,"end":"soon"}]}`, ErrInvalidField, `protocol: confirmations message: field records[1].end: "soon" is not an RFC 3339 time with a zone, like 2026-11-26T06:30:00+07:00 (at byte 132)`},
		{"status volume", `{"v":1,"type":"status","id":"a-3","at":"2026-11-26T06:30:00Z","volume":1.5}`, ErrInvalidField, "protocol: status message: field volume: 1.5 is outside 0..1"},
		{"status output", `{"v":1,"type":"status","id":"a-3","at":"2026-11-26T06:30:00Z","now_playing":[{"output":"speakers"},{"program":"x"}]}`, ErrMissingField, "protocol: status message: field now_playing[1].output: required"},
		{"delivery refused without reason", `{"v":1,"type":"delivery","id":"a-4","state":"refused","code":"expired"}`, ErrMissingField, "protocol: delivery message: field reason: required when state is refused"},
		{"delivery names nothing", `{"v":1,"type":"delivery","id":"a-4","state":"active"}`, ErrMissingField, "protocol: delivery message: field schedule_id: a delivery names a schedule_id and revision, or a command_id"},
		{"error without code", `{"v":1,"type":"error","id":"h-5","message":"x"}`, ErrMissingField, "protocol: error message: field code: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("accepted: %#v", m)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("error %v is not %v", err, c.want)
			}
			var me *MessageError
			if !errors.As(err, &me) {
				t.Errorf("error %T is not a *MessageError", err)
			}
			if err.Error() != c.text {
				t.Errorf("error text\n got: %s\nwant: %s", err, c.text)
			}
			if me != nil && me.Offset >= 0 && me.Field != "" {
				// The offset points at the start of the faulty value, for a technician's editor.
				if rest := c.in[me.Offset:]; !strings.HasPrefix(rest, `"`) && !strings.HasPrefix(rest, "-") {
					t.Errorf("offset %d points at %q, not at a value", me.Offset, rest[:min(len(rest), 10)])
				}
			}
			if CodeOf(err) != codes[c.want] {
				t.Errorf("CodeOf = %s, want %s", CodeOf(err), codes[c.want])
			}
		})
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxMessageBytes: 300, MaxRecords: 3}
	batch := &Confirmations{Header: Header{ID: "a-2"}}
	for i := range 4 {
		batch.Records = append(batch.Records, Confirmation{Device: "cl-07", Seq: uint64(i + 1), Result: ResultCompleted})
	}
	if _, err := l.Encode(batch); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "field records: 4 records, at most 3 per batch") {
		t.Errorf("4 records with a limit of 3: %v", err)
	}
	b, err := Encode(batch) // default limits allow it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Limits{MaxMessageBytes: 10_000, MaxRecords: 3}).Decode(b); !errors.Is(err, ErrTooLarge) {
		t.Errorf("decoding 4 records with a limit of 3: %v", err)
	}
	batch.Records = batch.Records[:3]
	if _, err := l.Encode(batch); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "the limit is 300") {
		t.Errorf("oversized encode: %v", err)
	}
	big := append([]byte(`{"v":1,"type":"ack","id":"x","pad":"`), bytes.Repeat([]byte("a"), 500)...)
	big = append(big, `"}`...)
	_, err = l.Decode(big)
	if !errors.Is(err, ErrTooLarge) || err.Error() != "protocol: message is 538 bytes, the limit is 300" {
		t.Errorf("oversized decode: %v", err)
	}
	if _, err := Decode(big); err != nil {
		t.Errorf("same message within the default limit: %v", err)
	}
	// DecodeReader stops reading at the limit and refuses.
	r := &countingReader{r: bytes.NewReader(bytes.Repeat(big, 100))}
	if _, err := l.DecodeReader(r); !errors.Is(err, ErrTooLarge) {
		t.Errorf("DecodeReader oversized: %v", err)
	}
	if r.n > 301 {
		t.Errorf("DecodeReader read %d bytes past a limit of 300", r.n)
	}
	m, err := l.DecodeReader(strings.NewReader(`{"v":1,"type":"ack","id":"x","seq":9}`))
	if err != nil || m.(*Ack).Seq != 9 {
		t.Errorf("DecodeReader: %v %v", m, err)
	}
}

type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestEncodeRefusesWhatDecodeWould(t *testing.T) {
	r := exampleRecord(1)
	r.PeakDBFS = f64(math.Inf(-1)) // silence measured naively
	_, err := Encode(&Confirmations{Header: Header{ID: "a"}, Records: []Confirmation{r}})
	if !errors.Is(err, ErrInvalidField) || err.Error() != "protocol: confirmations message: field records[0].peak_dbfs: -Inf is not a finite number" {
		t.Errorf("-Inf dBFS: %v", err)
	}
	if _, err := Encode(&Ack{Seq: 3}); !errors.Is(err, ErrMissingField) {
		t.Errorf("no id: %v", err)
	}
	if _, err := Encode(nil); err == nil {
		t.Error("nil message encoded")
	}
}

// TestEncodeConcurrent: a push encodes one message for many connections at once; run with -race.
func TestEncodeConcurrent(t *testing.T) {
	m := samples(t)[2]
	want, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				b, err := Encode(m)
				if err != nil || !bytes.Equal(b, want) {
					t.Errorf("concurrent encode differs: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewErrorMessage(t *testing.T) {
	_, err := Decode([]byte(`{"v":1,"type":"ack"}`))
	m := NewErrorMessage("h-9", "", err)
	b, encErr := Encode(m)
	if encErr != nil {
		t.Fatal(encErr)
	}
	got, decErr := Decode(b)
	if decErr != nil {
		t.Fatal(decErr)
	}
	e := got.(*ErrorMessage)
	if e.Code != "missing_field" || e.Message != "protocol: ack message: field id: required" {
		t.Errorf("got %+v", e)
	}
	if CodeOf(errors.New("disk full")) != CodeInternal {
		t.Error("a foreign error is not internal")
	}
}
