package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loa-project/loa/protocol"
)

// Release is a signed agent package staff uploaded (schema step 17); its bytes are in the
// content dir under their sha256.
type Release struct {
	protocol.ReleasePackage // without URL
	UploadedBy              string
	UploadedAt              time.Time
}

// AddRelease stores a release. One already held for the same version and architecture with
// the same bytes is returned as it is (created false); with other bytes it is ErrExists.
func (db *DB) AddRelease(ctx context.Context, r Release) (Release, bool, error) {
	if err := protocol.CheckRelease(&r.ReleasePackage); err != nil {
		return Release{}, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.URL = ""
	r.UploadedAt = db.now()
	created := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		old, err := getRelease(ctx, tx, r.Version, r.Arch)
		if err == nil {
			if old.SHA256 != r.SHA256 || old.Size != r.Size {
				return fmt.Errorf("%w: the hub already holds %s %s (%s) with other bytes (sha256 %s, uploaded by %s on %s); a version is never replaced: build and sign a new version",
					ErrExists, r.Name, r.Version, r.Arch, old.SHA256, old.UploadedBy, old.UploadedAt.Format(time.DateOnly))
			}
			r = old
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases(version, arch, size, sha256, key_id, signature, uploaded_by, uploaded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.Version, r.Arch, r.Size, r.SHA256, r.KeyID, r.Signature, r.UploadedBy, ts(r.UploadedAt)); err != nil {
			return fmt.Errorf("store release %s (%s): %w", r.Version, r.Arch, err)
		}
		created = true
		return nil
	})
	if err != nil {
		return Release{}, false, err
	}
	return r, created, nil
}

const releaseCols = "version, arch, size, sha256, key_id, signature, uploaded_by, uploaded_at"

func scanRelease(s interface{ Scan(...any) error }) (Release, error) {
	r := Release{ReleasePackage: protocol.ReleasePackage{Name: protocol.ReleaseName}}
	var at sql.NullInt64
	err := s.Scan(&r.Version, &r.Arch, &r.Size, &r.SHA256, &r.KeyID, &r.Signature, &r.UploadedBy, &at)
	r.UploadedAt = fromTS(at)
	return r, err
}

func getRelease(ctx context.Context, q queryer, version, arch string) (Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, "SELECT "+releaseCols+" FROM releases WHERE version = ? AND arch = ?", version, arch))
	if errors.Is(err, sql.ErrNoRows) {
		return Release{}, fmt.Errorf("%w: the hub holds no release %s for %s (`loa release list` shows those it holds)", ErrNotFound, version, arch)
	}
	if err != nil {
		return Release{}, fmt.Errorf("read release %s (%s): %w", version, arch, err)
	}
	return r, nil
}

// GetRelease returns the release of version for arch.
func (db *DB) GetRelease(ctx context.Context, version, arch string) (Release, error) {
	return getRelease(ctx, db.r, version, arch)
}

// ListReleases returns every release, newest upload first.
func (db *DB) ListReleases(ctx context.Context) ([]Release, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+releaseCols+" FROM releases ORDER BY uploaded_at DESC, version, arch")
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetAgent records what a device's agent said at its hello: its software version, Debian
// architecture, and whether it installs upgrades.
func (db *DB) SetAgent(ctx context.Context, id, software, arch string, upgrades bool) error {
	if err := checkText("device "+id+" software version", software, false, 1024); err != nil {
		return err
	}
	if err := checkText("device "+id+" arch", arch, false, 32); err != nil {
		return err
	}
	u := 0
	if upgrades {
		u = 1
	}
	return db.updateDevice(ctx, "record the agent of", id, nil,
		"UPDATE devices SET software_version = ?, arch = ?, upgrades = ? WHERE id = ?", software, arch, u, id)
}

// Rollout stages (Rollout.Stage).
const (
	RolloutCanary  = "canary"  // sent to the canaries only
	RolloutRest    = "rest"    // the canaries were healthy: sent to every eligible device
	RolloutDone    = "done"    // every eligible device is healthy or final
	RolloutStopped = "stopped" // too many failures, or staff stopped it (Reason says which)
)

// Device stages in a rollout (RolloutDevice.Stage).
const (
	DeviceCanary = "canary"
	DeviceRest   = "rest"
	DeviceNone   = "none" // cannot upgrade, or already at the version
)

