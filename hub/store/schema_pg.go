package store

import "strings"

// pgMigrations are PostgreSQL's schema steps. A PostgreSQL store starts at the schema SQLite's
// steps 1–14 reach, in one step numbered 14; a later step is added to both lists under the same
// number. The tables, columns (in the same order) and keys are SQLite's; the types are
// PostgreSQL's: BIGINT for SQLite's 64-bit INTEGER (Unix ns), DOUBLE PRECISION for REAL, BYTEA
// for BLOB, identity columns for AUTOINCREMENT, a trigger function for the append-only audit
// log. Every text column compares byte by byte (COLLATE "C"), as SQLite's do: the area subtree
// ranges (subtree) and every ORDER BY rely on it, whatever locale the database was made with.
func pgMigrations() []migration {
	return []migration{
		{14, "PostgreSQL schema (SQLite steps 1 to 14)", strings.ReplaceAll(pgSchema14, " TEXT", ` TEXT COLLATE "C"`)},
		{15, "confirmation timing", `
ALTER TABLE confirmations ADD COLUMN start_error_s DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE confirmations ADD COLUMN rate_ppm DOUBLE PRECISION NOT NULL DEFAULT 0;
`},
		{16, "content approval", `
ALTER TABLE content ADD COLUMN area_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE content ADD COLUMN state TEXT COLLATE "C" NOT NULL DEFAULT 'approved';
ALTER TABLE content ADD COLUMN decided_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE content ADD COLUMN decided_at BIGINT;
ALTER TABLE content ADD COLUMN reason TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE submissions ADD COLUMN kind TEXT COLLATE "C" NOT NULL DEFAULT 'schedule';
ALTER TABLE emergencies ADD COLUMN review_wanted INTEGER NOT NULL DEFAULT 0;
`},
		{17, "clock error bound", `
ALTER TABLE devices ADD COLUMN clock_error_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN clock_source TEXT COLLATE "C" NOT NULL DEFAULT '';
`},
		{18, "agent releases and rollouts", `
ALTER TABLE devices ADD COLUMN arch TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN upgrades INTEGER NOT NULL DEFAULT 0;
CREATE TABLE releases (
	version     TEXT COLLATE "C" NOT NULL,
	arch        TEXT COLLATE "C" NOT NULL,
	size        BIGINT NOT NULL,
	sha256      TEXT COLLATE "C" NOT NULL,
	key_id      TEXT COLLATE "C" NOT NULL,
	signature   TEXT COLLATE "C" NOT NULL,
	uploaded_by TEXT COLLATE "C" NOT NULL,
	uploaded_at BIGINT NOT NULL,
	PRIMARY KEY (version, arch)
);
CREATE TABLE rollouts (
	id                  TEXT COLLATE "C" PRIMARY KEY,
	area_id             TEXT COLLATE "C" NOT NULL REFERENCES areas(id),
	version             TEXT COLLATE "C" NOT NULL,
	canary_percent      BIGINT NOT NULL,
	install_window      TEXT COLLATE "C" NOT NULL,
	healthy_for_ns      BIGINT NOT NULL,
	healthy_within_s    BIGINT NOT NULL,
	max_failure_percent BIGINT NOT NULL,
	stage               TEXT COLLATE "C" NOT NULL,
	reason              TEXT COLLATE "C" NOT NULL DEFAULT '',
	created_by          TEXT COLLATE "C" NOT NULL,
	created_at          BIGINT NOT NULL,
	stage_at            BIGINT NOT NULL
);
CREATE INDEX rollouts_stage ON rollouts(stage, id);
CREATE TABLE rollout_devices (
	rollout_id   TEXT COLLATE "C" NOT NULL REFERENCES rollouts(id),
	device_id    TEXT COLLATE "C" NOT NULL REFERENCES devices(id),
	stage        TEXT COLLATE "C" NOT NULL,
	arch         TEXT COLLATE "C" NOT NULL,
	from_version TEXT COLLATE "C" NOT NULL,
	state        TEXT COLLATE "C" NOT NULL,
	error        TEXT COLLATE "C" NOT NULL DEFAULT '',
	since        BIGINT NOT NULL,
	healthy_at   BIGINT,
	PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_device ON rollout_devices(device_id, since);
`},
	}
}

