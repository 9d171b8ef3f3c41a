package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migration is one step of the schema. Steps are append-only: a released step is never
// edited, a change is a new step. Each runs with the others in one transaction at Open.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is a function, not a variable, so nothing can change the list at run time.
// These are SQLite's steps; PostgreSQL's are pgMigrations.
func migrations() []migration {
	return []migration{
		{1, "initial schema", `
CREATE TABLE areas (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	parent_id  TEXT REFERENCES areas(id),
	depth      INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX areas_parent ON areas(parent_id, id);

CREATE TABLE devices (
	id                TEXT PRIMARY KEY,
	name              TEXT NOT NULL,
	area_id           TEXT NOT NULL REFERENCES areas(id),
	kind              TEXT NOT NULL,
	outputs           TEXT NOT NULL,            -- JSON array of output names
	secret_hash       BLOB NOT NULL CHECK (length(secret_hash) = 32),
	enrolled_at       INTEGER NOT NULL,
	revoked_at        INTEGER,
	last_seen         INTEGER,
	acked_seq         INTEGER NOT NULL DEFAULT 0, -- highest contiguous confirmation seq stored
	status_at         INTEGER,
	now_playing       TEXT NOT NULL DEFAULT '',
	volume            REAL NOT NULL DEFAULT 0,
	clock_offset_ns   INTEGER NOT NULL DEFAULT 0,
	disk_free_bytes   INTEGER NOT NULL DEFAULT 0,
	disk_total_bytes  INTEGER NOT NULL DEFAULT 0,
	temperature_c     REAL,
	uptime_ns         INTEGER NOT NULL DEFAULT 0,
	link              TEXT NOT NULL DEFAULT '',
	software_version  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_area ON devices(area_id, id);

CREATE TABLE taxonomy (
	dimension TEXT NOT NULL,
	value     TEXT NOT NULL,
	label     TEXT NOT NULL,
	PRIMARY KEY (dimension, value)
) WITHOUT ROWID;

CREATE TABLE content (
	ref            TEXT PRIMARY KEY,             -- sha256:<64 lowercase hex>
	size           INTEGER NOT NULL,
	duration_ns    INTEGER NOT NULL,
	mime           TEXT NOT NULL,
	title          TEXT NOT NULL,
	theme          TEXT NOT NULL,
	language       TEXT NOT NULL,
	format         TEXT NOT NULL,
	producing_unit TEXT NOT NULL,
	uploaded_by    TEXT NOT NULL,
	uploaded_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX content_uploaded ON content(uploaded_at);

-- A schedule targets an area or a device: two nullable foreign keys, exactly one set.
CREATE TABLE schedules (
	area_id     TEXT REFERENCES areas(id),
	device_id   TEXT REFERENCES devices(id),
	revision    INTEGER NOT NULL CHECK (revision > 0),
	schedule_id TEXT NOT NULL,
	document    BLOB NOT NULL,
	author      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	CHECK ((area_id IS NULL) <> (device_id IS NULL))
);
CREATE UNIQUE INDEX schedules_area_rev ON schedules(area_id, revision) WHERE area_id IS NOT NULL;
CREATE UNIQUE INDEX schedules_device_rev ON schedules(device_id, revision) WHERE device_id IS NOT NULL;

CREATE TABLE effective (
	device_id        TEXT NOT NULL REFERENCES devices(id),
	revision         INTEGER NOT NULL CHECK (revision > 0),
	document         BLOB NOT NULL,
	signature        BLOB,
	sources          TEXT NOT NULL,             -- JSON: the schedule revisions composed
	created_at       INTEGER NOT NULL,
	sent_at          INTEGER,
	received_at      INTEGER,
	content_ready_at INTEGER,
	active_at        INTEGER,
	refused_at       INTEGER,
	refused_reason   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device_id, revision)
) WITHOUT ROWID;

CREATE TABLE confirmations (
	device_id      TEXT NOT NULL REFERENCES devices(id),
	seq            INTEGER NOT NULL CHECK (seq > 0),
	area_id        TEXT NOT NULL,              -- the device's area when it was stored
	at             INTEGER,                    -- start, or scheduled time when nothing started
	output         TEXT NOT NULL,
	schedule_id    TEXT NOT NULL,
	revision       INTEGER NOT NULL,
	program        TEXT NOT NULL,
	item_index     INTEGER NOT NULL,
	item_ref       TEXT NOT NULL,
	scheduled_at   INTEGER,
	started_at     INTEGER,
	ended_at       INTEGER,
	played_s       REAL NOT NULL,
	peak_dbfs      REAL,
	rms_dbfs       REAL,
	silence_s      REAL NOT NULL,
	gaps           INTEGER NOT NULL,
	underruns      INTEGER NOT NULL,
	result         TEXT NOT NULL,
	error          TEXT NOT NULL,
	clock_state    TEXT NOT NULL,
	received_at    INTEGER NOT NULL,
	PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE INDEX confirmations_at ON confirmations(at);
CREATE INDEX confirmations_area_at ON confirmations(area_id, at);

CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	scope_area TEXT NOT NULL REFERENCES areas(id),
	created_at INTEGER NOT NULL,
	disabled_at INTEGER
) WITHOUT ROWID;

CREATE TABLE tokens (
	hash       BLOB PRIMARY KEY CHECK (length(hash) = 32),
	user_id    TEXT NOT NULL REFERENCES users(id),
	label      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE audit (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	at     INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
	BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
	BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`},
		{2, "emergencies", `
-- Emergencies, priority bulletins and live relays the hub adds to the effective schedules of an
-- area's devices while active (see emergencies.go). Rows are only ever ended, never edited.
CREATE TABLE emergencies (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	series      TEXT NOT NULL,
	kind        TEXT NOT NULL,
	area_id     TEXT NOT NULL REFERENCES areas(id),
	class       TEXT NOT NULL,
	title       TEXT NOT NULL,
	text        TEXT NOT NULL,
	items       TEXT NOT NULL,               -- JSON: the programme's items
	issued_at   INTEGER NOT NULL,
	start_at    INTEGER NOT NULL,
	every_ns    INTEGER NOT NULL,
	until_at    INTEGER NOT NULL,
	volume      REAL NOT NULL,
	source      TEXT NOT NULL,               -- cli, or cap:<sender,identifier>
	created_by  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	ended_at    INTEGER,
	end_reason  TEXT NOT NULL DEFAULT '',
	ended_by    TEXT NOT NULL DEFAULT '',
	replaced_by INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX emergencies_series ON emergencies(series) WHERE ended_at IS NULL;
CREATE INDEX emergencies_active ON emergencies(until_at) WHERE ended_at IS NULL;
CREATE INDEX emergencies_area ON emergencies(area_id, id);
CREATE INDEX emergencies_source ON emergencies(source);
`},
		{3, "effective documents apart", `
-- The signed bytes (about 1 kB and up) move out of the effective table, whose rows become small:
-- a WITHOUT ROWID row that large spills into overflow pages, so every delivery mark rewrote the
-- document and every read of the sources walked it. Documents are written once, appended in
-- rowid order, and read by key.
CREATE TABLE effective_documents (
	device_id TEXT NOT NULL,
	revision  INTEGER NOT NULL,
	document  BLOB NOT NULL,
	signature BLOB
);
INSERT INTO effective_documents(device_id, revision, document, signature)
	SELECT device_id, revision, document, signature FROM effective ORDER BY device_id, revision;
CREATE UNIQUE INDEX effective_documents_key ON effective_documents(device_id, revision);
CREATE TABLE effective_new (
	device_id        TEXT NOT NULL REFERENCES devices(id),
	revision         INTEGER NOT NULL CHECK (revision > 0),
	sources          TEXT NOT NULL,             -- JSON: the schedule revisions composed
	created_at       INTEGER NOT NULL,
	sent_at          INTEGER,
	received_at      INTEGER,
	content_ready_at INTEGER,
	active_at        INTEGER,
	refused_at       INTEGER,
	refused_reason   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device_id, revision)
) WITHOUT ROWID;
INSERT INTO effective_new SELECT device_id, revision, sources, created_at, sent_at, received_at,
	content_ready_at, active_at, refused_at, refused_reason FROM effective;
DROP TABLE effective;
ALTER TABLE effective_new RENAME TO effective;
`},
		{4, "commands", `
-- Signed commands (play_now, stop, volume, reload; see commands.go). seq increases strictly
-- over every command: the agents refuse a seq not above the highest they accepted, so a
-- restarted hub must never reuse one. A command is signed in parts of a few dozen devices.
CREATE TABLE commands (
	id          TEXT PRIMARY KEY,
	seq         INTEGER NOT NULL UNIQUE CHECK (seq > 0),
	key_id      TEXT NOT NULL,
	target      TEXT NOT NULL,               -- area:<id> or device:<id>, as staff named it
	area_id     TEXT NOT NULL,               -- the target's area, for scope
	action      TEXT NOT NULL,
	output      TEXT NOT NULL,
	volume      REAL,
	content     TEXT NOT NULL,
	stream      TEXT NOT NULL,
	class       TEXT NOT NULL,
	title       TEXT NOT NULL,
	issued_by   TEXT NOT NULL,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE command_payloads (
	command_id TEXT NOT NULL REFERENCES commands(id),
	part       INTEGER NOT NULL,
	payload    BLOB NOT NULL,                -- the exact signed bytes
	signature  BLOB NOT NULL,
	PRIMARY KEY (command_id, part)
);
CREATE TABLE command_devices (
	command_id  TEXT NOT NULL REFERENCES commands(id),
	device_id   TEXT NOT NULL REFERENCES devices(id),
	area_id     TEXT NOT NULL,               -- the device's area when issued
	part        INTEGER NOT NULL,
	state       TEXT NOT NULL,               -- pending, sent, executed, failed, refused, received
	code        TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	sends       INTEGER NOT NULL DEFAULT 0,
	sent_at     INTEGER,
	reported_at INTEGER,
	PRIMARY KEY (command_id, device_id)
) WITHOUT ROWID;
-- What a connecting device has not answered yet.
CREATE INDEX command_devices_open ON command_devices(device_id) WHERE reported_at IS NULL;
-- The gain a play was given (programme volume x device volume), as the agent reports it.
ALTER TABLE confirmations ADD COLUMN volume REAL;
`},
		{5, "confirmation proof details", `
-- What the agent knew of the amplifier relay when the play began ("on", or what is wrong).
ALTER TABLE confirmations ADD COLUMN amplifier TEXT NOT NULL DEFAULT '';
-- Relayed streams: connections lost after audio came, connections that brought it back, and
-- the seconds of the item's window with nothing heard.
ALTER TABLE confirmations ADD COLUMN dropouts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE confirmations ADD COLUMN reconnects INTEGER NOT NULL DEFAULT 0;
ALTER TABLE confirmations ADD COLUMN missing_s REAL NOT NULL DEFAULT 0;
-- Screens: video frames dropped while the item was shown.
ALTER TABLE confirmations ADD COLUMN frames_dropped INTEGER NOT NULL DEFAULT 0;
`},
		{6, "journal restarts", `
-- The journal a device last said it writes, and how far its seqs are shifted: a device whose
-- journal restarted at 1 (damaged file set aside, SD card replaced) continues after what the
-- hub holds (SeeJournal).
ALTER TABLE devices ADD COLUMN journal_id TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN seq_offset INTEGER NOT NULL DEFAULT 0;
`},
		{7, "confirmation start position", `
-- How far into the item a play began: non-zero when the agent joined it mid-way (a programme
-- resumed after a higher one, or continued where its timeline was after a crash).
ALTER TABLE confirmations ADD COLUMN from_s REAL NOT NULL DEFAULT 0;
`},
		{8, "device parts", `
-- The amplifier relay, LED sign and screen as the last heartbeat gave them (JSON, Parts);
-- '' for a device whose agent does not report them.
ALTER TABLE devices ADD COLUMN parts TEXT NOT NULL DEFAULT '';
`},
		{9, "staff roles, passwords and console sessions", `
-- What a user (and so each of their tokens) may do in their scope: viewer, operator,
-- emergency, admin. Users made before roles existed did everything: they stay admins.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
-- argon2id in the PHC string form; '' = no console sign-in (token only).
ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
-- Failed sign-ins since the last good one, and until when sign-in is refused.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
-- Console sessions, by the SHA-256 of the cookie's value; csrf is the token its forms carry.
CREATE TABLE sessions (
	hash        BLOB PRIMARY KEY CHECK (length(hash) = 32),
	user_id     TEXT NOT NULL REFERENCES users(id),
	csrf        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	ended_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);
`},
		{10, "report summaries", `
-- Kept at ingest with each stored confirmation (storeBatch), in the month and day of its play
-- (+07), so a late one lands where it was played: reports over whole months read these,
-- the rest of a period the confirmations (reports.go).
CREATE TABLE play_months (
	month       INTEGER NOT NULL,              -- yyyymm in +07
	area_id     TEXT NOT NULL,
	device_id   TEXT NOT NULL,
	item_ref    TEXT NOT NULL,
	plays       INTEGER NOT NULL,
	heard       INTEGER NOT NULL,              -- plays with played_s > 0
	played_s    REAL NOT NULL,
	amp_faults  INTEGER NOT NULL,
	completed   INTEGER NOT NULL,
	preempted   INTEGER NOT NULL,
	interrupted INTEGER NOT NULL,
	failed      INTEGER NOT NULL,
	missed      INTEGER NOT NULL,
	suppressed  INTEGER NOT NULL,
	PRIMARY KEY (month, area_id, device_id, item_ref)
) WITHOUT ROWID;
CREATE TABLE play_programs (
	month       INTEGER NOT NULL,
	area_id     TEXT NOT NULL,
	program     TEXT NOT NULL,
	item_ref    TEXT NOT NULL,
	plays       INTEGER NOT NULL,
	heard       INTEGER NOT NULL,
	played_s    REAL NOT NULL,
	completed   INTEGER NOT NULL,
	preempted   INTEGER NOT NULL,
	interrupted INTEGER NOT NULL,
	failed      INTEGER NOT NULL,
	missed      INTEGER NOT NULL,
	suppressed  INTEGER NOT NULL,
	PRIMARY KEY (month, area_id, program, item_ref)
) WITHOUT ROWID;
CREATE TABLE play_reasons (                -- plays not completed, by result and reason
	month    INTEGER NOT NULL,
	area_id  TEXT NOT NULL,
	program  TEXT NOT NULL,
	item_ref TEXT NOT NULL,
	result   TEXT NOT NULL,
	error    TEXT NOT NULL,
	plays    INTEGER NOT NULL,
	PRIMARY KEY (month, area_id, program, item_ref, result, error)
) WITHOUT ROWID;
CREATE TABLE play_days (
	day       INTEGER NOT NULL,                -- days since 1970-01-01 in +07
	area_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	heard     INTEGER NOT NULL,
	PRIMARY KEY (day, area_id, device_id)
) WITHOUT ROWID;
` + summaryBackfill + `
`},
		{11, "broadcasts to single devices", `
-- A broadcast for one device (a cluster, a board) rather than an area's devices: area_id
-- stays the device's area, for scope and listing. AddEmergencies checks the device exists
-- (devices are revoked, never deleted).
ALTER TABLE emergencies ADD COLUMN device_id TEXT;
`},
		{12, "device online time and report settings", `
CREATE TABLE online_days (                 -- seconds each device was connected, per day
	day       INTEGER NOT NULL,                -- days since 1970-01-01 in +07
	area_id   TEXT NOT NULL,                   -- the device's area then
	device_id TEXT NOT NULL,
	seconds   REAL NOT NULL,
	PRIMARY KEY (day, area_id, device_id)
) WITHOUT ROWID;
CREATE TABLE settings (
	key        TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`},
		{13, "schedule templates", `
-- A week saved by an area's staff under a name, to apply to the areas below it (the console's
-- planning pages); the document is a schedule as pushed.
CREATE TABLE schedule_templates (
	area_id    TEXT NOT NULL REFERENCES areas(id),
	name       TEXT NOT NULL,
	document   BLOB NOT NULL,
	author     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (area_id, name)
) WITHOUT ROWID;
`},
		{14, "editorial approval", `
-- An area's approval policy; '' follows the area above it (the default at the top: not
-- required, self-approval not allowed).
ALTER TABLE areas ADD COLUMN approval TEXT NOT NULL DEFAULT '';       -- '', required, not_required
ALTER TABLE areas ADD COLUMN self_approval TEXT NOT NULL DEFAULT '';  -- '', allowed, not_allowed
ALTER TABLE schedules ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE schedules ADD COLUMN approved_at INTEGER;
-- A schedule pushed where approval is required waits here, neither composed nor sent, until an
-- approver approves it (it becomes a schedules revision) or rejects it with a reason.
CREATE TABLE submissions (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	area_id      TEXT NOT NULL REFERENCES areas(id), -- the target's area, for scope
	device_id    TEXT,                               -- set for a device's own schedule
	schedule_id  TEXT NOT NULL,
	document     BLOB NOT NULL,
	submitted_by TEXT NOT NULL,
	submitted_at INTEGER NOT NULL,
	state        TEXT NOT NULL,                      -- submitted, approved, rejected
	decided_by   TEXT NOT NULL DEFAULT '',
	decided_at   INTEGER,
	reason       TEXT NOT NULL DEFAULT '',
	revision     INTEGER NOT NULL DEFAULT 0          -- the schedule revision an approval made
);
CREATE INDEX submissions_area ON submissions(area_id, id);
-- Emergencies go out at once and are reviewed afterwards; those before this step count as reviewed.
ALTER TABLE emergencies ADD COLUMN reviewed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE emergencies ADD COLUMN reviewed_at INTEGER;
ALTER TABLE emergencies ADD COLUMN review_note TEXT NOT NULL DEFAULT '';
UPDATE emergencies SET reviewed_at = created_at;
`},
		{15, "confirmation timing", `
-- Speakers held to the clock: how late the item was heard against its time (seconds), and the
-- sound card's rate against the system clock (ppm off nominal).
ALTER TABLE confirmations ADD COLUMN start_error_s REAL NOT NULL DEFAULT 0;
ALTER TABLE confirmations ADD COLUMN rate_ppm REAL NOT NULL DEFAULT 0;
`},
		{16, "content approval", `
-- A content item uploaded where approval is required waits (submitted) for an approver of the
-- area it was uploaded in (the uploader's scope) before a schedule may play it; items from
-- before this step count as approved.
ALTER TABLE content ADD COLUMN area_id TEXT NOT NULL DEFAULT '';
ALTER TABLE content ADD COLUMN state TEXT NOT NULL DEFAULT 'approved'; -- submitted, approved, rejected
ALTER TABLE content ADD COLUMN decided_by TEXT NOT NULL DEFAULT '';
ALTER TABLE content ADD COLUMN decided_at INTEGER;
ALTER TABLE content ADD COLUMN reason TEXT NOT NULL DEFAULT '';
-- Bulletins, live relays and play-now commands wait in the same queue: kind says which, the
-- document is then the request as sent (JSON). One sent at once by the emergency role where
-- approval is required is flagged for review afterwards (review_wanted), as warnings are.
ALTER TABLE submissions ADD COLUMN kind TEXT NOT NULL DEFAULT 'schedule'; -- schedule, bulletin, live, command
ALTER TABLE emergencies ADD COLUMN review_wanted INTEGER NOT NULL DEFAULT 0;
`},
		{17, "clock error bound", `
-- How far the device's clock may be from true time as its NTP client says (chrony or
-- timesyncd), from its heartbeat; 0 and '' where none said.
ALTER TABLE devices ADD COLUMN clock_error_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN clock_source TEXT NOT NULL DEFAULT '';
`},
		{18, "agent releases and rollouts", `
-- What an agent said at its last hello: its Debian architecture and whether it installs
-- upgrades (it trusts a release key); software_version is set at hello as well as at status.
ALTER TABLE devices ADD COLUMN arch TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN upgrades INTEGER NOT NULL DEFAULT 0;
-- Signed agent packages staff uploaded (the file is in the content dir under its sha256).
CREATE TABLE releases (
	version     TEXT NOT NULL,
	arch        TEXT NOT NULL,
	size        INTEGER NOT NULL,
	sha256      TEXT NOT NULL,
	key_id      TEXT NOT NULL,
	signature   TEXT NOT NULL,
	uploaded_by TEXT NOT NULL,
	uploaded_at INTEGER NOT NULL,
	PRIMARY KEY (version, arch)
);
-- A staged rollout of one version to an area's devices; stage: canary, rest, done, stopped.
CREATE TABLE rollouts (
	id                  TEXT PRIMARY KEY,
	area_id             TEXT NOT NULL REFERENCES areas(id),
	version             TEXT NOT NULL,
	canary_percent      INTEGER NOT NULL,
	install_window      TEXT NOT NULL,
	healthy_for_ns      INTEGER NOT NULL,
	healthy_within_s    INTEGER NOT NULL,
	max_failure_percent INTEGER NOT NULL,
	stage               TEXT NOT NULL,
	reason              TEXT NOT NULL DEFAULT '',
	created_by          TEXT NOT NULL,
	created_at          INTEGER NOT NULL,
	stage_at            INTEGER NOT NULL
);
CREATE INDEX rollouts_stage ON rollouts(stage, id);
-- Each device of a rollout: its stage (canary, rest; none for one that cannot upgrade or is
-- already at the version), the state the hub or its agent last gave, and when.
CREATE TABLE rollout_devices (
	rollout_id   TEXT NOT NULL REFERENCES rollouts(id),
	device_id    TEXT NOT NULL REFERENCES devices(id),
	stage        TEXT NOT NULL,
	arch         TEXT NOT NULL,
	from_version TEXT NOT NULL,
	state        TEXT NOT NULL,
	error        TEXT NOT NULL DEFAULT '',
	since        INTEGER NOT NULL,
	healthy_at   INTEGER,
	PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_device ON rollout_devices(device_id, since);
`},
	}
}