// Device states the hub sets (RolloutDevice.State); the others are the agent's
// (protocol.Upgrade*).
const (
	UpgradePending   = "pending"   // its stage has not come, or it was offline
	UpgradeSent      = "sent"      // the upgrade message went out; no status about it yet
	UpgradeCancelled = "cancelled" // the rollout stopped before it began installing
	UpgradeCurrent   = "current"   // it already runs the version
	UpgradeCannot    = "cannot"    // no upgrades (older agent or no release key) or no release for its arch; Error says which
)

// UpgradeFinal reports whether a device state ends its part in a rollout.
func UpgradeFinal(state string) bool {
	switch state {
	case protocol.UpgradeHealthy, protocol.UpgradeRolledBack, protocol.UpgradeRefused, protocol.UpgradeFailed,
		UpgradeCancelled, UpgradeCurrent, UpgradeCannot:
		return true
	}
	return false
}

// UpgradeFailure reports whether a device state counts against a rollout's failure share.
func UpgradeFailure(state string) bool {
	return state == protocol.UpgradeRolledBack || state == protocol.UpgradeRefused || state == protocol.UpgradeFailed
}

// Rollout is a staged rollout of one agent version to an area's devices.
type Rollout struct {
	ID                string
	Area              string
	Version           string
	CanaryPercent     int
	Window            string // protocol.Window's form; "" is any time
	HealthyFor        time.Duration
	HealthyWithinS    int
	MaxFailurePercent int
	Stage             string
	Reason            string // why it stopped
	CreatedBy         string
	CreatedAt         time.Time
	StageAt           time.Time // when it entered its stage
}

// RolloutDevice is one device of a rollout.
type RolloutDevice struct {
	Rollout   string
	Device    string
	Stage     string // DeviceCanary, DeviceRest, DeviceNone
	Arch      string
	From      string // the version it ran when the rollout began ("" if unknown)
	State     string
	Error     string
	Since     time.Time // when it entered State
	HealthyAt time.Time // when it reported healthy (zero otherwise)
}

// running is the condition of a rollout still sending upgrades.
const running = "stage IN ('" + RolloutCanary + "', '" + RolloutRest + "')"

