// Package cap reads OASIS Common Alerting Protocol 1.2 alerts and maps them to Loa
// bulletins: which action (create, replace, cancel, ignore), which class, which hub areas,
// what text to speak and which audio to play. It does no I/O beyond reading the document and
// the area mapping file; the hub turns a Decision into a program and pushes it.
package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Namespace is the only CAP namespace accepted.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// MaxSize bounds an alert document. Real alerts are a few kB; anything near this is abuse.
const MaxSize = 1 << 20

// The CAP 1.2 schema lets an alert carry an XML signature or encryption block; the hub does
// not check them (the HTTP layer authenticates the sender) but must not refuse them.
const (
	nsDSig = "http://www.w3.org/2000/09/xmldsig#"
	nsXEnc = "http://www.w3.org/2001/04/xmlenc#"
)

// maxDepth bounds element nesting; CAP needs 4 levels (alert/info/area/geocode/value is 5).
const maxDepth = 16

// Alert is a parsed and validated CAP 1.2 alert.
type Alert struct {
	Identifier  string
	Sender      string
	Sent        time.Time
	Status      string // Actual | Exercise | System | Test | Draft
	MsgType     string // Alert | Update | Cancel | Ack | Error
	Source      string
	Scope       string // Public | Restricted | Private
	Restriction string
	Addresses   string
	Note        string
	References  []Reference
	Incidents   []string
	Infos       []Info
}

// Reference names an earlier message: CAP's "sender,identifier,sent" triple.
type Reference struct {
	Sender     string
	Identifier string
	Sent       time.Time
}

// Key is the series key of the referenced message.
func (r Reference) Key() string { return r.Sender + "," + r.Identifier }

// Key is this alert's own key, the same form as Reference.Key.
func (a *Alert) Key() string { return a.Sender + "," + a.Identifier }

// Info is one <info> block: the same event, possibly in several languages.
type Info struct {
	Language     string // defaults to en-US as CAP says
	Categories   []string
	Event        string
	ResponseType []string
	Urgency      string
	Severity     string
	Certainty    string
	EventCodes   []NameValue
	Effective    time.Time // zero when absent
	Onset        time.Time
	Expires      time.Time
	SenderName   string
	Headline     string
	Description  string
	Instruction  string
	Web          string
	Contact      string
	Parameters   []NameValue
	Resources    []Resource
	Areas        []Area
}

// NameValue is CAP's valueName/value pair (geocode, eventCode, parameter).
type NameValue struct {
	Name  string
	Value string
}

// Resource is an attached file, e.g. a recorded audio bulletin.
type Resource struct {
	Desc     string
	MimeType string
	Size     int64
	URI      string
	Digest   string // SHA-1 as CAP 1.2 defines it
}

// Area is one <area> block.
type Area struct {
	Desc     string
	Polygons []Polygon
	Circles  []Circle
	Geocodes []NameValue
}

// Point is WGS 84 latitude and longitude in degrees.
type Point struct{ Lat, Lon float64 }

// Polygon is a closed ring (first point equals last).
type Polygon []Point

// Circle is a centre and a radius in kilometres.
type Circle struct {
	Center   Point
	RadiusKm float64
}

// Problem is one thing wrong with a document, at a path like "alert/info[2]/urgency".
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// Error lists every problem found in a document, so a sender can fix them in one go.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("refused CAP alert: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrTooLarge is returned when a document exceeds MaxSize.
var ErrTooLarge = fmt.Errorf("refused CAP alert: larger than %d bytes", MaxSize)

// Read reads at most MaxSize bytes from r and parses them.
func Read(r io.Reader) (*Alert, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read CAP alert: %w", err)
	}
	return Parse(data)
}

// Parse parses and validates one CAP 1.2 alert document.
func Parse(data []byte) (*Alert, error) {
	if len(data) > MaxSize {
		return nil, ErrTooLarge
	}
	if err := scan(data); err != nil {
		return nil, err
	}
	var raw xmlAlert
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(&raw); err != nil {
		return nil, &Error{[]Problem{{"alert", "not well-formed XML: " + strings.TrimPrefix(err.Error(), "xml: ")}}}
	}
	return raw.validate()
}

// scan walks the tokens once before decoding: it refuses DTDs (entity expansion bombs,
// external entities), deep nesting and a wrong root or namespace, with a message that says so.
func scan(data []byte) error {
	return scanXML(data, "alert", "a CAP alert", checkAlertElement)
}

