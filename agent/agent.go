package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loa-project/loa/agent/journal"
	"github.com/loa-project/loa/agent/link"
	"github.com/loa-project/loa/agent/neighbours"
	"github.com/loa-project/loa/agent/upgrade"
	"github.com/loa-project/loa/content"
	"github.com/loa-project/loa/device/amplifier"
	"github.com/loa-project/loa/device/screen"
	"github.com/loa-project/loa/device/sign"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/internal/clock"
	"github.com/loa-project/loa/player"
	"github.com/loa-project/loa/protocol"
	"github.com/loa-project/loa/scheduler"
)

// minPlausible is a wall time no real clock can be before: a Pi without RTC boots at 1970 or
// at its fake-hwclock, and a clock earlier than this (or than the last time the agent saw)
// is not trusted.
var minPlausible = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Agent is the daemon. Build it with New and call Run.
type Agent struct {
	cfg     *Config
	log     *slog.Logger
	clock   clock.Clock // the one clock: runner, journal, player, link, records, state
	store   *content.Store
	journal *journal.Journal
	runner  *scheduler.Runner
	lengths *lengthCache
	speech  *speech
	amp     *amplifier.Amplifier
	sign    sign.Sign                 // the board output's LED sign, when the device has one
	screen  *screen.Screen            // the screen output's mpv, when the device has one
	deadAir deadAirState              // the speakers' dead-air alarm, for the heartbeat
	ntp     atomic.Pointer[ntpReport] // the NTP client's last word on the clock, for the heartbeat

	commands  chan func(outputs)  // hub commands, carried out on the main loop
	adhoc     []scheduler.Program // play_now programmes beside the schedule
	volumeSet *float64            // device volume set by a command (kept in state.json)
	volume    *volume
	reload    chan struct{}
	health    health

	// tasks are the goroutines Run starts (the hub link, the watchdog, warm-ups, checkpoints,
	// the control socket): Run waits for them before it closes the journal and the store.
	tasks sync.WaitGroup

	sched *schedules // which schedule plays

	mu         sync.Mutex
	link       *link.Link
	nowPlaying map[string]*NowPlaying
	synced     bool

	started  time.Duration // the clock's monotonic reading at Run: uptime counts from it
	lastWall time.Time
	stateMu  sync.Mutex

	// neighbours serves the store to the commune's agents and fetches from them (nil: off).
	neighbours *neighbours.Neighbours
	// upgrader installs the hub's upgrades (nil: no release key trusted).
	upgrader *upgrade.Manager
}

