package report

import (
	"sort"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/store"
)

// The plan report's charts: its figures month by month, and its areas' coverage and target
// share. The console draws them; these are the figures with the names staff read.

// TargetHigh is the plan's high target share (15–20%).
const TargetHigh = 0.20

// Key is one code of a dimension with its label, in the order the charts stack them.
type Key struct {
	Code  string `json:"code"` // "" for products without it
	Label string `json:"label"`
}

// GroupFigures is one language or theme in one month or week.
type GroupFigures struct {
	Products   int64   `json:"products"`
	Broadcasts int64   `json:"broadcasts"`
	Hours      float64 `json:"hours"`
}

// SeriesPoint is one month or week of the series.
type SeriesPoint struct {
	Label        string                  `json:"label"` // "01/2026", or "02/03–08/03" for a week
	From         time.Time               `json:"from"`
	To           time.Time               `json:"to"`
	Products     int64                   `json:"products"`
	Broadcasts   int64                   `json:"broadcasts"`
	Hours        float64                 `json:"hours"`
	Tagged       int64                   `json:"tagged"`
	Target       int64                   `json:"target"`
	Foreign      int64                   `json:"foreign"`
	Digital      int64                   `json:"digital"`
	Share        float64                 `json:"share"` // Target ÷ Tagged
	ForeignShare float64                 `json:"foreign_share"`
	DigitalShare float64                 `json:"digital_share"`
	ByLanguage   map[string]GroupFigures `json:"by_language"` // by Key.Code
	ByTheme      map[string]GroupFigures `json:"by_theme"`
}

// Series is the plan report over time (GET /api/reports/plan/series).
type Series struct {
	Unit       string        `json:"unit"`
	Area       string        `json:"area"`
	Period     string        `json:"period"`
	Step       string        `json:"step"` // month or week
	TargetLow  float64       `json:"target_low"`
	TargetHigh float64       `json:"target_high"`
	Languages  []Key         `json:"languages"` // foreign languages first, the national one, then the unclassified
	Themes     []Key         `json:"themes"`    // most products first, the unclassified last
	Points     []SeriesPoint `json:"points"`
}

// SeriesDoc lays out the plan report's series with its names.
func SeriesDoc(s store.PlanSeries, n Names) Series {
	out := Series{Unit: n.area(s.Area), Area: s.Area, Period: Period(s.From, s.To, n.Zone), Step: string(s.Step), TargetLow: Target, TargetHigh: TargetHigh}
	langTotal, themeTotal := map[string]int64{}, map[string]int64{}
	for _, p := range s.Points {
		last := p.To.Add(-time.Nanosecond).In(n.Zone)
		label := p.From.In(n.Zone).Format("01/2006")
		if s.Step == store.StepWeek {
			label = p.From.In(n.Zone).Format("02/01") + "–" + last.Format("02/01")
		}
		sp := SeriesPoint{Label: label, From: p.From, To: p.To, Products: p.Products, Broadcasts: p.Broadcasts, Hours: round1(p.Seconds / 3600),
			Tagged: p.Tagged, Target: p.Target, Foreign: p.Foreign, Digital: p.Digital,
			Share: p.Share(), ForeignShare: p.ForeignShare(), DigitalShare: p.DigitalShare(),
			ByLanguage: map[string]GroupFigures{}, ByTheme: map[string]GroupFigures{}}
		for _, g := range p.ByLanguage {
			sp.ByLanguage[g.Code] = GroupFigures{g.Products, g.Broadcasts, round1(g.Seconds / 3600)}
			langTotal[g.Code] += g.Products
		}
		for _, g := range p.ByTheme {
			sp.ByTheme[g.Code] = GroupFigures{g.Products, g.Broadcasts, round1(g.Seconds / 3600)}
			themeTotal[g.Code] += g.Products
		}
		out.Points = append(out.Points, sp)
	}
	// Languages stack from the bottom in the order that counts towards the target first, so
	// the foreign languages' height reads against the target band.
	rank := func(code string) int {
		probe := store.ItemFigures{InLibrary: true, Language: code, Format: "-"}
		switch foreign := s.IsTarget(probe); {
		case code == "":
			return 3
		case foreign:
			return 0
		case code == "zxx" || code == "none":
			return 1
		default:
			return 2
		}
	}
	out.Languages = keys(langTotal, "language", n, rank)
	out.Themes = keys(themeTotal, "theme", n, func(code string) int {
		if code == "" {
			return 1
		}
		return 0
	})
	return out
}

