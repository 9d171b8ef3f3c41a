package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Area is a node of the administrative tree: province, (district,) commune, or any level a
// deployment needs. Its id is its path from the root, so its parent is the id minus the last
// segment; a cycle cannot be expressed.
type Area struct {
	ID        string
	Name      string
	Parent    string // "" for a root (a province)
	Depth     int    // 1 for a root
	CreatedAt time.Time
}

// AddArea adds an area under an existing parent. a.Parent may be left empty (it follows from
// the id); when given it must match. The parent must exist, the id must be new.
func (db *DB) AddArea(ctx context.Context, a Area) (Area, error) {
	if err := ValidateAreaID(a.ID); err != nil {
		return Area{}, err
	}
	if err := checkText("area "+a.ID+" name", a.Name, true, 200); err != nil {
		return Area{}, err
	}
	parent := ParentArea(a.ID)
	if a.Parent != "" && a.Parent != parent {
		if a.Parent == a.ID || IsWithin(a.Parent, a.ID) {
			return Area{}, fmt.Errorf("%w: area %q cannot hang under %q, which is itself or below it (a cycle)", ErrInvalid, a.ID, a.Parent)
		}
		last := a.ID[len(parent):]
		last = strings.TrimPrefix(last, "/")
		return Area{}, fmt.Errorf("%w: area id %q does not lie under parent %q: an area's id is its parent's id plus one segment, e.g. %q", ErrInvalid, a.ID, a.Parent, a.Parent+"/"+last)
	}
	out := Area{ID: a.ID, Name: a.Name, Parent: parent, Depth: strings.Count(a.ID, "/") + 1, CreatedAt: db.now()}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if parent != "" {
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM areas WHERE id = ?", parent).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: parent area %q of %q does not exist; add it first", ErrNotFound, parent, a.ID)
			}
			if err != nil {
				return fmt.Errorf("look up parent area %q: %w", parent, err)
			}
		}
		if err := idFree(ctx, tx, "devices", a.ID); err != nil {
			return err
		}
		var parentArg any
		if parent != "" {
			parentArg = parent
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO areas(id, name, parent_id, depth, created_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
			out.ID, out.Name, parentArg, out.Depth, ts(out.CreatedAt))
		if err != nil {
			return fmt.Errorf("add area %q: %w", a.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: area %q", ErrExists, a.ID)
		}
		return nil
	})
	if err != nil {
		return Area{}, err
	}
	return out, nil
}

const areaCols = "id, name, COALESCE(parent_id, ''), depth, created_at"

func scanArea(s interface{ Scan(...any) error }) (Area, error) {
	var a Area
	var created sql.NullInt64
	err := s.Scan(&a.ID, &a.Name, &a.Parent, &a.Depth, &created)
	a.CreatedAt = fromTS(created)
	return a, err
}

func queryAreas(ctx context.Context, q queryer, query string, args ...any) ([]Area, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Area
	for rows.Next() {
		a, err := scanArea(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// GetArea returns one area.
func (db *DB) GetArea(ctx context.Context, id string) (Area, error) {
	a, err := scanArea(db.r.QueryRowContext(ctx, "SELECT "+areaCols+" FROM areas WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Area{}, fmt.Errorf("%w: area %q", ErrNotFound, id)
	}
	if err != nil {
		return Area{}, fmt.Errorf("get area %q: %w", id, err)
	}
	return a, nil
}

// ListChildren returns the areas directly under parent, by id; parent "" lists the roots.
func (db *DB) ListChildren(ctx context.Context, parent string) ([]Area, error) {
	var out []Area
	var err error
	if parent == "" {
		out, err = queryAreas(ctx, db.r, "SELECT "+areaCols+" FROM areas WHERE parent_id IS NULL ORDER BY id")
	} else {
		out, err = queryAreas(ctx, db.r, "SELECT "+areaCols+" FROM areas WHERE parent_id = ? ORDER BY id", parent)
	}
	if err != nil {
		return nil, fmt.Errorf("list children of area %q: %w", parent, err)
	}
	return out, nil
}

// ListSubtree returns area and every area below it, parents before children ("" = all).
func (db *DB) ListSubtree(ctx context.Context, area string) ([]Area, error) {
	cond, args := subtree("id", area)
	out, err := queryAreas(ctx, db.r, "SELECT "+areaCols+" FROM areas WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("list areas under %q: %w", area, err)
	}
	return out, nil
}

// Ancestors returns the areas above id, root first, not including id itself. It fails with
// ErrNotFound when id does not exist.
func (db *DB) Ancestors(ctx context.Context, id string) ([]Area, error) {
	var out []Area
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = ancestors(ctx, tx, id, false)
		return err
	})
	return out, err
}

// ancestors returns the areas above id (and id itself when self), root first.
func ancestors(ctx context.Context, q queryer, id string, self bool) ([]Area, error) {
	if err := ValidateAreaID(id); err != nil {
		return nil, err
	}
	ids := []any{}
	for p := id; p != ""; p = ParentArea(p) {
		if p != id || self {
			ids = append(ids, p)
		}
	}
	ids = append(ids, id) // to check id exists
	ph := strings.Repeat("?,", len(ids))
	all, err := queryAreas(ctx, q, "SELECT "+areaCols+" FROM areas WHERE id IN ("+ph[:len(ph)-1]+") ORDER BY depth", ids...)
	if err != nil {
		return nil, fmt.Errorf("ancestors of area %q: %w", id, err)
	}
	if len(all) == 0 || all[len(all)-1].ID != id {
		return nil, fmt.Errorf("%w: area %q", ErrNotFound, id)
	}
	if !self {
		all = all[:len(all)-1]
	}
	return all, nil
}
