package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/loa-project/loa/protocol"
)

// Confirmation is one play record from a device's journal, as the device sent it
// (protocol.Confirmation: what was scheduled and what was actually heard), and where and when
// the hub stored it. (Device, Seq) identifies it; it is stored exactly once. Levels are nil
// when not measured; -Inf (digital silence) is kept.
type Confirmation struct {
	protocol.Confirmation
	Area       string // the device's area when the record was stored (set by the store)
	ReceivedAt time.Time
}

// The confirmations table has a column for each field of a play's proof (protocol.Proof),
// named as the field's JSON: a new field of the proof is stored, listed and exported without
// a change here once schema.go adds its column (TestProofColumns checks that it does).
var proofCols = func() []string {
	var cols []string
	t := reflect.TypeFor[protocol.Proof]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		switch t.Field(i).Type {
		case reflect.TypeFor[float64](), reflect.TypeFor[*float64](), reflect.TypeFor[int]():
		default:
			panic("store: protocol.Proof." + t.Field(i).Name + " has a type the confirmations table does not take")
		}
		cols = append(cols, name)
	}
	return cols
}()

// proofArgs are p's column values: a level that is nil or NaN is NULL (not measured), a
// duration that is not finite 0.
func proofArgs(p *protocol.Proof) []any {
	v := reflect.ValueOf(p).Elem()
	args := make([]any, v.NumField())
	for i := range args {
		switch f := v.Field(i).Interface().(type) {
		case float64:
			args[i] = finite(f)
		case *float64:
			args[i] = level(f)
		default:
			args[i] = f
		}
	}
	return args
}

// proofDest gives Scan a destination for each proof column; done fills in the levels.
func proofDest(p *protocol.Proof) (dest []any, done func()) {
	v := reflect.ValueOf(p).Elem()
	var levels []func()
	for i := range v.NumField() {
		f := v.Field(i)
		if lv, ok := f.Addr().Interface().(**float64); ok {
			n := new(sql.NullFloat64)
			dest = append(dest, n)
			levels = append(levels, func() {
				*lv = nil
				if n.Valid {
					*lv = &n.Float64
				}
			})
			continue
		}
		dest = append(dest, f.Addr().Interface())
	}
	return dest, func() {
		for _, f := range levels {
			f()
		}
	}
}

// insertConfirmation stores one record unless (device, seq) is there already. ON CONFLICT on
// the key only, not INSERT OR IGNORE: that would also drop rows that break a CHECK or NOT NULL
// without a word.
var insertConfirmation = `INSERT INTO confirmations(device_id, seq, area_id, at, output, schedule_id,
	revision, program, item_index, item_ref, scheduled_at, started_at, ended_at, result, error, clock_state,
	received_at, volume, amplifier, ` + strings.Join(proofCols, ", ") + `)
	VALUES (?` + strings.Repeat(", ?", 18+len(proofCols)) + `)
	ON CONFLICT(device_id, seq) DO NOTHING`

// MaxBatch is the largest batch AddConfirmations takes in one call.
const MaxBatch = 10000

func checkConfirmation(i int, c Confirmation) error {
	where := func() string { return fmt.Sprintf("confirmation %d of the batch (seq %d)", i+1, c.Seq) }
	if c.Seq == 0 || c.Seq > MaxSeq {
		return fmt.Errorf("%w: %s: seq must be 1 to 2^53-1", ErrInvalid, where())
	}
	for what, v := range map[string]string{"output": c.Output, "schedule id": c.ScheduleID, "program": c.Program,
		"item ref": c.Item, "result": string(c.Result), "clock state": string(c.Clock)} {
		if err := checkText(what, v, false, 1024); err != nil {
			return fmt.Errorf("%s: %w", where(), err)
		}
	}
	if err := checkText("error", c.Error, false, maxText); err != nil {
		return fmt.Errorf("%s: %w", where(), err)
	}
	if c.Result == "" {
		return fmt.Errorf("%w: %s: empty result", ErrInvalid, where())
	}
	if c.Revision > math.MaxInt64 {
		return fmt.Errorf("%w: %s: revision %d is out of range", ErrInvalid, where(), c.Revision)
	}
	for what, v := range map[string]float64{"played seconds": c.PlayedS, "silence seconds": c.SilenceS} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%w: %s: %s is %v", ErrInvalid, where(), what, v)
		}
	}
	return nil
}

