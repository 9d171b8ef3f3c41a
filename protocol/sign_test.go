package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func verifier(t *testing.T, device string, now time.Time) *Verifier {
	t.Helper()
	v, err := NewVerifier(exampleKeys(), device, fixedClock(now))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func heldRevision(id string, rev uint64) HeldRevision {
	return func(s string) (uint64, bool) { return rev, s == id }
}

func wantRefused(t *testing.T, err error, sentinel error, reason string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != codes[sentinel] || CodeOf(err) != codes[sentinel] {
		t.Fatalf("%v: not a RefusedError with code %s", err, codes[sentinel])
	}
	if !strings.Contains(re.Reason, reason) {
		t.Fatalf("reason %q does not say %q", re.Reason, reason)
	}
}

func TestVerifyScheduleOverTheWire(t *testing.T) {
	m := samples(t)[2].(*Schedule)
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := verifier(t, "cl-07", t0).VerifySchedule(got.(*Schedule).Signed, heldRevision("dev-cl-07", 12))
	if err != nil {
		t.Fatalf("a good schedule was refused: %v", err)
	}
	if p.Document != exampleDocument || p.Revision != 13 || p.ScheduleID != "dev-cl-07" || p.Format != FormatYAML {
		t.Fatalf("payload changed: %+v", p)
	}
	// The signature covers the payload bytes as sent: verify them with ed25519 alone.
	s := got.(*Schedule).Signed
	if !ed25519.Verify(exampleKeys()["hub-2026"], s.Payload, s.Sig) {
		t.Fatal("signature is not over the payload bytes")
	}
}

func TestVerifyRefusesTamperedPayload(t *testing.T) {
	signed, err := exampleSigner(t).SignSchedule(exampleSchedulePayload())
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, "cl-07", t0)
	// Change one byte anywhere in the payload, including one letter of the document.
	positions := []int{0, len(signed.Payload) / 2, len(signed.Payload) - 1, bytes.Index(signed.Payload, []byte("Bản tin"))}
	for _, i := range positions {
		s := *signed
		s.Payload = bytes.Clone(signed.Payload)
		s.Payload[i] ^= 0x01
		_, err := v.VerifySchedule(&s, nil)
		wantRefused(t, err, ErrBadSignature, `does not match the payload for key "hub-2026"`)
	}
	s := *signed
	s.Sig = bytes.Clone(signed.Sig)
	s.Sig[10] ^= 0x80
	_, err = v.VerifySchedule(&s, nil)
	wantRefused(t, err, ErrBadSignature, "does not match")
	s.Sig = signed.Sig[:63]
	_, err = v.VerifySchedule(&s, nil)
	wantRefused(t, err, ErrBadSignature, "does not match")
}

