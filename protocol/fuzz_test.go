package protocol

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecode: no input makes Decode panic; every error is a *MessageError; whatever it accepts
// encodes again, and that encoding is stable.
func FuzzDecode(f *testing.F) {
	for _, m := range samples(f) {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"v":1}`, `{"v":1,"type":"ack","id":"x","seq":1}`,
		`{"v":1,"type":"confirmations","id":"a","records":[{"device":"d","seq":1,"result":"x","end":"2026-11-26T06:30:00+07:00"}]}`,
		`{"v":1,"type":"schedule","id":"x","signed":{"key_id":"k","payload":"e30=","sig":""}}`,
		`{"v":1,"type":"hello","id":"a","device_id":"d","software_version":"1","sent_at":"x"}`,
		`{"v":1,"type":"neighbours","id":"n","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","peers":[{"device_id":"d","addr":"[::1]:1"}]}`} {
		f.Add([]byte(s))
	}
	l := Limits{MaxMessageBytes: 64 << 10, MaxRecords: 50}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := l.Decode(b)
		if err != nil {
			var me *MessageError
			if !errors.As(err, &me) {
				t.Fatalf("error %T %v is not a *MessageError", err, err)
			}
			if me.Offset > int64(len(b)) {
				t.Fatalf("offset %d past the end of %d bytes", me.Offset, len(b))
			}
			return
		}
		first, err := Limits{MaxMessageBytes: 1 << 20, MaxRecords: 50}.Encode(m)
		if err != nil {
			t.Fatalf("decoded %T but cannot encode it: %v", m, err)
		}
		m2, err := Decode(first)
		if err != nil {
			t.Fatalf("cannot decode own encoding: %v\n%s", err, first)
		}
		second, err := Encode(m2)
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("encoding not stable (%v):\n%s\n%s", err, first, second)
		}
	})
}

// FuzzVerify: any payload signed with a trusted key (the hub's own bugs, or a stolen key) is
// parsed without panic, and what is accepted passes the payload checks.
func FuzzVerify(f *testing.F) {
	s := exampleSigner(f)
	for _, p := range []func() ([]byte, error){
		func() ([]byte, error) { x, err := s.SignSchedule(exampleSchedulePayload()); return x.Payload, err },
		func() ([]byte, error) { x, err := s.SignCommand(exampleCommandPayload()); return x.Payload, err },
	} {
		b, err := p()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"command"}`))
	v, err := NewVerifier(exampleKeys(), "cl-07", fixedClock(t0.Add(time.Minute)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		signed := s.Sign(payload)
		if p, err := v.VerifySchedule(signed, nil); err == nil {
			if p.check() != nil || p.Revision == 0 {
				t.Fatalf("accepted a bad schedule payload: %+v", p)
			}
		} else if CodeOf(err) == "internal" {
			t.Fatalf("uncoded error %v", err)
		}
		if p, err := v.VerifyCommand(signed, NewCommandLog(CommandLogState{})); err == nil {
			if p.check() != nil || !t0.Add(time.Minute).Before(p.ExpiresAt) {
				t.Fatalf("accepted a bad command payload: %+v", p)
			}
		} else if CodeOf(err) == "internal" {
			t.Fatalf("uncoded error %v", err)
		}
	})
}

// FuzzParseDeviceAuth: the Authorization header comes from anyone who can reach the hub.
func FuzzParseDeviceAuth(f *testing.F) {
	f.Add("Loa-Device cl-07:loa-ds1-" + "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst")
	f.Add("Loa-Device a:b:c")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		id, secret, err := ParseDeviceAuth(h)
		if err != nil {
			return
		}
		if checkID(id) != nil || id == "" {
			t.Fatalf("accepted device id %q", id)
		}
		if _, err := HashDeviceSecret(secret); err != nil {
			t.Fatalf("accepted a secret that does not hash: %v", err)
		}
	})
}

// FuzzParsePublicKey: keys come from config files written by hand.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(FormatPublicKey(exampleKeys()["hub-2026"]))
	f.Add("ed25519:")
	f.Add("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err == nil && len(k) != 32 {
			t.Fatalf("accepted a %d-byte key", len(k))
		}
	})
}
