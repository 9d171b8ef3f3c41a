package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Online time (online_days, schema step 11): the hub adds the time each device was connected,
// cut at midnight +07 like the other summaries, whenever the device sends its status and when
// it disconnects. So a day holds at most a status interval less than the truth when the hub
// stops without closing its connections, and never more than 24 h (overlapping connections
// of a device that reconnected are capped there). Rows are per device and day: about 730,000
// a year for 2,000 devices; housekeeping prunes them after KeepOnline.

// KeepOnline is how long online time is kept: this year's and last year's reports.
const KeepOnline = 3 * 366 * 24 * time.Hour

const daySeconds = 24 * 3600.0

// AddOnline records that a device was connected from from to to, in the area it is in now.
func (db *DB) AddOnline(ctx context.Context, id string, from, to time.Time) error {
	if !from.Before(to) {
		return nil
	}
	if to.Sub(from) > KeepOnline { // a span longer than anything kept would only loop
		from = to.Add(-KeepOnline)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for t := from; t.Before(to); {
			day := dayOf(t)
			next := time.Unix(0, (day+1)*int64(24*time.Hour)-summaryOffset)
			if next.After(to) {
				next = to
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO online_days(day, area_id, device_id, seconds)
				SELECT CAST(?1 AS BIGINT), area_id, id, CAST(?2 AS DOUBLE PRECISION) FROM devices WHERE id = ?3
				ON CONFLICT(day, area_id, device_id) DO UPDATE SET seconds =
					CASE WHEN online_days.seconds + excluded.seconds < ?4 THEN online_days.seconds + excluded.seconds ELSE ?4 END`,
				day, next.Sub(t).Seconds(), id, daySeconds); err != nil {
				return fmt.Errorf("record online time of device %q: %w", id, err)
			}
			t = next
		}
		return nil
	})
}

// onlineSeconds is each device's time connected on the +07 days that [from, to) touches, in
// area's subtree: a period cut at another midnight is read by whole +07 days.
func (db *DB) onlineSeconds(ctx context.Context, area string, from, to time.Time) (map[string]float64, error) {
	cond, args := subtree("area_id", area)
	last := dayOf(to.Add(-time.Nanosecond))
	rows, err := db.r.QueryContext(ctx, `SELECT device_id, SUM(seconds) FROM online_days WHERE `+cond+
		` AND day >= ? AND day <= ? GROUP BY device_id`, append(args, dayOf(from), last)...)
	if err != nil {
		return nil, fmt.Errorf("online time: %w", err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var id string
		var s float64
		if err := rows.Scan(&id, &s); err != nil {
			return nil, err
		}
		out[id] = s
	}
	return out, rows.Err()
}

// PruneOnline deletes online time of the days before before.
func (db *DB) PruneOnline(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM online_days WHERE day < ?", dayOf(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune online time: %w", err)
	}
	return n, nil
}

// elapsed is the part of [from, to) already past at now, in seconds: the denominator of an
// online share (a device cannot be online tomorrow).
func elapsed(from, to, now time.Time) float64 {
	if now.Before(to) {
		to = now
	}
	if !from.Before(to) {
		return 0
	}
	return to.Sub(from).Seconds()
}
