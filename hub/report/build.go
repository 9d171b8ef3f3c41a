package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/store"
)

// Names turns the store's codes into what staff read.
type Names struct {
	Areas  map[string]string // area id -> name
	Labels map[string]string // "dimension\x00code" -> label
	Titles map[string]string // content ref -> title
	Zone   *time.Location
	Now    time.Time

	// Who approved what was played (issue 22): per programme id (plays), per content ref (plan).
	Approvers, ItemApprovers map[string]string
}

// Untagged is what a missing metadata value is called in every table.
const Untagged = "(chưa phân loại)"

func (n Names) area(id string) string {
	if name := n.Areas[id]; name != "" {
		return name
	}
	return id
}

func (n Names) label(dim, code string) string {
	if code == "" {
		return Untagged
	}
	if l := n.Labels[dim+"\x00"+code]; l != "" {
		return l
	}
	return code
}

func (n Names) item(ref, title string) string {
	if title == "" {
		title = n.Titles[ref]
	}
	if title == "" {
		return ref
	}
	return title
}

func share(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func hours(s float64) Cell { return F(s/3600, 1) }

// Target is the plan's low target share of non-national-language and digital products.
const Target = 0.15

// PlanDoc lays out the yearly plan report.
func PlanDoc(r store.PlanReport, n Names) Doc {
	year := r.From.In(n.Zone).Year()
	title := fmt.Sprintf("BÁO CÁO KẾT QUẢ THỰC HIỆN KẾ HOẠCH NĂM %d", year)
	d := Doc{Kind: "plan", Title: title, Unit: n.area(r.Area), Period: Period(r.From, r.To, n.Zone), Made: n.Now}
	var untagged, untaggedPlays int64
	for _, it := range r.Items {
		if it.Untagged() {
			untagged++
			untaggedPlays += it.Broadcasts
		}
	}
	d.Summary = []Line{
		L("Số sản phẩm đã phát", N(r.Products)),
		L("Số lượt phát", N(r.Broadcasts)),
		L("Số giờ phát", hours(r.Seconds)),
		L("Sản phẩm tiếng dân tộc, tiếng nước ngoài, trên nền tảng số", N(r.Target)),
		L("Sản phẩm có phân loại", N(r.Tagged)),
		L("Tỷ lệ (chỉ tiêu 15–20%)", P(r.Share())),
		L("Sản phẩm chưa phân loại (không tính vào tỷ lệ)", N(untagged)),
		L("Lượt phát sản phẩm chưa phân loại", N(untaggedPlays)),
		L("Số cụm loa, bảng tin của địa bàn", N(r.Devices)),
		L("Tỷ lệ thời gian trực tuyến bình quân của cụm loa, bảng tin", P(r.OnlineShare)),
	}
	groupTable := func(title, dim string, gs []store.PlanGroup) (Table, Chart) {
		t := Table{Title: title, Headers: []string{capital(dim), "Số sản phẩm", "Số lượt phát", "Số giờ phát", "Tỷ lệ lượt phát"}}
		c := Chart{Title: "Tỷ lệ lượt phát theo " + strings.ToLower(dim)}
		for _, g := range gs {
			name := n.label(map[string]string{"ngôn ngữ": "language", "chủ đề": "theme", "thể loại": "format"}[dim], g.Code)
			t.Rows = append(t.Rows, []Cell{T(name), N(g.Products), N(g.Broadcasts), hours(g.Seconds), P(share(g.Broadcasts, r.Broadcasts))})
			c.Bars = append(c.Bars, Bar{Label: name, Share: share(g.Broadcasts, r.Broadcasts)})
		}
		return t, c
	}
	tl, cl := groupTable("Theo ngôn ngữ", "ngôn ngữ", r.ByLanguage)
	tt, ct := groupTable("Theo chủ đề", "chủ đề", r.ByTheme)
	tf, _ := groupTable("Theo thể loại", "thể loại", r.ByFormat)
	tc := Table{Title: "Theo xã (chỉ tiêu 15%)", Headers: []string{"Địa bàn", "Sản phẩm có phân loại", "Tiếng dân tộc, nước ngoài, số", "Tỷ lệ", "Đạt chỉ tiêu", "Chưa phân loại", "Số lượt phát", "Số giờ phát"}}
	var below []string
	for _, c := range r.Communes {
		ok := "Đạt"
		if c.Share() < Target {
			ok = "Chưa đạt"
			below = append(below, n.area(c.Area))
		}
		tc.Rows = append(tc.Rows, []Cell{T(n.area(c.Area)), N(c.Products), N(c.Target), P(c.Share()), T(ok), N(c.Untagged), N(c.Broadcasts), hours(c.Seconds)})
	}
	if len(below) > 0 {
		tc.Note = "Địa bàn chưa đạt chỉ tiêu: " + strings.Join(below, ", ")
	}
	ti := Table{Title: "Độ phủ từng sản phẩm", Headers: []string{"Sản phẩm", "Ngôn ngữ", "Chủ đề", "Thể loại", "Số lượt phát", "Số giờ phát", "Số cụm đã phát", "Độ phủ", "Người duyệt"}}
	for _, it := range r.Items {
		ti.Rows = append(ti.Rows, []Cell{T(n.item(it.Ref, it.Title)), T(n.label("language", it.Language)), T(n.label("theme", it.Theme)),
			T(n.label("format", it.Format)), N(it.Broadcasts), hours(it.Seconds), N(it.Devices), P(share(it.Devices, r.Devices)), T(n.ItemApprovers[it.Ref])})
	}
	te := Table{Title: "Phát tin khẩn cấp", Headers: []string{"Bản tin", "Địa bàn", "Ban hành", "Số cụm", "Trong 1 phút", "Trong 5 phút", "Trong 15 phút", "Sau 15 phút", "Chưa phát"}}
	for _, e := range r.Emergencies {
		te.Rows = append(te.Rows, []Cell{T(e.Title), T(n.area(e.Area)), T(e.IssuedAt.In(n.Zone).Format("02/01/2006 15:04")), N(e.Devices),
			N(e.Within1), N(e.Within5), N(e.Within15), N(e.Later), N(e.Never)})
	}
	d.Tables = []Table{tl, tt, tf, tc, ti, te}
	d.Charts = []Chart{cl, ct}
	return d
}

// resultWords are the play results as staff read them (GLOSSARY-vi.md).
var resultWords = map[string]string{
	"completed": "đã phát", "preempted": "nhường ưu tiên", "interrupted": "bị ngắt", "failed": "lỗi",
	"missed": "bỏ lỡ", "suppressed": "giờ yên tĩnh",
}

// Results is the order of the result columns.
var Results = []string{"completed", "preempted", "interrupted", "failed", "missed", "suppressed"}

func resultHeaders() []string {
	var out []string
	for _, r := range Results {
		out = append(out, capital(resultWords[r]))
	}
	return out
}

// PlaysDoc lays out the proof-of-play report.
func PlaysDoc(r store.PlaysReport, n Names) Doc {
	d := Doc{Kind: "plays", Title: "NHẬT KÝ PHÁT", Unit: n.area(r.Area), Period: Period(r.From, r.To, n.Zone), Made: n.Now}
	for _, f := range []struct{ what, v string }{{"Thiết bị", r.DeviceID}, {"Nội dung", r.Item}, {"Chương trình", r.Program}} {
		if f.v != "" {
			d.Summary = append(d.Summary, L(f.what, T(f.v)))
		}
	}
	d.Summary = append(d.Summary, L("Số lượt theo lịch", N(r.Total.Scheduled)), L("Số lượt đã nghe", N(r.Total.Heard)),
		L("Số giờ đã nghe", hours(r.Total.Seconds)))
	t := Table{Title: "Theo chương trình và nội dung", Headers: append([]string{"Chương trình", "Nội dung", "Theo lịch", "Đã nghe", "Giờ đã nghe"}, append(resultHeaders(), "Người duyệt")...)}
	for _, l := range append(r.Lines, r.Total) {
		prog, item := T(l.Program), T(n.item(l.Item, ""))
		if l.Program == "" && l.Item == "" {
			prog, item = T("Tổng cộng"), T("")
		}
		row := []Cell{prog, item, N(l.Scheduled), N(l.Heard), hours(l.Seconds)}
		for _, res := range Results {
			row = append(row, N(l.Results[res]))
		}
		t.Rows = append(t.Rows, append(row, T(n.Approvers[l.Program])))
	}
	rt := Table{Title: "Lý do không phát trọn", Headers: []string{"Kết quả", "Lý do", "Số lượt"}}
	for _, x := range r.Reasons {
		w := resultWords[x.Result]
		if w == "" {
			w = x.Result
		}
		rt.Rows = append(rt.Rows, []Cell{T(w), T(x.Error), N(x.Count)})
	}
	d.Tables = []Table{t, rt}
	return d
}

// DevicesDoc lays out the availability report.
func DevicesDoc(r store.DevicesReport, n Names) Doc {
	d := Doc{Kind: "devices", Title: "BÁO CÁO HOẠT ĐỘNG THIẾT BỊ", Unit: n.area(r.Area), Period: Period(r.From, r.To, n.Zone), Made: n.Now}
	d.Summary = []Line{L("Số ngày", N(r.Days)), L("Số thiết bị", N(int64(len(r.Lines))))}
	t := Table{Title: "Theo thiết bị", Headers: append([]string{"Thiết bị", "Tên", "Địa bàn", "Theo lịch", "Đã nghe", "Giờ đã nghe", "Ngày có phát", "Ngày im lặng", "Tỷ lệ ngày có phát", "Giờ trực tuyến", "Tỷ lệ trực tuyến", "Lỗi âm ly", "Lịch bị từ chối"}, resultHeaders()...)}
	lines := append([]store.DeviceLine(nil), r.Lines...)
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Device < lines[j].Device })
	for _, l := range lines {
		row := []Cell{T(l.Device), T(l.Name), T(n.area(l.Area)), N(l.Scheduled), N(l.Heard), hours(l.Seconds), N(l.DaysHeard), N(l.DaysSilent),
			P(share(l.DaysHeard, r.Days)), hours(l.OnlineSeconds), P(l.OnlineShare), N(l.AmplifierFaults), N(l.RefusedSchedules)}
		for _, res := range Results {
			row = append(row, N(l.Results[res]))
		}
		t.Rows = append(t.Rows, row)
	}
	d.Tables = []Table{t}
	return d
}

// capital writes s with its first letter upper case (runes: "đã" -> "Đã").
func capital(s string) string {
	for i, r := range s {
		return strings.ToUpper(string(r)) + s[i+len(string(r)):]
	}
	return s
}