func TestVerifyRefusesKeyChanges(t *testing.T) {
	signed, err := exampleSigner(t).SignSchedule(exampleSchedulePayload())
	if err != nil {
		t.Fatal(err)
	}
	s := *signed
	s.KeyID = "hub-2025"
	_, err = verifier(t, "cl-07", t0).VerifySchedule(&s, nil)
	wantRefused(t, err, ErrUnknownKey, `signed with key "hub-2025", which is not among the trusted keys (hub-2026)`)

	// A key id that is trusted, but for another key: the signature does not match it.
	otherPub, _, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := exampleKeys()
	keys["hub-2027"] = otherPub
	v, err := NewVerifier(keys, "cl-07", fixedClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifySchedule(&s, nil)
	wantRefused(t, err, ErrUnknownKey, "(hub-2026, hub-2027)")
	s.KeyID = "hub-2027"
	_, err = v.VerifySchedule(&s, nil)
	wantRefused(t, err, ErrBadSignature, `for key "hub-2027"`)
}

func TestVerifyRefusesUnsigned(t *testing.T) {
	signed, err := exampleSigner(t).SignSchedule(exampleSchedulePayload())
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, "cl-07", t0)
	for name, s := range map[string]*Signed{
		"nil":        nil,
		"no sig":     {KeyID: "hub-2026", Payload: signed.Payload},
		"no key id":  {Payload: signed.Payload, Sig: signed.Sig},
		"no payload": {KeyID: "hub-2026", Sig: signed.Sig},
	} {
		_, err := v.VerifySchedule(s, nil)
		if !errors.Is(err, ErrUnsigned) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The same through the decoder: a schedule message whose signed object has no signature.
	m, err := Decode([]byte(`{"v":1,"type":"schedule","id":"h-2","signed":{"payload":"` +
		base64.StdEncoding.EncodeToString(signed.Payload) + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifySchedule(m.(*Schedule).Signed, nil)
	wantRefused(t, err, ErrUnsigned, "no signature")
}

func TestVerifyScheduleReplay(t *testing.T) {
	signed, err := exampleSigner(t).SignSchedule(exampleSchedulePayload()) // revision 13
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, "cl-07", t0)
	_, err = v.VerifySchedule(signed, heldRevision("dev-cl-07", 13))
	wantRefused(t, err, ErrReplayed, "schedule dev-cl-07 revision 13 is not newer than revision 13 already received")
	_, err = v.VerifySchedule(signed, heldRevision("dev-cl-07", 20))
	wantRefused(t, err, ErrReplayed, "not newer than revision 20")
	if _, err := v.VerifySchedule(signed, heldRevision("dev-cl-07", 12)); err != nil {
		t.Errorf("revision 13 over 12: %v", err)
	}
	if _, err := v.VerifySchedule(signed, heldRevision("other", 99)); err != nil {
		t.Errorf("first revision of a schedule id: %v", err)
	}
}

// A schedule signed longer ago than MaxScheduleAge is refused: a captured schedule cannot be
// replayed for ever to an agent that lost its state.
func TestVerifyScheduleAge(t *testing.T) {
	signed, err := exampleSigner(t).SignSchedule(exampleSchedulePayload()) // signed at t0
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, "cl-07", t0.Add(MaxScheduleAge+time.Minute))
	v.SetMaxScheduleAge(MaxScheduleAge)
	_, err = v.VerifySchedule(signed, nil)
	wantRefused(t, err, ErrExpired, "schedule dev-cl-07 revision 13 was signed at 2026-11-26T06:29:58Z, more than 60 days before")
	v = verifier(t, "cl-07", t0.Add(MaxScheduleAge-time.Minute))
	v.SetMaxScheduleAge(MaxScheduleAge)
	if _, err := v.VerifySchedule(signed, nil); err != nil {
		t.Errorf("a schedule signed within the limit: %v", err)
	}
}

func TestVerifyWrongDeviceAndKind(t *testing.T) {
	s := exampleSigner(t)
	signed, err := s.SignSchedule(exampleSchedulePayload())
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifier(t, "cl-08", t0).VerifySchedule(signed, nil)
	wantRefused(t, err, ErrWrongDevice, "is for cl-07, not for this device cl-08")

	// A signed command presented as a schedule, and the other way round.
	cmd, err := s.SignCommand(exampleCommandPayload())
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifier(t, "cl-07", t0).VerifySchedule(cmd, nil)
	wantRefused(t, err, ErrBadPayload, "unknown field")
	_, err = verifier(t, "cl-07", t0).VerifyCommand(signed, NewCommandLog(CommandLogState{}))
	wantRefused(t, err, ErrBadPayload, "unknown field")

	// Validly signed but malformed, or carrying a field this agent does not know.
	for payload, reason := range map[string]string{
		`{"kind":"schedule","schedule_id":"s","revision":1,"devices":["cl-07"],"issued_at":"2026-11-26T00:00:00Z","format":"yaml","document":"x","priority":"high"}`: `unknown field "priority"`,
		`{"kind":"schedule","schedule_id":"s","revision":0,"devices":["cl-07"],"issued_at":"2026-11-26T00:00:00Z","format":"yaml","document":"x"}`:                   "field revision: required",
		`{"kind":"schedule","schedule_id":"s","revision":1,"devices":["cl-07"],"issued_at":"2026-11-26T00:00:00Z","format":"toml","document":"x"}`:                   `field format: "toml", want "yaml" or "json"`,
		`{"kind":"schedule","schedule_id":"s","revision":1,"devices":["cl-07"],"issued_at":"2026-11-26T00:00:00Z","format":"yaml","document":"x"} {}`:                "data after the JSON object",
		`not json`: "invalid character",
	} {
		_, err := verifier(t, "cl-07", t0).VerifySchedule(s.Sign([]byte(payload)), nil)
		wantRefused(t, err, ErrBadPayload, reason)
	}
}

func TestVerifyCommand(t *testing.T) {
	s := exampleSigner(t)
	p := exampleCommandPayload() // issued t0, expires t0+10m, seq 5521
	signed, err := s.SignCommand(p)
	if err != nil {
		t.Fatal(err)
	}
	log := NewCommandLog(CommandLogState{})

	// Expired: by the verifier's clock, at and after expires_at.
	for _, now := range []time.Time{p.ExpiresAt, p.ExpiresAt.Add(time.Hour)} {
		_, err := verifier(t, "cl-07", now).VerifyCommand(signed, log)
		wantRefused(t, err, ErrExpired, "command cmd-5521 (play_now) expired at 2026-11-26T06:39:58Z")
	}
	// Addressed to two devices: both accept it once.
	for _, dev := range []string{"cl-07", "cl-08"} {
		got, err := verifier(t, dev, t0.Add(time.Minute)).VerifyCommand(signed, NewCommandLog(CommandLogState{}))
		if err != nil || got.ID != "cmd-5521" || got.Action != ActionPlayNow || got.Class != "emergency" {
			t.Fatalf("%s: %+v %v", dev, got, err)
		}
	}
	v := verifier(t, "cl-07", t0.Add(time.Minute))
	if _, err := v.VerifyCommand(signed, log); err != nil {
		t.Fatal(err)
	}
	// The same command again: replayed.
	_, err = v.VerifyCommand(signed, log)
	wantRefused(t, err, ErrReplayed, "command id cmd-5521 was already received")

	// A reused id with a new sequence, and an older sequence with a new id.
	p2 := p
	p2.Seq = 6000
	reusedID, err := s.SignCommand(p2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyCommand(reusedID, log)
	wantRefused(t, err, ErrReplayed, "command id cmd-5521 was already received")
	p3 := p
	p3.ID, p3.Seq = "cmd-5400", 5400
	older, err := s.SignCommand(p3)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyCommand(older, log)
	wantRefused(t, err, ErrReplayed, "command cmd-5400 has sequence 5400, not above 5521 already accepted from key hub-2026")

	// The log survives a restart through its persistent form.
	state, err := json.Marshal(log.State())
	if err != nil {
		t.Fatal(err)
	}
	var restored CommandLogState
	if err := json.Unmarshal(state, &restored); err != nil {
		t.Fatal(err)
	}
	log2 := NewCommandLog(restored)
	_, err = v.VerifyCommand(signed, log2)
	wantRefused(t, err, ErrReplayed, "already received")
	p4 := p
	p4.ID, p4.Seq, p4.Action, p4.Volume, p4.Content, p4.Class, p4.Title = "cmd-5522", 5522, ActionVolume, f64(0.5), "", "", ""
	next, err := s.SignCommand(p4)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.VerifyCommand(next, log2); err != nil || *got.Volume != 0.5 {
		t.Fatalf("next command after restart: %+v %v", got, err)
	}
	// Ids are forgotten once their command has expired (it is refused as expired anyway).
	late := verifier(t, "cl-07", p.ExpiresAt.Add(time.Minute))
	p5 := p
	p5.ID, p5.Seq, p5.IssuedAt, p5.ExpiresAt = "cmd-9000", 9000, p.ExpiresAt, p.ExpiresAt.Add(10*time.Minute)
	fresh, err := s.SignCommand(p5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.VerifyCommand(fresh, log2); err != nil {
		t.Fatal(err)
	}
	if st := log2.State(); len(st.Seen) != 1 || st.HighestSeq["hub-2026"] != 9000 {
		t.Errorf("log not pruned: %+v", st)
	}
}

func TestSignerChecksPayloads(t *testing.T) {
	s := exampleSigner(t)
	bad := exampleSchedulePayload()
	bad.Document = "caf\xe9" // Latin-1, not UTF-8: JSON would silently alter it
	if _, err := s.SignSchedule(bad); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("latin-1 document: %v", err)
	}
	bad = exampleSchedulePayload()
	bad.Devices = nil
	if _, err := s.SignSchedule(bad); !errors.Is(err, ErrMissingField) {
		t.Errorf("no devices: %v", err)
	}
	c := exampleCommandPayload()
	c.ExpiresAt = c.IssuedAt.Add(48 * time.Hour)
	if _, err := s.SignCommand(c); err == nil || !strings.Contains(err.Error(), "lifetime 48h0m0s exceeds the maximum 24h0m0s") {
		t.Errorf("long-lived command: %v", err)
	}
	c = exampleCommandPayload()
	c.Action = "reboot"
	if _, err := s.SignCommand(c); err == nil || !strings.Contains(err.Error(), `unknown action "reboot"`) {
		t.Errorf("unknown action: %v", err)
	}
	c = exampleCommandPayload()
	c.Stream = "http://radio.example/vov1.mp3"
	if _, err := s.SignCommand(c); err == nil || !strings.Contains(err.Error(), "exactly one of content or stream") {
		t.Errorf("content and stream: %v", err)
	}
	c = exampleCommandPayload()
	c.Action, c.Content, c.Volume = ActionVolume, "", f64(1.2)
	if _, err := s.SignCommand(c); err == nil || !strings.Contains(err.Error(), "1.2 is outside 0..1") {
		t.Errorf("volume 1.2: %v", err)
	}
	c = exampleCommandPayload()
	c.Action, c.Content, c.Class, c.Title, c.Output = ActionScreenshot, "", "", "", "screen"
	signed, err := s.SignCommand(c)
	if err != nil {
		t.Fatalf("screenshot command refused: %v", err)
	}
	got, err := verifier(t, "cl-07", t0.Add(time.Minute)).VerifyCommand(signed, NewCommandLog(CommandLogState{}))
	if err != nil || got.Action != ActionScreenshot || got.Output != "screen" {
		t.Fatalf("screenshot command verified as %+v, %v", got, err)
	}
	if _, err := NewSigner("hub 2026", ed25519.NewKeyFromSeed(exampleSeed)); err == nil {
		t.Error("key id with a space accepted")
	}
	if _, err := NewSigner("k", ed25519.PrivateKey(exampleSeed)); err == nil {
		t.Error("a seed taken for a private key")
	}
}

func TestNewVerifierErrors(t *testing.T) {
	if _, err := NewVerifier(nil, "cl-07", fixedClock(t0)); err == nil || !strings.Contains(err.Error(), "add the hub's public key") {
		t.Errorf("no keys: %v", err)
	}
	if _, err := NewVerifier(TrustedKeys{"k": make([]byte, 31)}, "cl-07", fixedClock(t0)); err == nil || !strings.Contains(err.Error(), "trusted key k: 31 bytes") {
		t.Errorf("short key: %v", err)
	}
	if _, err := NewVerifier(exampleKeys(), "", fixedClock(t0)); err == nil {
		t.Error("no device id accepted")
	}
	if _, err := NewVerifier(exampleKeys(), "cl-07", nil); err == nil {
		t.Error("no clock accepted")
	}
	v := verifier(t, "cl-07", t0)
	signed, _ := exampleSigner(t).SignCommand(exampleCommandPayload())
	if _, err := v.VerifyCommand(signed, nil); err == nil {
		t.Error("VerifyCommand without a log")
	}
}

func TestKeyText(t *testing.T) {
	pub, priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text := FormatPublicKey(pub)
	if !strings.HasPrefix(text, "ed25519:") || len(text) != len("ed25519:")+44 {
		t.Fatalf("public key text %q", text)
	}
	for _, form := range []string{
		text,
		"  " + text + "\n",
		strings.TrimPrefix(text, "ed25519:"),
		hex.EncodeToString(pub),
		"ed25519:" + hex.EncodeToString(pub),
		"ed25519:" + base64.RawURLEncoding.EncodeToString(pub),
	} {
		got, err := ParsePublicKey(form)
		if err != nil || !got.Equal(pub) {
			t.Errorf("ParsePublicKey(%q) = %x, %v", form, got, err)
		}
	}
	ptext := FormatPrivateKey(priv)
	got, err := ParsePrivateKey(ptext)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("private key round trip: %v", err)
	}
	for in, want := range map[string]string{
		"":                    "public key: empty; expected ed25519:<base64 of 32 bytes>",
		"rsa:AAAA":            `public key: unknown key type "rsa:"`,
		"ed25519:AAAA":        "public key: 3 bytes, an ed25519 key has 32",
		"ed25519:not*base64!": "public key: \"not*base64!\" is neither base64 nor 64 hex digits",
		ptext:                 "this is a private key (ed25519-seed:…); agents need the public key (ed25519:…)",
	} {
		if _, err := ParsePublicKey(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePublicKey(%q) = %v, want %q", in, err, want)
		}
	}
	if _, err := ParsePrivateKey(text); err == nil || !strings.Contains(err.Error(), "this is a public key") {
		t.Errorf("public key as private: %v", err)
	}
	keys, err := ParseTrustedKeys(map[string]string{"hub-2026": text, "hub-2027": hex.EncodeToString(pub)})
	if err != nil || len(keys) != 2 || !keys["hub-2027"].Equal(pub) {
		t.Fatalf("ParseTrustedKeys: %v", err)
	}
	for m, want := range map[*map[string]string]string{
		{"hub-2026": text, "hub-2027": "ed25519:AAAA"}: "protocol: trusted key hub-2027: public key: 3 bytes",
		{"hub 2026": text}: `protocol: trusted key id "hub 2026"`,
		{}:                 "no trusted keys",
	} {
		if _, err := ParseTrustedKeys(*m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTrustedKeys(%v) = %v, want %q", *m, err, want)
		}
	}
}