func checkAlertElement(t xml.StartElement, depth int) string {
	if depth == 0 {
		if t.Name.Local != "alert" {
			return fmt.Sprintf("root element is <%s>, want <alert>", t.Name.Local)
		}
		if t.Name.Space != Namespace {
			if strings.HasPrefix(t.Name.Space, "urn:oasis:names:tc:emergency:cap:") {
				return fmt.Sprintf("namespace %q is another CAP version; only CAP 1.2 (%s) is accepted", t.Name.Space, Namespace)
			}
			return fmt.Sprintf("namespace is %q, want %q", t.Name.Space, Namespace)
		}
	}
	if t.Name.Space != Namespace && t.Name.Space != nsDSig && t.Name.Space != nsXEnc {
		return fmt.Sprintf("element <%s> is in namespace %q; CAP elements must be in %s (only XML signature and encryption elements may be added)", t.Name.Local, t.Name.Space, Namespace)
	}
	return ""
}

// scanXML is the shared safety pass: what names the document in messages (path, what) and a
// check of each start element at its depth (0 for the root) returning a problem or "".
func scanXML(data []byte, path, what string, check func(t xml.StartElement, depth int) string) error {
	fail := func(msg string) error { return &Error{[]Problem{{path, msg}}} }
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "xml: ")
			if strings.Contains(msg, "CharsetReader") {
				return fail("the document must be UTF-8 (" + msg + ")")
			}
			return fail("not well-formed XML: " + msg)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fail("DOCTYPE and entity declarations are not allowed in " + what)
		case xml.ProcInst:
			if t.Target != "xml" {
				return fail(fmt.Sprintf("processing instruction <?%s?> is not allowed", t.Target))
			}
			if m := xmlEncoding.FindSubmatch(t.Inst); m != nil && !strings.EqualFold(string(m[1]), "UTF-8") {
				return fail(fmt.Sprintf("the document must be UTF-8, it declares %q", m[1]))
			}
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return fail("more than one root element")
				}
			}
			if msg := check(t, depth); msg != "" {
				return fail(msg)
			}
			depth++
			if depth > maxDepth {
				return fail(fmt.Sprintf("elements nested deeper than %d levels", maxDepth))
			}
		case xml.EndElement:
			depth--
		}
	}
	if roots == 0 {
		return fail(fmt.Sprintf("no <%s> element (empty document, or not XML)", path))
	}
	return nil
}

type xmlAlert struct {
	XMLName     xml.Name  `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier  *string   `xml:"identifier"`
	Sender      *string   `xml:"sender"`
	Sent        *string   `xml:"sent"`
	Status      *string   `xml:"status"`
	MsgType     *string   `xml:"msgType"`
	Source      string    `xml:"source"`
	Scope       *string   `xml:"scope"`
	Restriction string    `xml:"restriction"`
	Addresses   string    `xml:"addresses"`
	Codes       []string  `xml:"code"`
	Note        string    `xml:"note"`
	References  *string   `xml:"references"`
	Incidents   string    `xml:"incidents"`
	Infos       []xmlInfo `xml:"info"`
}

type xmlInfo struct {
	Language     string         `xml:"language"`
	Categories   []string       `xml:"category"`
	Event        *string        `xml:"event"`
	ResponseType []string       `xml:"responseType"`
	Urgency      *string        `xml:"urgency"`
	Severity     *string        `xml:"severity"`
	Certainty    *string        `xml:"certainty"`
	Audience     string         `xml:"audience"`
	EventCodes   []xmlNameValue `xml:"eventCode"`
	Effective    *string        `xml:"effective"`
	Onset        *string        `xml:"onset"`
	Expires      *string        `xml:"expires"`
	SenderName   string         `xml:"senderName"`
	Headline     string         `xml:"headline"`
	Description  string         `xml:"description"`
	Instruction  string         `xml:"instruction"`
	Web          string         `xml:"web"`
	Contact      string         `xml:"contact"`
	Parameters   []xmlNameValue `xml:"parameter"`
	Resources    []xmlResource  `xml:"resource"`
	Areas        []xmlArea      `xml:"area"`
}

type xmlNameValue struct {
	Name  *string `xml:"valueName"`
	Value *string `xml:"value"`
}

type xmlResource struct {
	Desc     *string `xml:"resourceDesc"`
	MimeType *string `xml:"mimeType"`
	Size     *string `xml:"size"`
	URI      string  `xml:"uri"`
	Digest   string  `xml:"digest"`
}

type xmlArea struct {
	Desc     *string        `xml:"areaDesc"`
	Polygons []string       `xml:"polygon"`
	Circles  []string       `xml:"circle"`
	Geocodes []xmlNameValue `xml:"geocode"`
	Altitude string         `xml:"altitude"`
	Ceiling  string         `xml:"ceiling"`
}

var (
	statuses      = []string{"Actual", "Exercise", "System", "Test", "Draft"}
	msgTypes      = []string{"Alert", "Update", "Cancel", "Ack", "Error"}
	scopes        = []string{"Public", "Restricted", "Private"}
	categories    = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	responseTypes = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
	urgencies     = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	severities    = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	certainties   = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

// xmlEncoding finds the encoding in an XML declaration, spaces around "=" allowed.
var xmlEncoding = regexp.MustCompile(`encoding\s*=\s*["']([^"']*)["']`)

// capTime is CAP 1.2's dateTime: seconds, and a numeric offset (no "Z", no fractions).
var capTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$`)