// SchemaVersion is the newest schema this code knows (on both engines: a step added to one
// list is added to the other with the same version; TestSchemaVersionsAgree checks it).
func SchemaVersion() int { m := migrations(); return m[len(m)-1].version }

// stepsFor are the schema steps of the store's engine.
func (db *DB) stepsFor() []migration {
	if db.pg {
		return pgMigrations()
	}
	return migrations()
}

// migrate applies every step newer than the file's version in one transaction, so a failure
// leaves the file as it was. A file newer than this code is refused rather than guessed at.
func (db *DB) migrate(ctx context.Context) error {
	versions := `CREATE TABLE IF NOT EXISTS schema_version (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`
	if db.pg {
		versions = strings.Replace(versions, "applied_at INTEGER", "applied_at BIGINT", 1)
	}
	return db.writeDirect(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, versions); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var have int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if want := SchemaVersion(); have > want {
			return fmt.Errorf("the store has schema version %d but this loa-hub knows only up to %d: run a newer loa-hub", have, want)
		}
		for _, m := range db.stepsFor() {
			if m.version <= have {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version(version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, db.now().UnixNano()); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
			db.log.Info("hub store schema migrated", "path", db.path, "version", m.version, "step", m.name)
		}
		return nil
	})
}

// FileSchemaVersion is the schema version recorded in the open file.
func (db *DB) FileSchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&v)
	return v, err
}

