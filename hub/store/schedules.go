package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MaxDocument is the largest schedule document the store accepts (bytes).
const MaxDocument = 4 << 20

// TargetKind says whether a schedule is attached to an area or to one device.
type TargetKind string

// The two kinds of schedule target.
const (
	TargetArea   TargetKind = "area"
	TargetDevice TargetKind = "device"
)

// Target is what a schedule is attached to. Area and device ids are separate namespaces.
type Target struct {
	Kind TargetKind `json:"kind"`
	ID   string     `json:"id"`
}

// AreaTarget and DeviceTarget build targets.
func AreaTarget(id string) Target   { return Target{TargetArea, id} }
func DeviceTarget(id string) Target { return Target{TargetDevice, id} }

func (t Target) String() string { return string(t.Kind) + ":" + t.ID }

func (t Target) check() error {
	switch t.Kind {
	case TargetArea:
		return ValidateAreaID(t.ID)
	case TargetDevice:
		return ValidateDeviceID(t.ID)
	}
	return fmt.Errorf("%w: schedule target kind %q; want %q or %q", ErrInvalid, t.Kind, TargetArea, TargetDevice)
}

// column is the schedules column that holds this kind's id.
func (t Target) column() string {
	if t.Kind == TargetDevice {
		return "device_id"
	}
	return "area_id"
}

// Schedule is one revision of the schedule document attached to a target, stored as given.
type Schedule struct {
	Target    Target
	Revision  int64  // strictly increasing per target
	ID        string // the document's schedule id
	Document  []byte // YAML or JSON, byte for byte as given
	Author    string
	CreatedAt time.Time
	// ApprovedBy and ApprovedAt say who approved a revision that waited for approval
	// (ApproveSubmission); empty for a revision pushed where approval is not required.
	ApprovedBy string
	ApprovedAt time.Time
}

// PutSchedule stores a new revision for s.Target. With Revision 0 the store picks the next one
// (latest + 1, starting at 1); a given Revision must be above the latest or ErrStaleRevision is
// returned. The target must exist.
func (db *DB) PutSchedule(ctx context.Context, s Schedule) (Schedule, error) {
	if err := s.Target.check(); err != nil {
		return Schedule{}, err
	}
	if err := checkText("schedule id for "+s.Target.String(), s.ID, true, MaxIDLength); err != nil {
		return Schedule{}, err
	}
	if err := checkText("schedule author for "+s.Target.String(), s.Author, true, 200); err != nil {
		return Schedule{}, err
	}
	if len(s.Document) == 0 || len(s.Document) > MaxDocument {
		return Schedule{}, fmt.Errorf("%w: schedule document for %s is %d bytes; want 1 to %d", ErrInvalid, s.Target, len(s.Document), MaxDocument)
	}
	if s.Revision < 0 {
		return Schedule{}, fmt.Errorf("%w: schedule revision %d for %s is negative", ErrInvalid, s.Revision, s.Target)
	}
	out := s
	out.Document = append([]byte(nil), s.Document...)
	out.CreatedAt = db.now()
	err := db.write(ctx, func(tx *sql.Tx) error { return putSchedule(ctx, tx, &out) })
	if err != nil {
		return Schedule{}, err
	}
	return out, nil
}

// putSchedule stores out (checked) as a new revision, picking it when out.Revision is 0.
func putSchedule(ctx context.Context, tx *sql.Tx, out *Schedule) error {
	if err := targetExists(ctx, tx, out.Target); err != nil {
		return err
	}
	var latest int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(revision), 0) FROM schedules WHERE "+out.Target.column()+" = ?",
		out.Target.ID).Scan(&latest); err != nil {
		return fmt.Errorf("latest schedule revision of %s: %w", out.Target, err)
	}
	if out.Revision == 0 {
		out.Revision = latest + 1
	} else if out.Revision <= latest {
		return fmt.Errorf("%w: %s already has revision %d; a new schedule needs a revision above it (or 0 to pick the next)",
			ErrStaleRevision, out.Target, latest)
	}
	var area, device any
	if out.Target.Kind == TargetArea {
		area = out.Target.ID
	} else {
		device = out.Target.ID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO schedules(area_id, device_id, revision, schedule_id, document, author, created_at, approved_by, approved_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, area, device, out.Revision, out.ID, out.Document, out.Author, ts(out.CreatedAt), out.ApprovedBy, ts(out.ApprovedAt))
	if err != nil {
		return fmt.Errorf("store schedule for %s: %w", out.Target, err)
	}
	return nil
}

func targetExists(ctx context.Context, q queryer, t Target) error {
	table := "areas"
	if t.Kind == TargetDevice {
		table = "devices"
	}
	var one int
	err := q.QueryRowContext(ctx, "SELECT 1 FROM "+table+" WHERE id = ?", t.ID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s %q does not exist", ErrNotFound, t.Kind, t.ID)
	}
	return err
}

const scheduleCols = "COALESCE(area_id, ''), COALESCE(device_id, ''), revision, schedule_id, document, author, created_at, approved_by, approved_at"

func scanSchedule(s interface{ Scan(...any) error }) (Schedule, error) {
	var out Schedule
	var area, device string
	var created, approved sql.NullInt64
	if err := s.Scan(&area, &device, &out.Revision, &out.ID, &out.Document, &out.Author, &created, &out.ApprovedBy, &approved); err != nil {
		return Schedule{}, err
	}
	out.ApprovedAt = fromTS(approved)
	if area != "" {
		out.Target = AreaTarget(area)
	} else {
		out.Target = DeviceTarget(device)
	}
	out.CreatedAt = fromTS(created)
	return out, nil
}

