package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Commands are the hub's signed orders to devices (play_now, stop, volume, reload). A command
// is signed once per part of at most a few dozen devices, stored with the exact payload bytes
// and signatures, sent to connected devices at once and to the others when they connect while
// it has not expired, and each device's outcome is kept beside it.

// CommandState is how far a command got on one device.
type CommandState string

// Command states per device. Expiry is not a state: a command still pending or sent when it
// expires is reported as such with its expiry beside it (see CommandDevice.Final).
const (
	CommandPending  CommandState = "pending"  // not written to the device yet (it is offline)
	CommandSent     CommandState = "sent"     // written to its connection; no answer yet
	CommandExecuted CommandState = "executed" // the device carried it out
	CommandFailed   CommandState = "failed"   // accepted but could not be carried out: Reason
	CommandRefused  CommandState = "refused"  // refused: Code and Reason
	// CommandReceived: the device answered a resend with "replayed": it had received the
	// command on an earlier connection, whose report was lost with that connection.
	CommandReceived CommandState = "received"
)

// Final reports whether the device has answered for good: the command is not resent.
func (s CommandState) Final() bool {
	return s == CommandExecuted || s == CommandFailed || s == CommandRefused || s == CommandReceived
}

// Command is one signed command and, when read back, the outcome on each device.
type Command struct {
	ID     string   // unique; the agent refuses an id it has seen
	Seq    int64    // strictly increasing over every command the hub signs
	KeyID  string   // the key its parts are signed with
	Target Target   // what staff named: an area or a device (the first, when several)
	Also   []Target // the further areas and devices named in the same command
	Area   string   // the target area, the target device's area, or the area holding all targets (for scope)
	Action string   // play_now, stop, volume, reload
	Output string   // empty: every output
	Volume *float64
	// play_now: one of Content (sha256:…) or Stream, with its class and title.
	Content, Stream, Class, Title string
	IssuedBy                      string
	IssuedAt, ExpiresAt           time.Time

	// Parts are the signed payloads, each for some of the devices (AddCommand only).
	Parts []CommandPart
	// Devices are the devices it is for; read back, with their outcomes.
	Devices []CommandDevice
}

// CommandPart is one signed payload of a command.
type CommandPart struct {
	Payload   []byte
	Signature []byte
}

// CommandDevice is a command's outcome on one device.
type CommandDevice struct {
	DeviceID   string
	Area       string // the device's area when the command was issued
	Part       int    // index in Command.Parts of the payload naming it
	State      CommandState
	Code       string // refusal code (protocol: expired, replayed, …)
	Reason     string
	Sends      int       // times written to a connection
	SentAt     time.Time // the last write
	ReportedAt time.Time // when the device's answer arrived
}

// PendingCommand is a command a device has not answered, ready to be written to it.
type PendingCommand struct {
	ID        string
	Seq       int64
	KeyID     string
	ExpiresAt time.Time
	Payload   []byte
	Signature []byte
}

// CommandSend names one (command, device) written to a connection.
type CommandSend struct{ CommandID, DeviceID string }

// CommandFilter selects commands for ListCommands.
type CommandFilter struct {
	Area   string // commands reaching devices in this area or below ("" = all); their devices are cut to it
	Device string // commands for this device
	Limit  int    // newest first; 0: no limit
}

const commandCols = `id, seq, key_id, target, area_id, action, output, volume, content, stream, class, title,
	issued_by, issued_at, expires_at`

