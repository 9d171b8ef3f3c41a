package protocol

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

// The documented example key (docs/protocol.md): a fixed seed, so examples and seeds are
// reproducible. Never use it outside tests and docs.
var exampleSeed = []byte("loa-protocol-example-key-seed-32")

func exampleSigner(tb testing.TB) *Signer {
	tb.Helper()
	s, err := NewSigner("hub-2026", ed25519.NewKeyFromSeed(exampleSeed))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func exampleKeys() TrustedKeys {
	return TrustedKeys{"hub-2026": ed25519.NewKeyFromSeed(exampleSeed).Public().(ed25519.PublicKey)}
}

var t0 = time.Date(2026, 11, 26, 6, 29, 58, 250_000_000, time.UTC)

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

const exampleDocument = `version: 1
id: dev-cl-07
revision: 13
timezone: Asia/Ho_Chi_Minh
programs:
  - id: morning
    title: Bản tin sáng
    class: normal
    cron: "0 30 6 * * MON-SAT"
    items:
      - content: sha256:9f2c3a0d5b6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081
`

func exampleSchedulePayload() SchedulePayload {
	return SchedulePayload{ScheduleID: "dev-cl-07", Revision: 13, Devices: []string{"cl-07"},
		IssuedAt: t0, Format: FormatYAML, Document: exampleDocument}
}

func exampleCommandPayload() CommandPayload {
	return CommandPayload{ID: "cmd-5521", Seq: 5521, Devices: []string{"cl-07", "cl-08"},
		IssuedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), IssuedBy: "staff:tam-thanh/lan",
		Action: ActionPlayNow, Content: "sha256:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
		Class: "emergency", Title: "Cảnh báo bão số 13"}
}

func exampleRecord(seq uint64) Confirmation {
	return Confirmation{Device: "cl-07", Seq: seq, Output: "speakers", ScheduleID: "dev-cl-07",
		Revision: 12, Program: "morning", ItemIndex: 0,
		Item:      "sha256:9f2c3a0d5b6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
		Scheduled: t0.Add(2 * time.Second), Start: t0.Add(2*time.Second + 12*time.Millisecond),
		End: t0.Add(5*time.Minute + 3*time.Second), Proof: Proof{PlayedS: 300.98, PeakDBFS: f64(-1.2),
			RMSDBFS: f64(-18.4), SilenceS: 0.4, Gaps: 0, Underruns: 0}, Result: ResultCompleted,
		Clock: ClockSynced}
}

