package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// Commands from the hub (already verified by the link: signature, devices, expiry, replay).
// They act on the players, which only the main loop touches, so Execute hands each one to the
// loop and waits for it.

// Execute implements link.Commands.
func (a *Agent) Execute(ctx context.Context, c *protocol.CommandPayload) error {
	a.log.Info("command from the hub", "action", c.Action, "id", c.ID, "by", c.IssuedBy, "output", c.Output)
	switch c.Action {
	case protocol.ActionReload:
		a.Reload()
		return nil
	case protocol.ActionVolume:
		return a.inLoop(ctx, func(outs outputs) error { return a.setVolume(outs, *c.Volume) })
	case protocol.ActionStop:
		return a.inLoop(ctx, func(outs outputs) error {
			for name, o := range outs {
				if c.Output != "" && c.Output != name {
					continue
				}
				if key := o.playing(); key != "" {
					o.stop(key, scheduler.StopCommand)
				}
			}
			return nil
		})
	case protocol.ActionPlayNow:
		return a.playNow(ctx, c)
	case protocol.ActionScreenshot:
		return a.screenshot(ctx, c)
	default:
		return fmt.Errorf("command %q is not supported by this agent version", c.Action)
	}
}

// screenshotTimeout bounds taking and uploading one screenshot: an 8 MiB image over a 1 Mbit/s
// 4G uplink takes about a minute.
const screenshotTimeout = 2 * time.Minute

