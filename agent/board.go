package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/device/sign"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// BoardConfig is the LED text sign of the `board` output (docs/signs.md).
type BoardConfig struct {
	Protocol string `yaml:"protocol"` // alpha (default)
	Port     string `yaml:"port"`     // e.g. /dev/loa-sign (the udev name) or /dev/ttyUSB0
	Baud     int    `yaml:"baud"`     // 9600
	Parity   string `yaml:"parity"`   // even (none, odd, even, mark, space)
	DataBits int    `yaml:"data_bits"`
	StopBits int    `yaml:"stop_bits"`
	Address  string `yaml:"address"` // "00": every sign on the line
	Verify   bool   `yaml:"verify"`  // the sign answers on a return line: a silent sign is an outage
	Mode     string `yaml:"mode"`    // how texts are shown: auto (default), hold, scroll, rotate…
}

func (c BoardConfig) sign() sign.Config {
	return sign.Config{Protocol: c.Protocol, Alpha: sign.AlphaConfig{
		Port: c.Port, Baud: c.Baud, Parity: c.Parity, DataBits: c.DataBits, StopBits: c.StopBits,
		Address: c.Address, Verify: c.Verify,
	}}
}

// board drives the LED sign from the timeline: a run's text items are shown one after the
// other at their planned times (the first at once, so a bulletin whose audio comes first has its
// text up while it is heard); a run with no text shows its programme's title. Each text shown is
// a confirmation like a play: start when the sign took it, end when it was replaced or cleared.
type board struct {
	sign    sign.Sign
	journal *journal.Journal
	log     *slog.Logger
	clock   clock.Clock // the agent's: record times and when later texts are due
	mode    sign.Mode
	// schedule names the active schedule for records.
	schedule func() (string, int64)
	recorded func()

	cur *boardRun
}

type boardRun struct {
	run    *scheduler.Run
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	reason scheduler.StopReason
}

// shown is one text on the sign, as the run's goroutine tracks it.
type shown struct {
	seq   uint64
	start time.Time
}

func (b *board) start(ctx context.Context, ev scheduler.Event) {
	if b.cur != nil {
		b.stop(b.cur.run.Key, scheduler.StopPreempted)
	}
	ctx, cancel := context.WithCancel(ctx)
	br := &boardRun{run: ev.Run, cancel: cancel, done: make(chan struct{})}
	b.cur = br
	go b.show(ctx, br, ev)
}

// texts are the run's segments the board shows from position from on, with the text of each.
// Segments the timeline is already past (a restart joins where it is) are not shown.
func boardTexts(run *scheduler.Run, from int) ([]scheduler.Segment, []string) {
	var segs []scheduler.Segment
	var texts []string
	for i, seg := range run.Segments {
		if i < from {
			continue
		}
		if seg.Source.Kind() == scheduler.KindText {
			segs, texts = append(segs, seg), append(texts, seg.Source.Text)
		}
	}
	if len(segs) == 0 && run.Title != "" && from < len(run.Segments) {
		seg := run.Segments[from]
		seg.Ref = "text:" + run.Title
		segs, texts = append(segs, seg), append(texts, run.Title)
	}
	return segs, texts
}