// AddRollout stores a rollout and its devices. A rollout still running on an area that
// overlaps r.Area (the same, above or below) is ErrExists naming it.
func (db *DB) AddRollout(ctx context.Context, r Rollout, devs []RolloutDevice) (Rollout, error) {
	if err := ValidateAreaID(r.Area); err != nil {
		return Rollout{}, err
	}
	now := db.now()
	r.CreatedAt, r.StageAt, r.Stage = now, now, RolloutCanary
	err := db.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT id, area_id, version, stage FROM rollouts WHERE "+running)
		if err != nil {
			return fmt.Errorf("read running rollouts: %w", err)
		}
		var clash error
		for rows.Next() {
			var id, area, version, stage string
			if err := rows.Scan(&id, &area, &version, &stage); err != nil {
				rows.Close()
				return err
			}
			if clash == nil && (Allowed(area, r.Area) || Allowed(r.Area, area)) {
				clash = fmt.Errorf("%w: rollout %s of version %s to %s is still running (stage %s): one rollout per area at a time; wait for it or stop it with `loa upgrade stop %s --reason …`",
					ErrExists, id, version, area, stage, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if clash != nil {
			return clash
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollouts(id, area_id, version, canary_percent, install_window, healthy_for_ns,
			healthy_within_s, max_failure_percent, stage, reason, created_by, created_at, stage_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`,
			r.ID, r.Area, r.Version, r.CanaryPercent, r.Window, int64(r.HealthyFor), r.HealthyWithinS, r.MaxFailurePercent,
			r.Stage, r.CreatedBy, ts(now), ts(now)); err != nil {
			return fmt.Errorf("store rollout %s: %w", r.ID, err)
		}
		for _, d := range devs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rollout_devices(rollout_id, device_id, stage, arch, from_version, state, error, since)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, d.Device, d.Stage, d.Arch, d.From, d.State, d.Error, ts(now)); err != nil {
				return fmt.Errorf("store rollout %s device %s: %w", r.ID, d.Device, err)
			}
		}
		return nil
	})
	if err != nil {
		return Rollout{}, err
	}
	return r, nil
}

const rolloutCols = `id, area_id, version, canary_percent, install_window, healthy_for_ns, healthy_within_s,
	max_failure_percent, stage, reason, created_by, created_at, stage_at`

func scanRollout(s interface{ Scan(...any) error }) (Rollout, error) {
	var r Rollout
	var hf int64
	var created, stageAt sql.NullInt64
	err := s.Scan(&r.ID, &r.Area, &r.Version, &r.CanaryPercent, &r.Window, &hf, &r.HealthyWithinS, &r.MaxFailurePercent,
		&r.Stage, &r.Reason, &r.CreatedBy, &created, &stageAt)
	r.HealthyFor, r.CreatedAt, r.StageAt = time.Duration(hf), fromTS(created), fromTS(stageAt)
	return r, err
}

// GetRollout returns one rollout.
func (db *DB) GetRollout(ctx context.Context, id string) (Rollout, error) {
	r, err := scanRollout(db.r.QueryRowContext(ctx, "SELECT "+rolloutCols+" FROM rollouts WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Rollout{}, fmt.Errorf("%w: no rollout %s (`loa upgrade status` lists them)", ErrNotFound, id)
	}
	if err != nil {
		return Rollout{}, fmt.Errorf("read rollout %s: %w", id, err)
	}
	return r, nil
}

// ListRollouts returns the rollouts to area and the areas below it ("" = all), newest first.
func (db *DB) ListRollouts(ctx context.Context, area string) ([]Rollout, error) {
	cond, args := subtree("area_id", area)
	return db.rollouts(ctx, cond+" ORDER BY created_at DESC, id", args...)
}

// OpenRollouts returns the rollouts the engine still has work in: running ones, and stopped
// ones with devices sent an upgrade that have not been told to cancel it.
func (db *DB) OpenRollouts(ctx context.Context) ([]Rollout, error) {
	return db.rollouts(ctx, running+` OR (stage = ? AND EXISTS (SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = rollouts.id
		AND rd.state IN (?, ?, ?))) ORDER BY created_at, id`, RolloutStopped, UpgradeSent, protocol.UpgradeDownloading, protocol.UpgradeWaiting)
}

func (db *DB) rollouts(ctx context.Context, where string, args ...any) ([]Rollout, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+rolloutCols+" FROM rollouts WHERE "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	defer rows.Close()
	var out []Rollout
	for rows.Next() {
		r, err := scanRollout(rows)
		if err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const rolloutDeviceCols = "rollout_id, device_id, stage, arch, from_version, state, error, since, healthy_at"

func scanRolloutDevice(s interface{ Scan(...any) error }, extra ...any) (RolloutDevice, error) {
	var d RolloutDevice
	var since, healthy sql.NullInt64
	err := s.Scan(append([]any{&d.Rollout, &d.Device, &d.Stage, &d.Arch, &d.From, &d.State, &d.Error, &since, &healthy}, extra...)...)
	d.Since, d.HealthyAt = fromTS(since), fromTS(healthy)
	return d, err
}

// RolloutDevices returns a rollout's devices, by id.
func (db *DB) RolloutDevices(ctx context.Context, id string) ([]RolloutDevice, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+rolloutDeviceCols+" FROM rollout_devices WHERE rollout_id = ? ORDER BY device_id", id)
	if err != nil {
		return nil, fmt.Errorf("read the devices of rollout %s: %w", id, err)
	}
	defer rows.Close()
	var out []RolloutDevice
	for rows.Next() {
		d, err := scanRolloutDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("read the devices of rollout %s: %w", id, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeviceUpgrade is where a device is in the newest rollout that named it.
type DeviceUpgrade struct {
	RolloutDevice
	Version   string // the rollout's version
	Rollbacks int    // rollouts, all told, in which it rolled back
}

// LatestUpgrade returns the device's part in its newest rollout; ErrNotFound when no rollout
// named it.
func (db *DB) LatestUpgrade(ctx context.Context, device string) (DeviceUpgrade, error) {
	var u DeviceUpgrade
	var err error
	u.RolloutDevice, err = scanRolloutDevice(db.r.QueryRowContext(ctx, "SELECT "+qualified("rd", rolloutDeviceCols)+`, r.version
		FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id WHERE rd.device_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT 1`, device), &u.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("%w: no rollout named device %s", ErrNotFound, device)
	}
	if err != nil {
		return u, fmt.Errorf("read the upgrade of device %s: %w", device, err)
	}
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM rollout_devices WHERE device_id = ? AND state = ?",
		device, protocol.UpgradeRolledBack).Scan(&u.Rollbacks); err != nil {
		return u, fmt.Errorf("count the rollbacks of device %s: %w", device, err)
	}
	return u, nil
}

// AdvanceRollout moves a rollout from stage from to stage to (with reason, for a stop). It
// reports false when the rollout was no longer in from: another hub (or a staff stop) moved it
// first, so each move happens once whichever replica sees it.
func (db *DB) AdvanceRollout(ctx context.Context, id, from, to, reason string) (bool, error) {
	if err := checkText("rollout "+id+" reason", reason, false, 1024); err != nil {
		return false, err
	}
	moved := false
	err := db.writeOne(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE rollouts SET stage = ?, reason = ?, stage_at = ? WHERE id = ? AND stage = ?",
			to, reason, ts(db.now()), id, from)
		if err != nil {
			return fmt.Errorf("move rollout %s to %s: %w", id, to, err)
		}
		n, _ := res.RowsAffected()
		moved = n == 1
		return nil
	})
	return moved, err
}

// SetRolloutDevice sets a device's state in a rollout if it is now one of from; it reports
// whether it did.
func (db *DB) SetRolloutDevice(ctx context.Context, rollout, device string, from []string, state, errText string) (bool, error) {
	if len(from) == 0 {
		return false, fmt.Errorf("%w: no states to move device %s from", ErrInvalid, device)
	}
	args := []any{state, errText, ts(db.now()), rollout, device}
	for _, f := range from {
		args = append(args, f)
	}
	set := false
	err := db.writeOne(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE rollout_devices SET state = ?, error = ?, since = ? WHERE rollout_id = ? AND device_id = ? AND state IN (?"+
			strings.Repeat(", ?", len(from)-1)+")", args...)
		if err != nil {
			return fmt.Errorf("set device %s in rollout %s to %s: %w", device, rollout, state, err)
		}
		n, _ := res.RowsAffected()
		set = n == 1
		return nil
	})
	return set, err
}

// ReportUpgrade stores what a device's status says of its upgrade; it reports whether the
// device's state in that rollout changed (false for a rollout that did not name it). A
// cancelled upgrade stays cancelled while the status still says downloading or waiting (a
// status repeats the last state until the agent acts on the cancel).
func (db *DB) ReportUpgrade(ctx context.Context, device string, u protocol.UpgradeStatus) (bool, error) {
	if err := checkText("device "+device+" upgrade state", u.State, true, 32); err != nil {
		return false, err
	}
	if err := checkText("device "+device+" upgrade error", u.Error, false, 1024); err != nil {
		return false, err
	}
	now := db.now()
	since := u.Since
	if since.IsZero() || since.After(now) {
		since = now // the device's clock may be wrong; never in the future
	}
	changed := false
	err := db.writeOne(ctx, func(tx *sql.Tx) error {
		// healthy_at is the hub's time it first heard healthy: the canary's healthy_for is
		// counted on the hub's clock, whatever the device's says.
		res, err := tx.ExecContext(ctx, `UPDATE rollout_devices SET state = ?, error = ?, since = ?,
			healthy_at = CASE WHEN ? = 'healthy' THEN COALESCE(healthy_at, ?) ELSE NULL END
			WHERE rollout_id = ? AND device_id = ? AND (state <> ? OR error <> ?)
			AND NOT (state = ? AND ? IN (?, ?))`,
			u.State, u.Error, ts(since), u.State, ts(now), u.Rollout, device, u.State, u.Error,
			UpgradeCancelled, u.State, protocol.UpgradeDownloading, protocol.UpgradeWaiting)
		if err != nil {
			return fmt.Errorf("record the upgrade state of device %s in rollout %s: %w", device, u.Rollout, err)
		}
		n, _ := res.RowsAffected()
		changed = n == 1
		return nil
	})
	return changed, err
}