// screenshot takes an image of what the screen shows now and uploads it to the hub before the
// command is answered, so "executed" means the hub has the image. mpv is safe to ask from any
// goroutine, so this does not go through the main loop.
func (a *Agent) screenshot(ctx context.Context, c *protocol.CommandPayload) error {
	if c.Output != "" && c.Output != "screen" {
		return fmt.Errorf("screenshot of output %q: only the screen output can be photographed", c.Output)
	}
	if a.link == nil {
		return fmt.Errorf("screenshot: this agent has no hub to upload it to")
	}
	ctx, cancel := context.WithTimeout(ctx, screenshotTimeout)
	defer cancel()
	// The screen is opened after the link starts: ask the main loop, which runs once the
	// outputs are open, for it.
	var sc *screen.Screen
	if err := a.inLoop(ctx, func(outs outputs) error {
		if so, ok := outs["screen"].(*screenOut); ok {
			sc = so.screen
		}
		return nil
	}); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if sc == nil {
		return fmt.Errorf("this device has no screen: its outputs are %v (add screen to outputs in the agent config if an HDMI screen is connected)", a.cfg.Outputs)
	}
	f, err := os.CreateTemp(a.cfg.DataDir, "screenshot-*.png")
	if err != nil {
		return fmt.Errorf("screenshot: temporary file in the data dir: %w", err)
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	if err := sc.Screenshot(ctx, path); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return a.link.UploadScreenshot(ctx, c.ID, path)
}

// inLoop runs f on the main loop and returns its error.
func (a *Agent) inLoop(ctx context.Context, f func(outputs) error) error {
	res := make(chan error, 1)
	select {
	case a.commands <- func(outs outputs) { res <- f(outs) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setVolume changes the device volume: kept across restarts (state.json) until the next
// volume command, and applied at once to what the speakers are playing.
func (a *Agent) setVolume(outs outputs, v float64) error {
	if v < 0 || v > 1 {
		return fmt.Errorf("volume %g: give a number from 0 to 1", v)
	}
	a.volume.setDevice(v)
	a.mu.Lock()
	a.volumeSet = &v
	a.mu.Unlock()
	a.saveState()
	if sp, ok := outs["speakers"].(*speakers); ok && sp.cur != nil && sp.cur.pb != nil && !ended(sp.cur.pb.Done()) {
		// The record of the play keeps the volume it started with.
		if err := sp.cur.pb.SetGain(sp.cur.run.Gain * a.volume.at(sp.cur.run)); err != nil {
			return fmt.Errorf("volume set, but the playing programme kept its gain: %w", err)
		}
	}
	return nil
}

// playNow plays a content item or a stream now, as an ad-hoc programme beside the schedule:
// it takes the outputs by the same class and priority rules (a play_now of class normal does
// not interrupt an emergency). Content not on the device is fetched first. A stream plays
// until the command expires (or a stop command).
func (a *Agent) playNow(ctx context.Context, c *protocol.CommandPayload) error {
	class := scheduler.Priority
	if c.Class != "" {
		if err := class.UnmarshalText([]byte(c.Class)); err != nil {
			return fmt.Errorf("play_now class %q: %w", c.Class, err)
		}
	}
	it := scheduler.Item{Content: c.Content, Stream: c.Stream}
	if c.Content != "" {
		ref, err := content.ParseRef(c.Content)
		if err != nil {
			return fmt.Errorf("play_now content: %w", err)
		}
		if !a.store.Has(ref) {
			if a.link == nil {
				return fmt.Errorf("play_now: %s is not on this device and there is no hub to fetch it from", c.Content)
			}
			if err := a.link.Fetch(ctx, ref); err != nil {
				return fmt.Errorf("play_now: fetching %s: %w", c.Content, err)
			}
		}
	} else {
		it.Duration = scheduler.Duration(c.ExpiresAt.Sub(a.clock.Now()).Round(time.Second))
		if it.Duration <= 0 {
			return fmt.Errorf("play_now stream: the command expired at %s", c.ExpiresAt.Format(time.RFC3339))
		}
	}
	var outs []string
	if c.Output != "" {
		outs = []string{c.Output}
	}
	title := c.Title
	if title == "" {
		title = "play_now " + c.ID
	}
	p := scheduler.Program{
		ID: commandProgram + c.ID, Title: title, Class: class, Outputs: outs,
		At: a.clock.Now().UTC().Format(scheduler.AtLayout), Items: []scheduler.Item{it},
	}
	a.mu.Lock()
	a.adhoc = append(a.adhoc, p)
	a.mu.Unlock()
	return a.inLoop(ctx, func(outputs) error { return a.plan(a.sched.active()) })
}

const commandProgram = protocol.CommandProgram

// handOver gives the runner a newly active schedule with the play_now programmes still
// wanted, or without them if they cannot be planned beside it.
func (a *Agent) handOver(doc *scheduler.Document) {
	if err := a.plan(doc); err != nil {
		a.log.Error("play_now commands dropped from the plan", "err", err)
		a.mu.Lock()
		a.adhoc = nil
		a.mu.Unlock()
		a.runner.SetSchedule(doc)
	}
}

// plan gives the runner the active schedule plus the play_now programmes not over yet.
func (a *Agent) plan(doc *scheduler.Document) error {
	a.mu.Lock()
	adhoc := a.adhoc[:0:0]
	now := a.clock.Now()
	for _, p := range a.adhoc {
		at, err := time.Parse(time.RFC3339, p.At)
		if err == nil && now.Sub(at) < 24*time.Hour {
			adhoc = append(adhoc, p) // kept a day: the runner still knows it played
		}
	}
	a.adhoc = adhoc
	a.mu.Unlock()
	if len(adhoc) == 0 {
		a.runner.SetSchedule(doc)
		return nil
	}
	merged := scheduler.Document{Version: 1, ID: "commands", Revision: 1, Timezone: "UTC"}
	if doc != nil {
		merged = *doc
		merged.Programs = append([]scheduler.Program(nil), doc.Programs...)
	}
	merged.Programs = append(merged.Programs, adhoc...)
	b, err := merged.Encode()
	if err != nil {
		return err
	}
	parsed, err := scheduler.Parse("schedule with play_now commands", b)
	if err != nil {
		return fmt.Errorf("play_now cannot be planned: %w", err)
	}
	if _, err := scheduler.Compile(parsed, now.Add(-time.Hour), now.Add(time.Hour), scheduler.CompileOptions{ItemLength: a.itemLength}); err != nil {
		return fmt.Errorf("play_now cannot be planned: %w", err)
	}
	a.runner.SetSchedule(parsed)
	return nil
}

// ended reports whether a done channel is closed (a playback that finished before the
// runner's stop for it arrived).
func ended(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
