package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// DeviceKind says what a device is.
type DeviceKind string

// The kinds of device the hub manages.
const (
	KindCluster DeviceKind = "cluster" // a loudspeaker cluster
	KindBoard   DeviceKind = "board"   // an electronic bulletin board or screen
)

// Device is an enrolled agent. Its secret is kept only as a SHA-256 hash.
type Device struct {
	ID         string
	Name       string
	Area       string
	Kind       DeviceKind
	Outputs    []string // e.g. speakers, screen, board
	EnrolledAt time.Time
	Revoked    bool
	RevokedAt  time.Time
	LastSeen   time.Time
	AckedSeq   int64 // highest contiguous confirmation seq stored (0: none)
	Status     Status
	StatusAt   time.Time
	// What its agent said at its last hello (schema step 17): its Debian architecture and
	// whether it installs upgrades (it trusts a release key).
	Arch     string
	Upgrades bool
}

// Status is the latest snapshot a device reported in its heartbeat.
type Status struct {
	NowPlaying  string
	Volume      float64
	ClockOffset time.Duration // device clock minus hub clock
	// ClockError bounds the device's clock error as its NTP client says (ClockSource: chrony
	// or timesyncd); 0 and "" where none said.
	ClockError      time.Duration
	ClockSource     string
	DiskFreeBytes   int64
	DiskTotalBytes  int64
	TemperatureC    float64 // NaN when the device does not know
	Uptime          time.Duration
	Link            string // link quality where known, e.g. "4g -87dBm"
	SoftwareVersion string
	Parts           Parts
}

// Parts are the device's parts beside the sound card, as its heartbeat gave them; nil where
// it has no such part or did not say (an agent older than these reports).
type Parts struct {
	Relay  *Part `json:"relay,omitempty"`
	Sign   *Part `json:"sign,omitempty"`
	Screen *Part `json:"screen,omitempty"`
	Audio  *Part `json:"audio,omitempty"` // the speakers' sound: dead air is its fault
}

