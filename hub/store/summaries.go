package store

import (
	"context"
	"database/sql"
	"time"
)

// The report summaries (play_months, play_programs, play_reasons, play_days; schema step 8) are kept in the transaction
// that stores the confirmations, so they always agree with them: a confirmation arriving
// late after an outage is added to the month and day it was played in, and a resent one,
// which the store ignores, is not added again. Months and days are cut at midnight +07
// (Việt Nam, no daylight saving time); a report whose period is cut elsewhere reads its
// edges from the confirmations (reports.go).

// summaryZone is the zone summaries are cut in.
var summaryZone = time.FixedZone("+07", 7*3600)

const summaryOffset = int64(7 * time.Hour)

// monthOf is a play time's month as yyyymm in summaryZone.
func monthOf(t time.Time) int {
	t = t.In(summaryZone)
	return t.Year()*100 + int(t.Month())
}

// dayOf is a play time's day number (days since 1970-01-01) in summaryZone.
func dayOf(t time.Time) int64 { return (t.UnixNano() + summaryOffset) / int64(24*time.Hour) }

type monthKey struct {
	month     int
	area, ref string
}

type monthSum struct {
	plays, heard, amp int64
	played            float64
	results           [6]int64 // completed, preempted, interrupted, failed, missed, suppressed
}

type progKey struct {
	month              int
	area, program, ref string
}

type reasonKey struct {
	progKey
	result, err string
}

type dayKey struct {
	day  int64
	area string
}

// summaries sums one device's batch before it is written: a batch of 500 plays touches a
// few months and days, not 500 rows.
type summaries struct {
	months  map[monthKey]*monthSum
	progs   map[progKey]*monthSum
	reasons map[reasonKey]int64
	days    map[dayKey]int64
}

var resultIndex = map[string]int{"completed": 0, "preempted": 1, "interrupted": 2, "failed": 3, "missed": 4, "suppressed": 5}

func (s *summaries) add(area string, c Confirmation, at time.Time) {
	if s.months == nil {
		s.months, s.progs, s.reasons, s.days = map[monthKey]*monthSum{}, map[progKey]*monthSum{}, map[reasonKey]int64{}, map[dayKey]int64{}
	}
	month := monthOf(at)
	m := s.months[monthKey{month, area, c.Item}]
	if m == nil {
		m = &monthSum{}
		s.months[monthKey{month, area, c.Item}] = m
	}
	pk := progKey{month, area, c.Program, c.Item}
	p := s.progs[pk]
	if p == nil {
		p = &monthSum{}
		s.progs[pk] = p
	}
	for _, m := range []*monthSum{m, p} {
		m.plays++
		m.played += c.PlayedS
		if c.PlayedS > 0 {
			m.heard++
		}
		if c.Amplifier != "" && c.Amplifier != "on" {
			m.amp++
		}
		if i, ok := resultIndex[string(c.Result)]; ok {
			m.results[i]++
		}
	}
	if c.PlayedS > 0 {
		s.days[dayKey{dayOf(at), area}]++
	}
	if c.Result != "completed" {
		s.reasons[reasonKey{pk, string(c.Result), c.Error}]++
	}
}

