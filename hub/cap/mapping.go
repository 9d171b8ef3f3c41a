package cap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/loa-project/loa/scheduler"
	"gopkg.in/yaml.v3"
)

// Action is what the hub does with a CAP message.
type Action string

const (
	Create  Action = "create"  // a new bulletin series
	Replace Action = "replace" // a newer bulletin of an existing series (CAP Update)
	Cancel  Action = "cancel"  // end the series now (CAP Cancel)
	Ignore  Action = "ignore"  // nothing reaches a loudspeaker; Reason says why
)

// ClassRule maps an info block's severity, urgency and certainty to a bulletin class. An empty
// list matches anything. Class is "emergency", "priority", "normal" or "ignore".
type ClassRule struct {
	Severity  []string `yaml:"severity"`
	Urgency   []string `yaml:"urgency"`
	Certainty []string `yaml:"certainty"`
	Class     string   `yaml:"class"`
}

// RepeatRule gives a repeat interval to bulletins of some categories and class, e.g. storm
// and flood emergencies every 2 h (the national rule) until replaced or expired.
type RepeatRule struct {
	Categories []string      `yaml:"categories"`
	Class      string        `yaml:"class"`
	Every      time.Duration `yaml:"every"`
}

// Config tunes the mapping. The zero value gets the defaults documented in docs/cap.md.
type Config struct {
	// Languages in order of preference, matched against an info block's language tag by its
	// primary subtag ("vi" matches "vi-VN"). Default vi, en.
	Languages []string `yaml:"languages"`
	// Rules: first match wins. Default DefaultRules.
	Rules []ClassRule `yaml:"rules"`
	// DefaultClass applies when no rule matches. Default "priority".
	DefaultClass string `yaml:"default_class"`
	// AllowTest and AllowExercise let status Test / Exercise reach loudspeakers (drills).
	// Draft and System never do.
	AllowTest     bool `yaml:"allow_test"`
	AllowExercise bool `yaml:"allow_exercise"`
	// Repeats: first match wins. Default DefaultRepeats.
	Repeats []RepeatRule `yaml:"repeats"`
	// Lifetime ends a bulletin whose info blocks carry no expires. Default 12h.
	Lifetime time.Duration `yaml:"lifetime"`
	// Location is the zone the issue time is spoken in. Default: the offset the sender used.
	Location *time.Location `yaml:"-"`
}

// DefaultRules: severe or extreme, and now or soon, is an emergency; anything else, priority.
var DefaultRules = []ClassRule{
	{Severity: []string{"Extreme", "Severe"}, Urgency: []string{"Immediate", "Expected"}, Class: "emergency"},
}

// DefaultRepeats: meteorological (storm, flood) emergencies repeat every 2 h.
var DefaultRepeats = []RepeatRule{
	{Categories: []string{"Met"}, Class: "emergency", Every: 2 * time.Hour},
}

// ErrUnmapped means an alert's areas match no hub area in the area map.
var ErrUnmapped = errors.New("CAP alert areas match no hub area")

// Mapper turns validated alerts into Decisions. It holds no mutable state.
type Mapper struct {
	cfg   Config
	areas *AreaMap
}

// NewMapper checks cfg, fills its defaults and returns a Mapper.
func NewMapper(cfg Config, areas *AreaMap) (*Mapper, error) {
	if areas == nil {
		return nil, errors.New("CAP mapper: an area map is required")
	}
	if len(cfg.Languages) == 0 {
		cfg.Languages = []string{"vi", "en"}
	}
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules
	}
	if cfg.DefaultClass == "" {
		cfg.DefaultClass = "priority"
	}
	if cfg.Repeats == nil {
		cfg.Repeats = DefaultRepeats
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 12 * time.Hour
	}
	if cfg.Lifetime < 0 {
		return nil, fmt.Errorf("CAP mapper: lifetime %s must be positive", cfg.Lifetime)
	}
	if err := checkClass("default_class", cfg.DefaultClass); err != nil {
		return nil, err
	}
	for i, r := range cfg.Rules {
		where := fmt.Sprintf("rules[%d]", i+1)
		if err := checkClass(where+".class", r.Class); err != nil {
			return nil, err
		}
		for _, c := range []struct {
			name    string
			got     []string
			allowed []string
		}{{"severity", r.Severity, severities}, {"urgency", r.Urgency, urgencies}, {"certainty", r.Certainty, certainties}} {
			for _, v := range c.got {
				if !slices.Contains(c.allowed, v) {
					return nil, fmt.Errorf("CAP mapper: %s.%s: %q is not one of %s", where, c.name, v, strings.Join(c.allowed, ", "))
				}
			}
		}
	}
	for i, r := range cfg.Repeats {
		where := fmt.Sprintf("repeats[%d]", i+1)
		if r.Every <= 0 {
			return nil, fmt.Errorf("CAP mapper: %s.every must be a positive duration like 2h", where)
		}
		if r.Class != "" {
			if err := checkClass(where+".class", r.Class); err != nil {
				return nil, err
			}
		}
		for _, c := range r.Categories {
			if !slices.Contains(categories, c) {
				return nil, fmt.Errorf("CAP mapper: %s.categories: %q is not one of %s", where, c, strings.Join(categories, ", "))
			}
		}
	}
	return &Mapper{cfg: cfg, areas: areas}, nil
}