// Part is one part's state; Error is what is wrong now ("" when it works).
type Part struct {
	State string    `json:"state"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

// Faults names the faulty parts with what is wrong, e.g. "relay: open /dev/loa-relay: no such file".
func (p Parts) Faults() []string {
	var out []string
	for _, x := range []struct {
		name string
		part *Part
	}{{"relay", p.Relay}, {"sign", p.Sign}, {"screen", p.Screen}, {"audio", p.Audio}} {
		if x.part != nil && x.part.Error != "" {
			out = append(out, x.name+": "+x.part.Error)
		}
	}
	return out
}

func checkDevice(d Device) error {
	if err := ValidateDeviceID(d.ID); err != nil {
		return err
	}
	if err := checkText("device "+d.ID+" name", d.Name, true, 200); err != nil {
		return err
	}
	if err := ValidateAreaID(d.Area); err != nil {
		return fmt.Errorf("device %q: %w", d.ID, err)
	}
	switch d.Kind {
	case KindCluster, KindBoard:
	default:
		return fmt.Errorf("%w: device %q has kind %q; want %q or %q", ErrInvalid, d.ID, d.Kind, KindCluster, KindBoard)
	}
	for i, o := range d.Outputs {
		if err := checkSegment(o); err != nil {
			return fmt.Errorf("%w: device %q output %d: %v", ErrInvalid, d.ID, i+1, err)
		}
	}
	return nil
}

// EnrolDevice records a new device in an existing area with the hash of the secret the caller
// generated and gave the device.
func (db *DB) EnrolDevice(ctx context.Context, d Device, secretHash [32]byte) (Device, error) {
	if err := checkDevice(d); err != nil {
		return Device{}, err
	}
	if secretHash == [32]byte{} {
		return Device{}, fmt.Errorf("%w: device %q: empty secret hash", ErrInvalid, d.ID)
	}
	outputs := d.Outputs
	if outputs == nil {
		outputs = []string{}
	}
	outJSON, _ := json.Marshal(outputs)
	out := Device{ID: d.ID, Name: d.Name, Area: d.Area, Kind: d.Kind, Outputs: outputs, EnrolledAt: db.now(),
		Status: Status{TemperatureC: math.NaN()}}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := areaExists(ctx, tx, d.Area); err != nil {
			return fmt.Errorf("enrol device %q: %w", d.ID, err)
		}
		if err := idFree(ctx, tx, "areas", d.ID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO devices(id, name, area_id, kind, outputs, secret_hash, enrolled_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
			d.ID, d.Name, d.Area, string(d.Kind), string(outJSON), secretHash[:], ts(out.EnrolledAt))
		if err != nil {
			return fmt.Errorf("enrol device %q: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: device %q is already enrolled; revoke it and pick another id, or give it a new secret with `loa device rekey`", ErrExists, d.ID)
		}
		return nil
	})
	if err != nil {
		return Device{}, err
	}
	return out, nil
}

// idFree checks that no row of the other table (areas or devices) has id: area and device
// ids are one namespace, so a bare id in a push or command names one thing, and no commune
// can make another's area id ambiguous by enrolling a device under it.
func idFree(ctx context.Context, q queryer, table, id string) error {
	var one int
	err := q.QueryRowContext(ctx, "SELECT 1 FROM "+table+" WHERE id = ?", id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check id %q: %w", id, err)
	}
	what := "an area"
	if table == "devices" {
		what = "a device"
	}
	return fmt.Errorf("%w: %q is already the id of %s (areas and devices share one namespace)", ErrExists, id, what)
}

func areaExists(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, "SELECT 1 FROM areas WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: area %q does not exist", ErrNotFound, id)
	}
	return err
}

const deviceCols = `id, name, area_id, kind, outputs, enrolled_at, revoked_at, last_seen, acked_seq,
	status_at, now_playing, volume, clock_offset_ns, disk_free_bytes, disk_total_bytes, temperature_c,
	uptime_ns, link, software_version, parts, clock_error_ns, clock_source, arch, upgrades`

// qualified returns a column list with each column prefixed by a table alias ("d.id, d.name…").
func qualified(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// scanDevice scans deviceCols, after any extra columns selected before them.
func scanDevice(s interface{ Scan(...any) error }, extra ...any) (Device, error) {
	var d Device
	var kind, outputs string
	var enrolled, revoked, seen, statusAt sql.NullInt64
	var temp sql.NullFloat64
	var offset, uptime int64
	var parts string
	var clockErr, upgrades int64
	err := s.Scan(append(extra, &d.ID, &d.Name, &d.Area, &kind, &outputs, &enrolled, &revoked, &seen, &d.AckedSeq,
		&statusAt, &d.Status.NowPlaying, &d.Status.Volume, &offset, &d.Status.DiskFreeBytes,
		&d.Status.DiskTotalBytes, &temp, &uptime, &d.Status.Link, &d.Status.SoftwareVersion, &parts,
		&clockErr, &d.Status.ClockSource, &d.Arch, &upgrades)...)
	if err != nil {
		return Device{}, err
	}
	if parts != "" {
		if err := json.Unmarshal([]byte(parts), &d.Status.Parts); err != nil {
			return Device{}, fmt.Errorf("device %q: stored parts %q: %w", d.ID, parts, err)
		}
	}
	d.Kind = DeviceKind(kind)
	d.Upgrades = upgrades != 0
	if err := json.Unmarshal([]byte(outputs), &d.Outputs); err != nil {
		return Device{}, fmt.Errorf("device %q: stored outputs %q: %w", d.ID, outputs, err)
	}
	d.EnrolledAt, d.RevokedAt, d.LastSeen, d.StatusAt = fromTS(enrolled), fromTS(revoked), fromTS(seen), fromTS(statusAt)
	d.Revoked = revoked.Valid
	d.Status.ClockOffset, d.Status.Uptime = time.Duration(offset), time.Duration(uptime)
	d.Status.ClockError = time.Duration(clockErr)
	d.Status.TemperatureC = math.NaN()
	if temp.Valid {
		d.Status.TemperatureC = temp.Float64
	}
	return d, nil
}

// GetDevice returns one device.
func (db *DB) GetDevice(ctx context.Context, id string) (Device, error) {
	return deviceRow(db.getDevice.QueryRowContext(ctx, id), id)
}

func getDevice(ctx context.Context, q queryer, id string) (Device, error) {
	return deviceRow(q.QueryRowContext(ctx, "SELECT "+deviceCols+" FROM devices WHERE id = ?", id), id)
}

func deviceRow(row *sql.Row, id string) (Device, error) {
	d, err := scanDevice(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("%w: device %q is not enrolled", ErrNotFound, id)
	}
	if err != nil {
		return Device{}, fmt.Errorf("get device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns the devices in area and every area below it, by id ("" = all).
func (db *DB) ListDevices(ctx context.Context, area string) ([]Device, error) {
	cond, args := subtree("area_id", area)
	rows, err := db.r.QueryContext(ctx, "SELECT "+deviceCols+" FROM devices WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("list devices under %q: %w", area, err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices under %q: %w", area, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// updateDevice runs one UPDATE on a device (group-committed with other writes) and turns
// "no row" into ErrNotFound. stmt, when not nil, is the prepared form of query.
func (db *DB) updateDevice(ctx context.Context, what, id string, stmt *sql.Stmt, query string, args ...any) error {
	return db.writeOne(ctx, func(tx *sql.Tx) error {
		if stmt != nil {
			return deviceUpdated(tx.StmtContext(ctx, stmt).ExecContext(ctx, args...))(what, id)
		}
		return deviceUpdated(tx.ExecContext(ctx, query, args...))(what, id)
	})
}

func deviceUpdated(res sql.Result, err error) func(what, id string) error {
	return func(what, id string) error {
		if err != nil {
			return fmt.Errorf("%s device %q: %w", what, id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: device %q is not enrolled", ErrNotFound, id)
		}
		return nil
	}
}

// RevokeDevice marks a device revoked: its secret no longer authenticates. Revoking twice
// keeps the first time.
func (db *DB) RevokeDevice(ctx context.Context, id string) error {
	return db.updateDevice(ctx, "revoke", id, nil,
		"UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", ts(db.now()), id)
}

// ReplaceSecret stores the hash of a new secret for a device (a box was replaced or its secret
// leaked). It does not lift a revocation.
func (db *DB) ReplaceSecret(ctx context.Context, id string, secretHash [32]byte) error {
	if secretHash == [32]byte{} {
		return fmt.Errorf("%w: device %q: empty secret hash", ErrInvalid, id)
	}
	return db.updateDevice(ctx, "replace secret of", id, nil,
		"UPDATE devices SET secret_hash = ? WHERE id = ?", secretHash[:], id)
}

// CheckSecret authenticates a device: the hash of the secret it presented must equal the
// stored one (constant-time compare) and the device must not be revoked. Every failure wraps
// ErrUnauthorized; the message says which (for the hub's log, not for the device).
func (db *DB) CheckSecret(ctx context.Context, id string, secretHash [32]byte) (Device, error) {
	var stored []byte
	d, err := scanDevice(db.checkSecret.QueryRowContext(ctx, id), &stored)
	if errors.Is(err, sql.ErrNoRows) {
		// Compare anyway so the time taken does not tell which ids exist.
		var dummy [32]byte
		subtle.ConstantTimeCompare(dummy[:], secretHash[:])
		return Device{}, fmt.Errorf("%w: device %q is not enrolled", ErrUnauthorized, id)
	}
	if err != nil {
		return Device{}, fmt.Errorf("check secret of device %q: %w", id, err)
	}
	if subtle.ConstantTimeCompare(stored, secretHash[:]) != 1 {
		return Device{}, fmt.Errorf("%w: device %q presented a wrong secret", ErrUnauthorized, id)
	}
	if d.Revoked {
		return Device{}, fmt.Errorf("%w: device %q was revoked at %s", ErrUnauthorized, id, d.RevokedAt.Format(time.RFC3339))
	}
	return d, nil
}

// Seen records that a device was heard from now.
func (db *DB) Seen(ctx context.Context, id string) error {
	return db.updateDevice(ctx, "mark seen", id, db.setSeen, "", ts(db.now()), id)
}

// UpdateStatus stores a device's status snapshot and marks it seen now.
func (db *DB) UpdateStatus(ctx context.Context, id string, s Status) error {
	for _, f := range [...]struct{ what, v string }{{"now playing", s.NowPlaying}, {"link", s.Link}, {"software version", s.SoftwareVersion}, {"clock source", s.ClockSource}} {
		if err := checkText("device "+id+" "+f.what, f.v, false, 1024); err != nil {
			return err
		}
	}
	var temp any
	if !math.IsNaN(s.TemperatureC) && !math.IsInf(s.TemperatureC, 0) {
		temp = s.TemperatureC
	}
	vol := s.Volume
	if math.IsNaN(vol) || math.IsInf(vol, 0) {
		return fmt.Errorf("%w: device %q volume %v", ErrInvalid, id, vol)
	}
	parts := ""
	if s.Parts != (Parts{}) {
		for _, p := range []*Part{s.Parts.Relay, s.Parts.Sign, s.Parts.Screen, s.Parts.Audio} {
			if p == nil {
				continue
			}
			if err := checkText("device "+id+" part state", p.State, false, 32); err != nil {
				return err
			}
			if err := checkText("device "+id+" part error", p.Error, false, 1024); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(s.Parts)
		parts = string(b)
	}
	now := ts(db.now())
	return db.updateDevice(ctx, "update status of", id, db.setStatus, "", now, now, s.NowPlaying, vol, int64(s.ClockOffset),
		s.DiskFreeBytes, s.DiskTotalBytes, temp, int64(s.Uptime), s.Link, s.SoftwareVersion, parts, int64(s.ClockError), s.ClockSource, id)
}

const updateStatus = `UPDATE devices SET last_seen = ?, status_at = ?, now_playing = ?, volume = ?,
	clock_offset_ns = ?, disk_free_bytes = ?, disk_total_bytes = ?, temperature_c = ?, uptime_ns = ?, link = ?,
	software_version = ?, parts = ?, clock_error_ns = ?, clock_source = ? WHERE id = ?`

// MoveDevice puts a device in another existing area. Its past confirmations keep the area they
// were played in.
func (db *DB) MoveDevice(ctx context.Context, id, area string) error {
	if err := ValidateAreaID(area); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := areaExists(ctx, tx, area); err != nil {
			return fmt.Errorf("move device %q: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, "UPDATE devices SET area_id = ? WHERE id = ?", area, id)
		if err != nil {
			return fmt.Errorf("move device %q: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: device %q is not enrolled", ErrNotFound, id)
		}
		return nil
	})
}