func (c *Command) check() error {
	var errs []string
	for what, v := range map[string]string{"id": c.ID, "key id": c.KeyID, "action": c.Action, "issued by": c.IssuedBy} {
		if err := checkText("command "+what, v, true, 300); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for what, v := range map[string]string{"output": c.Output, "content": c.Content, "stream": c.Stream, "class": c.Class, "title": c.Title} {
		if err := checkText("command "+what, v, false, 4096); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.Seq <= 0 {
		errs = append(errs, fmt.Sprintf("seq %d: sequences start at 1", c.Seq))
	}
	for _, t := range c.Targets() {
		if err := t.check(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := ValidateAreaID(c.Area); err != nil {
		errs = append(errs, err.Error())
	}
	if c.Volume != nil && (math.IsNaN(*c.Volume) || *c.Volume < 0 || *c.Volume > 1) {
		errs = append(errs, fmt.Sprintf("volume %g is outside 0..1", *c.Volume))
	}
	if c.IssuedAt.IsZero() || !c.ExpiresAt.After(c.IssuedAt) {
		errs = append(errs, "issued_at is required and expires_at must be after it")
	}
	if len(c.Parts) == 0 || len(c.Devices) == 0 {
		errs = append(errs, "a command needs at least one signed part and one device")
	}
	for i, p := range c.Parts {
		if len(p.Payload) == 0 || len(p.Payload) > 1<<20 || len(p.Signature) == 0 {
			errs = append(errs, fmt.Sprintf("part %d: payload of 1 byte to 1 MiB and a signature are required", i))
			break
		}
	}
	for _, d := range c.Devices {
		if d.Part < 0 || d.Part >= len(c.Parts) {
			errs = append(errs, fmt.Sprintf("device %q names part %d of %d", d.DeviceID, d.Part, len(c.Parts)))
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: command %q: %s", ErrInvalid, c.ID, strings.Join(errs, "; "))
	}
	return nil
}

// AddCommand stores a command, its signed parts and its devices (all pending) in one
// transaction. Its Seq must be above every stored one (ErrStaleRevision otherwise) and its ID
// new (ErrExists); every device must be enrolled. A restarted hub reads LastCommandSeq, so
// it never signs a sequence twice.
func (db *DB) AddCommand(ctx context.Context, c Command) error {
	if err := c.check(); err != nil {
		return err
	}
	var vol any
	if c.Volume != nil {
		vol = *c.Volume
	}
	return db.writeWeighted(ctx, len(c.Devices), func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM commands").Scan(&last); err != nil {
			return fmt.Errorf("command %s: read the last sequence: %w", c.ID, err)
		}
		if c.Seq <= last {
			return fmt.Errorf("%w: command %s has sequence %d, not above the last stored %d", ErrStaleRevision, c.ID, c.Seq, last)
		}
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM commands WHERE id = ?", c.ID).Scan(&one)
		if err == nil {
			return fmt.Errorf("%w: command id %s", ErrExists, c.ID)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("command %s: %w", c.ID, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO commands("+commandCols+`, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Seq, c.KeyID, c.targetText(), c.Area, c.Action, c.Output, vol, c.Content, c.Stream, c.Class,
			c.Title, c.IssuedBy, ts(c.IssuedAt), ts(c.ExpiresAt), ts(db.now())); err != nil {
			return fmt.Errorf("store command %s: %w", c.ID, err)
		}
		for i, p := range c.Parts {
			if _, err := tx.ExecContext(ctx, "INSERT INTO command_payloads(command_id, part, payload, signature) VALUES (?, ?, ?, ?)",
				c.ID, i, p.Payload, p.Signature); err != nil {
				return fmt.Errorf("store command %s part %d: %w", c.ID, i, err)
			}
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO command_devices(command_id, device_id, area_id, part, state)
			SELECT ?, id, area_id, ?, 'pending' FROM devices WHERE id = ?`)
		if err != nil {
			return fmt.Errorf("store command %s devices: %w", c.ID, err)
		}
		defer st.Close()
		for _, d := range c.Devices {
			res, err := st.ExecContext(ctx, c.ID, d.Part, d.DeviceID)
			if err != nil {
				return fmt.Errorf("store command %s for device %q: %w", c.ID, d.DeviceID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("%w: command %s: device %q is not enrolled", ErrNotFound, c.ID, d.DeviceID)
			}
		}
		return nil
	})
}

// LastCommandSeq is the highest command sequence stored (0: none yet).
func (db *DB) LastCommandSeq(ctx context.Context) (int64, error) {
	var last int64
	if err := db.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM commands").Scan(&last); err != nil {
		return 0, fmt.Errorf("read the last command sequence: %w", err)
	}
	return last, nil
}

// PendingCommands returns the commands device has not answered and that expire after now, in
// sequence order: the order the device must receive them in, or it refuses the older ones as
// replayed.
func (db *DB) PendingCommands(ctx context.Context, deviceID string, now time.Time) ([]PendingCommand, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT c.id, c.seq, c.key_id, c.expires_at, p.payload, p.signature
		FROM command_devices d
		JOIN commands c ON c.id = d.command_id
		JOIN command_payloads p ON p.command_id = d.command_id AND p.part = d.part
		WHERE d.device_id = ? AND d.reported_at IS NULL AND c.expires_at > ?
		ORDER BY c.seq`, deviceID, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("pending commands of device %q: %w", deviceID, err)
	}
	defer rows.Close()
	var out []PendingCommand
	for rows.Next() {
		var p PendingCommand
		var exp sql.NullInt64
		if err := rows.Scan(&p.ID, &p.Seq, &p.KeyID, &exp, &p.Payload, &p.Signature); err != nil {
			return nil, fmt.Errorf("pending commands of device %q: %w", deviceID, err)
		}
		p.ExpiresAt = fromTS(exp)
		out = append(out, p)
	}
	return out, rows.Err()
}

// MarkCommandsSent records that each (command, device) was written to the device's
// connection, in one write.
func (db *DB) MarkCommandsSent(ctx context.Context, sends []CommandSend) error {
	if len(sends) == 0 {
		return nil
	}
	now := ts(db.now())
	return db.writeWeighted(ctx, len(sends), func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE command_devices SET sent_at = ?, sends = sends + 1,
			state = CASE WHEN state = 'pending' THEN 'sent' ELSE state END
			WHERE command_id = ? AND device_id = ?`)
		if err != nil {
			return fmt.Errorf("mark commands sent: %w", err)
		}
		defer st.Close()
		for _, s := range sends {
			if _, err := st.ExecContext(ctx, now, s.CommandID, s.DeviceID); err != nil {
				return fmt.Errorf("mark command %s sent to %q: %w", s.CommandID, s.DeviceID, err)
			}
		}
		return nil
	})
}

// CommandDeviceState returns one device's outcome of a command.
func (db *DB) CommandDeviceState(ctx context.Context, commandID, deviceID string) (CommandDevice, error) {
	d, err := scanCommandDevice(db.r.QueryRowContext(ctx, "SELECT "+commandDeviceCols+
		" FROM command_devices WHERE command_id = ? AND device_id = ?", commandID, deviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return CommandDevice{}, fmt.Errorf("%w: command %s is not for device %q", ErrNotFound, commandID, deviceID)
	}
	if err != nil {
		return CommandDevice{}, fmt.Errorf("command %s on device %q: %w", commandID, deviceID, err)
	}
	return d, nil
}

// ReportCommand records the device's answer to a command: a final state with its code and
// reason. The first answer stands; a later one is refused with ErrExists, and a command not
// for that device with ErrNotFound.
func (db *DB) ReportCommand(ctx context.Context, commandID, deviceID string, state CommandState, code, reason string) error {
	if !state.Final() {
		return fmt.Errorf("%w: %q is not an answer to a command (executed, failed, refused or received)", ErrInvalid, state)
	}
	if err := checkText("command report code", code, false, 300); err != nil {
		return err
	}
	if len(reason) > maxText {
		reason = strings.ToValidUTF8(reason[:maxText], "") // a cut may split a character
	}
	if err := checkText("command report reason", reason, false, maxText); err != nil {
		return err
	}
	now := ts(db.now())
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE command_devices SET state = ?, code = ?, reason = ?, reported_at = ?
			WHERE command_id = ? AND device_id = ? AND reported_at IS NULL`, string(state), code, reason, now, commandID, deviceID)
		if err != nil {
			return fmt.Errorf("record the answer of device %q to command %s: %w", deviceID, commandID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var prev string
		err = tx.QueryRowContext(ctx, "SELECT state FROM command_devices WHERE command_id = ? AND device_id = ?", commandID, deviceID).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: command %s is not for device %q", ErrNotFound, commandID, deviceID)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: device %q already answered command %s (%s)", ErrExists, deviceID, commandID, prev)
	})
}

const commandDeviceCols = "device_id, area_id, part, state, code, reason, sends, sent_at, reported_at"

func scanCommandDevice(s interface{ Scan(...any) error }) (CommandDevice, error) {
	var d CommandDevice
	var state string
	var sent, reported sql.NullInt64
	if err := s.Scan(&d.DeviceID, &d.Area, &d.Part, &state, &d.Code, &d.Reason, &d.Sends, &sent, &reported); err != nil {
		return d, err
	}
	d.State, d.SentAt, d.ReportedAt = CommandState(state), fromTS(sent), fromTS(reported)
	return d, nil
}

// Targets are every target of the command, the first one first.
func (c Command) Targets() []Target { return append([]Target{c.Target}, c.Also...) }

// targetText is the stored form: the targets separated by spaces (ids have none).
func (c Command) targetText() string {
	var parts []string
	for _, t := range c.Targets() {
		parts = append(parts, t.String())
	}
	return strings.Join(parts, " ")
}

func scanCommand(s interface{ Scan(...any) error }) (Command, error) {
	var c Command
	var target string
	var vol sql.NullFloat64
	var issued, expires sql.NullInt64
	if err := s.Scan(&c.ID, &c.Seq, &c.KeyID, &target, &c.Area, &c.Action, &c.Output, &vol, &c.Content, &c.Stream,
		&c.Class, &c.Title, &c.IssuedBy, &issued, &expires); err != nil {
		return c, err
	}
	for i, f := range strings.Fields(target) {
		kind, id, _ := strings.Cut(f, ":")
		if i == 0 {
			c.Target = Target{Kind: TargetKind(kind), ID: id}
		} else {
			c.Also = append(c.Also, Target{Kind: TargetKind(kind), ID: id})
		}
	}
	if vol.Valid {
		v := vol.Float64
		c.Volume = &v
	}
	c.IssuedAt, c.ExpiresAt = fromTS(issued), fromTS(expires)
	return c, nil
}

// GetCommand returns a command with its outcome on each of its devices in area and below
// ("" = all), by device id. A command reaching no device there is ErrNotFound, as is an
// unknown id.
func (db *DB) GetCommand(ctx context.Context, id, area string) (Command, error) {
	var c Command
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCommand(tx.QueryRowContext(ctx, "SELECT "+commandCols+" FROM commands WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no command %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("command %s: %w", id, err)
		}
		c.Devices, err = commandDevices(ctx, tx, id, area)
		if err == nil && len(c.Devices) == 0 {
			return fmt.Errorf("%w: no command %s for devices in %s", ErrNotFound, id, area)
		}
		return err
	})
	return c, err
}

func commandDevices(ctx context.Context, q queryer, id, area string) ([]CommandDevice, error) {
	cond, args := subtree("area_id", area)
	rows, err := q.QueryContext(ctx, "SELECT "+commandDeviceCols+" FROM command_devices WHERE command_id = ? AND "+cond+
		" ORDER BY device_id", append([]any{id}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("devices of command %s: %w", id, err)
	}
	defer rows.Close()
	var out []CommandDevice
	for rows.Next() {
		d, err := scanCommandDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("devices of command %s: %w", id, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ListCommands returns the commands matching f, newest first, each with its devices in
// f.Area (and f.Device only, when set).
func (db *DB) ListCommands(ctx context.Context, f CommandFilter) ([]Command, error) {
	var out []Command
	err := db.read(ctx, func(tx *sql.Tx) error {
		// A command whose target is in the area reaches only devices there; one from above
		// reaches the area if one of its devices is in it.
		acond, aargs := subtree("c.area_id", f.Area)
		dcond, dargs := subtree("d.area_id", f.Area)
		conds := []string{"(" + acond + " OR EXISTS (SELECT 1 FROM command_devices d WHERE d.command_id = c.id AND " + dcond + "))"}
		args := append(aargs, dargs...)
		if f.Device != "" {
			conds = append(conds, "EXISTS (SELECT 1 FROM command_devices d WHERE d.command_id = c.id AND d.device_id = ?)")
			args = append(args, f.Device)
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+strings.ReplaceAll("c."+commandCols, ", ", ", c.")+
			" FROM commands c WHERE "+strings.Join(conds, " AND ")+" ORDER BY c.seq DESC"+limitClause(f.Limit), args...)
		if err != nil {
			return fmt.Errorf("list commands: %w", err)
		}
		for rows.Next() {
			c, err := scanCommand(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("list commands: %w", err)
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list commands: %w", err)
		}
		for i := range out {
			ds, err := commandDevices(ctx, tx, out[i].ID, f.Area)
			if err != nil {
				return err
			}
			if f.Device != "" {
				kept := ds[:0]
				for _, d := range ds {
					if d.DeviceID == f.Device {
						kept = append(kept, d)
					}
				}
				ds = kept
			}
			out[i].Devices = ds
		}
		return nil
	})
	return out, err
}
