package link

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
)

// FuzzHubMessage feeds arbitrary frames from a "hub" to the link's message handling (after
// the welcome): it must never panic, must answer every schedule and command push with a
// delivery report naming the push, and must only ever send messages the hub can decode.
func FuzzHubMessage(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	signer, err := protocol.NewSigner(testKeyID, priv)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	ref := content.RefOf([]byte("item"))
	sch, _ := signer.SignSchedule(protocol.SchedulePayload{ScheduleID: "dev-cl-07", Revision: 3, Devices: []string{testDevice}, IssuedAt: now, Format: protocol.FormatYAML, Document: scheduleDoc("dev-cl-07", 3, ref)})
	cmd, _ := signer.SignCommand(protocol.CommandPayload{ID: "c-1", Seq: 1, Devices: []string{testDevice}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Action: protocol.ActionReload})
	for _, m := range []protocol.Message{
		&protocol.Schedule{Header: protocol.Header{ID: "h-1"}, Signed: sch},
		&protocol.Command{Header: protocol.Header{ID: "h-2"}, Signed: cmd},
		&protocol.Ack{Header: protocol.Header{ID: "h-3"}, Seq: 2},
		&protocol.Ack{Header: protocol.Header{ID: "h-4"}, Seq: 1 << 40},
		&protocol.ErrorMessage{Header: protocol.Header{ID: "h-5"}, Code: "busy", Message: "busy", RetryAfterS: 3},
		&protocol.Welcome{Header: protocol.Header{ID: "h-6"}, HelloReceivedAt: now, HubTime: now, ResendFrom: 1},
	} {
		b, err := protocol.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"type":"schedule","id":"x","signed":{"key_id":"hub-test","payload":"e30=","sig":"AAAA"}}`))

	dir := f.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{DeviceID: testDevice, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	defer j.Close()
	for i := 0; i < 3; i++ {
		if _, err := j.Record(protocol.Confirmation{Output: "speakers", Program: "p", Scheduled: now, Result: protocol.ResultMissed, Clock: protocol.ClockSynced}); err != nil {
			f.Fatal(err)
		}
	}
	st, err := content.Open(filepath.Join(dir, "content"), content.Options{Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	l, err := New(Config{
		HubURL: "http://127.0.0.1:1", DeviceID: testDevice, Secret: testSecret,
		TrustedKeys: protocol.TrustedKeys{testKeyID: priv.Public().(ed25519.PublicKey)},
	}, Deps{
		Logger: log, Clock: clock.NewFake(now), Rand: mrand.New(mrand.NewPCG(1, 1)),
		Journal: j, Store: st, Schedules: &testSchedules{store: st, held: map[string]uint64{}},
		Commands: &testCommands{}, CommandMemory: FileCommandMemory{Path: filepath.Join(dir, "commands.json")}, Status: testStatus{},
	})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protocol.Decode(b)
		if err != nil {
			return // the protocol package's own fuzz tests cover the decoder
		}
		var sent []protocol.Message
		s := &session{l: l, batch: 100, out: func(b []byte) error {
			m, err := protocol.Decode(b)
			if err != nil {
				t.Fatalf("the link sent a message the hub cannot decode: %v\n%s", err, b)
			}
			sent = append(sent, m)
			return nil
		}}
		end := sessionEnd{welcomed: true}
		if err := s.handle(context.Background(), m, &end); err != nil && !strings.Contains(err.Error(), "hub closed the link") {
			t.Fatalf("handle: %v", err)
		}
		switch m.(type) {
		case *protocol.Schedule, *protocol.Command:
			answered := false
			for _, r := range sent {
				if d, ok := r.(*protocol.Delivery); ok && d.Re == m.Envelope().ID {
					answered = true
				}
			}
			// A verified command is carried out beside the session; its report is queued.
			for deadline := time.Now().Add(5 * time.Second); !answered && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				for _, d := range l.takeOutbox() {
					answered = answered || d.Re == m.Envelope().ID
				}
			}
			if !answered {
				t.Fatalf("%s push %q got no delivery report; sent %v", m.Type(), m.Envelope().ID, sent)
			}
		}
	})
}

// FuzzHubURL: any configured hub URL gives a clear error or a base the link can dial.
func FuzzHubURL(f *testing.F) {
	for _, s := range []string{"https://hub.example", "wss://hub.example/loa/agent/ws", "http://127.0.0.1:8080/", "ftp://x", "hub.example", "", "http://[::1]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := hubBase(s)
		if err != nil {
			if !strings.Contains(err.Error(), "hub URL") {
				t.Fatalf("error %q does not say it is about the hub URL", err)
			}
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(u.Path, "/agent/ws") {
			t.Fatalf("hubBase(%q) = %v", s, u)
		}
	})
}
