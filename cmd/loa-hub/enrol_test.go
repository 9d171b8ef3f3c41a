package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent"
)

// What `loa device enroll` prints is pasted as it is into an agent config, which the agent's
// own loader accepts; the real loa-agent then connects with it. The URL is the hub's
// public_url, not its listen address, and the key is the hub's.
func TestEnrolOutputIsAgentConfig(t *testing.T) {
	_, _, agentBin := bins(t)
	// localhost, not the listen address 127.0.0.1, so the test sees which one enrol prints.
	var port string
	h := startHubProc(t, func(p string) string { port = p; return "public_url: http://localhost:" + p + "\n" })

	h.loaOK(t, "area", "add", "qn/tam-ky", "--name", "Tam Kỳ")
	code, out, errs := h.loa(t, "device", "enroll", "tam-thanh/cl-07", "--area", "qn/tam-ky")
	if code != 0 {
		t.Fatalf("enroll: %d %s %s", code, out, errs)
	}
	if !strings.Contains(out, `url: "http://localhost:`+port+`"`) || !strings.Contains(out, "trusted_keys:\n    hub-test: \"ed25519:") {
		t.Fatalf("enroll output lacks the public URL or the key:\n%s", out)
	}
	// public_url is localhost: the hub warns on stderr, never in the pasted block.
	if !strings.Contains(errs, "set public_url") {
		t.Fatalf("no warning about a loopback public_url: %q", errs)
	}
	who := h.loaOK(t, "whoami")
	key := out[strings.Index(out, "hub-test: "):]
	key = key[:strings.Index(key, "\n")]
	if !strings.Contains(who, key) {
		t.Fatalf("whoami does not print the key enroll printed (%s):\n%s", key, who)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte("data_dir: data\naudio:\n  output: \"null\"\nlog:\n  level: debug\n"+out), 0o600)
	c, err := agent.LoadConfig(cfg)
	if err != nil {
		t.Fatalf("the agent refuses the pasted enrolment: %v\n%s", err, out)
	}
	if c.DeviceID != "tam-thanh/cl-07" || c.Hub.URL != "http://localhost:"+port || !strings.HasPrefix(c.Hub.Secret, "loa-ds1-") || c.Hub.TrustedKeys["hub-test"] == "" {
		t.Fatalf("pasted config read as %+v", c.Hub)
	}

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
	var show string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if show = h.loaOK(t, "device", "show", "tam-thanh/cl-07"); strings.Contains(show, "online               true") || strings.Contains(show, "online\ttrue") {
			break
		}
	}
	if !strings.Contains(strings.Join(strings.Fields(show), " "), "online true") {
		t.Fatalf("the agent with the pasted config did not connect:\n%s", show)
	}
}