// MaxSeq is the largest sequence number taken from a device (the protocol's counter bound).
const MaxSeq = 1<<53 - 1

// volume turns a play's gain into its stored form: NULL when not reported (0 or not finite).
func volume(v float64) any {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// level turns a dBFS figure into its stored form: nil or NaN (not measured) is NULL; ±Inf
// are kept.
func level(v *float64) any {
	if v == nil || math.IsNaN(*v) {
		return nil
	}
	return *v
}

// AddConfirmations stores a batch from one device atomically. Records already stored are
// ignored (the device resends what was not acknowledged), in any order. It returns the
// acknowledgement: the highest seq S such that every seq 1..S of the device is stored. A gap
// keeps the ack below it until the missing record arrives. Seqs and the ack are in the device's
// journal numbering: after its journal restarted (SeeJournal) they are shifted by the offset
// the hub stores, so the new journal's seq 1 follows what the hub held of the old one.
//
// Batches from concurrent callers are committed together (the group commit of every write, see
// write): one transaction, a savepoint per batch so a failing batch changes nothing and fails
// alone. A commit costs far more than a small batch, and a hub with thousands of agents calls
// this from as many goroutines. The ack is returned after the commit.
func (db *DB) AddConfirmations(ctx context.Context, deviceID string, cs []Confirmation) (int64, error) {
	if len(cs) > MaxBatch {
		return 0, fmt.Errorf("%w: batch of %d confirmations from device %q; at most %d", ErrInvalid, len(cs), deviceID, MaxBatch)
	}
	for i, c := range cs {
		if err := checkConfirmation(i, c); err != nil {
			return 0, fmt.Errorf("device %q: %w", deviceID, err)
		}
		if c.Device != "" && c.Device != deviceID {
			return 0, fmt.Errorf("%w: confirmation %d of the batch from device %q names device %q", ErrInvalid, i+1, deviceID, c.Device)
		}
	}
	req, ack := db.confRequest(ctx, deviceID, cs)
	select {
	case db.writeQ <- req:
	case <-db.quit:
		return 0, fmt.Errorf("confirmations of device %q: %w", deviceID, ErrClosed)
	case <-ctx.Done():
		return 0, fmt.Errorf("confirmations of device %q not stored: %w", deviceID, ctx.Err())
	}
	<-req.done
	if req.err != nil {
		if req.ctx.Err() != nil && errors.Is(req.err, req.ctx.Err()) {
			return 0, fmt.Errorf("confirmations of device %q not stored: %w", deviceID, req.err)
		}
		return 0, req.err
	}
	return *ack, nil
}

// confRequest is the group writer's request storing one batch; *ack is set when it ran.
func (db *DB) confRequest(ctx context.Context, deviceID string, cs []Confirmation) (*writeReq, *int64) {
	ack := new(int64)
	return &writeReq{ctx: ctx, weight: max(1, len(cs)), done: make(chan struct{}), fn: func(tx *sql.Tx) error {
		a, err := db.storeBatch(context.Background(), tx, deviceID, cs, ts(db.now()))
		*ack = a
		return err
	}}, ack
}

// storeBatch inserts one device's batch inside tx and advances its ack.
func (db *DB) storeBatch(ctx context.Context, tx *sql.Tx, deviceID string, cs []Confirmation, now any) (int64, error) {
	var area string
	var ack, off int64
	var revoked bool
	err := tx.StmtContext(ctx, db.deviceAck).QueryRowContext(ctx, deviceID).Scan(&area, &ack, &off, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: device %q is not enrolled", ErrNotFound, deviceID)
	}
	if err != nil {
		return 0, fmt.Errorf("confirmations of device %q: %w", deviceID, err)
	}
	if revoked { // a batch in flight when the device was revoked
		return 0, fmt.Errorf("%w: device %q was revoked; its confirmations are no longer taken", ErrUnauthorized, deviceID)
	}
	stmt := tx.StmtContext(ctx, db.insertConf)
	defer stmt.Close()
	next := false // whether the batch holds ack+1, the only way the ack can move
	var sum summaries
	for _, c := range cs {
		// The device's numbering, after its journal restarts, is shifted; checked, because
		// each restart moves the offset past everything held.
		if off > math.MaxInt64-int64(c.Seq) {
			return 0, fmt.Errorf("%w: seq %d of device %q does not fit after its journal restarts (offset %d): ask an administrator to re-enrol it",
				ErrInvalid, c.Seq, deviceID, off)
		}
		seq := int64(c.Seq) + off
		if seq <= ack {
			continue // stored and acknowledged already
		}
		next = next || seq == ack+1
		at := c.Start
		if at.IsZero() {
			at = c.Scheduled
		}
		args := append([]any{deviceID, seq, area, ts(at), c.Output, c.ScheduleID, int64(c.Revision),
			c.Program, c.ItemIndex, c.Item, ts(c.Scheduled), ts(c.Start), ts(c.End), c.Result, c.Error,
			c.Clock, now, volume(c.Volume), c.Amplifier}, proofArgs(&c.Proof)...)
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return 0, fmt.Errorf("store confirmation seq %d of device %q: %w", c.Seq, deviceID, err)
		}
		// Only a row stored now is summed: a resent one (stored before) is not counted twice.
		if n, _ := res.RowsAffected(); n == 1 && !at.IsZero() && !db.noSummaries {
			sum.add(area, c, at)
		}
	}
	if err := sum.store(ctx, db, tx, deviceID); err != nil {
		return 0, fmt.Errorf("report summaries of device %q: %w", deviceID, err)
	}
	if !next {
		return ack - off, nil
	}
	// Walk forward from the ack over stored seqs; stop at the first gap.
	rows, err := tx.StmtContext(ctx, db.walkAck).QueryContext(ctx, deviceID, ack)
	if err != nil {
		return 0, fmt.Errorf("advance ack of device %q: %w", deviceID, err)
	}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return 0, err
		}
		if s != ack+1 {
			break
		}
		ack = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("advance ack of device %q: %w", deviceID, err)
	}
	if _, err := tx.StmtContext(ctx, db.setAck).ExecContext(ctx, ack, deviceID); err != nil {
		return 0, fmt.Errorf("advance ack of device %q: %w", deviceID, err)
	}
	return ack - off, nil
}