func checkClass(where, c string) error {
	if c == "ignore" {
		return nil
	}
	if _, err := scheduler.ParseClass(c); err != nil {
		return fmt.Errorf("CAP mapper: %s: %q is not one of emergency, priority, normal, ignore", where, c)
	}
	return nil
}

// Decision is what the hub should do with one CAP message: a plain value it turns into a
// program (create), a replacement of the series' program (replace), or an end (cancel).
type Decision struct {
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"` // for Ignore: why, in words for the log and the HTTP answer

	// SeriesID identifies the bulletin series: "sender,identifier" of its first message.
	// An Update or Cancel names it through references; References lists every message it
	// names, so the hub can also match a series it knows by a later message.
	SeriesID   string   `json:"series_id"`
	MessageID  string   `json:"message_id"` // this message's "sender,identifier"
	References []string `json:"references,omitempty"`

	Status   string          `json:"status"` // Actual, or Test/Exercise when the config lets them through
	Class    scheduler.Class `json:"class"`
	Areas    []string        `json:"areas"` // hub area ids, sorted
	Title    string          `json:"title"`
	Text     string          `json:"text"` // issue time, then headline, description, instruction
	Language string          `json:"language"`
	Event    string          `json:"event"`
	Severity string          `json:"severity"`
	Urgency  string          `json:"urgency"`

	AudioURL      string `json:"audio_url,omitempty"` // an audio/* resource to play, when the alert carries one
	AudioMimeType string `json:"audio_mime_type,omitempty"`
	AudioDigest   string `json:"audio_digest,omitempty"` // CAP's SHA-1 of the resource, when given

	IssuedAt time.Time     `json:"issued_at"` // alert/sent: stated in every re-broadcast
	Start    time.Time     `json:"start"`     // info/effective when it is still ahead; zero means now
	Expires  time.Time     `json:"expires"`   // latest info/expires, or IssuedAt+Lifetime
	Repeat   time.Duration `json:"repeat_ns"` // 0: once; nanoseconds in JSON

	Warnings []string `json:"warnings,omitempty"` // e.g. an area block that matched no hub area
}

// ResolveSeries names the series an Update or Cancel belongs to. CAP 1.2 lets such a message
// reference only the latest earlier message of its series, so the first message, which names
// the series (SeriesID's guess), is often not among its references: the series is found
// through any referenced message the hub applied, earliest first (known gives the series the
// hub put a message in). others are further series its references reach (a sender joining two
// series), which the hub ends with it. A message referencing nothing the hub knows keeps
// SeriesID; an Alert is always its own series.
func (d Decision) ResolveSeries(known func(messageID string) (series string, ok bool)) (series string, others []string) {
	if d.Action != Replace && d.Action != Cancel {
		return d.SeriesID, nil
	}
	seen := map[string]bool{}
	for _, ref := range d.References {
		s, ok := known(ref)
		if !ok || seen[s] {
			continue
		}
		seen[s] = true
		if series == "" {
			series = s
		} else {
			others = append(others, s)
		}
	}
	if series == "" {
		series = d.SeriesID
	}
	return series, others
}

