package console

import (
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/report"
)

// Labels typed by staff (a language's or theme's name, an area's) are text in the SVG, never
// markup; the pieces of a bar add up to its height.
func TestChartsEscapeLabels(t *testing.T) {
	s := report.Series{Step: "month", TargetLow: 0.15, TargetHigh: 0.2,
		Languages: []report.Key{{Code: "x", Label: `<script>alert(1)</script>`}, {Code: "", Label: "(chưa phân loại)"}},
		Points: []report.SeriesPoint{{Label: `03/2026"><b>`, Products: 4, Tagged: 3, Target: 1, Share: 1.0 / 3,
			ByLanguage: map[string]report.GroupFigures{"x": {Products: 1}, "": {Products: 3}}}}}
	c := stackedChart(s, s.Languages, func(p report.SeriesPoint) map[string]report.GroupFigures { return p.ByLanguage }, `id"x`, "sản phẩm", true)
	out := string(c.SVG) + string(targetChart(s, "t"))
	for _, bad := range []string{"<script>", "<b>", `id"x`} {
		if strings.Contains(out, bad) {
			t.Errorf("%q reached the SVG as markup:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;: 1 sản phẩm (25,0%)") || !strings.Contains(out, `height="42.5"`) || !strings.Contains(out, `height="127.5"`) {
		t.Errorf("the pieces are not a quarter and three quarters of the bar:\n%s", out)
	}
	if len(c.Keys) != 2 || c.Keys[1].Class != "s-none" {
		t.Errorf("legend %+v: the unclassified are grey", c.Keys)
	}
}
