package screen

// A program's life on the screen: Show loads it, watch and Stop end it, finishLocked writes
// its result.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Showing is a program on the screen.
type Showing struct {
	s    *Screen
	prog Program

	// guarded by s.mu
	proofs     []Proof
	started    []bool   // playback-restart seen
	lastErr    []string // the last error mpv logged while the item played
	current    int      // item on screen, -1 when none
	pos        float64
	dropBase   int64
	stopReason string
	result     Result
	done       chan struct{}
	finished   bool
}

// Done is closed when the program has left the screen.
func (sh *Showing) Done() <-chan struct{} { return sh.done }

// Wait waits for the end and returns the result.
func (sh *Showing) Wait() Result {
	<-sh.done
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	return sh.result
}

// Stop takes the program off the screen at once (the screen goes black) and returns the
// result. Stopping a program that another Show already replaced only returns its result.
func (sh *Showing) Stop() Result {
	sh.s.stopShowing(sh, EndStopped)
	return sh.Wait()
}

// Progress is the item on screen and the media position in it.
func (sh *Showing) Progress() (item int, at time.Duration) {
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	return sh.current, time.Duration(sh.pos * float64(time.Second))
}

// Show puts prog on the screen at once, replacing what is there (which ends "stopped"): the
// switch is one mpv playlist replace, so there is no black in between. It returns as soon as
// mpv has the playlist; items that cannot be shown (missing file, bulletin without duration)
// get a failed proof and the others play.
func (s *Screen) Show(ctx context.Context, prog Program) (*Showing, error) {
	if len(prog.Items) == 0 {
		return nil, errors.New("screen: a program needs at least one item")
	}
	if prog.StartItem < 0 || prog.StartItem >= len(prog.Items) {
		return nil, fmt.Errorf("screen: start item %d is outside the program's %d items", prog.StartItem, len(prog.Items))
	}
	s.showMu.Lock()
	defer s.showMu.Unlock()
	s.mu.Lock()
	p := s.proc
	closed := s.closed
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("screen: %w: closed", ErrUnavailable)
	}
	if p == nil {
		return nil, fmt.Errorf("screen: %w: mpv is being restarted (%s)", ErrUnavailable, s.State().LastError)
	}
	s.removeOldBulletins(seq)

	sh, prep := s.newShowing(prog, seq)
	runCalls(s.takeScreen(sh, prep))

	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !s.load(cctx, p, sh, prep) {
		// Nothing could be loaded: the screen still belongs to this program, so blank it.
		if _, err := p.ipc.command(cctx, "stop"); err != nil {
			s.log.Warn("screen: could not blank the screen", "err", err)
		}
		s.mu.Lock()
		calls := s.finishLocked(sh, EndFailed)
		s.mu.Unlock()
		runCalls(calls)
		return sh, nil
	}
	s.log.Info("screen: program on screen", "items", len(prog.Items), "first", prog.Items[prog.StartItem].String())
	s.watchers.Go(func() { s.watch(ctx, sh) })
	return sh, nil
}

// newShowing makes the Showing of prog and prepares its items from StartItem on; items
// before it are not prepared (they will be skipped).
func (s *Screen) newShowing(prog Program, seq int) (*Showing, []prepared) {
	sh := &Showing{s: s, prog: prog, proofs: make([]Proof, len(prog.Items)), started: make([]bool, len(prog.Items)),
		lastErr: make([]string, len(prog.Items)), current: -1, done: make(chan struct{})}
	prep := make([]prepared, len(prog.Items))
	for i, it := range prog.Items {
		sh.proofs[i] = Proof{Item: i, Source: it.String()}
		if i < prog.StartItem {
			continue
		}
		at := time.Duration(0)
		if i == prog.StartItem {
			at = prog.StartAt
		}
		prep[i] = s.prepare(it, seq, i, at)
		sh.proofs[i].Kind = prep[i].kind
	}
	return sh, prep
}

// takeScreen makes sh the program that has the screen: the one before is stopped, stale
// entries are forgotten, and items skipped or that could not be prepared get their proofs.
// It returns the callbacks to run once s.mu is released.
func (s *Screen) takeScreen(sh *Showing, prep []prepared) []func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.cur; old != nil && !old.finished && old.stopReason == "" {
		old.stopReason = EndStopped
		if old.current < 0 {
			s.finishLocked(old, "")
		}
	}
	s.cur = sh
	s.live = append(s.live, sh)
	// Events of unknown entries only matter while a Show registers its entries (Shows are
	// serialised): anything left from before is stale.
	clear(s.early)
	for id, e := range s.entries {
		if e.sh.finished {
			delete(s.entries, id)
		}
	}
	var calls []func()
	for i := range sh.prog.Items {
		if i < sh.prog.StartItem {
			sh.proofs[i].Ended = EndSkipped
		} else if prep[i].err != nil {
			sh.proofs[i].Ended, sh.proofs[i].Error = EndFailed, prep[i].err.Error()
			s.noteError(prep[i].err.Error())
			calls = append(calls, sh.endCall(i))
		}
	}
	return calls
}