// Map decides what to do with a validated alert at time now. It is a pure function.
func (m *Mapper) Map(a *Alert, now time.Time) (Decision, error) {
	d := Decision{MessageID: a.Key(), Status: a.Status, IssuedAt: a.Sent}
	// Earliest first: the series is named by its first message, and ResolveSeries tries the
	// references in this order.
	refs := slices.Clone(a.References)
	slices.SortStableFunc(refs, func(x, y Reference) int { return x.Sent.Compare(y.Sent) })
	for _, r := range refs {
		d.References = append(d.References, r.Key())
	}
	d.SeriesID = d.MessageID
	if len(refs) > 0 && a.MsgType != "Alert" {
		d.SeriesID = refs[0].Key()
	}
	ignore := func(format string, args ...any) (Decision, error) {
		d.Action = Ignore
		d.Reason = fmt.Sprintf(format, args...)
		return d, nil
	}

	switch a.Status {
	case "Actual":
	case "Test":
		if !m.cfg.AllowTest {
			return ignore("status Test: test messages do not reach loudspeakers (allow_test is off)")
		}
	case "Exercise":
		if !m.cfg.AllowExercise {
			return ignore("status Exercise: exercise messages do not reach loudspeakers (allow_exercise is off)")
		}
	default:
		return ignore("status %s never reaches loudspeakers", a.Status)
	}
	if a.Scope != "Public" {
		return ignore("scope %s: only Public alerts are broadcast", a.Scope)
	}
	switch a.MsgType {
	case "Cancel":
		d.Action = Cancel
		return d, nil
	case "Ack", "Error":
		return ignore("msgType %s is a reply between systems, not a bulletin", a.MsgType)
	case "Update":
		d.Action = Replace
	default:
		d.Action = Create
	}
	if len(a.Infos) == 0 {
		return ignore("no <info> block: nothing to broadcast")
	}

	infos, lang, warn := m.chooseInfos(a.Infos)
	if warn != "" {
		d.Warnings = append(d.Warnings, warn)
	}
	d.Language = lang

	// Class: the highest any chosen block earns; blocks whose rule says ignore drop out.
	var kept []int
	for _, i := range infos {
		cls := m.classOf(&a.Infos[i])
		if cls == "ignore" {
			continue
		}
		c, _ := scheduler.ParseClass(cls)
		if len(kept) == 0 || c > d.Class {
			d.Class = c
		}
		kept = append(kept, i)
	}
	if len(kept) == 0 {
		in := &a.Infos[infos[0]]
		return ignore("severity %s, urgency %s, certainty %s: the class rules say ignore", in.Severity, in.Urgency, in.Certainty)
	}
	first := &a.Infos[kept[0]]
	d.Event, d.Severity, d.Urgency = first.Event, first.Severity, first.Urgency

	// Times.
	for _, i := range kept {
		in := &a.Infos[i]
		if !in.Expires.IsZero() && in.Expires.After(d.Expires) {
			d.Expires = in.Expires
		}
		if !in.Effective.IsZero() && in.Effective.After(now) && (d.Start.IsZero() || in.Effective.Before(d.Start)) {
			d.Start = in.Effective
		}
	}
	if d.Expires.IsZero() {
		d.Expires = a.Sent.Add(m.cfg.Lifetime)
	}
	if !d.Expires.After(now) {
		return ignore("expired at %s", d.Expires.Format(time.RFC3339))
	}

	// Areas.
	set := map[string]bool{}
	var unmapped []string
	for _, i := range kept {
		in := &a.Infos[i]
		if len(in.Areas) == 0 {
			unmapped = append(unmapped, fmt.Sprintf("info[%d] has no <area>", i+1))
		}
		for j, ar := range in.Areas {
			ids := m.areas.Resolve(ar)
			if len(ids) == 0 {
				unmapped = append(unmapped, fmt.Sprintf("info[%d]/area[%d] %q (%s)", i+1, j+1, ar.Desc, describeArea(ar)))
			}
			for _, id := range ids {
				set[id] = true
			}
		}
	}
	for id := range set {
		d.Areas = append(d.Areas, id)
	}
	sort.Strings(d.Areas)
	for _, u := range unmapped {
		d.Warnings = append(d.Warnings, u+" matches no hub area: add its geocode or a polygon to the CAP area map")
	}
	if len(d.Areas) == 0 {
		return d, fmt.Errorf("%w: %s; add them to the CAP area map (nothing is broadcast)", ErrUnmapped, strings.Join(unmapped, "; "))
	}

	// Words and audio.
	d.Title = first.Headline
	if d.Title == "" {
		d.Title = first.Event
	}
	parts := []string{m.issuedSentence(lang, a.Sent)}
	if a.Status != "Actual" {
		parts = append(parts, testSentence(lang, a.Status))
	}
	for _, s := range []string{first.Headline, first.Description, first.Instruction} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	d.Text = strings.Join(parts, "\n")
	for _, i := range kept {
		for _, r := range a.Infos[i].Resources {
			if d.AudioURL != "" || !strings.HasPrefix(strings.ToLower(r.MimeType), "audio/") {
				continue
			}
			u, err := url.Parse(r.URI)
			if r.URI == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.Warnings = append(d.Warnings, fmt.Sprintf("audio resource %q has no absolute http(s) uri (%q): the text will be spoken instead", r.Desc, r.URI))
				continue
			}
			d.AudioURL, d.AudioMimeType, d.AudioDigest = r.URI, r.MimeType, r.Digest
		}
	}

	// Repeat.
	for _, r := range m.cfg.Repeats {
		if r.Class != "" && r.Class != d.Class.String() {
			continue
		}
		if len(r.Categories) > 0 && !anyCategory(a.Infos, kept, r.Categories) {
			continue
		}
		d.Repeat = r.Every
		break
	}
	return d, nil
}