// samples returns one fully populated message of every type, in Types() order.
func samples(tb testing.TB) []Message {
	tb.Helper()
	s := exampleSigner(tb)
	sch, err := s.SignSchedule(exampleSchedulePayload())
	if err != nil {
		tb.Fatal(err)
	}
	cmd, err := s.SignCommand(exampleCommandPayload())
	if err != nil {
		tb.Fatal(err)
	}
	missed := Confirmation{Device: "cl-07", Seq: 1043, Output: "speakers", ScheduleID: "dev-cl-07",
		Revision: 12, Program: "noon", Scheduled: t0.Add(6 * time.Hour), Result: ResultMissed,
		Error: "device was off until 12:41", Clock: ClockUnsynced}
	return []Message{
		&Hello{Header: Header{ID: "a-1"}, DeviceID: "cl-07", SoftwareVersion: "loa-agent 0.4.0",
			Versions: []int{1}, SentAt: t0, Arch: "arm64", Upgrades: true,
			ActiveSchedule: &ScheduleRef{ID: "dev-cl-07", Revision: 12},
			Journal:        JournalState{HighWater: 1043, Acked: 1017},
			Store:          StoreSummary{Items: 214, Bytes: 1_873_200_640, FreeBytes: 9_310_212_096}},
		&Welcome{Header: Header{ID: "h-1", Re: "a-1"}, HelloReceivedAt: t0.Add(7*time.Minute + 40*time.Millisecond),
			HubTime:        t0.Add(7*time.Minute + 52*time.Millisecond),
			LatestSchedule: &ScheduleRef{ID: "dev-cl-07", Revision: 13}, ResendFrom: 1018, StatusIntervalS: 60, ReconnectBaseS: 20,
			TimeSamples: true},
		&Schedule{Header: Header{ID: "h-2"}, Signed: sch},
		&Command{Header: Header{ID: "h-3"}, Signed: cmd},
		&Confirmations{Header: Header{ID: "a-2"}, Records: []Confirmation{exampleRecord(1042), missed}},
		&Ack{Header: Header{ID: "h-4", Re: "a-2"}, Seq: 1043},
		&Status{Header: Header{ID: "a-3"}, At: t0.Add(10 * time.Minute),
			NowPlaying: []NowPlaying{{Output: "speakers", ScheduleID: "dev-cl-07", Revision: 12,
				Program: "morning", Class: "normal", Item: "sha256:9f2c3a0d5b6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
				Since: t0.Add(9 * time.Minute)}},
			Volume: f64(0.8), Amplifier: new(true), ClockOffsetS: f64(-0.012), ClockState: ClockSynced,
			DiskFreeBytes: i64(9_310_212_096), TemperatureC: f64(58.4), UptimeS: 86_412,
			Link:        &LinkQuality{Kind: "cellular", SignalDBM: f64(-87), Quality: f64(0.6), RTTMS: f64(142)},
			ContentAddr: "192.168.1.23:7081",
			Upgrade: &UpgradeStatus{Rollout: "r-12", Version: "1.4.0", From: "1.3.2", State: UpgradeWaiting,
				Since: t0.Add(8 * time.Minute)}},
		&Delivery{Header: Header{ID: "a-4", Re: "h-2"}, ScheduleID: "dev-cl-07", Revision: 13,
			State: DeliveryContentReady},
		&ErrorMessage{Header: Header{ID: "h-5", Re: "a-9"}, Code: "busy",
			Message: "the hub is accepting reconnections slowly after a restart", RetryAfterS: 30},
		&Time{Header: Header{ID: "h-6", Re: "a-5"}, SentAt: t0.Add(11 * time.Minute),
			ReceivedAt: t0.Add(18*time.Minute + 61*time.Millisecond), HubTime: t0.Add(18*time.Minute + 61*time.Millisecond + 200*time.Microsecond)},
		&Neighbours{Header: Header{ID: "h-6"}, Key: "qk3Zk7y1Vv0x9d2bEw4T6mJp0sXnL8cA1uR5hG3iKfY",
			Peers: []Neighbour{{DeviceID: "cl-05", Addr: "192.168.1.21:7081"}, {DeviceID: "cl-09", Addr: "192.168.1.35:7081"}}},
		exampleUpgrade(),
	}
}

// exampleUpgrade is signed with the zero seed under "release-2026" (TestReleaseSignature's key).
func exampleUpgrade() *Upgrade {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	p := ReleasePackage{Name: ReleaseName, Version: "1.4.0", Arch: "arm64", Size: 9_812_344,
		SHA256: "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592", URL: "/api/releases/1.4.0/arm64/package"}
	SignRelease(&p, "release-2026", priv)
	prev := ReleasePackage{Name: ReleaseName, Version: "1.3.2", Arch: "arm64", Size: 9_790_120,
		SHA256: "8f14e45fceea167a5a36dedd4bea25438f14e45fceea167a5a36dedd4bea2543", URL: "/api/releases/1.3.2/arm64/package"}
	SignRelease(&prev, "release-2026", priv)
	return &Upgrade{Header: Header{ID: "h-7"}, Rollout: "r-12", Package: p, Previous: &prev,
		Window: "02:00-04:00", HealthyWithinS: 600}
}

func TestSamplesCoverEveryType(t *testing.T) {
	ms := samples(t)
	types := Types()
	if len(ms) != len(types) {
		t.Fatalf("%d samples for %d types", len(ms), len(types))
	}
	for i, m := range ms {
		if m.Type() != types[i] {
			t.Errorf("sample %d is %s, want %s", i, m.Type(), types[i])
		}
		if newMessage(types[i]) == nil {
			t.Errorf("Decode does not know type %s", types[i])
		}
	}
	if newMessage("nope") != nil || !strings.Contains(typeList(), "delivery") {
		t.Error("type table is wrong")
	}
}
