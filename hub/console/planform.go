package console

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loa-project/loa/scheduler"
)

// The editor shows a schedule document two ways, as forms and as YAML; the server converts
// one into the other on every submit (the scheduler's own parser reads both), so they never
// drift and the page needs no script.

// editorDoc is the document as the forms show it: every field a string, as typed.
type editorDoc struct {
	ID, Timezone, Revision string
	Quiet                  []quietForm
	Programs               []progForm
	Errors                 []string // about the document as a whole (id, timezone, YAML syntax)
}

type quietForm struct {
	From, To string
	Errors   []string
}

// dayNames are cron's day-of-week names, Monday first as a Vietnamese week is read (Thứ Hai…).
var dayNames = [7]string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

type progForm struct {
	ID, Title, Class, Priority string
	// When is "weekly" (Days and Time), "once" (Date and Time) or "cron" (Cron as written).
	When                   string
	Days                   [7]bool // Monday first
	Time, Date, Cron       string
	ValidFrom, ValidUntil  string // dd/mm/yyyy
	MaxDuration            string
	Volume                 string // 0–100 %
	OnInterrupt            string
	RepeatCount, RepeatGap string
	RepeatEvery            string
	Outputs                map[string]bool
	Items                  []itemForm
	Errors                 map[string][]string // by field: id, when, valid, max_duration, volume, repeat, outputs, items…
}

type itemForm struct {
	Kind, Value, Duration, Title, Fallback, Ticker string
	Errors                                         []string
}

// blank reports whether the item row was left empty (the form always offers one more row).
func (it itemForm) blank() bool { return strings.TrimSpace(it.Value) == "" }

func (p progForm) blank() bool {
	if strings.TrimSpace(p.ID+p.Title+p.Time+p.Date+p.Cron) != "" {
		return false
	}
	for _, it := range p.Items {
		if !it.blank() {
			return false
		}
	}
	return true
}

// err adds msg at field of the programme.
func (p *progForm) err(field, msg string) {
	if p.Errors == nil {
		p.Errors = map[string][]string{}
	}
	p.Errors[field] = append(p.Errors[field], msg)
}

// FieldErrors are a programme field's messages, for the template.
func (p progForm) FieldErrors(field string) []string { return p.Errors[field] }

// HasErrors reports whether anything in the document is at fault.
func (d editorDoc) HasErrors() bool {
	if len(d.Errors) > 0 {
		return true
	}
	for _, q := range d.Quiet {
		if len(q.Errors) > 0 {
			return true
		}
	}
	for _, p := range d.Programs {
		if len(p.Errors) > 0 {
			return true
		}
		for _, it := range p.Items {
			if len(it.Errors) > 0 {
				return true
			}
		}
	}
	return false
}

// Limits on what one form may hold: the body limit bounds it too, these keep the loop honest.
const (
	maxFormPrograms = 2000
	maxFormItems    = 200
	maxFormQuiet    = 20
)

// readEditorForm reads the forms as posted. Fields are p.N.field and p.N.i.M.field; rows are
// read until the first index the form did not send.
func readEditorForm(f url.Values) editorDoc {
	g := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	d := editorDoc{ID: g("id"), Timezone: g("timezone"), Revision: g("revision")}
	for i := 0; i < maxFormQuiet; i++ {
		k := fmt.Sprintf("q.%d.", i)
		if _, ok := f[k+"from"]; !ok {
			break
		}
		if q := (quietForm{From: g(k + "from"), To: g(k + "to")}); q.From != "" || q.To != "" {
			d.Quiet = append(d.Quiet, q)
		}
	}
	for i := 0; i < maxFormPrograms; i++ {
		k := fmt.Sprintf("p.%d.", i)
		if _, ok := f[k+"id"]; !ok {
			break
		}
		p := progForm{ID: g(k + "id"), Title: g(k + "title"), Class: g(k + "class"), Priority: g(k + "priority"),
			When: g(k + "when"), Time: g(k + "time"), Date: g(k + "date"), Cron: g(k + "cron"),
			ValidFrom: g(k + "valid_from"), ValidUntil: g(k + "valid_until"), MaxDuration: g(k + "max_duration"),
			Volume: g(k + "volume"), OnInterrupt: g(k + "on_interrupt"), RepeatCount: g(k + "repeat_count"),
			RepeatGap: g(k + "repeat_gap"), RepeatEvery: g(k + "repeat_every"), Outputs: map[string]bool{}}
		for _, day := range f[k+"days"] {
			for j, n := range dayNames {
				if day == n {
					p.Days[j] = true
				}
			}
		}
		for _, o := range f[k+"outputs"] {
			p.Outputs[o] = true
		}
		for j := 0; j < maxFormItems; j++ {
			ik := fmt.Sprintf("%si.%d.", k, j)
			if _, ok := f[ik+"value"]; !ok {
				break
			}
			it := itemForm{Kind: g(ik + "kind"), Value: g(ik + "value"), Duration: g(ik + "duration"), Title: g(ik + "title"),
				Fallback: g(ik + "fallback"), Ticker: g(ik + "ticker")}
			if !it.blank() {
				p.Items = append(p.Items, it)
			}
		}
		if !p.blank() {
			d.Programs = append(d.Programs, p)
		}
	}
	return d
}

