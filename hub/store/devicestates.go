package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The console's overview and device list (issue 14) count and filter every device of a scope
// on each view. DeviceStates reads only what they need — a few short columns and the alarm
// conditions the store can judge, worked out in SQL — for the hub to keep in memory and
// re-read by id as devices change. Whether a device is connected is not in the store (the
// hub holds its connections), nor is "offline for a day", which becomes true with time: the
// hub judges those from LastSeen and EnrolledAt when it counts.

// AlarmRules are the thresholds of a device's alarms that the store judges.
type AlarmRules struct {
	LowDisk   int64         // disk alarm: free bytes reported below this (0 bytes: not reported)
	ClockSkew time.Duration // clock alarm, when connected: offset beyond this either way
}

// DeviceQuery selects devices: an area's subtree and, when not empty, one kind, one
// software version, and the named devices only.
type DeviceQuery struct {
	Area, Kind, Software string
	IDs                  []string
	Rules                AlarmRules
}

// DeviceState is what the overview counts and the device list filters by.
type DeviceState struct {
	ID, Name, Area, Kind, Software string
	Revoked, Playing               bool
	LastSeen, EnrolledAt           time.Time // LastSeen zero: never seen
	Skewed                         bool      // clock beyond Rules.ClockSkew: an alarm when connected
	Faulty                         bool      // a part reports an error, the disk is nearly full, or the newest schedule was refused
}

// Stale says whether a device was last seen (or, never seen, enrolled) before t.
func (s DeviceState) Stale(t time.Time) bool {
	if s.LastSeen.IsZero() {
		return s.EnrolledAt.Before(t)
	}
	return s.LastSeen.Before(t)
}

// DeviceStates returns the devices matching q in id order.
func (db *DB) DeviceStates(ctx context.Context, q DeviceQuery) ([]DeviceState, error) {
	cond, args := subtree("d.area_id", q.Area)
	conds := []string{cond}
	if q.Kind != "" {
		conds, args = append(conds, "d.kind = ?"), append(args, q.Kind)
	}
	if q.Software != "" {
		conds, args = append(conds, "d.software_version = ?"), append(args, q.Software)
	}
	if len(q.IDs) > 0 {
		conds = append(conds, "d.id IN (?"+strings.Repeat(", ?", len(q.IDs)-1)+")")
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	skew := int64(q.Rules.ClockSkew)
	// Parts are stored as JSON whose "error" is omitted when empty (Part's tags).
	query := `SELECT d.id, d.name, d.area_id, d.kind, d.software_version,
		CASE WHEN d.revoked_at IS NULL THEN 0 ELSE 1 END,
		CASE WHEN d.now_playing <> '' THEN 1 ELSE 0 END,
		d.last_seen, d.enrolled_at,
		CASE WHEN d.clock_offset_ns > ? OR d.clock_offset_ns < ? THEN 1 ELSE 0 END,
		CASE WHEN d.parts LIKE '%"error":%' OR (d.disk_free_bytes > 0 AND d.disk_free_bytes < ?)
			OR (SELECT m.refused_at FROM effective m WHERE m.device_id = d.id ORDER BY m.revision DESC LIMIT 1) IS NOT NULL
			THEN 1 ELSE 0 END
		FROM devices d WHERE ` + strings.Join(conds, " AND ")
	rows, err := db.r.QueryContext(ctx, query, append([]any{skew, -skew, q.Rules.LowDisk}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("device states under %q: %w", q.Area, err)
	}
	defer rows.Close()
	var out []DeviceState
	for rows.Next() {
		var s DeviceState
		var revoked, playing, skewed, faulty int
		var seen sql.NullInt64
		var enrolled int64
		if err := rows.Scan(&s.ID, &s.Name, &s.Area, &s.Kind, &s.Software, &revoked, &playing, &seen, &enrolled, &skewed, &faulty); err != nil {
			return nil, fmt.Errorf("device states under %q: %w", q.Area, err)
		}
		s.Revoked, s.Playing, s.Skewed, s.Faulty = revoked == 1, playing == 1, skewed == 1, faulty == 1
		s.LastSeen, s.EnrolledAt = fromTS(seen), fromTS(sql.NullInt64{Int64: enrolled, Valid: true})
		out = append(out, s)
	}
	// Sorted here, not by ORDER BY: SQLite would walk the area index and then sort 10,000 rows
	// in a temporary tree, four times the cost of the read (BENCHMARKS.md, "Console"); and Go's
	// byte order is the same on both engines, whatever PostgreSQL's collation.
	slices.SortFunc(out, func(a, b DeviceState) int { return strings.Compare(a.ID, b.ID) })
	return out, rows.Err()
}

// SoftwareVersions returns the software versions devices under area report, sorted.
func (db *DB) SoftwareVersions(ctx context.Context, area string) ([]string, error) {
	cond, args := subtree("area_id", area)
	rows, err := db.r.QueryContext(ctx, "SELECT DISTINCT software_version FROM devices WHERE "+cond+
		" AND software_version <> '' ORDER BY software_version", args...)
	if err != nil {
		return nil, fmt.Errorf("software versions under %q: %w", area, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("software versions under %q: %w", area, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// DevicesByID returns the named devices (at most a page of them) in id order; ids not
// enrolled are left out.
func (db *DB) DevicesByID(ctx context.Context, ids []string) ([]Device, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+deviceCols+" FROM devices WHERE id IN (?"+
		strings.Repeat(", ?", len(ids)-1)+") ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("read %d devices: %w", len(ids), err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("read %d devices: %w", len(ids), err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
