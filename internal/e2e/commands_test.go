package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/internal/testkit"
)

// hubConfirmation is a confirmation at the hub with the fields these tests look at.
type hubConfirmation struct {
	Device    string   `json:"device"`
	Seq       uint64   `json:"seq"`
	Program   string   `json:"program"`
	CommandID string   `json:"command_id"`
	Result    string   `json:"result"`
	PlayedS   float64  `json:"played_s"`
	Volume    *float64 `json:"volume"`
}

// TestCommandsEndToEnd: `loa play` of a file on two agents gives confirmations at the hub
// naming the command; `loa volume 0.3` reaches both agents and the next play is at 0.3;
// `loa stop` ends a long play (interrupted); a device cut off until a command expired never
// gets it and the hub says so.
func TestCommandsEndToEnd(t *testing.T) {
	t.Parallel() // waits more than it works, and measures no time: beside another such test
	if testing.Short() {
		t.Skip("real processes for about a minute")
	}
	bins := build(t)
	env, hubURL, keyLine, hub := hubEnv(t, bins)
	testkit.Run(t, env, bins.cli, "area", "add", "qn/tk")
	secretRe := regexp.MustCompile(`secret: (loa-ds1-[a-z0-9]+)`)
	s1 := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-01", "--area", "qn/tk"))[1]
	s2 := secretRe.FindStringSubmatch(testkit.Run(t, env, bins.cli, "device", "enroll", "qn/tk/cl-02", "--area", "qn/tk"))[1]
	media := t.TempDir()
	for name, spec := range map[string][]string{"short": {"2", "600"}, "long": {"40", "300"}} {
		if out, err := exec.Command("sox", "-n", "-r", "44100", "-c", "1", filepath.Join(media, name+".wav"), "synth", spec[0], "sine", spec[1]).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, out)
		}
	}
	link2 := newLink(t, strings.TrimPrefix(hubURL, "http://"))
	a1 := newAgent(t, bins, "qn/tk/cl-01", s1, hubURL, keyLine)
	a2 := newAgent(t, bins, "qn/tk/cl-02", s2, "http://"+link2.Addr(), keyLine)
	a1.start(t, bins)
	a2.start(t, bins)
	logs := func() string {
		return "hub:\n" + hub.String() + "\nagent 1:\n" + a1.proc.String() + "\nagent 2:\n" + a2.proc.String() +
			"\njournal 1:\n" + dumpJournal(a1.records(bins)) + "\njournal 2:\n" + dumpJournal(a2.records(bins))
	}
	online := func(id string) func() bool {
		return func() bool {
			out, err := exec.Command(bins.cli, "--hub", hubURL, "--token", strings.TrimPrefix(env[1], "LOA_TOKEN="), "device", "show", id, "--json").Output()
			var d struct {
				Online bool `json:"online"`
			}
			return err == nil && json.Unmarshal(out, &d) == nil && d.Online
		}
	}
	waitFor(t, "both agents online", 30*time.Second, func() bool { return online("qn/tk/cl-01")() && online("qn/tk/cl-02")() }, logs)

	cmdRe := regexp.MustCompile(`cmd-[0-9]+`)
	confirmations := func() []hubConfirmation {
		out, err := exec.Command(bins.cli, "--hub", hubURL, "--token", strings.TrimPrefix(env[1], "LOA_TOKEN="), "confirmations", "--json", "--limit", "100000").Output()
		var cs []hubConfirmation
		if err != nil || json.Unmarshal(out, &cs) != nil {
			return nil
		}
		return cs
	}
	// ofCommand waits for a confirmation with result from each device naming command id.
	ofCommand := func(id, result string) map[string]hubConfirmation {
		got := map[string]hubConfirmation{}
		waitFor(t, fmt.Sprintf("a %s confirmation of %s from both devices at the hub", result, id), 40*time.Second, func() bool {
			for _, c := range confirmations() {
				if c.CommandID == id && c.Result == result {
					got[c.Device] = c
				}
			}
			return len(got) == 2
		}, logs)
		return got
	}
	outcomes := func(id string) map[string]string {
		out, err := exec.Command(bins.cli, "--hub", hubURL, "--token", strings.TrimPrefix(env[1], "LOA_TOKEN="), "commands", id, "--json").Output()
		var c struct {
			Outcomes []struct{ Device, State string }
		}
		got := map[string]string{}
		if err == nil && json.Unmarshal(out, &c) == nil {
			for _, o := range c.Outcomes {
				got[o.Device] = o.State
			}
		}
		return got
	}
	executed := func(id string) {
		waitFor(t, id+" executed by both", 30*time.Second, func() bool {
			o := outcomes(id)
			return o["qn/tk/cl-01"] == "executed" && o["qn/tk/cl-02"] == "executed"
		}, logs)
	}

	// play FILE: uploaded, then played on both; the confirmations at the hub name the command.
	out := testkit.Run(t, env, bins.cli, "play", "--to", "qn/tk", filepath.Join(media, "short.wav"), "--title", "Thông báo")
	ref := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	play1 := cmdRe.FindString(out)
	if ref == "" || play1 == "" {
		t.Fatalf("loa play:\n%s", out)
	}
	executed(play1)
	cut, why := 0.0, ""
	for dev, c := range ofCommand(play1, "completed") {
		if c.Program != "command:"+play1 || c.PlayedS < 0.5 {
			t.Errorf("%s: confirmation of the play: %+v", dev, c)
		}
		cut = max(cut, 2-c.PlayedS)
		b := a1
		if dev == "qn/tk/cl-02" {
			b = a2
		}
		for _, r := range having(b.records(bins), prog("command:"+play1, "completed")) {
			why += fmt.Sprintf("; %s played %.2f s, started %s after its scheduled start", dev, c.PlayedS, r.Start.Sub(r.Scheduled).Round(time.Millisecond))
		}
	}
	t.Run("play_now plays the whole clip", func(t *testing.T) {
		if cut > 0.1 {
			t.Errorf("a 2 s play_now clip was cut by up to %.2f s%s", cut, why)
		}
	})

	// volume 0.3: carried out by both (the agents keep it), and the next play is at 0.3.
	out = testkit.Run(t, env, bins.cli, "volume", "--to", "qn/tk", "0.3")
	vol := cmdRe.FindString(out)
	executed(vol)
	agentVolume := func(b *agentBox) float64 {
		out, err := exec.Command(bins.agent, "status", "--config", b.config, "--json").Output()
		var st struct {
			Volume float64 `json:"volume"`
		}
		if err != nil || json.Unmarshal(out, &st) != nil {
			return -1
		}
		return st.Volume
	}
	for i, b := range []*agentBox{a1, a2} {
		if v := agentVolume(b); v != 0.3 {
			t.Errorf("agent %d: loa-agent status says volume %v after `loa volume 0.3` was executed", i+1, v)
		}
	}
	// The hub learns it from the next heartbeat (every 2 s here): `loa device show` says so.
	waitFor(t, "the hub to show volume 0.30 for cl-01", 20*time.Second, func() bool {
		return regexp.MustCompile(`(?m)^volume\s+0\.30$`).MatchString(testkit.Run(t, env, bins.cli, "device", "show", "qn/tk/cl-01"))
	}, func() string { return testkit.Run(t, env, bins.cli, "device", "show", "qn/tk/cl-01") })
	play2 := cmdRe.FindString(testkit.Run(t, env, bins.cli, "play", "--to", "qn/tk", "--content", ref))
	for dev, c := range ofCommand(play2, "completed") {
		if c.Volume == nil || *c.Volume != 0.3 {
			t.Errorf("%s: the play after volume 0.3 was confirmed at volume %v", dev, c.Volume)
		}
	}

	// stop during a long play: the play ends interrupted, long before its 40 s.
	out = testkit.Run(t, env, bins.cli, "play", "--to", "qn/tk", filepath.Join(media, "long.wav"))
	long := cmdRe.FindString(out)
	waitFor(t, "the long play playing on both", 30*time.Second, func() bool {
		for _, b := range []*agentBox{a1, a2} {
			if len(having(b.records(bins), prog("command:"+long, "playing"))) == 0 {
				return false
			}
		}
		return true
	}, logs)
	stop := cmdRe.FindString(testkit.Run(t, env, bins.cli, "stop", "--to", "qn/tk"))
	executed(stop)
	for dev, c := range ofCommand(long, "interrupted") {
		if c.PlayedS >= 35 {
			t.Errorf("%s: the stopped play ran %.1f s of 40", dev, c.PlayedS)
		}
	}

	// Agent 2 is cut off while a command with a short life is issued: it never gets it, and
	// `loa commands` says so; its volume stays where it was.
	link2.Down()
	waitFor(t, "the hub to see agent 2 gone", 30*time.Second, func() bool { return !online("qn/tk/cl-02")() }, logs)
	out = testkit.Run(t, env, bins.cli, "volume", "--to", "qn/tk", "0.8", "--expires", "5s", "--wait", "0")
	short := cmdRe.FindString(out)
	if !strings.Contains(out, "offline: it gets the command when it reconnects") {
		t.Errorf("loa volume with a device offline:\n%s", out)
	}
	waitFor(t, short+" executed by agent 1", 20*time.Second, func() bool { return outcomes(short)["qn/tk/cl-01"] == "executed" }, logs)
	time.Sleep(time.Until(time.Now().Add(6 * time.Second))) // past its expiry
	link2.Up()
	waitFor(t, "agent 2 back", 40*time.Second, online("qn/tk/cl-02"), logs)
	if o := outcomes(short); o["qn/tk/cl-02"] != "expired" {
		t.Errorf("a command that expired while agent 2 was cut off: outcome %q, want expired", o["qn/tk/cl-02"])
	}
	if v := agentVolume(a2); v != 0.3 {
		t.Errorf("agent 2 volume %v after reconnecting; the expired 0.8 must not apply", v)
	}
	if v := agentVolume(a1); v != 0.8 {
		t.Errorf("agent 1 volume %v, want 0.8", v)
	}
	table := testkit.Run(t, env, bins.cli, "commands")
	for _, id := range []string{play1, vol, play2, long, stop, short} {
		if !strings.Contains(table, id) {
			t.Errorf("loa commands does not list %s:\n%s", id, table)
		}
	}
}
