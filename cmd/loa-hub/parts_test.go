package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loa-project/loa/internal/testkit"
)

// statusRow is the device's row of `loa status`, its columns split on runs of spaces, and
// the whole output.
func statusRow(t *testing.T, h *hubProc, device string) (string, string) {
	t.Helper()
	out := h.loaOK(t, "status")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, device+" ") {
			return strings.Join(strings.Fields(l), " "), out
		}
	}
	return "", out
}

// The relay's state goes from a real agent's heartbeat to the hub's store and to staff: a
// relay whose port is missing is a FAULT in `loa status` and `loa device show`, logged once
// by the hub however many heartbeats repeat it; plugged in (socat makes the port), it is ok
// again. An agent of the previous version, whose heartbeat has no parts, still works and
// shows none.
func TestDevicePartsReachStaff(t *testing.T) {
	testkit.NeedSocat(t)
	_, _, agentBin := bins(t)
	h := startHubProc(t, func(p string) string { return "status_interval: 1s\npublic_url: http://127.0.0.1:" + p + "\n" })
	h.loaOK(t, "area", "add", "qn/tk", "--name", "Tam Kỳ")

	// The previous agent's heartbeat, as it wrote it: amplifier as a bool, no parts.
	old := enrolAgent(t, h, "tk/old", "qn/tk")
	old.ws.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"status","id":"a-3","at":"`+time.Now().UTC().Format(time.RFC3339)+
		`","now_playing":[{"output":"speakers","program":"old-agent-plays"}],"volume":0.8,"amplifier":true,"uptime_s":12}`))
	var row, out string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if row, out = statusRow(t, h, "tk/old"); strings.Contains(row, "old-agent-plays") {
			break
		}
	}
	if !strings.Contains(out, " PARTS ") || !strings.Contains(row, " yes ") || !strings.Contains(row, " - speakers: old-agent-plays") {
		t.Fatalf("the previous agent's heartbeat: want it online with no parts (-):\n%s", out)
	}
	if show := h.loaOK(t, "device", "show", "tk/old"); strings.Contains(show, "relay") {
		t.Errorf("a device that reported no relay shows one:\n%s", show)
	}

	// A real agent whose relay is not plugged in.
	enrol := h.loaOK(t, "device", "enroll", "tk/cl-07", "--area", "qn/tk")
	dir := t.TempDir()
	port := filepath.Join(dir, "relay")
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte("data_dir: data\naudio:\n  output: \"null\"\n"+
		"amplifier: {driver: lcus, port: "+port+", warm_up: 0s, retry_max: 1s, refresh: 1s}\n"+enrol), 0o600)
	ag := exec.Command(agentBin, "run", "--config", cfg)
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	ag.Stdout, ag.Stderr = logf, logf
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ag.Process.Signal(os.Interrupt)
		ag.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("agent log:\n%s", b)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if row, out = statusRow(t, h, "tk/cl-07"); strings.Contains(row, "FAULT relay") {
			break
		}
	}
	if !strings.Contains(row, "FAULT relay") || !strings.Contains(out, "! tk/cl-07: relay: LCUS relay "+port+": open") ||
		!strings.Contains(out, "loa device show tk/cl-07") {
		t.Fatalf("loa status does not flag the unplugged relay:\n%s", out)
	}
	showOut := h.loaOK(t, "device", "show", "tk/cl-07")
	t.Logf("loa status:\n%s\nloa device show tk/cl-07:\n%s", out, showOut)
	show := strings.Join(strings.Fields(showOut), " ")
	if !strings.Contains(show, "relay FAULT since ") || !strings.Contains(show, "is the USB relay board plugged in?) (state unknown)") {
		t.Fatalf("loa device show does not give the relay's fault:\n%s", show)
	}
	time.Sleep(3 * time.Second) // a few more heartbeats with the same fault

	// Plugged in: the agent's retry opens it, the next heartbeat says it works.
	testkit.UnpluggedPtyAt(t, port, filepath.Join(dir, "board")).Plug()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if row, out = statusRow(t, h, "tk/cl-07"); strings.Contains(row, " ok ") {
			break
		}
	}
	if !strings.Contains(row, " ok ") || strings.Contains(out, "! tk/cl-07") {
		t.Fatalf("the relay works again but loa status does not say so:\n%s", out)
	}
	if show := strings.Join(strings.Fields(h.loaOK(t, "device", "show", "tk/cl-07")), " "); !strings.Contains(show, "relay off") {
		t.Fatalf("loa device show: want relay off:\n%s", show)
	}
	log, _ := os.ReadFile(filepath.Join(h.dir, "hub.log"))
	warns := strings.Count(string(log), "device reports a faulty part")
	again := strings.Count(string(log), "device parts work again")
	if warns != 1 || again != 1 || !strings.Contains(string(log), "level=WARN") {
		t.Errorf("hub log: %d WARN(s) for the fault and %d line(s) for the recovery, want one each:\n%s", warns, again, log)
	}
}