// AckedSeq is the device's acknowledgement: the highest contiguous seq stored (0: none), in
// its journal's numbering.
func (db *DB) AckedSeq(ctx context.Context, deviceID string) (int64, error) {
	var ack, off int64
	err := db.r.QueryRowContext(ctx, "SELECT acked_seq, seq_offset FROM devices WHERE id = ?", deviceID).Scan(&ack, &off)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: device %q is not enrolled", ErrNotFound, deviceID)
	}
	return ack - off, err
}

// SeeJournal records the journal a device says it writes (hello). A device whose journal is
// new — its file was damaged and set aside, or the SD card replaced — numbers its records from
// 1 again; without this the hub would drop them as duplicates of the old journal's. So when
// the id changes, the device's numbering is shifted past everything the hub holds of it (the
// old journal's records not received by then are lost with it, and the ack moves past them).
// An empty id (an agent that does not say) changes nothing. It returns whether the journal
// was restarted and the hub's ack of the old one.
func (db *DB) SeeJournal(ctx context.Context, deviceID, journalID string) (restarted bool, oldAck int64, err error) {
	if journalID == "" {
		return false, 0, nil
	}
	// Every connection says hello: the usual answer (the same journal) is a read, not a write
	// through the single writer during a reconnect storm.
	var seen string
	err = db.r.QueryRowContext(ctx, "SELECT journal_id FROM devices WHERE id = ?", deviceID).Scan(&seen)
	if err == nil && seen == journalID {
		return false, 0, nil
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		var known string
		var ack, off int64
		err := tx.QueryRowContext(ctx, "SELECT journal_id, acked_seq, seq_offset FROM devices WHERE id = ?", deviceID).Scan(&known, &ack, &off)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: device %q is not enrolled", ErrNotFound, deviceID)
		}
		if err != nil {
			return err
		}
		if known == journalID {
			return nil
		}
		if known == "" {
			_, err = tx.ExecContext(ctx, "UPDATE devices SET journal_id = ? WHERE id = ?", journalID, deviceID)
			return err
		}
		var top int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM confirmations WHERE device_id = ?", deviceID).Scan(&top); err != nil {
			return err
		}
		top = max(top, ack)
		restarted, oldAck = true, ack-off
		_, err = tx.ExecContext(ctx, "UPDATE devices SET journal_id = ?, seq_offset = ?, acked_seq = ? WHERE id = ?", journalID, top, top, deviceID)
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("journal of device %q: %w", deviceID, err)
	}
	return restarted, oldAck, nil
}

