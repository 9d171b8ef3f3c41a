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

// TargetEmergency marks an emergency (or priority bulletin, or live relay) among the sources
// an effective schedule was composed from. Such sources are not schedules the store keeps: the
// hub builds them from Emergency rows.
const TargetEmergency TargetKind = "emergency"

// Broadcast kinds an Emergency row stands for.
const (
	KindEmergency = "emergency" // loa emergency, or a CAP alert
	KindBulletin  = "bulletin"  // loa bulletin --next-session: a priority programme
	KindLive      = "live"      // loa live start: an ad-hoc relay
)

// Emergency is a broadcast the hub adds to the effective schedule of every device in Area and
// below while it is active: not ended (cancelled or replaced) and Until still ahead. Rows are
// never edited except to end them, so a composed source named by its id never changes.
type Emergency struct {
	ID        int64
	Series    string // a newer row of the same series replaces the older ones
	Kind      string // KindEmergency, KindBulletin or KindLive
	Area      string // the area whose devices play it, or Device's area
	Device    string // when set, only this device plays it
	Class     string // emergency, priority or normal
	Title     string
	Text      string // what is said and shown (the fallback of a recording)
	Items     []byte // JSON: the programme's items as the hub built them (opaque to the store)
	IssuedAt  time.Time
	Start     time.Time     // first play
	Every     time.Duration // repeat interval, 0: once
	Until     time.Time     // expiry: nothing of it plays after this
	Volume    float64       // 0..1
	Source    string        // "cli", or "cap:<sender,identifier>" of the CAP message
	CreatedBy string
	CreatedAt time.Time

	EndedAt    time.Time // zero while not ended
	EndReason  string    // "cancelled", "replaced", "stopped"
	EndedBy    string
	ReplacedBy int64 // the row that replaced it

	ReviewedAt time.Time // an emergency warning's review after it went out; zero while waiting
	ReviewedBy string
	ReviewNote string
	// ReviewWanted: a bulletin or relay the emergency role sent at once where approval is
	// required waits for a review too (FlagForReview).
	ReviewWanted bool
}

// Reaches reports whether a device in area with id plays e.
func (e Emergency) Reaches(deviceID, area string) bool {
	if e.Device != "" {
		return e.Device == deviceID
	}
	return IsWithin(area, e.Area)
}

// Target is what e is pushed to: its device, or its area.
func (e Emergency) Target() Target {
	if e.Device != "" {
		return DeviceTarget(e.Device)
	}
	return AreaTarget(e.Area)
}

// Active reports whether e is on the air (or waiting for its start) at now.
func (e Emergency) Active(now time.Time) bool { return e.EndedAt.IsZero() && e.Until.After(now) }

const emergencyCols = `id, series, kind, area_id, class, title, text, items, issued_at, start_at, every_ns, until_at,
	volume, source, created_by, created_at, ended_at, end_reason, ended_by, replaced_by, coalesce(device_id, ''),
	reviewed_at, reviewed_by, review_note, review_wanted`

func scanEmergency(s interface{ Scan(...any) error }) (Emergency, error) {
	var e Emergency
	var issued, start, until, created, ended, reviewed sql.NullInt64
	var every int64
	var items string
	if err := s.Scan(&e.ID, &e.Series, &e.Kind, &e.Area, &e.Class, &e.Title, &e.Text, &items, &issued, &start, &every,
		&until, &e.Volume, &e.Source, &e.CreatedBy, &created, &ended, &e.EndReason, &e.EndedBy, &e.ReplacedBy, &e.Device,
		&reviewed, &e.ReviewedBy, &e.ReviewNote, &e.ReviewWanted); err != nil {
		return Emergency{}, err
	}
	e.Items = []byte(items)
	e.IssuedAt, e.Start, e.Until, e.CreatedAt, e.EndedAt = fromTS(issued), fromTS(start), fromTS(until), fromTS(created), fromTS(ended)
	e.Every = time.Duration(every)
	e.ReviewedAt = fromTS(reviewed)
	return e, nil
}

