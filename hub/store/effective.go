package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DeliveryState is how far a device has got with one revision of its effective schedule.
type DeliveryState string

// Delivery states, in the order a revision normally goes through them. Refused is final.
const (
	StateComposed     DeliveryState = "composed"      // stored, not sent yet
	StateSent         DeliveryState = "sent"          // written to the device's connection
	StateReceived     DeliveryState = "received"      // the device validated and stored it
	StateContentReady DeliveryState = "content_ready" // every item it needs is in the device's store
	StateActive       DeliveryState = "active"        // the device is playing from it
	StateRefused      DeliveryState = "refused"       // the device refused it (see Reason)
)

// SourceRevision names one schedule revision an effective schedule was composed from, so the
// hub can tell whether anything it depends on has changed since.
type SourceRevision struct {
	Target   Target `json:"target"`
	Revision int64  `json:"revision"`
}

// Delivery is the delivery state of one (device, revision), with the time of each transition
// (zero when it has not happened).
type Delivery struct {
	State          DeliveryState
	SentAt         time.Time
	ReceivedAt     time.Time
	ContentReadyAt time.Time
	ActiveAt       time.Time
	RefusedAt      time.Time
	RefusedReason  string
}

// EffectiveSchedule is the composed, signed document the hub sends one device.
type EffectiveSchedule struct {
	DeviceID  string
	Revision  int64  // strictly increasing per device
	Document  []byte // the exact bytes sent
	Signature []byte // if kept beside the bytes rather than inside them
	Sources   []SourceRevision
	CreatedAt time.Time
	Delivery  Delivery
}

// AddEffective stores a newly composed effective schedule for a device. Its revision must be
// above the device's latest (ErrStaleRevision otherwise): the revision is inside the signed
// bytes, so the store cannot pick it. Two composers racing for one device: one wins.
func (db *DB) AddEffective(ctx context.Context, e EffectiveSchedule) (EffectiveSchedule, error) {
	out, errs, err := db.AddEffectives(ctx, []EffectiveSchedule{e})
	if err != nil {
		return EffectiveSchedule{}, err
	}
	if errs[0] != nil {
		return EffectiveSchedule{}, errs[0]
	}
	return out[0], nil
}

