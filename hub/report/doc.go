// Package report lays out the hub's reports (the store's figures) for the staff who sign
// them: as CSV, XLSX and a PDF in the form of a Vietnamese administrative report (the CLI
// prints the same api.ReportDoc as a table). It computes nothing: every figure comes from
// hub/store.
package report

import "github.com/loa-project/loa/hub/api"

// The layout's types live in hub/api, which the CLI shares without this package's PDF and
// XLSX libraries.
type (
	Doc   = api.ReportDoc
	Cell  = api.ReportCell
	Table = api.ReportTable
	Bar   = api.ReportBar
	Chart = api.ReportChart
	Line  = api.ReportLine
)

// Number and Period are api's, named here for the renderers.
var (
	Number = api.Number
	Period = api.Period
)

// T is a text cell.
func T(s string) Cell { return Cell{Text: s} }

// N is a whole number cell.
func N(n int64) Cell { f := float64(n); return Cell{Num: &f} }

// F is a number cell with dec decimals.
func F(v float64, dec int) Cell { return Cell{Num: &v, Dec: dec} }

// P is a share (0..1) shown as a percentage with one decimal.
func P(v float64) Cell { return Cell{Num: &v, Dec: 1, Share: true} }

// L is a summary line.
func L(label string, v Cell) Line { return Line{Label: label, Value: v} }