func (e *Emergency) check() error {
	var errs []string
	if err := checkText("emergency series", e.Series, true, 300); err != nil {
		errs = append(errs, err.Error())
	}
	switch e.Kind {
	case KindEmergency, KindBulletin, KindLive:
	default:
		errs = append(errs, fmt.Sprintf("kind %q is not emergency, bulletin or live", e.Kind))
	}
	if err := ValidateAreaID(e.Area); err != nil {
		errs = append(errs, err.Error())
	}
	if e.Device != "" {
		if err := ValidateDeviceID(e.Device); err != nil {
			errs = append(errs, err.Error())
		}
	}
	switch e.Class {
	case "emergency", "priority", "normal":
	default:
		errs = append(errs, fmt.Sprintf("class %q is not emergency, priority or normal", e.Class))
	}
	for what, v := range map[string]string{"title": e.Title, "text": e.Text, "source": e.Source, "created by": e.CreatedBy} {
		if err := checkText("emergency "+what, v, what == "created by", 64<<10); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(e.Items) == 0 || len(e.Items) > 1<<20 || !json.Valid(e.Items) {
		errs = append(errs, "items must be a JSON value of at most 1 MiB")
	}
	if e.IssuedAt.IsZero() || e.Start.IsZero() || e.Until.IsZero() {
		errs = append(errs, "issued, start and until times are required")
	} else if !e.Until.After(e.Start) {
		errs = append(errs, fmt.Sprintf("until %s is not after the start %s", e.Until.Format(time.RFC3339), e.Start.Format(time.RFC3339)))
	}
	if e.Every < 0 {
		errs = append(errs, "repeat interval is negative")
	}
	if e.Volume < 0 || e.Volume > 1 {
		errs = append(errs, fmt.Sprintf("volume %g is outside 0..1", e.Volume))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: emergency: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// AddEmergencies stores new broadcasts of one series in one transaction, ending (as
// "replaced", by the first new row) every row of that series not ended yet. It returns the
// new rows with their ids and the rows it replaced, so the caller can push to the areas of
// both. Every area must exist.
func (db *DB) AddEmergencies(ctx context.Context, es []Emergency) (added, replaced []Emergency, err error) {
	if len(es) == 0 {
		return nil, nil, fmt.Errorf("%w: no emergency to add", ErrInvalid)
	}
	series := es[0].Series
	for i := range es {
		if err := es[i].check(); err != nil {
			return nil, nil, err
		}
		if es[i].Series != series {
			return nil, nil, fmt.Errorf("%w: emergencies added together must share one series (%q, %q)", ErrInvalid, series, es[i].Series)
		}
	}
	now := db.now()
	err = db.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+emergencyCols+" FROM emergencies WHERE series = ? AND ended_at IS NULL ORDER BY id", series)
		if err != nil {
			return fmt.Errorf("emergencies of series %q: %w", series, err)
		}
		for rows.Next() {
			e, err := scanEmergency(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("emergencies of series %q: %w", series, err)
			}
			replaced = append(replaced, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range es {
			if err := targetExists(ctx, tx, AreaTarget(e.Area)); err != nil {
				return err
			}
			var device any // NULL: the area's devices
			if e.Device != "" {
				var area string
				if err := tx.QueryRowContext(ctx, "SELECT area_id FROM devices WHERE id = ?", e.Device).Scan(&area); err != nil {
					if errors.Is(err, sql.ErrNoRows) {
						return fmt.Errorf("%w: device %q does not exist", ErrNotFound, e.Device)
					}
					return err
				}
				if area != e.Area {
					return fmt.Errorf("%w: device %s is in %s, not %s", ErrInvalid, e.Device, area, e.Area)
				}
				device = e.Device
			}
			e.CreatedAt = now
			err := tx.QueryRowContext(ctx, `INSERT INTO emergencies(series, kind, area_id, class, title, text, items, issued_at,
				start_at, every_ns, until_at, volume, source, created_by, created_at, device_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
				RETURNING id`,
				e.Series, e.Kind, e.Area, e.Class, e.Title, e.Text, string(e.Items), ts(e.IssuedAt), ts(e.Start), int64(e.Every),
				ts(e.Until), e.Volume, e.Source, e.CreatedBy, ts(now), device).Scan(&e.ID)
			if err != nil {
				return fmt.Errorf("store emergency of series %q for %s: %w", e.Series, e.Area, err)
			}
			added = append(added, e)
		}
		for i := range replaced {
			r := &replaced[i]
			r.EndedAt, r.EndReason, r.EndedBy, r.ReplacedBy = now, "replaced", es[0].CreatedBy, added[0].ID
			if _, err := tx.ExecContext(ctx, "UPDATE emergencies SET ended_at = ?, end_reason = ?, ended_by = ?, replaced_by = ? WHERE id = ?",
				ts(now), r.EndReason, r.EndedBy, r.ReplacedBy, r.ID); err != nil {
				return fmt.Errorf("end emergency %d replaced by %d: %w", r.ID, added[0].ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i := range added {
		added[i].Items = append([]byte(nil), added[i].Items...)
	}
	return added, replaced, nil
}

// GetEmergency returns one row by id.
func (db *DB) GetEmergency(ctx context.Context, id int64) (Emergency, error) {
	e, err := scanEmergency(db.r.QueryRowContext(ctx, "SELECT "+emergencyCols+" FROM emergencies WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Emergency{}, fmt.Errorf("%w: no emergency %d", ErrNotFound, id)
	}
	if err != nil {
		return Emergency{}, fmt.Errorf("emergency %d: %w", id, err)
	}
	return e, nil
}

// EndEmergencies ends the given rows now with reason (cancelled, stopped) by whom. Rows
// already ended are left as they are and not returned.
func (db *DB) EndEmergencies(ctx context.Context, ids []int64, reason, by string) ([]Emergency, error) {
	if err := checkText("end reason", reason, true, 200); err != nil {
		return nil, err
	}
	now := db.now()
	var out []Emergency
	err := db.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, "UPDATE emergencies SET ended_at = ?, end_reason = ?, ended_by = ? WHERE id = ? AND ended_at IS NULL",
				ts(now), reason, by, id)
			if err != nil {
				return fmt.Errorf("end emergency %d: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			e, err := scanEmergency(tx.QueryRowContext(ctx, "SELECT "+emergencyCols+" FROM emergencies WHERE id = ?", id))
			if err != nil {
				return fmt.Errorf("emergency %d: %w", id, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// EmergencyFilter selects emergencies; empty fields do not filter.
type EmergencyFilter struct {
	Area   string // rows for this area or below
	Series string
	Kind   string
	Source string
	// ActiveAt keeps only rows active at that time (not ended, until after it).
	ActiveAt time.Time
	// Unreviewed keeps only rows not reviewed yet that went out without approval: warnings,
	// and bulletins and relays flagged by FlagForReview; a CAP alert from the configured
	// trusted feed counts as approved by that feed.
	Unreviewed bool
	Limit      int
}

// ListEmergencies returns the rows matching f, newest first.
func (db *DB) ListEmergencies(ctx context.Context, f EmergencyFilter) ([]Emergency, error) {
	cond, args := subtree("area_id", f.Area)
	conds := []string{cond}
	for col, v := range map[string]string{"series": f.Series, "kind": f.Kind, "source": f.Source} {
		if v != "" {
			conds, args = append(conds, col+" = ?"), append(args, v)
		}
	}
	if !f.ActiveAt.IsZero() {
		conds, args = append(conds, "ended_at IS NULL AND until_at > ?"), append(args, ts(f.ActiveAt))
	}
	if f.Unreviewed {
		conds = append(conds, "reviewed_at IS NULL AND source NOT LIKE 'cap:%' AND (kind = 'emergency' OR review_wanted = 1)")
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+emergencyCols+" FROM emergencies WHERE "+strings.Join(conds, " AND ")+
		" ORDER BY id DESC"+limitClause(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list emergencies: %w", err)
	}
	defer rows.Close()
	var out []Emergency
	for rows.Next() {
		e, err := scanEmergency(rows)
		if err != nil {
			return nil, fmt.Errorf("list emergencies: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
