package scheduler

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/loa-project/loa/protocol"
)

// Known outputs. A device declares which of these it has; the scheduler treats each one alike.
var knownOutputs = map[string]bool{"speakers": true, "screen": true, "board": true}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)

// prepare validates the whole document and compiles each programme's start rule. Every
// problem found is reported, each naming its programme and field.
func (d *Document) prepare() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if d.Version != SchemaVersion {
		add("version %d is not supported: this agent reads version %d", d.Version, SchemaVersion)
	}
	if d.ID == "" {
		add("id is missing: give the schedule an id, e.g. id: commune-tam-thanh")
	} else if !idPattern.MatchString(d.ID) {
		add("id %q: use letters, digits and . _ - : / only", d.ID)
	}
	if d.Revision < 1 {
		add("revision %d: must be 1 or more, and grow with every change", d.Revision)
	}
	if d.Timezone == "" {
		add("timezone is missing: give an IANA name, e.g. timezone: Asia/Ho_Chi_Minh")
	} else if loc, err := time.LoadLocation(d.Timezone); err != nil || strings.EqualFold(d.Timezone, "local") {
		add("timezone %q is not a known IANA time zone name (e.g. Asia/Ho_Chi_Minh)", d.Timezone)
	} else {
		d.loc = loc
	}
	for i, q := range d.QuietHours {
		if q.From == q.To {
			add("quiet_hours[%d]: from and to are both %s; give a span", i, q.From)
		}
		if q.From.Seconds > 24*3600 || q.To.Seconds > 24*3600 {
			add("quiet_hours[%d]: times must be within 00:00-24:00", i)
		}
	}
	if len(d.Programs) == 0 {
		add("programs is empty: a schedule needs at least one program")
	}
	seen := map[string]int{}
	d.plans = make([]programPlan, len(d.Programs))
	for i := range d.Programs {
		p := &d.Programs[i]
		where := programName(p, i)
		if p.ID != "" {
			if j, dup := seen[p.ID]; dup {
				add("%s: id is used again (first by program #%d); ids must be unique", where, j+1)
			}
			seen[p.ID] = i
		}
		for _, err := range validateProgram(p, d.loc) {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if d.loc != nil {
			plan, err := newProgramPlan(p, d.loc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
			d.plans[i] = plan
		}
	}
	if len(errs) > 0 {
		d.plans = nil
		return errors.Join(errs...)
	}
	return nil
}

func programName(p *Program, i int) string {
	name := fmt.Sprintf("program #%d", i+1)
	if p.ID != "" {
		name = fmt.Sprintf("program %q", p.ID)
	}
	if p.line > 0 {
		name += fmt.Sprintf(" (line %d)", p.line)
	}
	return name
}

func validateProgram(p *Program, loc *time.Location) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.ID == "" {
		add("id is missing")
	} else if !idPattern.MatchString(p.ID) {
		add("id %q: use letters, digits and . _ - : / only", p.ID)
	}
	if p.Class < Normal || p.Class > Emergency {
		add("class %d is not normal, priority or emergency", int(p.Class))
	}
	switch {
	case p.Cron == "" && p.At == "":
		add("needs either cron (e.g. \"0 30 6 * * MON-SAT\") or at (an RFC 3339 time)")
	case p.Cron != "" && p.At != "":
		add("has both cron and at; give one")
	}
	if p.ValidFrom != nil && p.ValidUntil != nil && p.ValidUntil.before(*p.ValidFrom) {
		add("valid_until %s is before valid_from %s", p.ValidUntil, p.ValidFrom)
	}
	if p.MaxDuration < 0 {
		add("max_duration %s is negative", p.MaxDuration.D())
	}
	if p.Volume != nil && (*p.Volume < 0 || *p.Volume > 1) {
		add("volume %g is outside 0..1", *p.Volume)
	}
	switch p.OnInterrupt {
	case "", Resume, Restart, Skip:
	default:
		add("on_interrupt %q is not resume, restart or skip", p.OnInterrupt)
	}
	if r := p.Repeat; r != nil {
		if r.Count < 0 || r.Count > 1000 {
			add("repeat.count %d: must be 0..1000", r.Count)
		}
		if r.Gap < 0 || r.Every < 0 {
			add("repeat: gap and every must not be negative")
		}
		if r.Gap != 0 && r.Every != 0 {
			add("repeat: give gap (end to start) or every (start to start), not both")
		}
	}
	for _, o := range p.Outputs {
		if !knownOutputs[o] {
			add("outputs: %q is not speakers, screen or board", o)
		}
	}
	if len(p.Items) == 0 {
		if p.Class == Emergency {
			add("an emergency program must have items: the warning cannot be silent")
		} else {
			add("items is empty: nothing to play")
		}
	}
	for j, it := range p.Items {
		for _, err := range validateItem(it) {
			errs = append(errs, fmt.Errorf("items[%d]: %w", j, err))
		}
	}
	return errs
}