// load hands the prepared items to mpv as one playlist: the first replaces what mpv plays,
// the others are appended. Events mpv sent for an entry before its loadfile reply came are
// applied once the entry is known. It reports whether any item was loaded.
func (s *Screen) load(ctx context.Context, p *process, sh *Showing, prep []prepared) bool {
	mode := "replace"
	for i := sh.prog.StartItem; i < len(sh.prog.Items); i++ {
		if prep[i].err != nil {
			continue
		}
		id, err := loadfile(ctx, p, prep[i], mode)
		var calls []func()
		s.mu.Lock()
		if err != nil {
			sh.proofs[i].Ended, sh.proofs[i].Error = EndFailed, fmt.Sprintf("%s: %v", sh.prog.Items[i], err)
			s.noteError(sh.proofs[i].Error)
			calls = []func(){sh.endCall(i)}
		} else {
			mode = "append"
			s.entries[id] = entry{sh, i}
			ev := s.early[id]
			delete(s.early, id)
			for _, m := range ev {
				calls = append(calls, s.handleLocked(p, m)...)
			}
		}
		s.mu.Unlock()
		runCalls(calls)
	}
	return mode == "append"
}

// loadfile sends one item to mpv and returns its playlist entry id.
func loadfile(ctx context.Context, p *process, pr prepared, mode string) (int64, error) {
	data, err := p.ipc.command(ctx, "loadfile", pr.url, mode, strings.Join(pr.opts, ","))
	if err != nil {
		return 0, err
	}
	var r struct {
		ID int64 `json:"playlist_entry_id"`
	}
	if err = json.Unmarshal(data, &r); err == nil && r.ID == 0 {
		err = errors.New("mpv did not return a playlist entry id (mpv older than 0.33?)")
	}
	return r.ID, err
}

// watch applies the program's hard end and its context.
func (s *Screen) watch(ctx context.Context, sh *Showing) {
	var until <-chan time.Time
	if !sh.prog.Until.IsZero() {
		until = s.clk.After(sh.prog.Until.Sub(s.clk.Now()))
	}
	select {
	case <-sh.done:
	case <-ctx.Done():
		s.stopShowing(sh, EndCancelled)
	case <-until:
		s.stopShowing(sh, EndUntil)
	}
}

// Stop blanks the screen: the program on it ends "stopped".
func (s *Screen) Stop() {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if cur != nil {
		s.stopShowing(cur, EndStopped)
		<-cur.done
	}
}

// stopShowing takes sh off the screen with the given reason. mpv's end-file for the item on
// screen then finishes it; if mpv does not confirm within 5 s the program is finished anyway.
func (s *Screen) stopShowing(sh *Showing, reason string) {
	s.showMu.Lock()
	defer s.showMu.Unlock()
	s.mu.Lock()
	if sh.finished || sh.stopReason != "" {
		s.mu.Unlock()
		return
	}
	sh.stopReason = reason
	p := s.proc
	var calls []func()
	onScreen := s.cur == sh && p != nil
	if !onScreen || sh.current < 0 {
		calls = s.finishLocked(sh, "")
	}
	s.mu.Unlock()
	runCalls(calls)
	if !onScreen {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.ipc.command(ctx, "stop"); err != nil {
		s.log.Warn("screen: mpv did not take the stop command", "err", err)
	}
	select {
	case <-sh.done:
	case <-s.clk.After(5 * time.Second):
		s.mu.Lock()
		if sh.current >= 0 {
			sh.proofs[sh.current].Error = "mpv did not confirm the stop within 5s"
		}
		calls = s.finishLocked(sh, "")
		s.mu.Unlock()
		runCalls(calls)
	}
}

func (sh *Showing) allEnded() bool {
	for _, p := range sh.proofs {
		if p.Ended == "" {
			return false
		}
	}
	return true
}

// endCall is the OnItemEnd callback for item i with its proof as it is now.
func (sh *Showing) endCall(i int) func() {
	f := sh.prog.OnItemEnd
	if f == nil {
		return func() {}
	}
	pr := sh.proofs[i]
	return func() { f(i, pr) }
}

// finishLocked ends sh: the item on screen ends with the stop reason (or failure), the rest
// are skipped. failMsg, when set, is the reason mpv went away.
func (s *Screen) finishLocked(sh *Showing, failMsg string) []func() {
	if sh.finished {
		return nil
	}
	now := s.clk.Now()
	reason := sh.stopReason
	if failMsg != "" {
		reason = EndFailed
	}
	var calls []func()
	for i := range sh.proofs {
		pr := &sh.proofs[i]
		if pr.Ended != "" {
			continue
		}
		switch {
		case i == sh.current:
			pr.End, pr.PositionS = now, sh.pos
			if sh.started[i] {
				pr.ShownS = now.Sub(pr.Start).Seconds()
			}
			pr.Ended = reason
			if reason == "" {
				pr.Ended = EndStopped
			}
			if failMsg != "" {
				pr.Error = failMsg
			}
		default:
			pr.Ended = EndSkipped
		}
		calls = append(calls, sh.endCall(i))
	}
	sh.result = Result{Items: slices.Clone(sh.proofs), Ended: reason, Item: -1}
	if reason == "" {
		sh.result.Ended = EndCompleted
	}
	if reason == EndFailed && failMsg == "" && sh.allFailed() {
		sh.result.Ended = EndFailed
	}
	if sh.current >= 0 {
		sh.result.Item, sh.result.At = sh.current, time.Duration(sh.pos*float64(time.Second))
	} else {
		for i, pr := range sh.proofs {
			if pr.Ended == EndSkipped && i >= sh.prog.StartItem {
				sh.result.Item = i
				break
			}
		}
	}
	sh.current = -1
	sh.finished = true
	s.live = slices.DeleteFunc(s.live, func(o *Showing) bool { return o == sh })
	if s.cur == sh {
		s.state.Showing = ""
	}
	close(sh.done)
	return calls
}

func (sh *Showing) allFailed() bool {
	for _, p := range sh.proofs {
		if p.Ended != EndFailed && p.Ended != EndSkipped {
			return false
		}
	}
	return true
}

func runCalls(calls []func()) {
	for _, f := range calls {
		f()
	}
}
