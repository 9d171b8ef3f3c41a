package agent_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/agent"
)

// testCLI runs `loa-agent test ARGS… --config` as a technician would and returns its exit
// code, stdout and stderr.
func (b *box) testCLI(args ...string) (int, string, string) {
	b.t.Helper()
	cmd := exec.Command(agentBinary(b.t), append(append([]string{"test"}, args...), "--config", b.config)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestTestSpeakersThroughRunningAgent: `loa-agent test speakers` makes the running agent
// switch the relay on, play a tone and a spoken line through its own ALSA output, and switch
// the relay off (not after the 30 s off-delay); nothing goes into the journal. Without a
// running agent the command says so and what to run instead.
func TestTestSpeakersThroughRunningAgent(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng not installed (scripts/install-deps installs it)")
	}
	rb := newRelayBoard(t)
	b := newBox(t, "amplifier: {driver: lcus, port: "+rb.port+", channel: 1, warm_up: 1s, off_delay: 30s, refresh: 0s}\n")
	next := time.Now().Add(240 * time.Hour).UTC().Format(time.RFC3339)
	b.writeSchedule("version: 1\nid: idle\nrevision: 1\ntimezone: UTC\nprograms:\n  - {id: later, at: \"" + next + "\", items: [{text: later}]}\n")

	code, _, stderr := b.testCLI("speakers")
	if code != 1 || !strings.Contains(stderr, "not running") || !strings.Contains(stderr, "systemctl start loa-agent") || !strings.Contains(stderr, "loa-agent play") {
		t.Errorf("without an agent: exit %d, stderr %q; want 1, saying it is not running, how to start it and what to run instead", code, stderr)
	}

	b.start()
	b.waitSocket()
	code, stdout, stderr := b.testCLI("speakers", "--json")
	if code != 0 {
		t.Fatalf("test speakers: exit %d\n%s%s\nagent log:\n%s", code, stdout, stderr, b.logText())
	}
	var rep agent.TestReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report %q: %v", stdout, err)
	}
	if !rep.OK || rep.Tone == nil || rep.Speech == nil || rep.Tone.Ended != "completed" || rep.Speech.Ended != "completed" || rep.Speech.PeakDBFS < -30 {
		t.Errorf("report: %+v", rep)
	}
	if rep.Relay == nil || rep.Relay.Relay != "off" || len(rep.Check) == 0 {
		t.Errorf("report: relay %+v, %d things to check; want off and some", rep.Relay, len(rep.Check))
	}

	// The relay: off at the agent's start, then on and off by the test, long before the
	// 30 s off-delay could have switched it off.
	const on, off = "A0 01 01 A2", "A0 01 00 A1"
	cmds, times := rb.waitFrames(3)
	if strings.Join(cmds, " | ") != strings.Join([]string{off, on, off}, " | ") {
		t.Fatalf("relay commands %q, want off (start), on, off (end of test)", cmds)
	}

	// The sound card heard the tone: 440 Hz at half scale (device volume 1), after the relay
	// went on and before it went off.
	samples, capStart := b.captures[0].Samples()
	first, last, peak := -1, -1, 0.0
	for i, s := range samples {
		if a := math.Abs(float64(s)); a > 0.01 {
			if first < 0 {
				first = i
			}
			last = i
			if i < first+2*48000 { // the tone's first second; the voice is louder
				peak = math.Max(peak, a)
			}
		}
	}
	if first < 0 {
		t.Fatal("the sound card heard nothing")
	}
	if peak < 0.4 || peak > 0.6 {
		t.Errorf("peak heard %.3f, want about 0.5 (the tone at half scale)", peak)
	}
	// Count zero crossings of the left channel over the tone's first second.
	crossings := 0
	for i := first + 2; i < first+2*48000 && i < len(samples); i += 2 {
		if (samples[i-2] < 0) != (samples[i] < 0) {
			crossings++
		}
	}
	if crossings < 2*430 || crossings > 2*450 {
		t.Errorf("%d zero crossings in the tone's first second, want about 880 (440 Hz)", crossings)
	}
	at := func(i int) time.Time { return capStart.Add(time.Duration(float64(i/2) / 48000 * float64(time.Second))) }
	if !times[1].Before(at(first)) || !times[2].After(at(last)) {
		t.Errorf("relay on at %s and off at %s; the sound was heard from %s to %s", times[1].Format("15:04:05.000"),
			times[2].Format("15:04:05.000"), at(first).Format("15:04:05.000"), at(last).Format("15:04:05.000"))
	}

	// `test relay` on and off again; a test the box cannot do says why.
	code, stdout, stderr = b.testCLI("relay", "--hold", "200ms")
	t.Logf("loa-agent test relay:\n%s", stdout)
	if code != 0 || !strings.Contains(stdout, "switched on") || !strings.Contains(stdout, "switched off") || !strings.Contains(stdout, "check") {
		t.Errorf("test relay: exit %d\n%s%s", code, stdout, stderr)
	}
	if cmds, _ := rb.waitFrames(5); len(cmds) != 5 || cmds[3] != on || cmds[4] != off {
		t.Errorf("relay commands after test relay: %q", cmds)
	}
	code, _, stderr = b.testCLI("sign")
	if code != 1 || !strings.Contains(stderr, "no LED sign") {
		t.Errorf("test sign without a sign: exit %d, %q", code, stderr)
	}
	b.stop()
	if recs := b.journal(); len(recs) != 0 {
		t.Errorf("a test is not a broadcast, yet the journal has %d records: %s", len(recs), dumpRecords(recs))
	}
}

