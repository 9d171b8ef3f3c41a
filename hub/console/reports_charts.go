package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/report"
)

// The plan report's charts, drawn here as SVG in the page (no script, no chart library; the
// CSP allows no inline style, so colours are classes of reports.css): shares of products by
// language and by theme per month or week, stacked, and the target share per month against
// the 15–20% band. Each chart is followed by its figures as a table, which screen readers and
// narrow screens read.

// Chart geometry in SVG units: a wide screen scales the SVG to its box; on a phone it keeps this
// size, its labels readable, and its box scrolls (reports.css).
const (
	chartLeft   = 40
	chartTop    = 12
	chartPlotH  = 170
	chartBottom = 38
	chartSlot   = 56
	chartBar    = 36
	chartColors = 8 // classes s0…s7; the unclassified are s-none
)

// chartKey is one stacked series with its colour class, for the legend and the table.
type chartKey struct {
	Code, Label, Class string
}

// stackChart is a stacked bar chart of shares per point and its legend.
type stackChart struct {
	SVG  template.HTML
	Keys []chartKey
}

func keyClasses(keys []report.Key) []chartKey {
	out := make([]chartKey, len(keys))
	for i, k := range keys {
		c := fmt.Sprintf("s%d", i%chartColors)
		if k.Code == "" {
			c = "s-none"
		}
		out[i] = chartKey{Code: k.Code, Label: k.Label, Class: c}
	}
	return out
}

// pct writes a share as staff read it: "12,5%".
func pct(v float64) string { return api.Number(v*100, 1) + "%" }

// svgOpen starts a chart of n points whose title is the element labelID.
func svgOpen(b *strings.Builder, n int, labelID string) (width int) {
	width = chartLeft + max(n, 1)*chartSlot + 8
	h := chartTop + chartPlotH + chartBottom
	fmt.Fprintf(b, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="%s" data-points="%d">`,
		width, h, width, h, template.HTMLEscapeString(labelID), n)
	return width
}

// yAxis draws the grid lines of shares 0…top and their labels.
func yAxis(b *strings.Builder, width int, top float64, step float64) {
	for v := 0.0; v <= top+1e-9; v += step {
		y := chartTop + chartPlotH - v/top*chartPlotH
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="ylabel" x="%d" y="%.1f">%s%%</text>`,
			chartLeft, width-4, y, y, chartLeft-4, y+4, api.Number(v*100, 0))
	}
}

// xLabel writes a point's label in two lines ("03" over "2026", "02/03" over "–08/03").
func xLabel(b *strings.Builder, x float64, label string) {
	first, second, ok := strings.Cut(label, "–")
	if ok {
		second = "–" + second
	} else {
		first, second, _ = strings.Cut(label, "/")
	}
	y := chartTop + chartPlotH + 15
	fmt.Fprintf(b, `<text class="xlabel" x="%.1f" y="%d">%s</text>`, x, y, template.HTMLEscapeString(first))
	if second != "" {
		fmt.Fprintf(b, `<text class="xlabel sub" x="%.1f" y="%d">%s</text>`, x, y+14, template.HTMLEscapeString(second))
	}
}

// band draws the target band (15–20%) across the plot on a scale of 0…top.
func band(b *strings.Builder, width int, top, low, high float64) {
	y1 := chartTop + chartPlotH - high/top*chartPlotH
	y2 := chartTop + chartPlotH - low/top*chartPlotH
	fmt.Fprintf(b, `<rect class="band" x="%d" y="%.1f" width="%d" height="%.1f"><title>%s–%s</title></rect>`,
		chartLeft, y1, width-4-chartLeft, y2-y1, pct(low), pct(high))
}

// stackedChart draws, per point, its products' shares by the dimension's keys, the first key
// at the bottom; each piece's title names it with its products and share. withBand lays the
// target band over the bars.
func stackedChart(s report.Series, keys []report.Key, dim func(report.SeriesPoint) map[string]report.GroupFigures, labelID, productsWord string, withBand bool) stackChart {
	ck := keyClasses(keys)
	var b strings.Builder
	width := svgOpen(&b, len(s.Points), labelID)
	yAxis(&b, width, 1, 0.25)
	for i, p := range s.Points {
		x := float64(chartLeft + i*chartSlot + (chartSlot-chartBar)/2)
		base := float64(chartTop + chartPlotH)
		fmt.Fprintf(&b, `<g class="point" data-label="%s" data-products="%d">`, template.HTMLEscapeString(p.Label), p.Products)
		for _, k := range ck {
			g, ok := dim(p)[k.Code]
			if !ok || p.Products == 0 {
				continue
			}
			share := float64(g.Products) / float64(p.Products)
			h := share * chartPlotH
			base -= h
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%d" height="%.1f"><title>%s · %s: %d %s (%s)</title></rect>`,
				k.Class, x, base, chartBar, h, template.HTMLEscapeString(p.Label), template.HTMLEscapeString(k.Label), g.Products,
				template.HTMLEscapeString(productsWord), pct(share))
		}
		b.WriteString(`</g>`)
		xLabel(&b, x+chartBar/2, p.Label)
	}
	if withBand { // over the bars, so the bottom pieces read against it
		band(&b, width, 1, s.TargetLow, s.TargetHigh)
	}
	b.WriteString(`</svg>`)
	return stackChart{SVG: template.HTML(b.String()), Keys: ck}
}