// ConfirmationFilter selects confirmations; empty fields do not filter. Times apply to the
// play's start, or its scheduled time when nothing started.
type ConfirmationFilter struct {
	Area     string // the area the device was in when it played, and below
	DeviceID string
	Since    time.Time // at or after
	Until    time.Time // before
	Result   string
	Program  string // the programme's id as the schedule names it
	Item     string // the content's ref
	Limit    int    // 0: no limit
	Newest   bool   // newest first (with Limit: the newest Limit); else in time order
	// After, with Newest, starts past this confirmation (the last row of the page before): a
	// deep page is an index walk from there, not the rows before it read and dropped.
	After *ConfirmationKey
}

// ConfirmationKey names one confirmation: a device's and its sequence number.
type ConfirmationKey struct {
	Device string
	Seq    int64
}

var confirmationCols = `device_id, seq, area_id, output, schedule_id, revision, program, item_index, item_ref,
	scheduled_at, started_at, ended_at, result, error, clock_state, received_at, volume, amplifier, ` +
	strings.Join(proofCols, ", ")

// ListConfirmations returns confirmations matching f in time order (then device, seq).
func (db *DB) ListConfirmations(ctx context.Context, f ConfirmationFilter) ([]Confirmation, error) {
	var out []Confirmation
	err := db.EachConfirmation(ctx, f, func(c Confirmation) error {
		out = append(out, c)
		return nil
	})
	return out, err
}