func latestSchedule(ctx context.Context, q queryer, t Target) (Schedule, error) {
	s, err := scanSchedule(q.QueryRowContext(ctx, "SELECT "+scheduleCols+" FROM schedules WHERE "+t.column()+
		" = ? ORDER BY revision DESC LIMIT 1", t.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return Schedule{}, fmt.Errorf("%w: no schedule for %s", ErrNotFound, t)
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("latest schedule of %s: %w", t, err)
	}
	return s, nil
}

// LatestSchedule returns the newest revision attached to t.
func (db *DB) LatestSchedule(ctx context.Context, t Target) (Schedule, error) {
	if err := t.check(); err != nil {
		return Schedule{}, err
	}
	return latestSchedule(ctx, db.r, t)
}

// ScheduleRevision returns one past or present revision attached to t.
func (db *DB) ScheduleRevision(ctx context.Context, t Target, revision int64) (Schedule, error) {
	if err := t.check(); err != nil {
		return Schedule{}, err
	}
	s, err := scanSchedule(db.r.QueryRowContext(ctx, "SELECT "+scheduleCols+" FROM schedules WHERE "+t.column()+
		" = ? AND revision = ?", t.ID, revision))
	if errors.Is(err, sql.ErrNoRows) {
		return Schedule{}, fmt.Errorf("%w: no revision %d of the schedule for %s", ErrNotFound, revision, t)
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule revision %d of %s: %w", revision, t, err)
	}
	return s, nil
}

// SchedulesForDevice returns the latest schedule of every area above and including the
// device's area, root first, then the device's own; targets without a schedule are left out.
// All are read in one snapshot. The hub composes them into the device's effective schedule.
func (db *DB) SchedulesForDevice(ctx context.Context, deviceID string) ([]Schedule, error) {
	var out []Schedule
	err := db.read(ctx, func(tx *sql.Tx) error {
		d, err := getDevice(ctx, tx, deviceID)
		if err != nil {
			return err
		}
		areas, err := ancestors(ctx, tx, d.Area, true)
		if err != nil {
			return fmt.Errorf("device %q: %w", deviceID, err)
		}
		targets := make([]Target, 0, len(areas)+1)
		for _, a := range areas {
			targets = append(targets, AreaTarget(a.ID))
		}
		targets = append(targets, DeviceTarget(deviceID))
		for _, t := range targets {
			s, err := latestSchedule(ctx, tx, t)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// SubtreeSchedules is the newest schedule of every area and every device in one subtree.
type SubtreeSchedules struct {
	Areas   map[string]Schedule // by area id
	Devices map[string]Schedule // by device id
}

// LatestSchedulesUnder returns the newest schedule attached to area and to every area and
// device below it ("" = all), read in one snapshot with two queries: a push to a province
// composes for thousands of devices from these instead of reading them per device. Targets
// without a schedule are absent.
func (db *DB) LatestSchedulesUnder(ctx context.Context, area string) (SubtreeSchedules, error) {
	out := SubtreeSchedules{Areas: map[string]Schedule{}, Devices: map[string]Schedule{}}
	// One index seek per target to its newest revision (the unique (target, revision) indexes).
	acond, aargs := subtree("a.id", area)
	dcond, dargs := subtree("d.area_id", area)
	queries := []struct {
		q    string
		args []any
		into map[string]Schedule
	}{
		{`SELECT s.area_id, '', s.revision, s.schedule_id, s.document, s.author, s.created_at, s.approved_by, s.approved_at
			FROM areas a JOIN schedules s ON s.area_id = a.id AND s.revision =
				(SELECT m.revision FROM schedules m WHERE m.area_id = a.id ORDER BY m.revision DESC LIMIT 1)
			WHERE ` + acond, aargs, out.Areas},
		{`SELECT '', s.device_id, s.revision, s.schedule_id, s.document, s.author, s.created_at, s.approved_by, s.approved_at
			FROM devices d JOIN schedules s ON s.device_id = d.id AND s.revision =
				(SELECT m.revision FROM schedules m WHERE m.device_id = d.id ORDER BY m.revision DESC LIMIT 1)
			WHERE ` + dcond, dargs, out.Devices},
	}
	err := db.read(ctx, func(tx *sql.Tx) error {
		for _, q := range queries {
			rows, err := tx.QueryContext(ctx, q.q, q.args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				s, err := scanSchedule(rows)
				if err != nil {
					rows.Close()
					return err
				}
				q.into[s.Target.ID] = s
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return SubtreeSchedules{}, fmt.Errorf("latest schedules under %q: %w", area, err)
	}
	return out, nil
}

// ScheduleRevisions returns the revisions attached to t, newest first, at most limit (0: all).
func (db *DB) ScheduleRevisions(ctx context.Context, t Target, limit int) ([]Schedule, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+scheduleCols+" FROM schedules WHERE "+t.column()+
		" = ? ORDER BY revision DESC"+limitClause(limit), t.ID)
	if err != nil {
		return nil, fmt.Errorf("schedule revisions of %s: %w", t, err)
	}
	defer rows.Close()
	var out []Schedule
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("schedule revisions of %s: %w", t, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
