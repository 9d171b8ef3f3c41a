package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The console's overview and device list (issue 14) read every device of a scope on each
// view. DeviceStates reads only what they count and filter by — a few short columns and the
// alarm conditions the store can judge, worked out in SQL — so a page of 10,000 devices costs
// one narrow scan instead of every device's whole row turned into JSON. Whether a device is
// connected is not in the store (the hub holds its connections), so the caller combines
// Stale and Skewed with it.

// AlarmRules are the thresholds of a device's alarms.
type AlarmRules struct {
	StaleBefore time.Time     // offline alarm: last seen (or, never seen, enrolled) before this
	LowDisk     int64         // disk alarm: free bytes reported below this (0 bytes: not reported)
	ClockSkew   time.Duration // clock alarm, when connected: offset beyond this either way
}

// DeviceQuery selects devices: an area's subtree and, when not "", one kind and one
// software version.
type DeviceQuery struct {
	Area, Kind, Software string
	Rules                AlarmRules
}

// DeviceState is what the overview counts and the device list filters by.
type DeviceState struct {
	ID, Name, Area, Kind, Software string
	Revoked, Playing               bool
	Stale                          bool // seen last (or enrolled, never seen) before Rules.StaleBefore: an alarm when offline
	Skewed                         bool // clock beyond Rules.ClockSkew: an alarm when connected
	Faulty                         bool // a part reports an error, the disk is nearly full, or the newest schedule was refused
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
	stale, skew := ts(q.Rules.StaleBefore), int64(q.Rules.ClockSkew)
	// Parts are stored as JSON whose "error" is omitted when empty (Part's tags).
	query := `SELECT d.id, d.name, d.area_id, d.kind, d.software_version,
		CASE WHEN d.revoked_at IS NULL THEN 0 ELSE 1 END,
		CASE WHEN d.now_playing <> '' THEN 1 ELSE 0 END,
		CASE WHEN d.last_seen < ? OR (d.last_seen IS NULL AND d.enrolled_at < ?) THEN 1 ELSE 0 END,
		CASE WHEN d.clock_offset_ns > ? OR d.clock_offset_ns < ? THEN 1 ELSE 0 END,
		CASE WHEN d.parts LIKE '%"error":%' OR (d.disk_free_bytes > 0 AND d.disk_free_bytes < ?)
			OR (SELECT m.refused_at FROM effective m WHERE m.device_id = d.id ORDER BY m.revision DESC LIMIT 1) IS NOT NULL
			THEN 1 ELSE 0 END
		FROM devices d WHERE ` + strings.Join(conds, " AND ") + " ORDER BY d.id"
	rows, err := db.r.QueryContext(ctx, query, append([]any{stale, stale, skew, -skew, q.Rules.LowDisk}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("device states under %q: %w", q.Area, err)
	}
	defer rows.Close()
	var out []DeviceState
	for rows.Next() {
		var s DeviceState
		var revoked, playing, isStale, skewed, faulty int
		if err := rows.Scan(&s.ID, &s.Name, &s.Area, &s.Kind, &s.Software, &revoked, &playing, &isStale, &skewed, &faulty); err != nil {
			return nil, fmt.Errorf("device states under %q: %w", q.Area, err)
		}
		s.Revoked, s.Playing, s.Stale, s.Skewed, s.Faulty = revoked == 1, playing == 1, isStale == 1, skewed == 1, faulty == 1
		out = append(out, s)
	}
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