// EachConfirmation calls fn for each confirmation matching f in time order (then device, seq)
// without holding them all in memory: a year's CSV export streams through it. An error from fn
// stops the iteration and is returned. fn runs while a read connection is held: keep it to
// writing out the record.
func (db *DB) EachConfirmation(ctx context.Context, f ConfirmationFilter, fn func(Confirmation) error) error {
	cond, args := subtree("area_id", f.Area)
	conds := []string{cond}
	if f.DeviceID != "" {
		conds, args = append(conds, "device_id = ?"), append(args, f.DeviceID)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, ts(f.Since))
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "at < ?"), append(args, ts(f.Until))
	}
	if f.Result != "" {
		conds, args = append(conds, "result = ?"), append(args, f.Result)
	}
	if f.Program != "" {
		conds, args = append(conds, "program = ?"), append(args, f.Program)
	}
	if f.Item != "" {
		conds, args = append(conds, "item_ref = ?"), append(args, f.Item)
	}
	if f.After != nil {
		c, a, err := db.afterCond(ctx, *f.After, f.Newest)
		if err != nil {
			return err
		}
		conds, args = append(conds, c), append(args, a...)
	}
	// NULLS FIRST/LAST say SQLite's default, which PostgreSQL's is the opposite of: a play
	// with no time sorts first on both engines.
	order := " ORDER BY at NULLS FIRST, device_id, seq"
	if f.Newest {
		order = " ORDER BY at DESC NULLS LAST, device_id DESC, seq DESC"
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+confirmationCols+" FROM confirmations WHERE "+
		strings.Join(conds, " AND ")+order+limitClause(f.Limit), args...)
	if err != nil {
		return fmt.Errorf("list confirmations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Confirmation
		var sched, start, end, recv sql.NullInt64
		var vol sql.NullFloat64
		proof, levels := proofDest(&c.Proof)
		if err := rows.Scan(append([]any{&c.Device, &c.Seq, &c.Area, &c.Output, &c.ScheduleID, &c.Revision, &c.Program,
			&c.ItemIndex, &c.Item, &sched, &start, &end, &c.Result, &c.Error, &c.Clock, &recv, &vol,
			&c.Amplifier}, proof...)...); err != nil {
			return fmt.Errorf("list confirmations: %w", err)
		}
		levels()
		c.Scheduled, c.Start, c.End, c.ReceivedAt = fromTS(sched), fromTS(start), fromTS(end), fromTS(recv)
		c.CommandID = protocol.CommandOf(c.Program)
		c.Volume = vol.Float64
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ReportFilter selects the plays a report counts.
type ReportFilter struct {
	Area    string    // the area played in, and below ("" = everywhere)
	From    time.Time // at or after (required)
	To      time.Time // before (required)
	Results []string  // count only these results; empty: every play that was heard (played > 0 s)
	GroupBy []Dimension
	// AreaDepth > 0 also groups by the area at that depth of the tree (1 = province, then
	// district or commune…): one row set per commune for the annual report. Plays in areas
	// shallower than that group under their own area.
	AreaDepth int
}

// ReportRow is one group of a report. Dimensions not grouped by are empty; plays of items not
// in the library (streams, local files) have empty metadata.
type ReportRow struct {
	Area                                   string // with AreaDepth
	Theme, Language, Format, ProducingUnit string
	Plays                                  int64
	PlayedSeconds                          float64
	Devices                                int64 // distinct devices that played it
	Items                                  int64 // distinct items played
}

// Report counts plays and played seconds over [From, To), grouped by the chosen taxonomy
// dimensions of the content played: what the annual report needs (share of broadcasts in
// minority languages, by theme, by format, by producing unit).
func (db *DB) Report(ctx context.Context, f ReportFilter) ([]ReportRow, error) {
	if f.From.IsZero() || f.To.IsZero() || !f.From.Before(f.To) {
		return nil, fmt.Errorf("%w: report period [%v, %v) is empty or open; give both ends, from before to", ErrInvalid, f.From, f.To)
	}
	var dims []Dimension
	var cols []string
	for _, d := range f.GroupBy {
		if !d.valid() {
			return nil, fmt.Errorf("%w: report group %q; want one of %v", ErrInvalid, d, Dimensions())
		}
		if !slices.Contains(dims, d) {
			dims = append(dims, d)
			cols = append(cols, "COALESCE(k."+d.column()+", '')")
		}
	}
	cond, args := subtree("c.area_id", f.Area)
	conds := []string{cond, "c.at >= ?", "c.at < ?"}
	args = append(args, ts(f.From), ts(f.To))
	if len(f.Results) == 0 {
		conds = append(conds, "c.played_s > 0")
	} else {
		conds = append(conds, "c.result IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.Results)), ",")+")")
		for _, r := range f.Results {
			args = append(args, r)
		}
	}
	if f.AreaDepth < 0 || f.AreaDepth > MaxAreaDepth {
		return nil, fmt.Errorf("%w: report area depth %d; want 0 to %d", ErrInvalid, f.AreaDepth, MaxAreaDepth)
	}
	// Grouping by area: map every deeper area to its ancestor at AreaDepth (a prefix of its
	// id) in a CTE, so SQLite groups, and counts distinct devices and items, per group.
	with, join := "", ""
	if f.AreaDepth > 0 {
		acond, aargs := subtree("id", f.Area)
		deeper, err := queryAreas(ctx, db.r, "SELECT "+areaCols+" FROM areas WHERE depth > ? AND "+acond,
			append([]any{f.AreaDepth}, aargs...)...)
		if err != nil {
			return nil, fmt.Errorf("report: areas: %w", err)
		}
		if len(deeper) > 15000 {
			return nil, fmt.Errorf("%w: report by area over %d areas; narrow it to a part of the tree", ErrInvalid, len(deeper))
		}
		if len(deeper) > 0 {
			var vals []string
			var wargs []any
			for _, a := range deeper {
				segs := strings.SplitN(a.ID, "/", f.AreaDepth+1)
				vals = append(vals, "(?, ?)")
				wargs = append(wargs, a.ID, strings.Join(segs[:f.AreaDepth], "/"))
			}
			with = "WITH amap(area_id, grp) AS (VALUES " + strings.Join(vals, ", ") + ") "
			join = " LEFT JOIN amap m ON m.area_id = c.area_id"
			args = append(wargs, args...)
			cols = append([]string{"COALESCE(m.grp, c.area_id)"}, cols...)
		} else {
			cols = append([]string{"c.area_id"}, cols...)
		}
	}
	sel := "COUNT(*), COALESCE(SUM(c.played_s), 0), COUNT(DISTINCT c.device_id), COUNT(DISTINCT c.item_ref)"
	q := with + "SELECT " + strings.Join(append(append([]string{}, cols...), sel), ", ") +
		" FROM confirmations c LEFT JOIN content k ON k.ref = c.item_ref" + join + " WHERE " + strings.Join(conds, " AND ")
	if len(cols) > 0 {
		q += " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer rows.Close()
	var out []ReportRow
	for rows.Next() {
		var r ReportRow
		vals := make([]string, len(cols))
		dest := make([]any, 0, len(cols)+4)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		dest = append(dest, &r.Plays, &r.PlayedSeconds, &r.Devices, &r.Items)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if f.AreaDepth > 0 {
			r.Area, vals = vals[0], vals[1:]
		}
		for i, d := range dims {
			switch d {
			case DimTheme:
				r.Theme = vals[i]
			case DimLanguage:
				r.Language = vals[i]
			case DimFormat:
				r.Format = vals[i]
			case DimUnit:
				r.ProducingUnit = vals[i]
			}
		}
		if len(cols) == 0 && r.Plays == 0 {
			continue // no plays at all: no row rather than a row of zeros
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// finite stores a non-finite figure as 0 (SQLite REAL NOT NULL has no NaN).
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// afterCond is the condition for the rows after key in the list's order (at, then device,
// then seq; newest first or not), a play with no time sorting first in time order.
func (db *DB) afterCond(ctx context.Context, key ConfirmationKey, newest bool) (string, []any, error) {
	var at sql.NullInt64
	err := db.r.QueryRowContext(ctx, "SELECT at FROM confirmations WHERE device_id = ? AND seq = ?", key.Device, key.Seq).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("%w: no confirmation %d of device %q to continue after", ErrNotFound, key.Seq, key.Device)
	}
	if err != nil {
		return "", nil, fmt.Errorf("confirmation %d of device %q: %w", key.Seq, key.Device, err)
	}
	cmp := ">"
	if newest {
		cmp = "<"
	}
	tie := "(device_id " + cmp + " ? OR (device_id = ? AND seq " + cmp + " ?))"
	args := []any{key.Device, key.Device, key.Seq}
	switch {
	case !at.Valid && newest: // the last rows: only other timeless ones follow
		return "(at IS NULL AND " + tie + ")", args, nil
	case !at.Valid:
		return "(at IS NOT NULL OR " + tie + ")", args, nil
	case newest:
		return "(at < ? OR at IS NULL OR (at = ? AND " + tie + "))", append([]any{at.Int64, at.Int64}, args...), nil
	}
	return "(at > ? OR (at = ? AND " + tie + "))", append([]any{at.Int64, at.Int64}, args...), nil
}