func (b *board) show(ctx context.Context, br *boardRun, ev scheduler.Event) {
	defer close(br.done)
	segs, texts := boardTexts(br.run, ev.From.Segment)
	id, rev := b.schedule()
	cs := clockState(ev.ClockSynced)
	if len(segs) == 0 {
		b.record(protocol.Confirmation{Output: "board", ScheduleID: id, Revision: uint64(rev), Program: br.run.Program,
			Item: br.run.Segments[0].Ref, Scheduled: br.run.Segments[0].Planned(), End: b.clock.Now(), Result: protocol.ResultFailed,
			Error: "nothing to show: the programme has no text item and no title", Clock: cs})
		return
	}
	var open *shown
	finish := func(result protocol.Result, msg string) {
		if open == nil {
			return
		}
		end := b.clock.Now()
		err := b.journal.Finish(open.seq, result, end, protocol.Proof{PlayedS: end.Sub(open.start).Seconds()}, msg)
		if err != nil {
			b.log.Error("journal: cannot record the end of a bulletin on the board", "seq", open.seq, "err", err)
		} else if b.recorded != nil {
			b.recorded()
		}
		open = nil
	}
	for i, seg := range segs {
		if i > 0 { // later texts wait for their planned time
			select {
			case <-ctx.Done():
			case <-b.clock.After(seg.Start.Sub(b.clock.Now())):
			}
		}
		if ctx.Err() != nil {
			break
		}
		rec := protocol.Confirmation{Output: "board", ScheduleID: id, Revision: uint64(rev), Program: seg.Program,
			ItemIndex: seg.Item, Item: seg.Ref, Scheduled: seg.Planned(), Clock: cs}
		if i == 0 && br.run.Segments[ev.From.Segment].Key() == seg.Key() {
			rec.FromS = (ev.From.Offset).Seconds()
		} else {
			rec.FromS = (seg.Offset).Seconds()
		}
		err := b.sign.Show(ctx, sign.Text{Message: texts[i], Mode: b.mode})
		if err != nil {
			// The driver re-sends it when the sign is back; the record says it was not shown now.
			b.log.Warn("the LED sign did not take the bulletin; it is sent again when the sign is back", "program", seg.Program, "err", err)
			finish(protocol.ResultCompleted, "")
			rec.End, rec.Result, rec.Error = b.clock.Now(), protocol.ResultFailed, "sign: "+err.Error()
			b.record(rec)
			continue
		}
		finish(protocol.ResultCompleted, "")
		rec.Start = b.clock.Now()
		seq, err := b.journal.Begin(rec)
		if err != nil {
			b.log.Error("journal: cannot record a bulletin shown on the board", "program", seg.Program, "err", err)
			continue
		}
		open = &shown{seq: seq, start: rec.Start}
	}
	<-ctx.Done() // the runner ends the run (stop), or the agent stops
	br.mu.Lock()
	reason := br.reason
	br.mu.Unlock()
	result := resultOf("", reason, scheduler.StatusPlay)
	finish(result, "")
	// Blank the sign unless another run takes it at once (it will write over it anyway).
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if reason != scheduler.StopPreempted {
		if err := b.sign.Clear(cctx); err != nil && !errors.Is(err, sign.ErrUnavailable) {
			b.log.Warn("the LED sign was not cleared", "err", err)
		}
	}
}

func (b *board) stop(key string, reason scheduler.StopReason) {
	br := b.cur
	if br == nil || br.run.Key != key {
		return
	}
	br.mu.Lock()
	br.reason = reason
	br.mu.Unlock()
	br.cancel()
	<-br.done
	b.cur = nil
}

func (b *board) record(rec protocol.Confirmation) { writeRecord(b.journal, b.log, b.recorded, rec) }

// parseMode reads the board's display mode from the config.
func parseMode(s string) (sign.Mode, error) {
	switch m := sign.Mode(s); m {
	case "":
		return sign.Auto, nil
	case sign.Auto, sign.Hold, sign.Rotate, sign.Scroll, sign.Flash, sign.RollUp, sign.WipeIn, sign.Compact:
		return m, nil
	}
	return "", fmt.Errorf("board: mode %q is not auto, hold, rotate, scroll, flash, roll_up, wipe_in or compressed_rotate", s)
}

func (b *board) playing() string {
	if b.cur == nil {
		return ""
	}
	return b.cur.run.Key
}

// openBoard starts the sign driver of the board output. A sign not plugged in yet is not an
// error: it is retried, and reported in status.
func (a *Agent) openBoard(ctx context.Context) (*board, func(), error) {
	mode, err := parseMode(a.cfg.Board.Mode)
	if err != nil {
		return nil, nil, err
	}
	log := a.log.With("component", "board")
	s, err := sign.Open(a.cfg.Board.sign(), a.clock, log)
	if err != nil {
		return nil, nil, fmt.Errorf("board: %w", err)
	}
	a.mu.Lock() // the hub link's heartbeat reads it
	a.sign = s
	a.mu.Unlock()
	a.tasks.Go(func() { // the sign's own clock, for the time it shows between bulletins
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.SetClock(cctx, a.clock.Now())
	})
	bd := &board{sign: s, journal: a.journal, log: log, clock: a.clock, mode: mode, recorded: a.notifyLink,
		schedule: a.activeRef}
	return bd, func() { s.Close() }, nil
}