type checker struct{ problems []Problem }

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{path, fmt.Sprintf(format, args...)})
}

// required returns the trimmed text of a mandatory element, noting a problem if it is absent.
func (c *checker) required(path string, v *string) string {
	if v == nil {
		c.add(path, "missing (required by CAP 1.2)")
		return ""
	}
	s := strings.TrimSpace(*v)
	if s == "" {
		c.add(path, "empty (required by CAP 1.2)")
	}
	return s
}

func (c *checker) enum(path string, v *string, allowed []string) string {
	s := c.required(path, v)
	if s != "" {
		c.oneOf(path, s, allowed)
	}
	return s
}

func (c *checker) oneOf(path, s string, allowed []string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	c.add(path, "%q is not one of %s", s, strings.Join(allowed, ", "))
}

func (c *checker) time(path, s string) time.Time {
	s = strings.TrimSpace(s)
	if !capTime.MatchString(s) {
		hint := ""
		if strings.HasSuffix(s, "Z") {
			hint = " (CAP 1.2 forbids \"Z\": write +00:00)"
		}
		c.add(path, "%q is not a CAP time like 2026-11-26T14:57:00+07:00%s", s, hint)
		return time.Time{}
	}
	t, err := time.Parse("2006-01-02T15:04:05-07:00", s)
	if err != nil {
		c.add(path, "%q is not a valid date and time: %v", s, err)
		return time.Time{}
	}
	return t
}

func (c *checker) optTime(path string, v *string) time.Time {
	if v == nil {
		return time.Time{}
	}
	return c.time(path, *v)
}

// noSpaceOrComma checks identifier and sender, which are joined with commas and spaces in
// references and so must not contain either.
func (c *checker) noSpaceOrComma(path, s string) {
	if strings.ContainsAny(s, " ,<&\t\r\n") {
		c.add(path, "%q must not contain spaces, commas, < or &", s)
	}
}

func (r *xmlAlert) validate() (*Alert, error) {
	var c checker
	a := &Alert{
		Source:      strings.TrimSpace(r.Source),
		Restriction: strings.TrimSpace(r.Restriction),
		Addresses:   strings.TrimSpace(r.Addresses),
		Note:        strings.TrimSpace(r.Note),
		Incidents:   strings.Fields(r.Incidents),
	}
	a.Identifier = c.required("alert/identifier", r.Identifier)
	c.noSpaceOrComma("alert/identifier", a.Identifier)
	a.Sender = c.required("alert/sender", r.Sender)
	c.noSpaceOrComma("alert/sender", a.Sender)
	if s := c.required("alert/sent", r.Sent); s != "" {
		a.Sent = c.time("alert/sent", s)
	}
	a.Status = c.enum("alert/status", r.Status, statuses)
	a.MsgType = c.enum("alert/msgType", r.MsgType, msgTypes)
	a.Scope = c.enum("alert/scope", r.Scope, scopes)
	if a.Scope == "Restricted" && a.Restriction == "" {
		c.add("alert/restriction", "missing: required when scope is Restricted")
	}
	if a.Scope == "Private" && a.Addresses == "" {
		c.add("alert/addresses", "missing: required when scope is Private")
	}
	if r.References != nil {
		for i, f := range strings.Fields(*r.References) {
			path := fmt.Sprintf("alert/references[%d]", i+1)
			parts := strings.Split(f, ",")
			if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
				c.add(path, "%q is not sender,identifier,sent", f)
				continue
			}
			a.References = append(a.References, Reference{Sender: parts[0], Identifier: parts[1], Sent: c.time(path, parts[2])})
		}
	}
	switch a.MsgType {
	case "Update", "Cancel", "Ack", "Error":
		if len(a.References) == 0 && r.References == nil {
			c.add("alert/references", "missing: a %s must name the message(s) it refers to", a.MsgType)
		} else if len(a.References) == 0 {
			c.add("alert/references", "empty: a %s must name the message(s) it refers to", a.MsgType)
		}
	}
	for i := range r.Infos {
		a.Infos = append(a.Infos, r.Infos[i].validate(&c, fmt.Sprintf("alert/info[%d]", i+1), a.Sent))
	}
	if len(c.problems) > 0 {
		return nil, &Error{c.problems}
	}
	return a, nil
}

