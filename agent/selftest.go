package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	gomath "math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/device/sign"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/player"
)

// `loa-agent test speakers|relay|sign|screen` asks the running agent (control socket) to
// drive its own outputs, so the test goes through what a broadcast goes through: the relay is
// switched as for a programme, the sound goes to the ALSA device the agent holds open. Tests
// are not broadcasts: nothing is written to the journal.

// TestReport is what a test did and what the technician should check.
type TestReport struct {
	Test  string   `json:"test"`            // speakers, relay, sign, screen
	OK    bool     `json:"ok"`              // every step worked as far as the box can tell
	Steps []string `json:"steps"`           // what was done, in order, and what each found
	Check []string `json:"check,omitempty"` // what to look at when nothing was heard or seen

	Relay  *amplifier.State `json:"relay,omitempty"`  // the relay after the test
	Tone   *player.Proof    `json:"tone,omitempty"`   // what the sound card took of the tone
	Speech *player.Proof    `json:"speech,omitempty"` // and of the spoken line
	Board  *sign.State      `json:"board,omitempty"`
	Screen *screen.State    `json:"screen,omitempty"`
}

func (r *TestReport) step(format string, args ...any) {
	r.Steps = append(r.Steps, fmt.Sprintf(format, args...))
}

// Tests is the list `loa-agent test` accepts.
var Tests = []string{"speakers", "relay", "sign", "screen"}

// errBusy refuses a test that would cut into a broadcast.
var errBusy = errors.New("busy")

// runTest carries out one test; hold is how long the relay stays on, or the sign or screen
// shows its test text (0: a default).
func (a *Agent) runTest(ctx context.Context, what string, hold time.Duration) (TestReport, error) {
	switch what {
	case "speakers":
		return a.testSpeakers(ctx)
	case "relay":
		return a.testRelay(ctx, orDuration(hold, 5*time.Second))
	case "sign", "board":
		return a.testSign(ctx, orDuration(hold, 10*time.Second))
	case "screen":
		return a.testScreen(ctx, orDuration(hold, 10*time.Second))
	}
	return TestReport{}, fmt.Errorf("no test %q: use one of %s", what, strings.Join(Tests, ", "))
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// busyOutput says what an output is playing, "" when it is idle.
func (a *Agent) busyOutput(ctx context.Context, out string) (string, error) {
	var key string
	err := a.inLoop(ctx, func(outs outputs) error {
		if o, ok := outs[out]; ok {
			key = o.playing()
		}
		return nil
	})
	return key, err
}

func (a *Agent) relayName() string {
	c := a.cfg.Amplifier
	switch c.Driver {
	case amplifier.DriverNone, "":
		return "none"
	case amplifier.DriverGPIO:
		return fmt.Sprintf("gpio %s line %d", c.GPIO.Chip, c.GPIO.Line)
	}
	return fmt.Sprintf("%s %s", c.Driver, c.Port)
}

// relayStep switches the amplifier on (waiting out the warm-up, as before a programme) and
// says how the relay took it.
func (a *Agent) relayOn(ctx context.Context, r *TestReport) (bool, error) {
	if a.amp.State().Users > 0 {
		return false, fmt.Errorf("%w: the amplifier is held for a programme playing or about to start; test when the speakers are idle (loa-agent status shows what plays and what is next)", errBusy)
	}
	if err := a.amp.Acquire(ctx); err != nil {
		return false, err
	}
	st := a.amp.State()
	switch {
	case a.relayName() == "none":
		r.step("amplifier: no relay configured (amplifier: driver none): it is taken to be always on")
	case st.Relay == "on":
		r.step("relay %s: switched on, warm-up of %s waited", a.relayName(), a.cfg.Amplifier.WarmUp)
	default:
		r.OK = false
		r.step("relay %s: NOT switched on (%s); the test went on regardless, as a broadcast would", a.relayName(), orText(st.Error, "no answer yet"))
	}
	return true, nil
}

// relayOff ends the test's hold and switches off at once, then waits (briefly) for the relay
// to confirm it, so the report says what the relay did.
func (a *Agent) relayOff(ctx context.Context, r *TestReport) {
	a.amp.ReleaseNow()
	st := a.amp.State()
	for i := 0; i < 100 && st.Users == 0 && st.Relay == "on"; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		st = a.amp.State()
	}
	r.Relay = &st
	switch {
	case a.relayName() == "none":
	case st.Users > 0:
		r.step("relay %s: left on: a programme started meanwhile and holds it", a.relayName())
	case st.Relay == "off":
		r.step("relay %s: switched off", a.relayName())
	default:
		r.OK = false
		r.step("relay %s: NOT confirmed off (relay %s: %s)", a.relayName(), st.Relay, orText(st.Error, "no answer yet"))
	}
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// testTone is a 440 Hz tone, 2 s, at half scale, written once in the data directory.
func (a *Agent) testTone() (string, error) {
	path := filepath.Join(a.cfg.DataDir, "test-tone.wav")
	if fi, err := os.Stat(path); err == nil && fi.Size() > 44 {
		return path, nil
	}
	const rate, secs = 48000, 2
	n := rate * secs
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], rate*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := 0; i < n; i++ {
		v := 0.5 * gomath.Sin(2*gomath.Pi*440*float64(i)/rate)
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(v*32767)))
	}
	return path, atomicfile.Write(path, b, 0o600)
}