// chooseInfos returns the indexes of the info blocks in the most preferred language present.
func (m *Mapper) chooseInfos(infos []Info) ([]int, string, string) {
	for _, pref := range m.cfg.Languages {
		var idx []int
		for i, in := range infos {
			if langMatches(in.Language, pref) {
				idx = append(idx, i)
			}
		}
		if len(idx) > 0 {
			return idx, infos[idx[0]].Language, ""
		}
	}
	lang := infos[0].Language
	var idx []int
	for i, in := range infos {
		if strings.EqualFold(in.Language, lang) {
			idx = append(idx, i)
		}
	}
	return idx, lang, fmt.Sprintf("no info block in %s: using %s", strings.Join(m.cfg.Languages, ", "), lang)
}

func langMatches(tag, pref string) bool {
	tag, pref = strings.ToLower(tag), strings.ToLower(pref)
	return tag == pref || strings.HasPrefix(tag, pref+"-")
}

func (m *Mapper) classOf(in *Info) string {
	match := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	for _, r := range m.cfg.Rules {
		if match(r.Severity, in.Severity) && match(r.Urgency, in.Urgency) && match(r.Certainty, in.Certainty) {
			return r.Class
		}
	}
	return m.cfg.DefaultClass
}

func anyCategory(infos []Info, idx []int, want []string) bool {
	for _, i := range idx {
		for _, c := range infos[i].Categories {
			if slices.Contains(want, c) {
				return true
			}
		}
	}
	return false
}

func describeArea(a Area) string {
	var parts []string
	for _, g := range a.Geocodes {
		parts = append(parts, "geocode "+g.Name+"="+g.Value)
	}
	if n := len(a.Polygons); n > 0 {
		parts = append(parts, fmt.Sprintf("%d polygon(s)", n))
	}
	if n := len(a.Circles); n > 0 {
		parts = append(parts, fmt.Sprintf("%d circle(s)", n))
	}
	if len(parts) == 0 {
		return "no geocode, polygon or circle"
	}
	return strings.Join(parts, ", ")
}

// issuedSentence states the original issue time, which every re-broadcast must say.
func (m *Mapper) issuedSentence(lang string, sent time.Time) string {
	t := sent
	if m.cfg.Location != nil {
		t = sent.In(m.cfg.Location)
	}
	if langMatches(lang, "vi") {
		return fmt.Sprintf("Bản tin phát hành lúc %d giờ %02d ngày %02d/%02d/%d.", t.Hour(), t.Minute(), t.Day(), int(t.Month()), t.Year())
	}
	return fmt.Sprintf("Issued at %s (UTC%s) on %s.", t.Format("15:04"), t.Format("-07:00"), t.Format("2 January 2006"))
}

func testSentence(lang, status string) string {
	vi := langMatches(lang, "vi")
	switch {
	case status == "Exercise" && vi:
		return "Đây là tin diễn tập."
	case status == "Exercise":
		return "This is an exercise."
	case vi:
		return "Đây là tin thử nghiệm."
	default:
		return "This is a test."
	}
}

// ParseConfig reads the mapping configuration as YAML (the form shown in docs/cap.md).
// Unknown keys are refused; NewMapper checks the values.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("CAP config: %w", err)
	}
	return c, nil
}