// waitFrames returns the frames once n have come (the pty may still hold the last one when
// the agent has written it), or what came in 5 s.
func (rb *relayBoard) waitFrames(n int) ([]string, []time.Time) {
	cmds, at := rb.frames()
	for i := 0; i < 50 && len(cmds) < n; i++ {
		time.Sleep(100 * time.Millisecond)
		cmds, at = rb.frames()
	}
	return cmds, at
}

// waitSocket waits for the running agent's control socket.
func (b *box) waitSocket() {
	b.t.Helper()
	sock := filepath.Join(b.dir, "data", "agent.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			return
		}
		if i == 300 {
			b.t.Fatalf("the agent made no control socket\n%s", b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTestSignAndScreen: `loa-agent test sign` puts a test text on the real sign line (socat
// pty) and blanks it; `test screen` shows a bulletin through the agent's mpv; both report
// the part's state.
func TestTestSignAndScreen(t *testing.T) {
	if _, err := exec.LookPath("mpv"); err != nil {
		t.Skip("mpv not installed (scripts/install-deps installs it)")
	}
	rb := newRelayBoard(t) // the pty pair stands in for the sign's serial line
	b := newBox(t, "outputs: [speakers, board, screen]\nboard: {port: "+rb.port+"}\n"+
		"screen: {vo: \"null\", mpv_args: [\"--vo-null-fps=25\", \"--hwdec=no\"]}\n")
	next := time.Now().Add(240 * time.Hour).UTC().Format(time.RFC3339)
	b.writeSchedule("version: 1\nid: idle\nrevision: 1\ntimezone: UTC\nprograms:\n  - {id: later, at: \"" + next + "\", items: [{text: later}]}\n")
	b.start()
	b.waitSocket()

	code, stdout, stderr := b.testCLI("sign", "--hold", "300ms", "--json")
	var rep agent.TestReport
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || !rep.OK || rep.Board == nil || !rep.Board.Connected {
		t.Fatalf("test sign: exit %d, %+v\n%s%s\n%s", code, rep, stdout, stderr, b.logText())
	}
	var line string
	blanked := func() bool {
		rb.mu.Lock()
		line = string(rb.got)
		rb.mu.Unlock()
		i := strings.Index(line, "LOA TEST ")
		return i >= 0 && strings.Contains(line[i:], "\x02AA\x1b0b\x03")
	}
	for i := 0; i < 50 && !blanked(); i++ { // the pty may still hold the last frame
		time.Sleep(100 * time.Millisecond)
	}
	if !blanked() {
		t.Errorf("the sign line carried %q; want LOA TEST then a blank text", line)
	}

	code, stdout, stderr = b.testCLI("screen", "--hold", "1s", "--json")
	rep = agent.TestReport{}
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil || !rep.OK || rep.Screen == nil || !rep.Screen.Running ||
		len(rep.Steps) == 0 || !strings.Contains(rep.Steps[0], "completed") {
		t.Fatalf("test screen: exit %d, %+v\n%s%s\n%s", code, rep, stdout, stderr, b.logText())
	}
	b.stop()
	if recs := b.journal(); len(recs) != 0 {
		t.Errorf("tests are not broadcasts, yet the journal has %d records: %s", len(recs), dumpRecords(recs))
	}
}