// testSpeakers: relay on, warm-up, a tone and a spoken line through the agent's own output at
// the device volume, relay off. A programme that starts meanwhile takes the speakers.
func (a *Agent) testSpeakers(ctx context.Context) (TestReport, error) {
	r := TestReport{Test: "speakers", OK: true}
	if key, err := a.busyOutput(ctx, "speakers"); err != nil {
		return r, err
	} else if key != "" {
		return r, fmt.Errorf("%w: the speakers are playing %s now; test when it ends (loa-agent status shows until when), or the test would cut into it", errBusy, key)
	}
	tone, err := a.testTone()
	if err != nil {
		return r, fmt.Errorf("test tone in %s: %w", a.cfg.DataDir, err)
	}
	items := []player.Item{{Path: tone}}
	line := fmt.Sprintf("Thử loa. Đây là cụm loa %s.", a.cfg.DeviceID)
	spoken, err := a.speech.path(ctx, line)
	if err != nil {
		r.OK = false
		r.step("spoken line: cannot be made (%v); only the tone is played", err)
	} else {
		items = append(items, player.Item{Path: spoken})
	}
	if ok, err := a.relayOn(ctx, &r); err != nil {
		return r, err
	} else if !ok {
		return r, nil
	}
	r, err = a.playTest(ctx, r, items, line)
	a.relayOff(context.WithoutCancel(ctx), &r)
	if err != nil {
		return r, err
	}
	r.Check = append(r.Check,
		"nothing heard and the amplifier's power light stayed off: the relay (`loa-agent test relay`), its wiring (NO and COM contacts), the amplifier's own switch and fuse",
		"the amplifier came on but nothing was heard: the cable from the box to the amplifier's input, the amplifier's input selector and volume, the speaker lines",
		fmt.Sprintf("the sound card: audio.output is %q in the config (aplay -l; install.md step 3); its own level in alsamixer", a.cfg.Audio.Output),
		"a tone but no voice: espeak-ng and its Vietnamese voice (espeak-ng -v vi \"thử\")")
	return r, nil
}

// playTest plays the test's items on the speakers' player, unless a programme has them.
func (a *Agent) playTest(ctx context.Context, r TestReport, items []player.Item, line string) (TestReport, error) {
	vol := a.volume.now(a.clock.Now(), a.sched.active())
	proofs := make([]player.Proof, len(items))
	var pb *player.Playback
	err := a.inLoop(ctx, func(outs outputs) error {
		sp := outs["speakers"].(*speakers)
		if key := sp.playing(); key != "" {
			return fmt.Errorf("%w: the speakers began %s; test when it ends", errBusy, key)
		}
		var err error
		pb, err = sp.player.Play(ctx, player.Program{Items: items, Gain: vol,
			OnItemEnd: func(i int, p player.Proof) { proofs[i] = p }})
		return err
	})
	if err != nil {
		return r, err
	}
	pb.Wait()
	// "Consumed" is when the output took the last frame; the card's buffer still holds it.
	select {
	case <-ctx.Done():
	case <-time.After(a.cfg.Audio.Buffer.D() + 500*time.Millisecond):
	}
	r.Tone = &proofs[0]
	r.step("tone 440 Hz, 2 s, at device volume %.2f, to %s: %s", vol, a.cfg.Audio.Output, proofLine(proofs[0]))
	if len(proofs) > 1 {
		r.Speech = &proofs[1]
		r.step("spoken line %q (espeak-ng, voice %s): %s", line, a.speech.voice, proofLine(proofs[1]))
	}
	for _, p := range proofs {
		if p.Ended != player.EndCompleted || p.Frames == 0 {
			r.OK = false
		}
	}
	if vol == 0 {
		r.OK = false
		r.Check = append(r.Check, "the device volume is 0 (a volume command from the hub, or volume_schedule now): nothing can be heard; `loa volume` at the hub sets it")
	}
	return r, nil
}

func proofLine(p player.Proof) string {
	s := fmt.Sprintf("%s, the sound card took %.1f s, peak %.1f dBFS", p.Ended, p.PlayedS, p.PeakDBFS)
	if p.Error != "" {
		s += ": " + p.Error
	}
	if p.Ended == player.EndStopped {
		s += " (a programme took the speakers)"
	}
	return s
}