// yamlDoc, yamlProgram and yamlItem are the document with every value as typed, so what the
// forms hold becomes YAML the scheduler's parser then judges (and words the errors of).
type yamlDoc struct {
	Version    int           `yaml:"version"`
	ID         string        `yaml:"id"`
	Revision   any           `yaml:"revision"`
	Timezone   string        `yaml:"timezone"`
	QuietHours []yamlQuiet   `yaml:"quiet_hours,omitempty"`
	Programs   []yamlProgram `yaml:"programs"`
}

type yamlQuiet struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

type yamlProgram struct {
	ID          string      `yaml:"id"`
	Title       string      `yaml:"title,omitempty"`
	Class       string      `yaml:"class"`
	Priority    any         `yaml:"priority,omitempty"`
	Cron        string      `yaml:"cron,omitempty"`
	At          string      `yaml:"at,omitempty"`
	ValidFrom   string      `yaml:"valid_from,omitempty"`
	ValidUntil  string      `yaml:"valid_until,omitempty"`
	MaxDuration string      `yaml:"max_duration,omitempty"`
	Volume      any         `yaml:"volume,omitempty"`
	OnInterrupt string      `yaml:"on_interrupt,omitempty"`
	Repeat      *yamlRepeat `yaml:"repeat,omitempty"`
	Outputs     []string    `yaml:"outputs,omitempty"`
	Items       []yamlItem  `yaml:"items"`
}

type yamlRepeat struct {
	Count any    `yaml:"count"`
	Gap   string `yaml:"gap,omitempty"`
	Every string `yaml:"every,omitempty"`
}

type yamlItem struct {
	Content  string `yaml:"content,omitempty"`
	File     string `yaml:"file,omitempty"`
	Stream   string `yaml:"stream,omitempty"`
	Text     string `yaml:"text,omitempty"`
	Duration string `yaml:"duration,omitempty"`
	Title    string `yaml:"title,omitempty"`
	Fallback string `yaml:"fallback_text,omitempty"`
	Ticker   string `yaml:"ticker,omitempty"`
}

// number is s as a number when it is one, else s itself (the parser then names it).
func number(s string) any {
	if s == "" {
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		return x
	}
	return s
}