// summaryBackfill fills the report summaries from the confirmations stored before them
// (schema step 8); TestSummaryBackfill checks it gives what ingest keeps.
const summaryBackfill = `INSERT INTO play_months SELECT CAST(strftime('%Y%m', at / 1000000000 + 25200, 'unixepoch') AS INTEGER), area_id, device_id, item_ref,
	COUNT(*), SUM(played_s > 0), SUM(played_s), SUM(amplifier <> '' AND amplifier <> 'on'),
	SUM(result = 'completed'), SUM(result = 'preempted'), SUM(result = 'interrupted'), SUM(result = 'failed'),
	SUM(result = 'missed'), SUM(result = 'suppressed')
	FROM confirmations WHERE at IS NOT NULL GROUP BY 1, 2, 3, 4;
INSERT INTO play_programs SELECT CAST(strftime('%Y%m', at / 1000000000 + 25200, 'unixepoch') AS INTEGER), area_id, program, item_ref,
	COUNT(*), SUM(played_s > 0), SUM(played_s),
	SUM(result = 'completed'), SUM(result = 'preempted'), SUM(result = 'interrupted'), SUM(result = 'failed'),
	SUM(result = 'missed'), SUM(result = 'suppressed')
	FROM confirmations WHERE at IS NOT NULL GROUP BY 1, 2, 3, 4;
INSERT INTO play_reasons SELECT CAST(strftime('%Y%m', at / 1000000000 + 25200, 'unixepoch') AS INTEGER), area_id, program, item_ref,
	result, error, COUNT(*)
	FROM confirmations WHERE at IS NOT NULL AND result <> 'completed' GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO play_days SELECT (at + 25200000000000) / 86400000000000, area_id, device_id, COUNT(*)
	FROM confirmations WHERE at IS NOT NULL AND played_s > 0 GROUP BY 1, 2, 3;`