// The summaries' upserts name the stored row's column by its table (play_months.plays):
// PostgreSQL finds a bare name ambiguous beside excluded's.
const (
	upsertMonth = `INSERT INTO play_months(month, area_id, device_id, item_ref, plays, heard, played_s, amp_faults,
		completed, preempted, interrupted, failed, missed, suppressed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(month, area_id, device_id, item_ref) DO UPDATE SET plays = play_months.plays + excluded.plays,
		heard = play_months.heard + excluded.heard, played_s = play_months.played_s + excluded.played_s, amp_faults = play_months.amp_faults + excluded.amp_faults,
		completed = play_months.completed + excluded.completed, preempted = play_months.preempted + excluded.preempted,
		interrupted = play_months.interrupted + excluded.interrupted, failed = play_months.failed + excluded.failed,
		missed = play_months.missed + excluded.missed, suppressed = play_months.suppressed + excluded.suppressed`
	upsertProg = `INSERT INTO play_programs(month, area_id, program, item_ref, plays, heard, played_s,
		completed, preempted, interrupted, failed, missed, suppressed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(month, area_id, program, item_ref) DO UPDATE SET plays = play_programs.plays + excluded.plays,
		heard = play_programs.heard + excluded.heard, played_s = play_programs.played_s + excluded.played_s,
		completed = play_programs.completed + excluded.completed, preempted = play_programs.preempted + excluded.preempted,
		interrupted = play_programs.interrupted + excluded.interrupted, failed = play_programs.failed + excluded.failed,
		missed = play_programs.missed + excluded.missed, suppressed = play_programs.suppressed + excluded.suppressed`
	upsertReason = `INSERT INTO play_reasons(month, area_id, program, item_ref, result, error, plays) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(month, area_id, program, item_ref, result, error) DO UPDATE SET plays = play_reasons.plays + excluded.plays`
	upsertDay = `INSERT INTO play_days(day, area_id, device_id, heard) VALUES (?, ?, ?, ?)
		ON CONFLICT(day, area_id, device_id) DO UPDATE SET heard = play_days.heard + excluded.heard`
)

func (s *summaries) store(ctx context.Context, db *DB, tx *sql.Tx, device string) error {
	if len(s.months) == 0 {
		return nil
	}
	month, day := tx.StmtContext(ctx, db.upsertMonth), tx.StmtContext(ctx, db.upsertDay)
	prog, reason := tx.StmtContext(ctx, db.upsertProg), tx.StmtContext(ctx, db.upsertReason)
	defer month.Close()
	defer day.Close()
	defer prog.Close()
	defer reason.Close()
	for k, m := range s.progs {
		r := m.results
		if _, err := prog.ExecContext(ctx, k.month, k.area, k.program, k.ref, m.plays, m.heard, m.played,
			r[0], r[1], r[2], r[3], r[4], r[5]); err != nil {
			return err
		}
	}
	for k, n := range s.reasons {
		if _, err := reason.ExecContext(ctx, k.month, k.area, k.program, k.ref, k.result, k.err, n); err != nil {
			return err
		}
	}
	for k, m := range s.months {
		r := m.results
		if _, err := month.ExecContext(ctx, k.month, k.area, device, k.ref, m.plays, m.heard, m.played, m.amp,
			r[0], r[1], r[2], r[3], r[4], r[5]); err != nil {
			return err
		}
	}
	for k, n := range s.days {
		if _, err := day.ExecContext(ctx, k.day, k.area, device, n); err != nil {
			return err
		}
	}
	return nil
}

// byMonths splits a report's period: the whole months inside it [mFrom, mTo) are read from
// the summaries when useMonths allows and there is one (whole); everything else — the edges,
// or the whole period — is handed to raw, which reads the confirmations.
func byMonths(from, to time.Time, useMonths bool, raw func(from, to time.Time) error) (mFrom, mTo time.Time, whole bool, err error) {
	mFrom, mTo, whole = span(from, to)
	if !whole || !useMonths {
		return to, to, false, raw(from, to)
	}
	if from.Before(mFrom) {
		if err := raw(from, mFrom); err != nil {
			return mFrom, mTo, true, err
		}
	}
	if mTo.Before(to) {
		if err := raw(mTo, to); err != nil {
			return mFrom, mTo, true, err
		}
	}
	return mFrom, mTo, true, nil
}

// span splits [from, to) into the whole months of summaryZone inside it, [mFrom, mTo), and
// the edges before and after, read from the confirmations. ok is false when no whole month
// lies inside.
func span(from, to time.Time) (mFrom, mTo time.Time, ok bool) {
	f := from.In(summaryZone)
	mFrom = time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, summaryZone)
	if mFrom.Before(from) {
		mFrom = mFrom.AddDate(0, 1, 0)
	}
	t := to.In(summaryZone)
	mTo = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, summaryZone)
	return mFrom, mTo, mFrom.Before(mTo)
}
