package api

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The laid-out form of the hub's reports (GET /api/reports/…?format=json): what the CLI prints
// as a table and hub/report writes as CSV, XLSX and PDF.

// ReportCell is one table cell: text, or a number shown with Dec decimals.
type ReportCell struct {
	Text  string   `json:"text,omitempty"`
	Num   *float64 `json:"num,omitempty"`
	Dec   int      `json:"dec,omitempty"`
	Share bool     `json:"share,omitempty"` // Num is a fraction shown as a percentage
}

// ReportTable is one table of a report.
type ReportTable struct {
	Title   string         `json:"title"`
	Headers []string       `json:"headers"`
	Rows    [][]ReportCell `json:"rows"`
	Note    string         `json:"note,omitempty"`
}

// ReportBar is one bar of a chart: a share from 0 to 1.
type ReportBar struct {
	Label string  `json:"label"`
	Share float64 `json:"share"`
}

// ReportChart is a bar chart of shares.
type ReportChart struct {
	Title string      `json:"title"`
	Bars  []ReportBar `json:"bars"`
}

// ReportLine is one "label: value" line of the report's summary.
type ReportLine struct {
	Label string     `json:"label"`
	Value ReportCell `json:"value"`
}

// ReportDoc is one report as laid out for people.
type ReportDoc struct {
	Kind    string        `json:"kind"` // plan, plays, devices
	Title   string        `json:"title"`
	Unit    string        `json:"unit"`   // the issuing unit: the area reported on
	Period  string        `json:"period"` // "Từ ngày dd/mm/yyyy đến ngày dd/mm/yyyy"
	Made    time.Time     `json:"made"`
	Summary []ReportLine  `json:"summary,omitempty"`
	Tables  []ReportTable `json:"tables"`
	Charts  []ReportChart `json:"charts,omitempty"`
}

// Period words a half-open period [from, to) as staff write it: the last day is the day
// before to.
func Period(from, to time.Time, loc *time.Location) string {
	last := to.In(loc).Add(-time.Nanosecond)
	return fmt.Sprintf("Từ ngày %s đến ngày %s", from.In(loc).Format("02/01/2006"), last.Format("02/01/2006"))
}

// Number writes a number the Vietnamese way: '.' between thousands, ',' before decimals.
func Number(v float64, dec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', dec, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v < 0 && strings.Trim(s, "0.") != "" {
		b.WriteByte('-')
	}
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	if frac != "" {
		b.WriteByte(',')
		b.WriteString(frac)
	}
	return b.String()
}

// String is the cell as shown on a page or a terminal.
func (c ReportCell) String() string {
	if c.Num == nil {
		return c.Text
	}
	if c.Share {
		return Number(*c.Num*100, c.Dec) + "%"
	}
	return Number(*c.Num, c.Dec)
}

// Plain is the cell for a machine (CSV): numbers with '.' decimals, shares as percentages.
func (c ReportCell) Plain() string {
	if c.Num == nil {
		return c.Text
	}
	v := *c.Num
	if c.Share {
		v *= 100
	}
	return strconv.FormatFloat(v, 'f', c.Dec, 64)
}

// ReportSettings is what the plan report counts towards its target (GET and PUT
// /api/settings/reports): the language codes of the national language (a product in any
// other is in an ethnic-minority or foreign language) and the format codes of digital
// products. In a PUT, entries may be codes or labels of the hub's lists.
type ReportSettings struct {
	HomeLanguages  []string   `json:"home_languages"`
	DigitalFormats []string   `json:"digital_formats"`
	UpdatedAt      *time.Time `json:"updated_at,omitempty"` // never set: the defaults
}