// AddEffectives stores many newly composed effective schedules (one push to a whole area) in
// one transaction, each under the rules of AddEffective. It returns, per schedule, the stored
// form or the error that kept it out (errs[i]; one device's stale revision does not keep the
// others out); err is for the whole call (nothing stored).
func (db *DB) AddEffectives(ctx context.Context, es []EffectiveSchedule) (out []EffectiveSchedule, errs []error, err error) {
	out, errs = make([]EffectiveSchedule, len(es)), make([]error, len(es))
	srcs := make([]string, len(es))
	now := db.now()
	valid := 0
	for i, e := range es {
		out[i], srcs[i], errs[i] = checkEffective(e, now)
		if errs[i] == nil {
			valid++
		}
	}
	if valid == 0 {
		return out, errs, nil
	}
	res := make([]error, len(es)) // per schedule, set inside the transaction

	err = db.writeWeighted(ctx, valid, func(tx *sql.Tx) error {
		head, ins, insDoc := tx.StmtContext(ctx, db.effHead), tx.StmtContext(ctx, db.insertEff), tx.StmtContext(ctx, db.insertEffDoc)
		defer head.Close()
		defer ins.Close()
		defer insDoc.Close()
		inserted, err := db.addEffectivesAtOnce(ctx, tx, out, srcs, errs)
		if err != nil {
			return err
		}
		for i := range es {
			if errs[i] != nil {
				continue
			}
			if inserted != nil {
				if !inserted[i] {
					res[i] = db.whyNotInserted(ctx, head, out[i])
				}
				continue
			}
			// A refused schedule has written nothing, so it needs no savepoint.
			res[i] = db.addEffective(ctx, head, ins, insDoc, out[i], srcs[i])
			if res[i] != nil && !errors.Is(res[i], ErrNotFound) && !errors.Is(res[i], ErrStaleRevision) {
				return res[i] // the database failed, not this one schedule
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i := range es {
		if errs[i] == nil && res[i] != nil {
			errs[i], out[i] = res[i], EffectiveSchedule{}
		}
	}
	return out, errs, nil
}

// checkEffective validates e and returns its stored form and its sources as JSON.
func checkEffective(e EffectiveSchedule, now time.Time) (EffectiveSchedule, string, error) {
	if err := ValidateDeviceID(e.DeviceID); err != nil {
		return EffectiveSchedule{}, "", err
	}
	if e.Revision <= 0 {
		return EffectiveSchedule{}, "", fmt.Errorf("%w: effective schedule revision %d for device %q; want 1 or more", ErrInvalid, e.Revision, e.DeviceID)
	}
	if len(e.Document) == 0 || len(e.Document) > MaxDocument {
		return EffectiveSchedule{}, "", fmt.Errorf("%w: effective schedule for device %q is %d bytes; want 1 to %d", ErrInvalid, e.DeviceID, len(e.Document), MaxDocument)
	}
	sources := e.Sources
	if sources == nil {
		sources = []SourceRevision{}
	}
	src, err := json.Marshal(sources)
	if err != nil {
		return EffectiveSchedule{}, "", fmt.Errorf("%w: sources of effective schedule for %q: %v", ErrInvalid, e.DeviceID, err)
	}
	out := EffectiveSchedule{DeviceID: e.DeviceID, Revision: e.Revision, Document: append([]byte(nil), e.Document...),
		Signature: append([]byte(nil), e.Signature...), Sources: sources, CreatedAt: now,
		Delivery: Delivery{State: StateComposed}}
	if len(e.Signature) == 0 {
		out.Signature = nil
	}
	return out, string(src), nil
}

// insertEffective stores one effective schedule only if its device exists and its revision is
// above the device's latest (?1 device, ?2 revision): one statement in the common case. Its
// signed bytes go to effective_documents (insertEffectiveDoc) once it is in.
const (
	insertEffective = `INSERT INTO effective(device_id, revision, sources, created_at)
	SELECT ?1, CAST(?2 AS BIGINT), ?3, CAST(?4 AS BIGINT)
	WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?1)
		AND ?2 > (SELECT COALESCE(MAX(revision), 0) FROM effective WHERE device_id = ?1)`
	insertEffectiveDoc = `INSERT INTO effective_documents(device_id, revision, document, signature) VALUES (?, ?, ?, ?)`
)

// insertEffectivesAtOnce is insertEffective and insertEffectiveDoc for many devices in one
// statement, on PostgreSQL: there each statement is a round trip, and a push to 10,000 devices
// made 20,000 of them (the push's writes were ten times SQLite's; BENCHMARKS "PostgreSQL beside
// SQLite"). It returns the devices whose schedule went in.
const insertEffectivesAtOnce = `WITH v(device_id, revision, sources, created_at, document, signature) AS (
		SELECT * FROM unnest(CAST(?1 AS TEXT[]), CAST(?2 AS BIGINT[]), CAST(?3 AS TEXT[]), CAST(?4 AS BIGINT[]),
			CAST(?5 AS BYTEA[]), CAST(?6 AS BYTEA[]))
	), ins AS (
		INSERT INTO effective(device_id, revision, sources, created_at)
		SELECT v.device_id, v.revision, v.sources, v.created_at FROM v
		WHERE EXISTS (SELECT 1 FROM devices d WHERE d.id = v.device_id)
			AND v.revision > (SELECT COALESCE(MAX(e.revision), 0) FROM effective e WHERE e.device_id = v.device_id)
		RETURNING device_id, revision
	), docs AS (
		INSERT INTO effective_documents(device_id, revision, document, signature)
		SELECT v.device_id, v.revision, v.document, v.signature FROM v JOIN ins USING (device_id, revision)
	)
	SELECT device_id FROM ins`

// addEffectivesAtOnce stores the checked schedules (those without errs[i]) in one statement on
// PostgreSQL and says which went in; nil (nothing done) on SQLite, where a statement costs no
// round trip, and when a device comes twice (one statement sees the table as it was before it,
// so the second would not be judged against the first).
func (db *DB) addEffectivesAtOnce(ctx context.Context, tx *sql.Tx, es []EffectiveSchedule, srcs []string, errs []error) ([]bool, error) {
	if !db.pg {
		return nil, nil
	}
	var ids, sources []string
	var revs, created []int64
	var docs, sigs [][]byte
	seen := map[string]bool{}
	for i, e := range es {
		if errs[i] != nil {
			continue
		}
		if seen[e.DeviceID] {
			return nil, nil
		}
		seen[e.DeviceID] = true
		ids, revs, sources, created = append(ids, e.DeviceID), append(revs, e.Revision), append(sources, srcs[i]), append(created, e.CreatedAt.UnixNano())
		docs, sigs = append(docs, e.Document), append(sigs, e.Signature)
	}
	rows, err := tx.QueryContext(ctx, insertEffectivesAtOnce, ids, revs, sources, created, docs, sigs)
	if err != nil {
		return nil, fmt.Errorf("store %d effective schedules: %w", len(ids), err)
	}
	defer rows.Close()
	in := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store %d effective schedules: %w", len(ids), err)
		}
		in[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %d effective schedules: %w", len(ids), err)
	}
	out := make([]bool, len(es))
	for i, e := range es {
		out[i] = errs[i] == nil && in[e.DeviceID]
	}
	return out, nil
}

// addEffective inserts one checked effective schedule inside a write transaction; when the
// insert is refused, head says why.
func (db *DB) addEffective(ctx context.Context, head, ins, insDoc *sql.Stmt, e EffectiveSchedule, src string) error {
	res, err := ins.ExecContext(ctx, e.DeviceID, e.Revision, src, ts(e.CreatedAt))
	if err != nil {
		return fmt.Errorf("store effective schedule %d of device %q: %w", e.Revision, e.DeviceID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		if _, err := insDoc.ExecContext(ctx, e.DeviceID, e.Revision, e.Document, e.Signature); err != nil {
			return fmt.Errorf("store effective schedule %d of device %q: %w", e.Revision, e.DeviceID, err)
		}
		return nil
	}
	return db.whyNotInserted(ctx, head, e)
}

// whyNotInserted says why e's schedule was not inserted: its device is unknown, or it already
// has that revision or a newer one.
func (db *DB) whyNotInserted(ctx context.Context, head *sql.Stmt, e EffectiveSchedule) error {
	var exists sql.NullInt64
	var latest int64
	if err := head.QueryRowContext(ctx, e.DeviceID).Scan(&exists, &latest); err != nil {
		return fmt.Errorf("latest effective revision of device %q: %w", e.DeviceID, err)
	}
	if !exists.Valid {
		return fmt.Errorf("%w: %s %q does not exist", ErrNotFound, TargetDevice, e.DeviceID)
	}
	if e.Revision <= latest {
		return fmt.Errorf("%w: device %q already has effective revision %d; compose %d or above",
			ErrStaleRevision, e.DeviceID, latest, latest+1)
	}
	return fmt.Errorf("store effective schedule %d of device %q: not inserted", e.Revision, e.DeviceID)
}

// LatestRevisions returns the newest effective revision of every device in area and below
// ("" = all), 0 for a device with none, by device id, in one query of two columns: what a push
// notes before its change (agentlink.HeadsBefore) to count the devices composed since, without
// the sources and device rows that LatestEffectiveHeads and ListDevices read for composing.
func (db *DB) LatestRevisions(ctx context.Context, area string) (map[string]int64, error) {
	cond, args := subtree("d.area_id", area)
	rows, err := db.r.QueryContext(ctx, `SELECT d.id,
		COALESCE((SELECT m.revision FROM effective m WHERE m.device_id = d.id ORDER BY m.revision DESC LIMIT 1), 0)
		FROM devices d WHERE `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("latest effective revisions under %q: %w", area, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var rev int64
		if err := rows.Scan(&id, &rev); err != nil {
			return nil, fmt.Errorf("latest effective revisions under %q: %w", area, err)
		}
		out[id] = rev
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest effective revisions under %q: %w", area, err)
	}
	return out, nil
}

// EffectiveHead is what a push needs to know of a device's newest effective schedule: its
// revision and what it was composed from.
type EffectiveHead struct {
	Revision int64
	Sources  []SourceRevision
}

// LatestEffectiveHeads returns the newest effective revision of every device in area and below
// ("" = all) that has one, by device id, in one query: a push to a province reads this once
// instead of once per device.
func (db *DB) LatestEffectiveHeads(ctx context.Context, area string) (map[string]EffectiveHead, error) {
	cond, args := subtree("d.area_id", area)
	// One primary-key seek per device to its newest revision; a GROUP BY would read every
	// revision ever composed.
	rows, err := db.r.QueryContext(ctx, `SELECT e.device_id, e.revision, e.sources FROM devices d
		JOIN effective e ON e.device_id = d.id
			AND e.revision = (SELECT m.revision FROM effective m WHERE m.device_id = d.id ORDER BY m.revision DESC LIMIT 1)
		WHERE `+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("latest effective revisions under %q: %w", area, err)
	}
	defer rows.Close()
	out := map[string]EffectiveHead{}
	// The devices of an area were composed from the same sources: decode each text once (the
	// slices are shared; callers only read them).
	decoded := map[string][]SourceRevision{}
	for rows.Next() {
		var id, src string
		var h EffectiveHead
		if err := rows.Scan(&id, &h.Revision, &src); err != nil {
			return nil, fmt.Errorf("latest effective revisions under %q: %w", area, err)
		}
		var ok bool
		if h.Sources, ok = decoded[src]; !ok {
			if err := json.Unmarshal([]byte(src), &h.Sources); err != nil {
				return nil, fmt.Errorf("effective schedule %d of %q: stored sources: %w", h.Revision, id, err)
			}
			decoded[src] = h.Sources
		}
		out[id] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest effective revisions under %q: %w", area, err)
	}
	return out, nil
}

// effectiveSelect reads what scanEffective scans; conditions are on e.
const effectiveSelect = `SELECT e.device_id, e.revision, x.document, x.signature, e.sources, e.created_at, e.sent_at,
	e.received_at, e.content_ready_at, e.active_at, e.refused_at, e.refused_reason
	FROM effective e JOIN effective_documents x ON x.device_id = e.device_id AND x.revision = e.revision`

func scanEffective(s interface{ Scan(...any) error }) (EffectiveSchedule, error) {
	var e EffectiveSchedule
	var src string
	var created, sent, recv, ready, active, refused sql.NullInt64
	if err := s.Scan(&e.DeviceID, &e.Revision, &e.Document, &e.Signature, &src, &created, &sent, &recv, &ready,
		&active, &refused, &e.Delivery.RefusedReason); err != nil {
		return EffectiveSchedule{}, err
	}
	if err := json.Unmarshal([]byte(src), &e.Sources); err != nil {
		return EffectiveSchedule{}, fmt.Errorf("effective schedule %d of %q: stored sources: %w", e.Revision, e.DeviceID, err)
	}
	e.CreatedAt = fromTS(created)
	d := &e.Delivery
	d.SentAt, d.ReceivedAt, d.ContentReadyAt, d.ActiveAt, d.RefusedAt = fromTS(sent), fromTS(recv), fromTS(ready), fromTS(active), fromTS(refused)
	d.State = d.derive()
	return e, nil
}

// derive is the furthest state reached; a refusal overrides the rest.
func (d Delivery) derive() DeliveryState {
	switch {
	case !d.RefusedAt.IsZero():
		return StateRefused
	case !d.ActiveAt.IsZero():
		return StateActive
	case !d.ContentReadyAt.IsZero():
		return StateContentReady
	case !d.ReceivedAt.IsZero():
		return StateReceived
	case !d.SentAt.IsZero():
		return StateSent
	}
	return StateComposed
}

// LatestEffective returns the device's newest effective schedule with its delivery state.
func (db *DB) LatestEffective(ctx context.Context, deviceID string) (EffectiveSchedule, error) {
	e, err := scanEffective(db.r.QueryRowContext(ctx, effectiveSelect+
		" WHERE e.device_id = ? ORDER BY e.revision DESC LIMIT 1", deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return EffectiveSchedule{}, fmt.Errorf("%w: no effective schedule for device %q", ErrNotFound, deviceID)
	}
	if err != nil {
		return EffectiveSchedule{}, fmt.Errorf("latest effective schedule of device %q: %w", deviceID, err)
	}
	return e, nil
}

// LatestEffectives returns the newest effective schedule of each of the devices that has
// one, by device id, in one query: a hub told that another one pushed to an area sends its
// own connected devices their new revisions with this, not a query per device. Ids given
// twice are read once; devices with no schedule are left out.
func (db *DB) LatestEffectives(ctx context.Context, deviceIDs []string) (map[string]EffectiveSchedule, error) {
	out := make(map[string]EffectiveSchedule, len(deviceIDs))
	if len(deviceIDs) == 0 {
		return out, nil
	}
	// The ids go as one parameter (an array, or a JSON array SQLite unpacks), so the query
	// text, and its plan, are the same for any number of devices.
	var ids any = deviceIDs
	in := "e.device_id = ANY(CAST(?1 AS TEXT[]))"
	if !db.pg {
		b, err := json.Marshal(deviceIDs)
		if err != nil {
			return nil, err
		}
		ids, in = string(b), "e.device_id IN (SELECT value FROM json_each(?1))"
	}
	rows, err := db.r.QueryContext(ctx, effectiveSelect+" WHERE "+in+
		" AND e.revision = (SELECT m.revision FROM effective m WHERE m.device_id = e.device_id ORDER BY m.revision DESC LIMIT 1)", ids)
	if err != nil {
		return nil, fmt.Errorf("latest effective schedules of %d devices: %w", len(deviceIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEffective(rows)
		if err != nil {
			return nil, fmt.Errorf("latest effective schedules of %d devices: %w", len(deviceIDs), err)
		}
		out[e.DeviceID] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest effective schedules of %d devices: %w", len(deviceIDs), err)
	}
	return out, nil
}

// LatestActiveEffective returns the newest revision the device reported active.
func (db *DB) LatestActiveEffective(ctx context.Context, deviceID string) (EffectiveSchedule, error) {
	e, err := scanEffective(db.r.QueryRowContext(ctx, effectiveSelect+
		" WHERE e.device_id = ? AND e.active_at IS NOT NULL ORDER BY e.revision DESC LIMIT 1", deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return EffectiveSchedule{}, fmt.Errorf("%w: device %q has reported no revision active", ErrNotFound, deviceID)
	}
	if err != nil {
		return EffectiveSchedule{}, fmt.Errorf("active effective schedule of device %q: %w", deviceID, err)
	}
	return e, nil
}

// Effective returns one revision of a device's effective schedule.
func (db *DB) Effective(ctx context.Context, deviceID string, revision int64) (EffectiveSchedule, error) {
	e, err := scanEffective(db.r.QueryRowContext(ctx, effectiveSelect+
		" WHERE e.device_id = ? AND e.revision = ?", deviceID, revision))
	if errors.Is(err, sql.ErrNoRows) {
		return EffectiveSchedule{}, fmt.Errorf("%w: device %q has no effective revision %d", ErrNotFound, deviceID, revision)
	}
	if err != nil {
		return EffectiveSchedule{}, fmt.Errorf("effective schedule %d of device %q: %w", revision, deviceID, err)
	}
	return e, nil
}

var deliveryColumn = map[DeliveryState]string{StateSent: "sent_at", StateReceived: "received_at",
	StateContentReady: "content_ready_at", StateActive: "active_at", StateRefused: "refused_at"}

// markDeliveryQueries are the prepared updates of MarkDelivery, one per state: ?1 time, ?2
// device, ?3 revision, ?4 refusal reason (StateRefused only). Each returns the delivery
// columns after the change.
func markDeliveryQueries() map[DeliveryState]string {
	out := map[DeliveryState]string{}
	for state, col := range deliveryColumn {
		q := "UPDATE effective SET " + col + " = COALESCE(" + col + ", ?1)"
		if state == StateRefused {
			q += ", refused_reason = CASE WHEN refused_reason = '' THEN ?4 ELSE refused_reason END"
		}
		out[state] = q + " WHERE device_id = ?2 AND revision = ?3" +
			" RETURNING sent_at, received_at, content_ready_at, active_at, refused_at, refused_reason"
	}
	return out
}

// markSentAtOnce is MarkSent's updates in one statement, on PostgreSQL (one round trip, not
// one per device); it returns the (device, revision) pairs that do not exist.
func markSentAtOnce(ctx context.Context, tx *sql.Tx, now any, revs []DeviceRevision) ([]string, error) {
	ids, nums := make([]string, len(revs)), make([]int64, len(revs))
	for i, r := range revs {
		ids[i], nums[i] = r.DeviceID, r.Revision
	}
	rows, err := tx.QueryContext(ctx, `UPDATE effective e SET sent_at = COALESCE(e.sent_at, ?1)
		FROM unnest(CAST(?2 AS TEXT[]), CAST(?3 AS BIGINT[])) AS v(device_id, revision)
		WHERE e.device_id = v.device_id AND e.revision = v.revision
		RETURNING e.device_id, e.revision`, now, ids, nums)
	if err != nil {
		return nil, fmt.Errorf("mark %d revisions sent: %w", len(revs), err)
	}
	defer rows.Close()
	found := map[DeviceRevision]bool{}
	for rows.Next() {
		var r DeviceRevision
		if err := rows.Scan(&r.DeviceID, &r.Revision); err != nil {
			return nil, fmt.Errorf("mark %d revisions sent: %w", len(revs), err)
		}
		found[r] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mark %d revisions sent: %w", len(revs), err)
	}
	var missing []string
	for _, r := range revs {
		if !found[r] {
			missing = append(missing, fmt.Sprintf("%s revision %d", r.DeviceID, r.Revision))
		}
	}
	return missing, nil
}

// MarkDelivery records that (device, revision) reached state now. Each transition keeps the
// time it was first recorded, so a repeated report changes nothing; reports arriving out of
// order are kept as they come (the state is the furthest one reached). reason is required for
// StateRefused and ignored otherwise. It returns the delivery after the change.
func (db *DB) MarkDelivery(ctx context.Context, deviceID string, revision int64, state DeliveryState, reason string) (Delivery, error) {
	if _, ok := deliveryColumn[state]; !ok {
		return Delivery{}, fmt.Errorf("%w: delivery state %q; want sent, received, content_ready, active or refused", ErrInvalid, state)
	}
	if state == StateRefused {
		if err := checkText("refusal reason", reason, true, maxText); err != nil {
			return Delivery{}, fmt.Errorf("device %q revision %d: %w", deviceID, revision, err)
		}
	} else {
		reason = ""
	}
	if db.pg {
		return db.markDeliveryBatched(ctx, &markReq{state: state, deviceID: deviceID, revision: revision, reason: reason})
	}
	var out Delivery
	err := db.writeOne(ctx, func(tx *sql.Tx) error {
		d, err := db.markDelivery(ctx, tx, state, ts(db.now()), deviceID, revision, reason)
		out = d
		return err
	})
	return out, err
}

func (db *DB) markDelivery(ctx context.Context, tx *sql.Tx, state DeliveryState, now any, deviceID string, revision int64, reason string) (Delivery, error) {
	var d Delivery
	var sent, recv, ready, active, refused sql.NullInt64
	args := []any{now, deviceID, revision}
	if state == StateRefused {
		args = append(args, reason)
	}
	err := tx.StmtContext(ctx, db.markDeliv[state]).QueryRowContext(ctx, args...).
		Scan(&sent, &recv, &ready, &active, &refused, &d.RefusedReason)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("%w: device %q has no effective revision %d", ErrNotFound, deviceID, revision)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("mark device %q revision %d %s: %w", deviceID, revision, state, err)
	}
	d.SentAt, d.ReceivedAt, d.ContentReadyAt, d.ActiveAt, d.RefusedAt = fromTS(sent), fromTS(recv), fromTS(ready), fromTS(active), fromTS(refused)
	d.State = d.derive()
	return d, nil
}

// DeviceRevision names one revision of one device's effective schedule.
type DeviceRevision struct {
	DeviceID string
	Revision int64
}

// MarkSent records that each (device, revision) was written to its device's connection now,
// in one transaction: a push to a province marks thousands at once. A revision that is not
// stored is skipped and named in the returned error; the others are marked.
func (db *DB) MarkSent(ctx context.Context, revs []DeviceRevision) error {
	if len(revs) == 0 {
		return nil
	}
	var missing []string
	err := db.writeWeighted(ctx, len(revs), func(tx *sql.Tx) error {
		missing = missing[:0]
		now := ts(db.now())
		if db.pg {
			var err error
			missing, err = markSentAtOnce(ctx, tx, now, revs)
			return err
		}
		st := tx.StmtContext(ctx, db.markDeliv[StateSent])
		defer st.Close()
		for _, r := range revs {
			var a, b, c, d, e sql.NullInt64
			var reason string
			err := st.QueryRowContext(ctx, now, r.DeviceID, r.Revision).Scan(&a, &b, &c, &d, &e, &reason)
			if errors.Is(err, sql.ErrNoRows) {
				missing = append(missing, fmt.Sprintf("%s revision %d", r.DeviceID, r.Revision))
				continue
			}
			if err != nil {
				return fmt.Errorf("mark device %q revision %d sent: %w", r.DeviceID, r.Revision, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n := len(missing); n > 0 {
		if n > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", n-5))
		}
		return fmt.Errorf("%w: no effective schedule %s", ErrNotFound, strings.Join(missing, ", "))
	}
	return nil
}

// DeviceOverview is one line of the staff's status table: the device with the newest revision
// composed for it and how far it got, and the newest revision it reported active.
type DeviceOverview struct {
	Device
	LatestRevision int64 // 0: nothing composed yet
	LatestState    DeliveryState
	ActiveRevision int64 // 0: none reported active
}

// ListDeviceOverview returns the overview of every device in area and below ("" = all), by
// id, in one query.
func (db *DB) ListDeviceOverview(ctx context.Context, area string) ([]DeviceOverview, error) {
	cond, args := subtree("d.area_id", area)
	rows, err := db.r.QueryContext(ctx, "SELECT "+qualified("d", deviceCols)+`,
		COALESCE(e.revision, 0), e.sent_at, e.received_at, e.content_ready_at, e.active_at, e.refused_at,
		COALESCE((SELECT MAX(a.revision) FROM effective a WHERE a.device_id = d.id AND a.active_at IS NOT NULL), 0)
		FROM devices d LEFT JOIN effective e ON e.device_id = d.id
			AND e.revision = (SELECT MAX(m.revision) FROM effective m WHERE m.device_id = d.id)
		WHERE `+cond+" ORDER BY d.id", args...)
	if err != nil {
		return nil, fmt.Errorf("device overview under %q: %w", area, err)
	}
	defer rows.Close()
	var out []DeviceOverview
	for rows.Next() {
		var o DeviceOverview
		var sent, recv, ready, active, refused sql.NullInt64
		// scanDevice takes its extra columns first; these come last, so scan through a shim.
		d, err := scanDevice(tailScanner{rows, []any{&o.LatestRevision, &sent, &recv, &ready, &active, &refused, &o.ActiveRevision}})
		if err != nil {
			return nil, fmt.Errorf("device overview under %q: %w", area, err)
		}
		o.Device = d
		if o.LatestRevision > 0 {
			o.LatestState = Delivery{SentAt: fromTS(sent), ReceivedAt: fromTS(recv), ContentReadyAt: fromTS(ready),
				ActiveAt: fromTS(active), RefusedAt: fromTS(refused)}.derive()
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// tailScanner appends extra destinations after the ones its caller scans.
type tailScanner struct {
	rows *sql.Rows
	tail []any
}

func (t tailScanner) Scan(dest ...any) error { return t.rows.Scan(append(dest, t.tail...)...) }
