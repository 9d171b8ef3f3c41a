package protocol

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Benchmarks come in pairs: the protocol's operation and, as its reference, the bare library
// work it cannot avoid (encoding/json on the same records; SHA-512 and ed25519 on the same
// bytes). scripts/bench-protocol prints them side by side.

func batch500() *Confirmations {
	m := &Confirmations{Header: Header{ID: "a-77"}}
	for i := range 500 {
		r := exampleRecord(uint64(10_000 + i))
		r.Start = r.Start.Add(time.Duration(i) * time.Minute)
		r.End = r.End.Add(time.Duration(i) * time.Minute)
		m.Records = append(m.Records, r)
	}
	return m
}

func BenchmarkEncodeConfirmations500(b *testing.B) {
	m := batch500()
	out, _ := Encode(m)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefJSONMarshalConfirmations500(b *testing.B) {
	recs := batch500().Records
	out, _ := json.Marshal(recs)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(recs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConfirmations500(b *testing.B) {
	in, err := Encode(batch500())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefJSONUnmarshalConfirmations500(b *testing.B) {
	in, _ := json.Marshal(batch500().Records)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var recs []Confirmation
		if err := json.Unmarshal(in, &recs); err != nil {
			b.Fatal(err)
		}
	}
}

// schedule100k is a schedule document of about 100 kB: many programmes of many items.
func schedule100k() SchedulePayload {
	var d strings.Builder
	d.WriteString("version: 1\nid: dev-cl-07\nrevision: 13\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n")
	for i := 0; d.Len() < 100_000; i++ {
		fmt.Fprintf(&d, "  - id: p%04d\n    title: Chương trình %d\n    class: normal\n    cron: \"0 %d %d * * *\"\n    items:\n", i, i, i%60, i%24)
		for j := range 4 {
			fmt.Fprintf(&d, "      - content: sha256:%064x\n", i*4+j)
		}
	}
	p := exampleSchedulePayload()
	p.Document = d.String()
	return p
}

func BenchmarkSignSchedule100k(b *testing.B) {
	s, p := exampleSigner(b), schedule100k()
	signed, _ := s.SignSchedule(p)
	b.SetBytes(int64(len(signed.Payload)))
	for b.Loop() {
		if _, err := s.SignSchedule(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySchedule100k(b *testing.B) {
	signed, err := exampleSigner(b).SignSchedule(schedule100k())
	if err != nil {
		b.Fatal(err)
	}
	v, _ := NewVerifier(exampleKeys(), "cl-07", fixedClock(t0))
	b.SetBytes(int64(len(signed.Payload)))
	for b.Loop() {
		if _, err := v.VerifySchedule(signed, heldRevision("dev-cl-07", 12)); err != nil {
			b.Fatal(err)
		}
	}
}

// The floor of signing: ed25519.Sign of the same payload bytes (two SHA-512 passes inside).
func BenchmarkRefEd25519Sign100k(b *testing.B) {
	signed, _ := exampleSigner(b).SignSchedule(schedule100k())
	priv := ed25519.NewKeyFromSeed(exampleSeed)
	b.SetBytes(int64(len(signed.Payload)))
	for b.Loop() {
		ed25519.Sign(priv, signed.Payload)
	}
}

// The floor of verification: ed25519.Verify of the same bytes (one SHA-512 pass inside).
func BenchmarkRefEd25519Verify100k(b *testing.B) {
	signed, _ := exampleSigner(b).SignSchedule(schedule100k())
	pub := exampleKeys()["hub-2026"]
	b.SetBytes(int64(len(signed.Payload)))
	for b.Loop() {
		if !ed25519.Verify(pub, signed.Payload, signed.Sig) {
			b.Fatal("bad")
		}
	}
}

func BenchmarkRefSHA512_100k(b *testing.B) {
	signed, _ := exampleSigner(b).SignSchedule(schedule100k())
	b.SetBytes(int64(len(signed.Payload)))
	for b.Loop() {
		sha512.Sum512(signed.Payload)
	}
}

// A whole schedule message on the wire: encode (base64 of the signed payload) and decode.
func BenchmarkDecodeScheduleMessage100k(b *testing.B) {
	signed, _ := exampleSigner(b).SignSchedule(schedule100k())
	in, err := Encode(&Schedule{Header: Header{ID: "h-2"}, Signed: signed})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}