func validateItem(it Item) []error {
	var errs []error
	n := 0
	for _, s := range []string{it.Content, it.File, it.Stream, it.Text} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return []error{fmt.Errorf("give exactly one of content, file, stream or text (found %d)", n)}
	}
	if it.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %s is negative", it.Duration.D()))
	}
	if it.Ticker != "" && it.Stream != "" {
		errs = append(errs, fmt.Errorf("ticker runs on screens under a picture or a bulletin; a stream is sound only"))
	}
	if it.Stamped != "" && (it.Stream == "" || !strings.HasPrefix(it.Stamped, "/") || strings.HasPrefix(it.Stamped, "//")) {
		errs = append(errs, fmt.Errorf("stamped %.80q: a path on the hub (/agent/relay?…) beside a stream", it.Stamped))
	}
	if it.Fallback != "" && it.Content == "" && it.File == "" && it.Stream == "" {
		errs = append(errs, fmt.Errorf("fallback_text is spoken in place of missing content or a missing file, or of a recording or relay gone silent; a text item is spoken itself"))
	}
	switch {
	case it.Content != "":
		if _, err := protocol.ParseContentRef(it.Content); err != nil {
			errs = append(errs, fmt.Errorf("content %.80q: write it as sha256: and 64 lowercase hex digits (%v)", it.Content, err))
		}
	case it.Stream != "":
		u, err := url.Parse(it.Stream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("stream %q: must be an http:// or https:// URL", it.Stream))
		}
		if it.Duration <= 0 {
			errs = append(errs, fmt.Errorf("stream %q needs a duration: a relay has no end of its own", it.Stream))
		}
	case it.Text != "":
		if it.Duration <= 0 {
			errs = append(errs, fmt.Errorf("text needs a duration: how long it is shown"))
		}
	}
	return errs
}

// Cron fields in order for 6-field specs; 5-field specs drop the seconds.
var cronFields = []struct {
	name     string
	min, max int
}{{"second", 0, 59}, {"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 6}}

func cronParser() cron.Parser {
	return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

// parseCron parses a 5- or 6-field spec or an @daily-style descriptor, with errors that
// name the field at fault.
func parseCron(spec string) (cron.Schedule, error) {
	s := strings.TrimSpace(spec)
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, fmt.Errorf("cron %q: time zone prefixes are not allowed; the schedule's timezone applies", spec)
	}
	if strings.HasPrefix(s, "@every") {
		return nil, fmt.Errorf("cron %q: @every drifts with the moment it is read; use a cron expression such as \"0 0 */2 * * *\"", spec)
	}
	p := cronParser()
	sched, err := p.Parse(s)
	if err == nil {
		return sched, nil
	}
	fields := strings.Fields(s)
	if strings.HasPrefix(s, "@") || (len(fields) != 5 && len(fields) != 6) {
		return nil, fmt.Errorf("cron %q: %v (give 5 fields, 6 with seconds, or @daily/@weekly/@monthly/@yearly/@hourly)", spec, err)
	}
	names := cronFields
	if len(fields) == 5 {
		names = cronFields[1:]
	}
	// Find the field at fault by parsing each alone with the others wildcarded.
	for i, f := range fields {
		probe := make([]string, len(fields))
		for j := range probe {
			probe[j] = "*"
		}
		probe[i] = f
		if _, perr := p.Parse(strings.Join(probe, " ")); perr != nil {
			return nil, fmt.Errorf("cron %q: %s %q is not valid (allowed %d-%d): %v", spec, names[i].name, f, names[i].min, names[i].max, perr)
		}
	}
	return nil, fmt.Errorf("cron %q: %v", spec, err)
}

// parseAt reads a one-off time: RFC 3339 with an offset, or a local date-time read in the
// schedule's time zone.
// AtLayout writes an `at:` time to the millisecond, for programmes made to start now (an
// emergency, a play_now): rounded down to the second, the start would lie up to a second in
// the past, and a late start keeps its planned end — the tail would be cut, or a programme that
// ended within that second planned as preempted and replayed. parseAt reads it (RFC 3339
// takes fractional seconds).
const AtLayout = "2006-01-02T15:04:05.000Z07:00"

func parseAt(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("at %q: write an RFC 3339 time such as 2026-11-30T07:00:00+07:00", s)
}