func (r *xmlInfo) validate(c *checker, path string, sent time.Time) Info {
	in := Info{
		Language:    strings.TrimSpace(r.Language),
		Event:       c.required(path+"/event", r.Event),
		Urgency:     c.enum(path+"/urgency", r.Urgency, urgencies),
		Severity:    c.enum(path+"/severity", r.Severity, severities),
		Certainty:   c.enum(path+"/certainty", r.Certainty, certainties),
		SenderName:  strings.TrimSpace(r.SenderName),
		Headline:    strings.TrimSpace(r.Headline),
		Description: strings.TrimSpace(r.Description),
		Instruction: strings.TrimSpace(r.Instruction),
		Web:         strings.TrimSpace(r.Web),
		Contact:     strings.TrimSpace(r.Contact),
	}
	if in.Language == "" {
		in.Language = "en-US"
	}
	if len(r.Categories) == 0 {
		c.add(path+"/category", "missing (at least one is required by CAP 1.2)")
	}
	for _, cat := range r.Categories {
		cat = strings.TrimSpace(cat)
		c.oneOf(path+"/category", cat, categories)
		in.Categories = append(in.Categories, cat)
	}
	for _, rt := range r.ResponseType {
		rt = strings.TrimSpace(rt)
		c.oneOf(path+"/responseType", rt, responseTypes)
		in.ResponseType = append(in.ResponseType, rt)
	}
	in.EventCodes = nameValues(c, path+"/eventCode", r.EventCodes)
	in.Parameters = nameValues(c, path+"/parameter", r.Parameters)
	in.Effective = c.optTime(path+"/effective", r.Effective)
	in.Onset = c.optTime(path+"/onset", r.Onset)
	in.Expires = c.optTime(path+"/expires", r.Expires)
	if !in.Expires.IsZero() && !sent.IsZero() && !in.Expires.After(sent) {
		c.add(path+"/expires", "%s is not after alert/sent %s", in.Expires.Format(time.RFC3339), sent.Format(time.RFC3339))
	}
	if !in.Expires.IsZero() && !in.Effective.IsZero() && !in.Expires.After(in.Effective) {
		c.add(path+"/expires", "%s is not after effective %s", in.Expires.Format(time.RFC3339), in.Effective.Format(time.RFC3339))
	}
	for i, rr := range r.Resources {
		rp := fmt.Sprintf("%s/resource[%d]", path, i+1)
		res := Resource{
			Desc:     c.required(rp+"/resourceDesc", rr.Desc),
			MimeType: c.required(rp+"/mimeType", rr.MimeType),
			URI:      strings.TrimSpace(rr.URI),
			Digest:   strings.TrimSpace(rr.Digest),
		}
		if rr.Size != nil {
			n, err := strconv.ParseInt(strings.TrimSpace(*rr.Size), 10, 64)
			if err != nil || n < 0 {
				c.add(rp+"/size", "%q is not a whole number of bytes", *rr.Size)
			}
			res.Size = n
		}
		in.Resources = append(in.Resources, res)
	}
	for i, ra := range r.Areas {
		ap := fmt.Sprintf("%s/area[%d]", path, i+1)
		ar := Area{Desc: c.required(ap+"/areaDesc", ra.Desc)}
		for j, p := range ra.Polygons {
			poly, err := ParsePolygon(p)
			if err != nil {
				c.add(fmt.Sprintf("%s/polygon[%d]", ap, j+1), "%v", err)
				continue
			}
			ar.Polygons = append(ar.Polygons, poly)
		}
		for j, s := range ra.Circles {
			circ, err := ParseCircle(s)
			if err != nil {
				c.add(fmt.Sprintf("%s/circle[%d]", ap, j+1), "%v", err)
				continue
			}
			ar.Circles = append(ar.Circles, circ)
		}
		ar.Geocodes = nameValues(c, ap+"/geocode", ra.Geocodes)
		in.Areas = append(in.Areas, ar)
	}
	return in
}

func nameValues(c *checker, path string, in []xmlNameValue) []NameValue {
	var out []NameValue
	for i, nv := range in {
		p := fmt.Sprintf("%s[%d]", path, i+1)
		out = append(out, NameValue{Name: c.required(p+"/valueName", nv.Name), Value: c.required(p+"/value", nv.Value)})
	}
	return out
}

// Problems returns the problem list of an error from Parse, or nil for other errors.
func Problems(err error) []Problem {
	var e *Error
	if errors.As(err, &e) {
		return e.Problems
	}
	return nil
}