// targetChart draws per point the share of target products among the classified, coloured
// by its band, over the target band, with the share written above each bar.
func targetChart(s report.Series, labelID string) template.HTML {
	top := 0.3
	for _, p := range s.Points {
		top = max(top, math.Ceil(p.Share*10+0.5)/10)
	}
	top = min(top, 1)
	var b strings.Builder
	width := svgOpen(&b, len(s.Points), labelID)
	band(&b, width, top, s.TargetLow, s.TargetHigh)
	yAxis(&b, width, top, 0.1)
	for i, p := range s.Points {
		x := float64(chartLeft + i*chartSlot + (chartSlot-chartBar)/2)
		h := p.Share / top * chartPlotH
		y := chartTop + chartPlotH - h
		cls := "b-" + bandOf(p.Share, s.TargetLow, s.TargetHigh)
		if p.Tagged == 0 {
			cls = "b-none"
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%d" height="%.1f" data-share="%.4f"><title>%s: %d/%d (%s)</title></rect>`,
			cls, x, y, chartBar, h, p.Share, template.HTMLEscapeString(p.Label), p.Target, p.Tagged, pct(p.Share))
		if p.Tagged > 0 {
			fmt.Fprintf(&b, `<text class="value" x="%.1f" y="%.1f">%s</text>`, x+chartBar/2, y-4, api.Number(p.Share*100, 0)+"%")
		}
		xLabel(&b, x+chartBar/2, p.Label)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bandOf is where a share stands against the target: below, within or above.
func bandOf(share, low, high float64) string {
	switch {
	case share < low:
		return "below"
	case share > high:
		return "above"
	}
	return "within"
}

// planCharts is what the plan report's page draws besides the report.
type planCharts struct {
	Series           report.Series
	Languages        stackChart
	Themes           stackChart
	Target           template.HTML
	Tree             report.AreaTree
	From, To         string // the form's dates, for the tree's links
	LanguageCells    [][]string
	ThemeCells       [][]string
	LangHead, ThHead []string
}

// newPlanCharts draws the charts of a series and tree in lang.
func newPlanCharts(lang string, s report.Series, tree report.AreaTree, from, to string) *planCharts {
	pc := &planCharts{Series: s, Tree: tree, From: from, To: to}
	word := tr(lang, "reports.products")
	pc.Languages = stackedChart(s, s.Languages, func(p report.SeriesPoint) map[string]report.GroupFigures { return p.ByLanguage }, "chart-language", word, true)
	pc.Themes = stackedChart(s, s.Themes, func(p report.SeriesPoint) map[string]report.GroupFigures { return p.ByTheme }, "chart-theme", word, false)
	pc.Target = targetChart(s, "chart-target")
	pc.LangHead, pc.LanguageCells = chartTable(s, s.Languages, func(p report.SeriesPoint) map[string]report.GroupFigures { return p.ByLanguage })
	pc.ThHead, pc.ThemeCells = chartTable(s, s.Themes, func(p report.SeriesPoint) map[string]report.GroupFigures { return p.ByTheme })
	return pc
}

// chartTable is a stacked chart's figures: a row per point, a column per key with its
// products and broadcasts.
func chartTable(s report.Series, keys []report.Key, dim func(report.SeriesPoint) map[string]report.GroupFigures) ([]string, [][]string) {
	head := make([]string, 0, len(keys))
	for _, k := range keys {
		head = append(head, k.Label)
	}
	var rows [][]string
	for _, p := range s.Points {
		row := []string{p.Label, api.Number(float64(p.Products), 0)}
		for _, k := range keys {
			g := dim(p)[k.Code]
			cell := "0"
			if g.Products > 0 {
				cell = fmt.Sprintf("%s (%s) · %s", api.Number(float64(g.Products), 0), pct(float64(g.Products)/float64(p.Products)), api.Number(float64(g.Broadcasts), 0))
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return head, rows
}