// NowPlaying is what an output is playing, for status.
type NowPlaying struct {
	Output  string    `json:"output"`
	Program string    `json:"program"`
	Title   string    `json:"title,omitempty"`
	Class   string    `json:"class"`
	Item    int       `json:"item"`
	Ref     string    `json:"ref"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Seq     uint64    `json:"seq"`
}

// New prepares an agent: it opens nothing yet; Run does.
// clk is the agent's one clock (nil: the machine's); tests drive a clock.Fake through it.
func New(cfg *Config, log *slog.Logger, clk clock.Clock) *Agent {
	if clk == nil {
		clk = clock.NewSystem()
	}
	a := &Agent{cfg: cfg, log: log, clock: clk, reload: make(chan struct{}, 1), nowPlaying: map[string]*NowPlaying{},
		commands: make(chan func(outputs))}
	a.sched = &schedules{a: a}
	return a
}

// Reload asks the agent to look at its schedule file now (SIGHUP).
func (a *Agent) Reload() {
	select {
	case a.reload <- struct{}{}:
	default:
	}
}

// Run plays until ctx ends. It returns an error only when the agent cannot work at all
// (no data directory, journal or output); everything else is logged and played around.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg
	if err := atomicfile.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	var err error
	a.started = a.clock.Monotonic()
	// LockWait: a `loa-agent status` run while the agent starts holds the store a moment.
	a.store, err = content.Open(cfg.contentDir(), content.Options{Budget: cfg.Content.BudgetMB << 20,
		Logger: a.log.With("component", "content"), HTTPClient: a.contentClient(), LockWait: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	defer a.store.Close()
	jopts := journal.Options{
		DeviceID: cfg.DeviceID, MaxRecords: cfg.Journal.MaxRecords,
		Logger: a.log.With("component", "journal"), Clock: a.clock,
	}
	a.journal, err = journal.Open(cfg.journalPath(), jopts)
	if errors.Is(err, journal.ErrDamaged) {
		// Playing matters more than the old records: set the file aside for recovery and start
		// a new journal. Its id is new, so the hub places its records after the old ones.
		aside, rerr := setAside(cfg.journalPath(), a.clock.Now())
		if rerr != nil {
			return fmt.Errorf("journal: %w (and it cannot be set aside: %v)", err, rerr)
		}
		a.log.Error("the journal file is damaged: set aside and a new journal started; confirmations it held that the hub had not received are lost unless recovered from the file",
			"aside", aside, "err", err)
		a.journal, err = journal.Open(cfg.journalPath(), jopts)
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer a.journal.Close()
	// Registered after the closes, so run before them: stop everything started from here on
	// and wait for it, whichever way Run returns.
	defer a.tasks.Wait()
	ctx, stopTasks := context.WithCancel(ctx)
	defer stopTasks()

	out, err := player.OpenOutput(ctx, cfg.Audio.Output, cfg.Audio.Rate, cfg.Audio.Buffer.D(), a.log.With("component", "output"))
	if err != nil {
		return fmt.Errorf("audio output %q: %w", cfg.Audio.Output, err)
	}
	defer out.Close()
	pl, err := player.New(player.Config{Output: out, Clock: a.clock, Log: a.log.With("component", "player"),
		CorrectRate: *cfg.Audio.Sync.CorrectRate, OutputDelay: cfg.Audio.Sync.OutputDelay.D(), DeadAir: deadAirOf(cfg.Audio.DeadAir)})
	if err != nil {
		return err
	}
	a.lengths = newLengthCache(cfg.Audio.Rate, a.log.With("component", "lengths"))
	a.speech = newSpeech(cfg.DataDir, cfg.Voice)
	if a.volume, err = newVolume(cfg.Volume, cfg.VolumeSchedule); err != nil {
		return err
	}
	relay, err := amplifier.OpenRelay(cfg.Amplifier)
	if err != nil {
		return fmt.Errorf("amplifier: %w", err)
	}
	// The amplifier's warm-up, off-delay and retries are hardware delays, not wall-clock
	// decisions: they run on the machine's monotonic time.
	a.amp = amplifier.New(cfg.Amplifier, relay, amplifier.SystemClock{}, a.log.With("component", "amplifier"))
	ampDone := make(chan struct{})
	ampCtx, stopAmp := context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(ampDone); a.amp.Run(ampCtx) }()
	defer func() { stopAmp(); <-ampDone }() // switched off after the last play stopped

	st, err := loadState(cfg.statePath())
	if err != nil {
		a.log.Warn(err.Error())
	}
	a.sched.setHeld(st.Held)
	a.lastWall = st.LastWall
	if st.Volume != nil && *st.Volume >= 0 && *st.Volume <= 1 {
		a.volume.setDevice(*st.Volume) // the hub's last volume command outlives a reboot
		a.volumeSet = st.Volume
	}
	notBefore := minPlausible
	if st.LastWall.After(notBefore) {
		notBefore = st.LastWall
	}
	past, lastAlive := a.journalPast()
	lastRun := st.LastWall
	if lastAlive.After(lastRun) && !lastAlive.Before(minPlausible) {
		// The journal was written after the state file was last saved (every 30 s): the
		// agent was alive then, so nothing before it went unseen.
		lastRun = lastAlive
	}
	var synced func() bool
	if cfg.Clock.SyncFile != "" {
		synced = func() bool { _, err := os.Stat(cfg.Clock.SyncFile); return err == nil }
	}
	// In step, a play on free speakers starts ahead of its time: the player measures the
	// output and writes silence until its first sample is heard at that time (docs/sync.md).
	var ahead map[string]time.Duration
	if *cfg.Audio.Sync.InStep {
		ahead = map[string]time.Duration{"speakers": startAhead}
	}
	a.runner = scheduler.NewRunner(scheduler.RunnerOptions{
		Clock: a.clock, Log: a.log.With("component", "scheduler"), Grace: cfg.Grace.D(),
		NotBefore: notBefore, LastRun: lastRun, Synced: synced, Outputs: cfg.Outputs,
		Compile:    scheduler.CompileOptions{ItemLength: a.itemLength},
		Lead:       cfg.Amplifier.WarmUp + time.Second + ahead["speakers"],
		StartAhead: ahead,
		Heartbeat:  a.health.stepped,
	})
	a.runner.Remember(past...)
	a.sched.loadActive()
	a.sched.loadPending()
	a.sched.checkFile(true)
	a.neighbours = a.newNeighbours()
	if a.link, err = a.newLink(); err != nil {
		return fmt.Errorf("hub link: %w", err)
	}
	// Before the link runs: the upgrader downloads through it, and it hands over upgrades.
	if a.upgrader, err = a.newUpgrader(); err != nil {
		return err
	}
	if a.upgrader != nil {
		a.tasks.Go(func() { a.upgrader.Run(ctx) })
	}
	if a.link != nil {
		a.tasks.Go(func() { a.link.Run(ctx) })
		a.tasks.Go(func() { a.watchNTP(ctx) })
	}
	if a.neighbours != nil {
		a.tasks.Go(func() { a.runNeighbours(ctx) })
	}
	if a.sched.active() == nil {
		a.log.Warn("no schedule yet: nothing will play until one is given (schedule: in the config, or a push from the hub)")
	}

	sp := &speakers{
		player: pl, tasks: &a.tasks, journal: a.journal, store: a.store, log: a.log.With("component", "speakers"), clock: a.clock,
		rate: cfg.Audio.Rate, checkpoint: cfg.Journal.Checkpoint.D(), timing: cfg.Audio.Sync,
		schedule:  a.activeRef,
		onChange:  func(np *NowPlaying) { a.setNowPlaying("speakers", np) },
		health:    &a.health,
		recorded:  a.notifyLink,
		speech:    a.speech,
		amp:       a.amp,
		volume:    a.volume,
		deadAir:   &a.deadAir,
		identFile: cfg.Audio.DeadAir.FallbackFile,
		alarmChanged: func() {
			if a.link != nil {
				a.link.StatusChanged()
			}
		},
		stamping: a.stamping,
	}
	outs := outputs{"speakers": sp}
	if a.cfg.has("board") {
		bd, closeBoard, err := a.openBoard(ctx)
		if err != nil {
			return err
		}
		defer closeBoard()
		outs["board"] = bd
	}
	if a.cfg.has("screen") {
		so, closeScreen, err := a.openScreen()
		if err != nil {
			return err
		}
		defer closeScreen()
		outs["screen"] = so
	}

	ctl, err := a.serveControl(ctx)
	if err != nil {
		a.log.Warn("control socket unavailable; `loa-agent status` and `journal` will read files instead", "err", err)
	} else {
		defer ctl.Close()
	}

	if cfg.MetricsListen != "" {
		if err := a.serveMetrics(ctx); err != nil {
			a.log.Warn("metrics endpoint unavailable; the agent plays on without it", "metrics_listen", cfg.MetricsListen, "err", err)
		}
	}

	events := make(chan scheduler.Event, 64)
	runCtx, stopRunner := context.WithCancel(ctx)
	runnerDone := make(chan struct{})
	go func() {
		defer close(runnerDone)
		a.runner.Run(runCtx, events)
	}()

	notify := newNotifier()
	defer notify.close()
	a.tasks.Go(func() {
		a.health.watch(ctx, notify, watchdogInterval(), func(msg string, args ...any) { a.log.Error(msg, args...) })
	})
	notify.send("READY=1")

	// The schedule file is looked at beside this loop: offering a new one compiles it (seconds
	// for a dense schedule on a loaded Pi), and the runner's events must not wait for that.
	a.tasks.Go(func() { a.sched.watchFile(ctx, a.reload) })
	// The state (the latest trusted wall time) is saved every 30 s of the agent's clock, so
	// that a fast clock in tests saves it as often.
	save := a.clock.After(stateEvery)
	a.log.Info("agent running", "device", cfg.DeviceID, "output", cfg.Audio.Output, "data_dir", cfg.DataDir)
	for {
		select {
		case ev := <-events:
			a.handle(ctx, outs, ev)
		case f := <-a.commands:
			f(outs)
		case <-save:
			a.saveState()
			save = a.clock.After(stateEvery)
		case <-ctx.Done():
			notify.send("STOPPING=1")
			stopRunner()
			<-runnerDone
			// Drain the stops the runner sent on its way out.
			for {
				select {
				case ev := <-events:
					a.handle(context.Background(), outs, ev)
					continue
				default:
				}
				break
			}
			for _, o := range outs {
				if key := o.playing(); key != "" {
					o.stop(key, scheduler.StopShutdown)
				}
			}
			a.saveState()
			a.log.Info("agent stopped")
			return nil
		}
	}
}

// handle acts on one runner event.
func (a *Agent) handle(ctx context.Context, outs outputs, ev scheduler.Event) {
	a.mu.Lock()
	a.synced = ev.ClockSynced
	a.mu.Unlock()
	sp := outs[ev.Run.Output]
	if sp == nil {
		// The runner only plans the outputs this device has; an output it has but this build
		// cannot drive is recorded, not silently dropped.
		if ev.Kind == scheduler.EventStart {
			a.log.Warn("output not supported by this build; recorded as failed", "output", ev.Run.Output, "program", ev.Run.Program)
			a.recordOnce(ev, protocol.ResultFailed, "output "+ev.Run.Output+" is not supported by this agent build")
		}
		return
	}
	switch ev.Kind {
	case scheduler.EventUpcoming:
		if s, ok := sp.(*speakers); ok {
			s.warmUp(ctx, ev.Run)
		}
	case scheduler.EventStart:
		a.log.Info("programme starts", "program", ev.Run.Program, "class", ev.Run.Class.String(), "until", ev.Run.End.Format(time.RFC3339),
			"late", ev.Late.Round(time.Millisecond), "item", ev.Run.Segments[ev.From.Segment].Item, "from", ev.From.Offset.Round(time.Millisecond))
		sp.start(ctx, ev)
	case scheduler.EventStop:
		a.log.Info("programme stops", "program", ev.Run.Program, "reason", string(ev.Reason))
		sp.stop(ev.Run.Key, ev.Reason)
	case scheduler.EventMissed:
		a.log.Warn("programme missed", "program", ev.Run.Program,
			"scheduled", ev.Run.Scheduled.Format(time.RFC3339), "late", ev.Late.Round(time.Second), "why", ev.Why)
		a.recordOnce(ev, protocol.ResultMissed, ev.Why)
	case scheduler.EventSuppressed:
		a.recordOnce(ev, protocol.ResultSuppressed, "quiet hours")
	case scheduler.EventSkipped:
		a.recordOnce(ev, protocol.ResultSuppressed, "on_interrupt: skip")
	}
}

// recordOnce writes a one-shot confirmation for a run's first item.
func (a *Agent) recordOnce(ev scheduler.Event, result protocol.Result, msg string) {
	seg := ev.Run.Segments[0]
	id, rev := a.activeRef()
	writeRecord(a.journal, a.log, a.notifyLink, protocol.Confirmation{
		Output: seg.Output, ScheduleID: id, Revision: uint64(rev), Program: seg.Program,
		ItemIndex: seg.Item, Item: seg.Ref, Scheduled: seg.Planned(), End: ev.At,
		Result: result, Error: msg, Clock: clockState(ev.ClockSynced),
	})
}

func (a *Agent) setNowPlaying(output string, np *NowPlaying) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if np == nil {
		delete(a.nowPlaying, output)
		return
	}
	a.nowPlaying[output] = np
}

// stateEvery is how often the state file is saved while running.
const stateEvery = 30 * time.Second

// saveState writes the latest trusted wall time and the accepted revisions. A wrong clock is
// never saved as "the latest time seen".
func (a *Agent) saveState() {
	now := a.clock.Now()
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	a.mu.Lock()
	if a.synced && !now.Before(minPlausible) && now.After(a.lastWall) {
		a.lastWall = now
	}
	st := state{LastWall: a.lastWall, Held: map[string]int64{}, Volume: a.volumeSet}
	a.mu.Unlock()
	maps.Copy(st.Held, a.sched.heldRevisions())
	if err := saveState(a.cfg.statePath(), st); err != nil {
		a.log.Warn("cannot save state", "err", err)
	}
}

// pastLimit bounds how many journal records a restart reads: a busy day has a few hundred.
const pastLimit = 5000

// journalPast reads what the journal shows of the last day (and a bit) for the runner, and
// the latest time a record shows the agent alive. Records a crash left open were closed as
// interrupted by journal.Open.
func (a *Agent) journalPast() ([]scheduler.Past, time.Time) {
	recs, err := a.journal.Recent(a.clock.Now().Add(-26*time.Hour), pastLimit)
	if err != nil {
		a.log.Warn("cannot read the journal's last records; programmes cut by the restart may start over and be recorded twice", "err", err)
		return nil, time.Time{}
	}
	var past []scheduler.Past
	var alive time.Time
	for _, r := range recs {
		if l := r.Latest(); l.After(alive) {
			alive = l
		}
		p := scheduler.Past{Output: r.Output, Program: r.Program, Item: r.ItemIndex, Planned: r.Scheduled, Start: r.Start, From: protocol.Duration(r.FromS)}
		switch r.Result {
		case protocol.ResultInterrupted, protocol.ResultPlaying:
			p.Was = scheduler.PastCut
		case protocol.ResultMissed, protocol.ResultSuppressed:
			p.Was = scheduler.PastNoted
		default:
			p.Was = scheduler.PastDone
		}
		past = append(past, p)
	}
	return past, alive
}

var errNoDaemon = errors.New("the agent is not running")

// setAside renames a damaged file to path.damaged-<time>, never over one set aside before: a
// Pi without an RTC can boot at the same wrong time twice, and each file may hold records the
// hub never received.
func setAside(path string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s.damaged-%s", path, now.UTC().Format("20060102T150405"))
	aside := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s-%d", base, i)
	}
	return aside, os.Rename(path, aside)
}

// deadAirOf is the player's dead-air watch from the agent's config (After 0: off).
func deadAirOf(c DeadAirConfig) player.DeadAir {
	if c.Enabled != nil && !*c.Enabled {
		return player.DeadAir{}
	}
	return player.DeadAir{After: c.After.D(), LevelDBFS: c.LevelDBFS}
}
