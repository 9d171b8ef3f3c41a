package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// copyTables are the store's tables in an order that satisfies their foreign keys (a parent
// before the rows naming it), with the order their rows are read in. TestCopyCoversEveryTable
// fails when a schema step adds a table this list lacks.
var copyTables = []struct{ name, order string }{
	{"areas", "depth, id"}, // a parent area is one level up
	{"devices", "id"},
	{"taxonomy", "dimension, value"},
	{"content", "ref"},
	{"schedules", "area_id NULLS FIRST, device_id NULLS FIRST, revision"},
	{"effective_documents", "device_id, revision"},
	{"effective", "device_id, revision"},
	{"confirmations", "device_id, seq"},
	{"users", "id"},
	{"tokens", "hash"},
	{"sessions", "hash"},
	{"audit", "id"},
	{"emergencies", "id"},
	{"commands", "id"},
	{"command_payloads", "command_id, part"},
	{"command_devices", "command_id, device_id"},
	{"play_months", "month, area_id, device_id, item_ref"},
	{"play_programs", "month, area_id, program, item_ref"},
	{"play_reasons", "month, area_id, program, item_ref, result, error"},
	{"play_days", "day, area_id, device_id"},
	{"online_days", "day, area_id, device_id"},
	{"settings", "key"},
	{"schedule_templates", "area_id, name"},
	{"submissions", "id"},
	{"releases", "version, arch"},
	{"rollouts", "id"},
	{"rollout_devices", "rollout_id, device_id"},
}

// identityTables have a generated id that a PostgreSQL destination must continue after the
// copied ones (SQLite's AUTOINCREMENT follows explicit ids by itself).
var identityTables = []string{"audit", "emergencies", "submissions"}

// Copy copies every row of every table of the store from into the store to, which must be
// empty, in one transaction of to: a failure leaves to as it was. Both are open at this
// code's schema version (Open migrated them), so their tables and columns are the same; this
// is how `loa-hub migrate --from sqlite:… --to postgres://…` moves a district to PostgreSQL
// (and back). Run it with no hub serving from either store.
func Copy(ctx context.Context, from, to *DB) (rows int64, err error) {
	for _, t := range copyTables {
		var has int
		err := to.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM "+t.name+" LIMIT 1) x").Scan(&has)
		if err != nil {
			return 0, fmt.Errorf("copy the hub store to %s: %w", to.path, err)
		}
		if has > 0 {
			return 0, fmt.Errorf("copy the hub store to %s: %w: its table %s has rows; copy into a new, empty store", to.path, ErrExists, t.name)
		}
	}
	err = to.writeWeighted(ctx, maxGroupRecords, func(tx *sql.Tx) error {
		for _, t := range copyTables {
			n, err := copyTable(ctx, from, tx, t.name, t.order)
			if err != nil {
				return fmt.Errorf("copy table %s from %s: %w", t.name, from.path, err)
			}
			rows += n
		}
		if !to.pg {
			return nil
		}
		for _, t := range identityTables {
			if _, err := tx.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence('"+t+"', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM "+t); err != nil {
				return fmt.Errorf("continue the ids of %s after the copied ones: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("copy the hub store from %s to %s: %w", from.path, to.path, err)
	}
	from.log.Info("hub store copied", "from", from.path, "to", to.path, "rows", rows)
	return rows, nil
}

// copyTable copies one table's rows, read in order from the store from (one snapshot), into tx.
func copyTable(ctx context.Context, from *DB, tx *sql.Tx, table, order string) (int64, error) {
	cols, blobs, err := tableColumns(ctx, tx, table)
	if err != nil {
		return 0, err
	}
	var n int64
	err = from.read(ctx, func(rtx *sql.Tx) error {
		rows, err := rtx.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table+" ORDER BY "+order)
		if err != nil {
			return err
		}
		defer rows.Close()
		ins, err := tx.PrepareContext(ctx, "INSERT INTO "+table+"("+strings.Join(cols, ", ")+") VALUES (?"+strings.Repeat(", ?", len(cols)-1)+")")
		if err != nil {
			return err
		}
		defer ins.Close()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for i, b := range blobs {
				if s, ok := vals[i].(string); ok && b { // SQLite may hand a BLOB column's text back as a string
					vals[i] = []byte(s)
				}
			}
			if _, err := ins.ExecContext(ctx, vals...); err != nil {
				return fmt.Errorf("row %d: %w", n+1, err)
			}
			n++
		}
		return rows.Err()
	})
	return n, err
}

// tableColumns are the names of a table's columns in the destination, and which hold bytes.
func tableColumns(ctx context.Context, q queryer, table string) ([]string, []bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM "+table+" LIMIT 0")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, err
	}
	cols := make([]string, len(types))
	blobs := make([]bool, len(types))
	for i, ct := range types {
		cols[i] = ct.Name()
		switch strings.ToUpper(ct.DatabaseTypeName()) {
		case "BLOB", "BYTEA":
			blobs[i] = true
		}
	}
	return cols, blobs, rows.Err()
}