// testRelay switches the amplifier on for hold and off again, without sound.
func (a *Agent) testRelay(ctx context.Context, hold time.Duration) (TestReport, error) {
	r := TestReport{Test: "relay", OK: true}
	if key, err := a.busyOutput(ctx, "speakers"); err != nil {
		return r, err
	} else if key != "" {
		return r, fmt.Errorf("%w: the speakers are playing %s now; test when it ends", errBusy, key)
	}
	if ok, err := a.relayOn(ctx, &r); err != nil {
		return r, err
	} else if !ok {
		return r, nil
	}
	select {
	case <-ctx.Done():
	case <-time.After(hold):
	}
	r.step("held on for %s", hold)
	a.relayOff(context.WithoutCancel(ctx), &r)
	if a.relayName() == "none" {
		r.Check = append(r.Check, "no relay is configured: add the amplifier: block to the config (install.md step 4) if one is fitted")
		return r, nil
	}
	r.Check = append(r.Check,
		"the relay should have clicked twice and the amplifier's power light been on for the hold; if not:",
		fmt.Sprintf("the relay's port or line: %s (for a USB board: ls -l %s, and lsusb shows 1a86:7523)", a.relayName(), orText(a.cfg.Amplifier.Port, "/dev/loa-relay")),
		"the board's own LED lights when it is on: lit but no amplifier means the wiring (NO and COM) or the amplifier's switch and fuse",
		"a failure above names the port: the user loa must be in the dialout (or gpio) group")
	return r, nil
}

// testSign shows a test text on the LED sign for hold, then blanks it.
func (a *Agent) testSign(ctx context.Context, hold time.Duration) (TestReport, error) {
	r := TestReport{Test: "sign", OK: true}
	if a.sign == nil {
		return r, fmt.Errorf("this device has no LED sign: its outputs are %v (add board to outputs and a board: block to the config, install.md step 4)", a.cfg.Outputs)
	}
	if key, err := a.busyOutput(ctx, "board"); err != nil {
		return r, err
	} else if key != "" {
		return r, fmt.Errorf("%w: the sign is showing %s now; test when it ends", errBusy, key)
	}
	text := "LOA TEST " + a.clock.Now().Format("15:04")
	if err := a.sign.Show(ctx, sign.Text{Message: text, Mode: sign.Hold}); err != nil {
		r.OK = false
		r.step("sent %q to %s: FAILED: %v", text, a.cfg.Board.Port, err)
	} else {
		r.step("sent %q to %s (%d %s %d/%d, address %s), shown for %s", text, a.cfg.Board.Port, a.cfg.Board.Baud,
			a.cfg.Board.Parity, a.cfg.Board.DataBits, a.cfg.Board.StopBits, a.cfg.Board.Address, hold)
		select {
		case <-ctx.Done():
		case <-time.After(hold):
		}
	}
	if err := a.sign.Clear(context.WithoutCancel(ctx)); err != nil {
		r.OK = false
		r.step("blanking: FAILED: %v", err)
	} else {
		r.step("blanked")
	}
	st := a.sign.State()
	r.Board = &st
	if !st.Connected {
		r.OK = false
	}
	r.Check = append(r.Check,
		fmt.Sprintf("nothing shown, test failed: the port %s and the cable (ls -l %s)", a.cfg.Board.Port, a.cfg.Board.Port),
		"nothing shown though sent: the serial settings and address in the board: block must be the sign's own (its manual or setup menu); most signs ignore what they cannot read",
		"the sign's power and its own on/off or mode switch")
	return r, nil
}

// testScreen shows a test bulletin on the screen for hold.
func (a *Agent) testScreen(ctx context.Context, hold time.Duration) (TestReport, error) {
	r := TestReport{Test: "screen", OK: true}
	if a.screen == nil {
		return r, fmt.Errorf("this device has no screen: its outputs are %v (add screen to outputs and a screen: block to the config)", a.cfg.Outputs)
	}
	if key, err := a.busyOutput(ctx, "screen"); err != nil {
		return r, err
	} else if key != "" {
		return r, fmt.Errorf("%w: the screen is showing %s now; test when it ends", errBusy, key)
	}
	text := fmt.Sprintf("Thử màn hình — %s — %s", a.cfg.DeviceID, a.clock.Now().Format("15:04"))
	var proof screen.Proof
	sh, err := a.screen.Show(ctx, screen.Program{Items: []screen.Item{{Text: text, Duration: hold}},
		OnItemEnd: func(_ int, p screen.Proof) { proof = p }})
	if err != nil {
		r.OK = false
		r.step("showing %q: FAILED: %v", text, err)
	} else {
		sh.Wait()
		if proof.Ended != screen.EndCompleted {
			r.OK = false
		}
		r.step("showed %q for %s (mpv, vo %s): %s %s", text, hold, a.cfg.Screen.VO, proof.Ended, proof.Error)
	}
	st := a.screen.State()
	r.Screen = &st
	r.Check = append(r.Check,
		"nothing seen: the screen's power and input (HDMI 1 or 2), the HDMI cable in the Pi's port next to the power",
		fmt.Sprintf("screen.vo is %q in the config: drm on a Pi without a desktop", a.cfg.Screen.VO))
	return r, nil
}
