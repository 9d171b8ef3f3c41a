package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Old state is pruned so that a province's hub does not grow without end: each push adds
// about a kilobyte per device, each command a row per device.

// PruneEffective deletes each device's effective revisions beyond its newest keep (at least
// 1), never the newest one the device reported active: a reconnect's resend and `loa device
// show` read it. It returns how many revisions went.
func (db *DB) PruneEffective(ctx context.Context, keep int) (int64, error) {
	keep = max(keep, 1)
	// A revision goes when keep newer ones of the same device exist and it is not the
	// device's newest active one.
	const old = `SELECT e.device_id, e.revision FROM effective e WHERE
		(SELECT COUNT(*) FROM effective n WHERE n.device_id = e.device_id AND n.revision > e.revision) >= ?
		AND e.revision <> COALESCE((SELECT MAX(a.revision) FROM effective a
			WHERE a.device_id = e.device_id AND a.active_at IS NOT NULL), 0)`
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM effective_documents WHERE (device_id, revision) IN ("+old+")", keep); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM effective WHERE (device_id, revision) IN ("+old+")", keep)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune effective schedules: %w", err)
	}
	return n, nil
}

// PruneCommands deletes commands that expired before the given time, with their signed parts
// and per-device outcomes, keeping the one with the highest seq (a restarted hub signs above
// it). It returns how many commands went.
func (db *DB) PruneCommands(ctx context.Context, expiredBefore time.Time) (int64, error) {
	const old = `SELECT id FROM commands WHERE expires_at < ? AND seq < (SELECT MAX(seq) FROM commands)`
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		cut := ts(expiredBefore)
		for _, q := range []string{
			"DELETE FROM command_devices WHERE command_id IN (" + old + ")",
			"DELETE FROM command_payloads WHERE command_id IN (" + old + ")",
		} {
			if _, err := tx.ExecContext(ctx, q, cut); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM commands WHERE id IN ("+old+")", cut)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune commands: %w", err)
	}
	return n, nil
}
