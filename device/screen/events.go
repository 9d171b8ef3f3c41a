package screen

// mpv's events are the proof of display: they fill in each item's proof and end programs.

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// onEvent handles one mpv event (on the IPC reader goroutine).
func (s *Screen) onEvent(p *process, m message) {
	s.mu.Lock()
	calls := s.handleLocked(p, m)
	s.mu.Unlock()
	runCalls(calls)
}

// handleLocked applies an event to the programs' proofs and returns the callbacks to run
// once s.mu is released.
func (s *Screen) handleLocked(p *process, m message) []func() {
	if p != s.proc {
		return nil // a late event of a process already replaced
	}
	now := s.clk.Now()
	switch m.Event {
	case "start-file":
		return s.startFileLocked(m)
	case "playback-restart":
		return s.playbackRestartLocked(m, now)
	case "end-file":
		return s.endFileLocked(m, now)
	case "property-change":
		s.propertyChangeLocked(m)
	case "log-message":
		s.logMessageLocked(m)
	}
	return nil
}

// startFileLocked: mpv opened an entry; it is the item on screen from now.
func (s *Screen) startFileLocked(m message) []func() {
	s.playing = m.EntryID
	e, ok := s.entries[m.EntryID]
	if !ok {
		s.early[m.EntryID] = append(s.early[m.EntryID], m)
		return nil
	}
	var calls []func()
	// Any other program still waiting for its end lost the screen now.
	for _, o := range slices.Clone(s.live) {
		if o != e.sh && o.stopReason != "" {
			calls = append(calls, s.finishLocked(o, "")...)
		}
	}
	if e.sh.finished {
		return calls
	}
	e.sh.current, e.sh.pos, e.sh.dropBase = e.idx, 0, s.dropVO+s.dropDec
	return calls
}

// playbackRestartLocked: the first frame of the playing entry is up, which starts its proof.
func (s *Screen) playbackRestartLocked(m message, now time.Time) []func() {
	e, ok := s.entries[s.playing]
	if !ok {
		if s.playing != 0 {
			s.early[s.playing] = append(s.early[s.playing], m)
		}
		return nil
	}
	if e.sh.finished || e.sh.started[e.idx] {
		return nil
	}
	e.sh.started[e.idx] = true
	e.sh.proofs[e.idx].Start = now
	s.state.Showing = e.sh.proofs[e.idx].Source
	if f := e.sh.prog.OnItemStart; f != nil {
		i := e.idx
		return []func(){func() { f(i, now) }}
	}
	return nil
}

// endFileLocked: an entry left the screen; its proof is complete, and the program finishes
// when it was stopped or this was its last item.
func (s *Screen) endFileLocked(m message, now time.Time) []func() {
	if m.EntryID == s.playing {
		s.playing = 0
	}
	e, ok := s.entries[m.EntryID]
	if !ok {
		s.early[m.EntryID] = append(s.early[m.EntryID], m)
		return nil
	}
	delete(s.entries, m.EntryID)
	sh := e.sh
	if sh.finished {
		return nil
	}
	pr := &sh.proofs[e.idx]
	pr.End = now
	pr.PositionS = sh.pos
	if drop := s.dropVO + s.dropDec - sh.dropBase; drop > 0 {
		pr.FramesDropped = drop
	}
	if sh.started[e.idx] {
		pr.ShownS = pr.End.Sub(pr.Start).Seconds()
	}
	ended, errMsg := endedBy(m, sh.started[e.idx], sh.stopReason)
	pr.Ended = ended
	if errMsg != "" {
		pr.Error = errMsg
	}
	if pr.Ended == EndFailed {
		if l := sh.lastErr[e.idx]; l != "" {
			pr.Error += " (mpv: " + l + ")"
		}
		s.noteError(pr.Source + ": " + pr.Error)
		s.log.Warn("screen: item failed", "item", pr.Source, "err", pr.Error)
	}
	s.state.Showing = ""
	if sh.stopReason == "" || pr.Ended == EndCompleted || pr.Ended == EndFailed {
		sh.current = -1
	} // else it stays, so the result says where to resume
	calls := []func(){sh.endCall(e.idx)}
	if sh.stopReason != "" || sh.allEnded() {
		calls = append(calls, s.finishLocked(sh, "")...)
	}
	return calls
}

// endedBy is how an item ended, from mpv's end-file reason, whether its first frame was
// seen, and why its program was stopped ("" if it was not); and the error of a failure.
func endedBy(m message, started bool, stopReason string) (ended, errMsg string) {
	switch {
	case m.Reason == "error":
		return EndFailed, "mpv could not play it: " + m.FileError
	case m.Reason == "eof" && !started:
		return EndFailed, "mpv showed no frame of it (no video or image in the file?)"
	case m.Reason == "eof":
		return EndCompleted, ""
	case stopReason != "":
		return stopReason, ""
	default:
		return EndStopped, ""
	}
}

// propertyChangeLocked follows the observed playback position and dropped-frame counters.
func (s *Screen) propertyChangeLocked(m message) {
	var v *float64
	if len(m.Data) > 0 && string(m.Data) != "null" {
		var f float64
		if json.Unmarshal(m.Data, &f) == nil {
			v = &f
		}
	}
	switch m.Name {
	case "playback-time":
		if e, ok := s.entries[s.playing]; ok && v != nil && *v >= 0 {
			e.sh.pos = *v
		}
	case "frame-drop-count":
		if v != nil {
			s.dropVO = int64(*v)
		}
	case "decoder-frame-drop-count":
		if v != nil {
			s.dropDec = int64(*v)
		}
	}
}

// logMessageLocked logs mpv's warnings and keeps the last error of the playing item.
func (s *Screen) logMessageLocked(m message) {
	text := strings.TrimSpace(m.Text)
	switch m.Level {
	case "fatal", "error":
		// Not every error is the item's (hardware decoders that are absent are probed
		// and reported too): it goes into the proof only if the item fails.
		s.log.Warn("mpv: "+text, "module", m.Prefix)
		if e, ok := s.entries[s.playing]; ok && !e.sh.finished {
			e.sh.lastErr[e.idx] = m.Prefix + ": " + text
		}
	default:
		s.log.Warn("mpv: "+text, "module", m.Prefix)
	}
}