// isoDate turns dd/mm/yyyy into the document's yyyy-mm-dd; anything else is left for the
// parser to refuse in its words.
func isoDate(s string) string {
	p := strings.Split(s, "/")
	if len(p) != 3 {
		return s
	}
	d, e1 := strconv.Atoi(p[0])
	m, e2 := strconv.Atoi(p[1])
	y, e3 := strconv.Atoi(p[2])
	if e1 != nil || e2 != nil || e3 != nil {
		return s
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

func vnDate(d *scheduler.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%02d/%02d/%04d", d.Day, d.Month, d.Year)
}

// weeklyCron is the cron of a weekly programme: at hh:mm on the ticked days.
func weeklyCron(days [7]bool, clock string) (string, error) {
	// Runs of days are written as ranges (MON-SAT), as people write them.
	var ds []string
	for i := 0; i < 7; i++ {
		if !days[i] {
			continue
		}
		j := i
		for j+1 < 7 && days[j+1] {
			j++
		}
		switch {
		case j == i:
			ds = append(ds, dayNames[i])
		case j == i+1:
			ds = append(ds, dayNames[i], dayNames[j])
		default:
			ds = append(ds, dayNames[i]+"-"+dayNames[j])
		}
		i = j
	}
	if len(ds) == 0 {
		return "", errors.New("tick at least one day of the week")
	}
	t, err := time.Parse("15:04", clock)
	if err != nil {
		return "", fmt.Errorf("time of day %q: write it as HH:MM, e.g. 05:30", clock)
	}
	return fmt.Sprintf("0 %d %d * * %s", t.Minute(), t.Hour(), strings.Join(ds, ",")), nil
}

var weeklyPattern = regexp.MustCompile(`^0 (\d{1,2}) (\d{1,2}) \* \* ([A-Za-z0-9,*-]+)$`)

// readWeekly reads back a cron weeklyCron could have written (or an equivalent such as
// MON-SAT); ok is false for any other cron, which the form then shows as written.
func readWeekly(cron string) (days [7]bool, clock string, ok bool) {
	m := weeklyPattern.FindStringSubmatch(strings.TrimSpace(cron))
	if m == nil {
		return days, "", false
	}
	min, _ := strconv.Atoi(m[1])
	hour, _ := strconv.Atoi(m[2])
	if min > 59 || hour > 23 {
		return days, "", false
	}
	day := func(s string) (int, bool) { // Monday = 0 … Sunday = 6
		s = strings.ToUpper(s)
		for i, n := range dayNames {
			if s == n {
				return i, true
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 7 {
			return 0, false
		}
		return (n + 6) % 7, true
	}
	for _, part := range strings.Split(m[3], ",") {
		if part == "*" {
			for i := range days {
				days[i] = true
			}
			continue
		}
		a, b, isRange := strings.Cut(part, "-")
		from, ok1 := day(a)
		to, ok2 := from, true
		if isRange {
			to, ok2 = day(b)
		}
		if !ok1 || !ok2 || to < from {
			return days, "", false
		}
		for i := from; i <= to; i++ {
			days[i] = true
		}
	}
	return days, fmt.Sprintf("%02d:%02d", hour, min), true
}

// toYAML writes the forms as a document. Errors found on the way (a weekly programme without
// a day) are put at their fields; the scheduler judges the rest.
func (d *editorDoc) toYAML(loc *time.Location) []byte {
	y := yamlDoc{Version: scheduler.SchemaVersion, ID: d.ID, Revision: number(d.Revision), Timezone: d.Timezone, Programs: []yamlProgram{}}
	if y.Revision == nil {
		y.Revision = 1
	}
	for _, q := range d.Quiet {
		y.QuietHours = append(y.QuietHours, yamlQuiet{q.From, q.To})
	}
	for i := range d.Programs {
		p := &d.Programs[i]
		yp := yamlProgram{ID: p.ID, Title: p.Title, Class: p.Class, Priority: number(p.Priority),
			ValidFrom: isoDate(p.ValidFrom), ValidUntil: isoDate(p.ValidUntil), MaxDuration: p.MaxDuration,
			OnInterrupt: p.OnInterrupt, Items: []yamlItem{}}
		if yp.Class == "" {
			yp.Class = "normal"
		}
		if n, ok := yp.Priority.(int64); ok && n == 0 {
			yp.Priority = nil
		}
		switch p.When {
		case "once":
			yp.At = isoDate(p.Date)
			if p.Time != "" {
				yp.At += "T" + p.Time
			}
		case "cron":
			yp.Cron = p.Cron
		default:
			c, err := weeklyCron(p.Days, p.Time)
			if err != nil {
				p.err("when", err.Error())
			}
			yp.Cron = c
		}
		if p.Volume != "" {
			if v, err := strconv.ParseFloat(p.Volume, 64); err == nil {
				yp.Volume = v / 100
			} else {
				p.err("volume", fmt.Sprintf("volume %q: write a number from 0 to 100", p.Volume))
			}
		}
		if p.RepeatCount != "" || p.RepeatGap != "" || p.RepeatEvery != "" {
			yp.Repeat = &yamlRepeat{Count: number(p.RepeatCount), Gap: p.RepeatGap, Every: p.RepeatEvery}
			if yp.Repeat.Count == nil {
				yp.Repeat.Count = 0
			}
		}
		for _, o := range outputNames {
			if p.Outputs[o] {
				yp.Outputs = append(yp.Outputs, o)
			}
		}
		if len(yp.Outputs) == 1 && yp.Outputs[0] == "speakers" {
			yp.Outputs = nil // the default, as people write it
		}
		for _, it := range p.Items {
			yi := yamlItem{Duration: it.Duration, Title: it.Title, Fallback: it.Fallback, Ticker: it.Ticker}
			switch it.Kind {
			case "content":
				yi.Content = it.Value
			case "file":
				yi.File = it.Value
			case "stream":
				yi.Stream = it.Value
			default:
				yi.Text = it.Value
			}
			yp.Items = append(yp.Items, yi)
		}
		y.Programs = append(y.Programs, yp)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	enc.Encode(y)
	return buf.Bytes()
}

var outputNames = []string{"speakers", "screen", "board"}

// fromDocument fills the forms from a decoded document.
func fromDocument(doc *scheduler.Document, loc *time.Location) editorDoc {
	d := editorDoc{ID: doc.ID, Timezone: doc.Timezone, Revision: strconv.FormatInt(doc.Revision, 10)}
	for _, q := range doc.QuietHours {
		d.Quiet = append(d.Quiet, quietForm{From: q.From.String(), To: q.To.String()})
	}
	if l, err := time.LoadLocation(doc.Timezone); err == nil {
		loc = l
	}
	for _, p := range doc.Programs {
		f := progForm{ID: p.ID, Title: p.Title, Class: p.Class.String(), ValidFrom: vnDate(p.ValidFrom), ValidUntil: vnDate(p.ValidUntil),
			OnInterrupt: string(p.OnInterrupt), Outputs: map[string]bool{}}
		if p.Priority != 0 {
			f.Priority = strconv.Itoa(p.Priority)
		}
		if p.MaxDuration != 0 {
			f.MaxDuration = p.MaxDuration.D().String()
		}
		if p.Volume != nil {
			// Rounded to hundredths of a percent: 0.7 × 100 is 70.00000000000001 in floating point.
			f.Volume = strconv.FormatFloat(math.Round(*p.Volume*10000)/100, 'f', -1, 64)
		}
		if r := p.Repeat; r != nil {
			f.RepeatCount = strconv.Itoa(r.Count)
			if r.Gap != 0 {
				f.RepeatGap = r.Gap.D().String()
			}
			if r.Every != 0 {
				f.RepeatEvery = r.Every.D().String()
			}
		}
		switch {
		case p.At != "":
			f.When, f.Date = "once", p.At
			for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
				if t, err := time.ParseInLocation(layout, p.At, loc); err == nil && t.Second() == 0 && t.Nanosecond() == 0 {
					t = t.In(loc)
					f.Date, f.Time = t.Format("02/01/2006"), t.Format("15:04")
					break
				}
			}
		default:
			if days, clock, ok := readWeekly(p.Cron); ok {
				f.When, f.Days, f.Time = "weekly", days, clock
			} else {
				f.When, f.Cron = "cron", p.Cron
			}
		}
		for _, o := range p.Outputs {
			f.Outputs[o] = true
		}
		if len(p.Outputs) == 0 {
			f.Outputs["speakers"] = true
		}
		for _, it := range p.Items {
			fi := itemForm{Kind: string(it.Kind()), Title: it.Title, Fallback: it.Fallback, Ticker: it.Ticker}
			if it.Duration != 0 {
				fi.Duration = it.Duration.D().String()
			}
			switch it.Kind() {
			case scheduler.KindContent:
				fi.Value = it.Content
			case scheduler.KindFile:
				fi.Value = it.File
			case scheduler.KindStream:
				fi.Value = it.Stream
			default:
				fi.Value = it.Text
			}
			f.Items = append(f.Items, fi)
		}
		d.Programs = append(d.Programs, f)
	}
	return d
}

// decodeLoose reads YAML into a document without validating it, for the forms: a document
// with mistakes is still shown so they can be mended.
func decodeLoose(data []byte) (*scheduler.Document, error) {
	var doc scheduler.Document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// The scheduler words each problem "program "ID" (line N): field: message" or
// "program #N: …"; the editor puts it at that programme's field.
var (
	progErr  = regexp.MustCompile(`^program (?:"((?:[^"\\]|\\.)*)"|#(\d+))(?: \(line \d+\))?: (.*)$`)
	itemErr  = regexp.MustCompile(`^items\[(\d+)\]: (.*)$`)
	quietErr = regexp.MustCompile(`^quiet_hours\[(\d+)\]: `)
	// A value the decoder refused names no programme, only itself: duration "abc": …
	valueErr = regexp.MustCompile(`^(duration|date|time of day|class) "((?:[^"\\]|\\.)*)"`)
)

// placeValueError puts a decoder's message about a value at the first field holding that
// value; it reports whether it found one.
func (d *editorDoc) placeValueError(line string) bool {
	m := valueErr.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	v, err := strconv.Unquote(`"` + m[2] + `"`)
	if err != nil {
		return false
	}
	v = strings.TrimSpace(v)
	switch m[1] {
	case "time of day":
		for i := range d.Quiet {
			if d.Quiet[i].From == v || d.Quiet[i].To == v {
				d.Quiet[i].Errors = append(d.Quiet[i].Errors, line)
				return true
			}
		}
		return false
	}
	for i := range d.Programs {
		p := &d.Programs[i]
		switch m[1] {
		case "class":
			if p.Class == v {
				p.err("class", line)
				return true
			}
		case "date":
			if isoDate(p.ValidFrom) == v || isoDate(p.ValidUntil) == v {
				p.err("valid", line)
				return true
			}
		case "duration":
			switch v {
			case p.MaxDuration:
				p.err("max_duration", line)
				return true
			case p.RepeatGap, p.RepeatEvery:
				p.err("repeat", line)
				return true
			}
			for j := range p.Items {
				if p.Items[j].Duration == v {
					p.Items[j].Errors = append(p.Items[j].Errors, line)
					return true
				}
			}
		}
	}
	return false
}

// fieldOf is the form field a programme's error message is about, by its first word.
func fieldOf(msg string) string {
	word := msg
	if i := strings.IndexAny(msg, " :."); i > 0 {
		word = msg[:i]
	}
	switch word {
	case "id", "title", "class", "priority", "max_duration", "volume", "on_interrupt", "outputs", "items":
		return word
	case "cron", "at", "needs", "has":
		return "when"
	case "valid_from", "valid_until":
		return "valid"
	case "repeat", "repeat.count":
		return "repeat"
	}
	if strings.HasPrefix(msg, "an emergency program must have items") {
		return "items"
	}
	return "program"
}

// placeErrors puts each of the scheduler's messages at its field in the forms; what names no
// programme stays with the document.
func (d *editorDoc) placeErrors(err error, name string) {
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), name+": ")
		if line == "" {
			continue
		}
		m := progErr.FindStringSubmatch(line)
		if m == nil && d.placeValueError(line) {
			continue
		}
		if m == nil {
			if q := quietErr.FindStringSubmatch(line); q != nil {
				if i, _ := strconv.Atoi(q[1]); i < len(d.Quiet) {
					d.Quiet[i].Errors = append(d.Quiet[i].Errors, line)
					continue
				}
			}
			d.Errors = append(d.Errors, line)
			continue
		}
		idx := -1
		if m[2] != "" {
			idx, _ = strconv.Atoi(m[2])
			idx--
		} else {
			id, _ := strconv.Unquote(`"` + m[1] + `"`)
			for i, p := range d.Programs {
				if p.ID == id {
					idx = i
					break
				}
			}
		}
		if idx < 0 || idx >= len(d.Programs) {
			d.Errors = append(d.Errors, line)
			continue
		}
		p := &d.Programs[idx]
		if im := itemErr.FindStringSubmatch(m[3]); im != nil {
			if j, _ := strconv.Atoi(im[1]); j < len(p.Items) {
				p.Items[j].Errors = append(p.Items[j].Errors, im[2])
				continue
			}
		}
		f := fieldOf(m[3])
		if f == "when" && len(p.Errors["when"]) > 0 && !strings.HasPrefix(m[3], "cron") {
			continue // the form said already what is missing (no day ticked)
		}
		p.err(f, m[3])
	}
}

// addBlanks gives the forms one empty row more of each kind (a programme, an item per
// programme, a quiet span): filled in, it is added on the next submit; left empty, ignored.
func (d *editorDoc) addBlanks() {
	d.Quiet = append(d.Quiet, quietForm{})
	for i := range d.Programs {
		d.Programs[i].Items = append(d.Programs[i].Items, itemForm{Kind: "content"})
	}
	d.Programs = append(d.Programs, progForm{When: "weekly", Class: "normal", Outputs: map[string]bool{"speakers": true},
		Items: []itemForm{{Kind: "content"}}})
}