const pgSchema14 = `
CREATE TABLE areas (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	parent_id     TEXT REFERENCES areas(id),
	depth         BIGINT NOT NULL,
	created_at    BIGINT NOT NULL,
	approval      TEXT NOT NULL DEFAULT '',
	self_approval TEXT NOT NULL DEFAULT ''
);
CREATE INDEX areas_parent ON areas(parent_id, id);

CREATE TABLE devices (
	id                TEXT PRIMARY KEY,
	name              TEXT NOT NULL,
	area_id           TEXT NOT NULL REFERENCES areas(id),
	kind              TEXT NOT NULL,
	outputs           TEXT NOT NULL,
	secret_hash       BYTEA NOT NULL CHECK (length(secret_hash) = 32),
	enrolled_at       BIGINT NOT NULL,
	revoked_at        BIGINT,
	last_seen         BIGINT,
	acked_seq         BIGINT NOT NULL DEFAULT 0,
	status_at         BIGINT,
	now_playing       TEXT NOT NULL DEFAULT '',
	volume            DOUBLE PRECISION NOT NULL DEFAULT 0,
	clock_offset_ns   BIGINT NOT NULL DEFAULT 0,
	disk_free_bytes   BIGINT NOT NULL DEFAULT 0,
	disk_total_bytes  BIGINT NOT NULL DEFAULT 0,
	temperature_c     DOUBLE PRECISION,
	uptime_ns         BIGINT NOT NULL DEFAULT 0,
	link              TEXT NOT NULL DEFAULT '',
	software_version  TEXT NOT NULL DEFAULT '',
	journal_id        TEXT NOT NULL DEFAULT '',
	seq_offset        BIGINT NOT NULL DEFAULT 0,
	parts             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_area ON devices(area_id, id);

CREATE TABLE taxonomy (
	dimension TEXT NOT NULL,
	value     TEXT NOT NULL,
	label     TEXT NOT NULL,
	PRIMARY KEY (dimension, value)
);

CREATE TABLE content (
	ref            TEXT PRIMARY KEY,
	size           BIGINT NOT NULL,
	duration_ns    BIGINT NOT NULL,
	mime           TEXT NOT NULL,
	title          TEXT NOT NULL,
	theme          TEXT NOT NULL,
	language       TEXT NOT NULL,
	format         TEXT NOT NULL,
	producing_unit TEXT NOT NULL,
	uploaded_by    TEXT NOT NULL,
	uploaded_at    BIGINT NOT NULL
);
CREATE INDEX content_uploaded ON content(uploaded_at);

CREATE TABLE schedules (
	area_id     TEXT REFERENCES areas(id),
	device_id   TEXT REFERENCES devices(id),
	revision    BIGINT NOT NULL CHECK (revision > 0),
	schedule_id TEXT NOT NULL,
	document    BYTEA NOT NULL,
	author      TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	approved_by TEXT NOT NULL DEFAULT '',
	approved_at BIGINT,
	CHECK ((area_id IS NULL) <> (device_id IS NULL))
);
CREATE UNIQUE INDEX schedules_area_rev ON schedules(area_id, revision) WHERE area_id IS NOT NULL;
CREATE UNIQUE INDEX schedules_device_rev ON schedules(device_id, revision) WHERE device_id IS NOT NULL;

CREATE TABLE effective_documents (
	device_id TEXT NOT NULL,
	revision  BIGINT NOT NULL,
	document  BYTEA NOT NULL,
	signature BYTEA
);
CREATE UNIQUE INDEX effective_documents_key ON effective_documents(device_id, revision);
CREATE TABLE effective (
	device_id        TEXT NOT NULL REFERENCES devices(id),
	revision         BIGINT NOT NULL CHECK (revision > 0),
	sources          TEXT NOT NULL,
	created_at       BIGINT NOT NULL,
	sent_at          BIGINT,
	received_at      BIGINT,
	content_ready_at BIGINT,
	active_at        BIGINT,
	refused_at       BIGINT,
	refused_reason   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device_id, revision)
);

CREATE TABLE confirmations (
	device_id      TEXT NOT NULL REFERENCES devices(id),
	seq            BIGINT NOT NULL CHECK (seq > 0),
	area_id        TEXT NOT NULL,
	at             BIGINT,
	output         TEXT NOT NULL,
	schedule_id    TEXT NOT NULL,
	revision       BIGINT NOT NULL,
	program        TEXT NOT NULL,
	item_index     BIGINT NOT NULL,
	item_ref       TEXT NOT NULL,
	scheduled_at   BIGINT,
	started_at     BIGINT,
	ended_at       BIGINT,
	played_s       DOUBLE PRECISION NOT NULL,
	peak_dbfs      DOUBLE PRECISION,
	rms_dbfs       DOUBLE PRECISION,
	silence_s      DOUBLE PRECISION NOT NULL,
	gaps           BIGINT NOT NULL,
	underruns      BIGINT NOT NULL,
	result         TEXT NOT NULL,
	error          TEXT NOT NULL,
	clock_state    TEXT NOT NULL,
	received_at    BIGINT NOT NULL,
	volume         DOUBLE PRECISION,
	amplifier      TEXT NOT NULL DEFAULT '',
	dropouts       BIGINT NOT NULL DEFAULT 0,
	reconnects     BIGINT NOT NULL DEFAULT 0,
	missing_s      DOUBLE PRECISION NOT NULL DEFAULT 0,
	frames_dropped BIGINT NOT NULL DEFAULT 0,
	from_s         DOUBLE PRECISION NOT NULL DEFAULT 0,
	PRIMARY KEY (device_id, seq)
);
CREATE INDEX confirmations_at ON confirmations(at);
CREATE INDEX confirmations_area_at ON confirmations(area_id, at);

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	scope_area    TEXT NOT NULL REFERENCES areas(id),
	created_at    BIGINT NOT NULL,
	disabled_at   BIGINT,
	role          TEXT NOT NULL DEFAULT 'admin',
	password_hash TEXT NOT NULL DEFAULT '',
	failed_logins BIGINT NOT NULL DEFAULT 0,
	locked_until  BIGINT
);

CREATE TABLE tokens (
	hash       BYTEA PRIMARY KEY CHECK (length(hash) = 32),
	user_id    TEXT NOT NULL REFERENCES users(id),
	label      TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT,
	revoked_at BIGINT
);
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE sessions (
	hash        BYTEA PRIMARY KEY CHECK (length(hash) = 32),
	user_id     TEXT NOT NULL REFERENCES users(id),
	csrf        TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	last_seen   BIGINT NOT NULL,
	ended_at    BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit (
	id     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	at     BIGINT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TABLE emergencies (
	id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	series      TEXT NOT NULL,
	kind        TEXT NOT NULL,
	area_id     TEXT NOT NULL REFERENCES areas(id),
	class       TEXT NOT NULL,
	title       TEXT NOT NULL,
	text        TEXT NOT NULL,
	items       TEXT NOT NULL,
	issued_at   BIGINT NOT NULL,
	start_at    BIGINT NOT NULL,
	every_ns    BIGINT NOT NULL,
	until_at    BIGINT NOT NULL,
	volume      DOUBLE PRECISION NOT NULL,
	source      TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	ended_at    BIGINT,
	end_reason  TEXT NOT NULL DEFAULT '',
	ended_by    TEXT NOT NULL DEFAULT '',
	replaced_by BIGINT NOT NULL DEFAULT 0,
	device_id   TEXT,
	reviewed_by TEXT NOT NULL DEFAULT '',
	reviewed_at BIGINT,
	review_note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX emergencies_series ON emergencies(series) WHERE ended_at IS NULL;
CREATE INDEX emergencies_active ON emergencies(until_at) WHERE ended_at IS NULL;
CREATE INDEX emergencies_area ON emergencies(area_id, id);
CREATE INDEX emergencies_source ON emergencies(source);

CREATE TABLE commands (
	id          TEXT PRIMARY KEY,
	seq         BIGINT NOT NULL UNIQUE CHECK (seq > 0),
	key_id      TEXT NOT NULL,
	target      TEXT NOT NULL,
	area_id     TEXT NOT NULL,
	action      TEXT NOT NULL,
	output      TEXT NOT NULL,
	volume      DOUBLE PRECISION,
	content     TEXT NOT NULL,
	stream      TEXT NOT NULL,
	class       TEXT NOT NULL,
	title       TEXT NOT NULL,
	issued_by   TEXT NOT NULL,
	issued_at   BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE TABLE command_payloads (
	command_id TEXT NOT NULL REFERENCES commands(id),
	part       BIGINT NOT NULL,
	payload    BYTEA NOT NULL,
	signature  BYTEA NOT NULL,
	PRIMARY KEY (command_id, part)
);
CREATE TABLE command_devices (
	command_id  TEXT NOT NULL REFERENCES commands(id),
	device_id   TEXT NOT NULL REFERENCES devices(id),
	area_id     TEXT NOT NULL,
	part        BIGINT NOT NULL,
	state       TEXT NOT NULL,
	code        TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	sends       BIGINT NOT NULL DEFAULT 0,
	sent_at     BIGINT,
	reported_at BIGINT,
	PRIMARY KEY (command_id, device_id)
);
CREATE INDEX command_devices_open ON command_devices(device_id) WHERE reported_at IS NULL;

CREATE TABLE play_months (
	month       BIGINT NOT NULL,
	area_id     TEXT NOT NULL,
	device_id   TEXT NOT NULL,
	item_ref    TEXT NOT NULL,
	plays       BIGINT NOT NULL,
	heard       BIGINT NOT NULL,
	played_s    DOUBLE PRECISION NOT NULL,
	amp_faults  BIGINT NOT NULL,
	completed   BIGINT NOT NULL,
	preempted   BIGINT NOT NULL,
	interrupted BIGINT NOT NULL,
	failed      BIGINT NOT NULL,
	missed      BIGINT NOT NULL,
	suppressed  BIGINT NOT NULL,
	PRIMARY KEY (month, area_id, device_id, item_ref)
);
CREATE TABLE play_programs (
	month       BIGINT NOT NULL,
	area_id     TEXT NOT NULL,
	program     TEXT NOT NULL,
	item_ref    TEXT NOT NULL,
	plays       BIGINT NOT NULL,
	heard       BIGINT NOT NULL,
	played_s    DOUBLE PRECISION NOT NULL,
	completed   BIGINT NOT NULL,
	preempted   BIGINT NOT NULL,
	interrupted BIGINT NOT NULL,
	failed      BIGINT NOT NULL,
	missed      BIGINT NOT NULL,
	suppressed  BIGINT NOT NULL,
	PRIMARY KEY (month, area_id, program, item_ref)
);
CREATE TABLE play_reasons (
	month    BIGINT NOT NULL,
	area_id  TEXT NOT NULL,
	program  TEXT NOT NULL,
	item_ref TEXT NOT NULL,
	result   TEXT NOT NULL,
	error    TEXT NOT NULL,
	plays    BIGINT NOT NULL,
	PRIMARY KEY (month, area_id, program, item_ref, result, error)
);
CREATE TABLE play_days (
	day       BIGINT NOT NULL,
	area_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	heard     BIGINT NOT NULL,
	PRIMARY KEY (day, area_id, device_id)
);
CREATE TABLE online_days (
	day       BIGINT NOT NULL,
	area_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	seconds   DOUBLE PRECISION NOT NULL,
	PRIMARY KEY (day, area_id, device_id)
);
CREATE TABLE settings (
	key        TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE schedule_templates (
	area_id    TEXT NOT NULL REFERENCES areas(id),
	name       TEXT NOT NULL,
	document   BYTEA NOT NULL,
	author     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (area_id, name)
);
CREATE TABLE submissions (
	id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	area_id      TEXT NOT NULL REFERENCES areas(id),
	device_id    TEXT,
	schedule_id  TEXT NOT NULL,
	document     BYTEA NOT NULL,
	submitted_by TEXT NOT NULL,
	submitted_at BIGINT NOT NULL,
	state        TEXT NOT NULL,
	decided_by   TEXT NOT NULL DEFAULT '',
	decided_at   BIGINT,
	reason       TEXT NOT NULL DEFAULT '',
	revision     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX submissions_area ON submissions(area_id, id);
`