// keys orders a dimension's codes by rank, then most products first.
func keys(total map[string]int64, dim string, n Names, rank func(string) int) []Key {
	codes := make([]string, 0, len(total))
	for c := range total {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		a, b := codes[i], codes[j]
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if total[a] != total[b] {
			return total[a] > total[b]
		}
		return a < b
	})
	out := make([]Key, len(codes))
	for i, c := range codes {
		out[i] = Key{Code: c, Label: n.label(dim, c)}
	}
	return out
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// SeriesTable lays out the series as a report of one table, for CSV: per month or week, the
// totals and then each language and theme.
func SeriesTable(s Series) Doc {
	d := Doc{Kind: "plan-series", Title: "KẾT QUẢ THỰC HIỆN KẾ HOẠCH THEO " + map[string]string{"week": "TUẦN", "month": "THÁNG"}[s.Step], Unit: s.Unit, Period: s.Period}
	t := Table{Title: "Theo " + map[string]string{"week": "tuần", "month": "tháng"}[s.Step],
		Headers: []string{"Kỳ", "Theo", "Nhóm", "Số sản phẩm", "Số lượt phát", "Số giờ phát", "Sản phẩm có phân loại", "Sản phẩm tính vào chỉ tiêu", "Tỷ lệ", "Tỷ lệ tiếng dân tộc, nước ngoài", "Tỷ lệ trên nền tảng số"}}
	for _, p := range s.Points {
		t.Rows = append(t.Rows, []Cell{T(p.Label), T("Tổng cộng"), T(""), N(p.Products), N(p.Broadcasts), F(p.Hours, 1), N(p.Tagged), N(p.Target),
			P(p.Share), P(p.ForeignShare), P(p.DigitalShare)})
		for _, dim := range []struct {
			name string
			keys []Key
			m    map[string]GroupFigures
		}{{"Ngôn ngữ", s.Languages, p.ByLanguage}, {"Chủ đề", s.Themes, p.ByTheme}} {
			for _, k := range dim.keys {
				if g, ok := dim.m[k.Code]; ok {
					t.Rows = append(t.Rows, []Cell{T(p.Label), T(dim.name), T(k.Label), N(g.Products), N(g.Broadcasts), F(g.Hours, 1), T(""), T(""), T(""), T(""), T("")})
				}
			}
		}
	}
	d.Tables = []Table{t}
	return d
}

// AreaFigures is one area of the tree below a plan report's area.
type AreaFigures struct {
	Area       string  `json:"area"`
	Name       string  `json:"name"`
	Level      int     `json:"level"` // 0 the report's area, 1 its children, 2 theirs
	Devices    int64   `json:"devices"`
	Products   int64   `json:"products"`
	Broadcasts int64   `json:"broadcasts"`
	Hours      float64 `json:"hours"`
	Tagged     int64   `json:"tagged"`
	Target     int64   `json:"target"`
	Share      float64 `json:"share"`
	Coverage   float64 `json:"coverage"`
	// Band is where Share stands against the 15–20% target: below, within or above.
	Band string `json:"band"`
}

// AreaTree is the plan report's coverage by area (GET /api/reports/plan/areas).
type AreaTree struct {
	Unit       string        `json:"unit"`
	Period     string        `json:"period"`
	TargetLow  float64       `json:"target_low"`
	TargetHigh float64       `json:"target_high"`
	Areas      []AreaFigures `json:"areas"`
	Below      []string      `json:"below"` // names of the areas below target, report's area excluded
}

// AreaTreeDoc names the areas of the store's tree and places each against the target.
func AreaTreeDoc(o store.PlanOptions, tree []store.AreaCoverage, n Names) AreaTree {
	out := AreaTree{Unit: n.area(o.Area), Period: Period(o.From, o.To, n.Zone), TargetLow: Target, TargetHigh: TargetHigh}
	for _, a := range tree {
		name := a.Name
		if name == "" {
			name = n.area(a.Area)
		}
		band := "within"
		switch {
		case a.Share() < Target:
			band = "below"
			if a.Level > 0 {
				out.Below = append(out.Below, name)
			}
		case a.Share() > TargetHigh:
			band = "above"
		}
		out.Areas = append(out.Areas, AreaFigures{Area: a.Area, Name: name, Level: a.Level, Devices: a.Devices, Products: a.Products,
			Broadcasts: a.Broadcasts, Hours: round1(a.Seconds / 3600), Tagged: a.Tagged, Target: a.Target, Share: a.Share(), Coverage: a.Coverage, Band: band})
	}
	return out
}

// AreaTreeTable lays out the tree as a report of one table, for CSV.
func AreaTreeTable(t AreaTree) Doc {
	d := Doc{Kind: "plan-areas", Title: "ĐỘ PHỦ VÀ CHỈ TIÊU THEO ĐỊA BÀN", Unit: t.Unit, Period: t.Period}
	tb := Table{Title: "Theo địa bàn", Headers: []string{"Địa bàn", "Mã", "Cấp", "Số cụm loa, bảng tin", "Số sản phẩm", "Số lượt phát", "Số giờ phát", "Sản phẩm có phân loại", "Sản phẩm tính vào chỉ tiêu", "Tỷ lệ", "Đạt chỉ tiêu", "Độ phủ"}}
	for _, a := range t.Areas {
		tb.Rows = append(tb.Rows, []Cell{T(a.Name), T(a.Area), N(int64(a.Level)), N(a.Devices), N(a.Products), N(a.Broadcasts), F(a.Hours, 1),
			N(a.Tagged), N(a.Target), P(a.Share), T(BandWords[a.Band]), P(a.Coverage)})
	}
	if len(t.Below) > 0 {
		tb.Note = "Địa bàn chưa đạt chỉ tiêu: " + strings.Join(t.Below, ", ")
	}
	d.Tables = []Table{tb}
	return d
}

// BandWords are the bands as staff read them.
var BandWords = map[string]string{"below": "Chưa đạt", "within": "Đạt", "above": "Vượt chỉ tiêu"}
