package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/internal/testkit"
	"github.com/loa-project/loa/protocol"
)

// The whole staff loop with real processes: keygen, bootstrap an admin, serve, then the CLI
// adds areas, enrols a device, pushes a schedule that a websocket agent receives signed and
// verifies, and reads back the agent's confirmations; a commune token is refused elsewhere.
func TestHubAndCLIProcesses(t *testing.T) {
	dir := t.TempDir()
	hubBin, loaBin := testkit.Binary(t, "loa-hub"), testkit.Binary(t, "loa")
	addr := testkit.FreeAddr(t)
	keyFile := filepath.Join(dir, "hub.key")
	out := testkit.Run(t, nil, hubBin, "keygen", "--out", keyFile, "--key-id", "hub-test")
	m := regexp.MustCompile(`hub-test: "(ed25519:[^"]+)"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keygen printed no trusted key line:\n%s", out)
	}
	pub, err := protocol.ParsePublicKey(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Command(hubBin, "keygen", "--out", keyFile).CombinedOutput(); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	cfg := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\ndata_dir: data\nsigning_key_file: hub.key\nsigning_key_id: hub-test\n", addr)), 0o644)
	out = testkit.Run(t, nil, hubBin, "user", "add", "admin", "--scope", "qn", "--area-name", "Quảng Nam", "--config", cfg)
	admin := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if !strings.HasPrefix(admin, "loa-st1-") {
		t.Fatalf("user add printed no token:\n%s", out)
	}

	logf, _ := os.Create(filepath.Join(dir, "hub.log"))
	base := "http://" + addr
	var hub *exec.Cmd
	startHub := func() {
		hub = exec.Command(hubBin, "serve", "--config", cfg)
		hub.Stdout, hub.Stderr = logf, logf
		if err := hub.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			if resp, err := http.Get(base + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("hub did not start listening")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	startHub()
	t.Cleanup(func() {
		hub.Process.Signal(os.Interrupt)
		hub.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("hub log:\n%s", b)
		}
	})

	env := []string{"LOA_HUB=" + base, "LOA_TOKEN=" + admin, "HOME=" + dir}
	testkit.Run(t, env, loaBin, "area", "add", "qn/tam-ky", "--name", "Tam Kỳ")
	testkit.Run(t, env, loaBin, "area", "add", "qn/tam-ky/tam-thanh", "--name", "Tam Thanh")
	testkit.Run(t, env, loaBin, "area", "add", "qn/tam-ky/an-son")
	out = testkit.Run(t, env, loaBin, "device", "enroll", "tam-thanh/cl-07", "--area", "qn/tam-ky/tam-thanh")
	sm := regexp.MustCompile(`secret: (loa-ds1-\S+)`).FindStringSubmatch(out)
	if sm == nil {
		t.Fatalf("enroll printed no secret:\n%s", out)
	}
	secret := sm[1]

	// A commune user made on the server: their token cannot push to the neighbouring commune.
	out = testkit.Run(t, nil, hubBin, "user", "add", "lan", "--scope", "qn/tam-ky/tam-thanh", "--config", cfg)
	lan := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	doc := filepath.Join(dir, "commune.yaml")
	os.WriteFile(doc, []byte("version: 1\nid: commune\nrevision: 1\ntimezone: Asia/Ho_Chi_Minh\nprograms:\n  - id: relay\n    cron: \"0 0 11 * * *\"\n    items:\n      - stream: http://radio.example/qnr.mp3\n        duration: 30m\n"), 0o644)
	cmd := exec.Command(loaBin, "--hub", base, "--token", lan, "schedule", "push", doc, "--to", "qn/tam-ky/an-son")
	cmd.Env = []string{"HOME=" + dir}
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "in your scope qn/tam-ky/tam-thanh") {
		t.Fatalf("commune token pushed to another commune: %v\n%s", err, b)
	}
	cmd = exec.Command(loaBin, "schedule", "push", doc, "--to", "cl-07")
	cmd.Env = append(os.Environ(), env...)
	b, _ = cmd.CombinedOutput()
	if !strings.Contains(string(b), "use --to tam-thanh/cl-07") {
		t.Fatalf("short device id gave no hint:\n%s", b)
	}

	// An agent connects (gorilla + protocol only) before the push.
	u := "ws://" + addr + "/agent/ws"
	if _, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth("tam-thanh/cl-07", secret+"x")}}); err == nil || resp.StatusCode != 401 {
		t.Fatalf("wrong secret connected: %v", err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth("tam-thanh/cl-07", secret)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send := func(m protocol.Message) {
		b, err := protocol.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		ws.WriteMessage(websocket.TextMessage, b)
	}
	recv := func() protocol.Message {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		m, err := protocol.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(&protocol.Hello{Header: protocol.Header{ID: "a-1"}, DeviceID: "tam-thanh/cl-07", SoftwareVersion: "test"})
	if _, ok := recv().(*protocol.Welcome); !ok {
		t.Fatal("no welcome")
	}
	out = testkit.Run(t, append(env, "LOA_TOKEN="+lan), loaBin, "schedule", "push", doc, "--to", "qn/tam-ky/tam-thanh")
	if !strings.Contains(out, "1 of them online") {
		t.Fatalf("push output: %s", out)
	}
	sch, ok := recv().(*protocol.Schedule)
	if !ok {
		t.Fatal("the pushed schedule did not reach the agent")
	}
	v, _ := protocol.NewVerifier(protocol.TrustedKeys{"hub-test": pub}, "tam-thanh/cl-07", clock{})
	p, err := v.VerifySchedule(sch.Signed, func(string) (uint64, bool) { return 0, false })
	if err != nil {
		t.Fatalf("agent refuses the push: %v", err)
	}
	send(&protocol.Delivery{Header: protocol.Header{ID: "a-2", Re: sch.ID}, ScheduleID: p.ScheduleID, Revision: p.Revision, State: protocol.DeliveryActive})
	start := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	send(&protocol.Confirmations{Header: protocol.Header{ID: "a-3"}, Records: []protocol.Confirmation{{Device: "tam-thanh/cl-07", Seq: 1,
		ScheduleID: p.ScheduleID, Revision: p.Revision, Program: "qn/tam-ky/tam-thanh/relay", Item: "http://radio.example/qnr.mp3",
		Start: start, End: start.Add(30 * time.Minute), Proof: protocol.Proof{PlayedS: 1800}, Result: protocol.ResultCompleted}}})
	if ack, ok := recv().(*protocol.Ack); !ok || ack.Seq != 1 {
		t.Fatalf("no ack 1")
	}

	// Kill the hub (SIGKILL, no shutdown) and restart it: the agent reconnects, is told to
	// resend from 2, and a duplicate of 1 with the new 2 ends with both stored once.
	hub.Process.Kill()
	hub.Wait()
	ws.Close()
	startHub()
	ws, _, err = websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {protocol.FormatDeviceAuth("tam-thanh/cl-07", secret)}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	send(&protocol.Hello{Header: protocol.Header{ID: "a-4"}, DeviceID: "tam-thanh/cl-07", SoftwareVersion: "test",
		ActiveSchedule: &protocol.ScheduleRef{ID: p.ScheduleID, Revision: p.Revision}, Journal: protocol.JournalState{HighWater: 2, Acked: 1}})
	w, ok := recv().(*protocol.Welcome)
	if !ok || w.ResendFrom != 2 || w.LatestSchedule != nil {
		t.Fatalf("welcome after a hub restart: %+v", w)
	}
	rec2 := protocol.Confirmation{Device: "tam-thanh/cl-07", Seq: 2, ScheduleID: p.ScheduleID, Revision: p.Revision,
		Program: "qn/tam-ky/tam-thanh/relay", Start: start.Add(time.Hour), End: start.Add(90 * time.Minute), Proof: protocol.Proof{PlayedS: 1800}, Result: protocol.ResultCompleted}
	rec1 := protocol.Confirmation{Device: "tam-thanh/cl-07", Seq: 1, Start: start, Proof: protocol.Proof{PlayedS: 5}, Result: protocol.ResultFailed}
	send(&protocol.Confirmations{Header: protocol.Header{ID: "a-5"}, Records: []protocol.Confirmation{rec1, rec2}})
	if ack, ok := recv().(*protocol.Ack); !ok || ack.Seq != 2 {
		t.Fatalf("no ack 2 after the restart")
	}
	csv := testkit.Run(t, env, loaBin, "confirmations", "--csv", "--device", "tam-thanh/cl-07", "--since", "2026-11-26")
	r := bufio.NewScanner(strings.NewReader(csv))
	var lines []string
	for r.Scan() {
		lines = append(lines, r.Text())
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "device,seq,area") || !strings.Contains(lines[1], "tam-thanh/cl-07,1,qn/tam-ky/tam-thanh") ||
		!strings.Contains(lines[1], ",completed,") || !strings.Contains(lines[2], "tam-thanh/cl-07,2,") {
		t.Fatalf("confirmations CSV:\n%s", csv)
	}
	var status string
	for range 100 {
		status = testkit.Run(t, env, loaBin, "status")
		if strings.Contains(status, "active") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !regexp.MustCompile(`tam-thanh/cl-07\s+qn/tam-ky/tam-thanh\s+yes\s+just now\s+1\s+active\s+1`).MatchString(status) {
		t.Fatalf("status table:\n%s", status)
	}
	table := testkit.Run(t, env, loaBin, "confirmations")
	if !strings.Contains(table, "completed") || !strings.Contains(table, "2 confirmation(s)") {
		t.Fatalf("confirmations table:\n%s", table)
	}
}

// loa-hub user token, user disable and token revoke retire credentials on the server itself.
func TestCredentialCommands(t *testing.T) {
	dir := t.TempDir()
	hubBin := testkit.Binary(t, "loa-hub")
	testkit.Run(t, nil, hubBin, "keygen", "--out", filepath.Join(dir, "hub.key"))
	cfg := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfg, []byte("data_dir: data\nsigning_key_file: hub.key\n"), 0o600)
	last := func(out string) string {
		return strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	}
	first := last(testkit.Run(t, nil, hubBin, "user", "add", "admin", "--scope", "qn", "--area-name", "QN", "--config", cfg))
	second := last(testkit.Run(t, nil, hubBin, "user", "token", "admin", "--config", cfg, "--valid-for", "24h"))
	if !strings.HasPrefix(second, "loa-st1-") || second == first {
		t.Fatalf("user token printed %q", second)
	}
	cmd := exec.Command(hubBin, "token", "revoke", "--config", cfg)
	cmd.Stdin = strings.NewReader(first + "\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "token of admin is revoked") {
		t.Fatalf("token revoke: %v %s", err, out)
	}
	cmd = exec.Command(hubBin, "token", "revoke", "--config", cfg)
	cmd.Stdin = strings.NewReader(first + "\n")
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "did not work already") {
		t.Fatalf("second revoke: %s", out)
	}
	if out := testkit.Run(t, nil, hubBin, "user", "disable", "admin", "--config", cfg); !strings.Contains(out, "disabled") {
		t.Fatalf("user disable: %s", out)
	}
}
