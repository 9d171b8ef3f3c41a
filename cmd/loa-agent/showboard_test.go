package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// `loa-agent show --out board` without --port talks to the sign the agent config names, with
// its serial settings (here its address), so a technician's test uses what the agent uses;
// with no config the default is the package's udev name.
func TestShowBoardFromAgentConfig(t *testing.T) {
	bin := testkit.Binary(t, "loa-agent")
	dir := t.TempDir()
	pty := testkit.NewPty(t)
	a, b := pty.A, pty.B
	got := make(chan []byte, 1)
	go func() {
		pf, err := os.Open(b)
		if err != nil {
			got <- nil
			return
		}
		defer pf.Close()
		var all []byte
		buf := make([]byte, 256)
		for !bytes.Contains(all, []byte{0x04}) {
			n, err := pf.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- all
	}()
	// An unfinished config (no device_id yet) as on a box being installed.
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte("device_id: \"\"\noutputs: [speakers, board]\nboard:\n  port: "+a+"\n  baud: 9600\n  parity: even\n  data_bits: 7\n  stop_bits: 1\n  address: \"07\"\n"), 0o640)
	out, errOut, code := run(t, bin, "show", "Họp dân", "--out", "board", "--config", cfg)
	if code != 0 || !strings.Contains(out, `"port":"`+a+`"`) {
		t.Fatalf("show on the config's board: exit %d %s %s", code, out, errOut)
	}
	select {
	case frame := <-got:
		if !bytes.Contains(frame, []byte("\x01Z07\x02")) || !bytes.Contains(frame, []byte("Hop dan")) {
			t.Errorf("the sign received %q, want address 07 from the config", frame)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing reached the sign")
	}
	out, _, _ = run(t, bin, "show", "x", "--out", "board", "--config", filepath.Join(dir, "none.yaml"))
	if !strings.Contains(out, `"port":"/dev/loa-sign"`) || !strings.Contains(out, "board.port") {
		t.Errorf("with no config the port is not the udev name, or the error does not say where to set it: %s", out)
	}
}
