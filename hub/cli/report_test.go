package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/report"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/protocol"
)

// knownYear is a generated year of plays in the district qn/dl and, outside it, qn/tk, with
// the counts a report must give computed here, independently of the store's SQL.
type knownYear struct {
	zone    *time.Location
	devices []yearDevice
	content []store.Content
	plays   map[string][]store.Confirmation // device -> its confirmations, seq order
	emerg   store.Emergency
	online  map[string]float64 // device -> seconds connected in 2026 (load)
}

type yearDevice struct{ id, area, commune string }

const stream = "http://radio.example/vov1.mp3" // a relay: no metadata, listed as such

func ref(n int) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte{byte(n)})) }

// genYear makes the year: three communes of Đại Lộc with two clusters each, one cluster in Tam
// Kỳ (outside the report), six library items (one without a format) and a relay; each cluster
// plays three programmes a day with every result; plays on the last day of 2025 and the first
// of 2027 (outside the period).
func genYear() *knownYear {
	zone := time.FixedZone("+07", 7*3600)
	y := &knownYear{zone: zone, plays: map[string][]store.Confirmation{}}
	meta := []struct{ lang, theme, format, title string }{
		{"vie", "human-rights", "radio-report", "Quyền trẻ em"},
		{"ctu", "human-rights", "radio-report", "Quyền con người (Cơ Tu)"},
		{"vie", "disaster", "digital", "Video phòng chống lũ"},
		{"eng", "disaster", "radio-report", "Flood warning"},
		{"vie", "disaster", "radio-report", "Phòng chống bão"},
		{"vie", "human-rights", "", "Tọa đàm pháp luật"},
	}
	for i, m := range meta {
		y.content = append(y.content, store.Content{Ref: ref(i), Size: 1000, Duration: 5 * time.Minute, MIME: "audio/mpeg",
			Title: m.title, Language: m.lang, Theme: m.theme, Format: m.format, UploadedBy: "admin"})
	}
	plan := map[string][]string{ // what each commune plays
		"qn/dl/ai-nghia":  {ref(0), ref(1), ref(2), stream},
		"qn/dl/dai-hong":  {ref(0), ref(4), ref(5)},
		"qn/dl/dai-son":   {ref(0), ref(3), ref(4)},
		"qn/tk/tam-thanh": {ref(1), ref(3)},
	}
	for _, cm := range []string{"qn/dl/ai-nghia", "qn/dl/dai-hong", "qn/dl/dai-son", "qn/tk/tam-thanh"} {
		for k := 1; k <= 2; k++ {
			if cm == "qn/tk/tam-thanh" && k == 2 {
				continue
			}
			area := cm
			if k == 2 {
				area = cm + "/thon-" + strconv.Itoa(k) // a village below the commune
			}
			y.devices = append(y.devices, yearDevice{id: strings.ReplaceAll(cm, "/", "-") + "-cl" + strconv.Itoa(k), area: area, commune: cm})
		}
	}
	rng := rand.New(rand.NewPCG(16, 2026))
	results := []string{"completed", "completed", "completed", "completed", "preempted", "interrupted", "failed", "missed", "suppressed"}
	start := time.Date(2025, 12, 31, 0, 0, 0, 0, zone)
	for _, d := range y.devices {
		items := plan[d.commune]
		var seq int64
		for day := 0; day < 367; day++ { // 31/12/2025 .. 01/01/2027
			if d.id == "qn-dl-dai-son-cl2" && day >= 200 && day < 230 {
				continue // a month switched off: silent days
			}
			for s, hm := range [][2]int{{6, 0}, {11, 0}, {17, 30}} {
				seq++
				at := start.AddDate(0, 0, day).Add(time.Duration(hm[0])*time.Hour + time.Duration(hm[1])*time.Minute)
				item := items[(day+s)%len(items)]
				res := results[rng.IntN(len(results))]
				c := store.Confirmation{Confirmation: protocol.Confirmation{Seq: uint64(seq), Output: "speakers", ScheduleID: "sch", Revision: 1, Program: []string{"sang", "trua", "chieu"}[s], Item: item, Scheduled: at, Result: protocol.Result(res), Clock: "synced", Amplifier: "on"}}
				switch res {
				case "completed":
					c.Start, c.PlayedS = at, 300
				case "preempted", "interrupted":
					c.Start, c.PlayedS = at, float64(30+rng.IntN(200))
				case "failed":
					c.Start, c.Error = at, "decode: bad frame"
					if rng.IntN(2) == 0 {
						c.PlayedS = 12 // heard a little before it failed
					}
				case "missed":
					c.Error = "device was off"
				}
				if c.Start.IsZero() {
					c.Start = time.Time{}
				} else if rng.IntN(20) == 0 {
					c.Amplifier = "relay: no answer"
				}
				c.End = c.Start.Add(time.Duration(c.PlayedS * float64(time.Second)))
				y.plays[d.id] = append(y.plays[d.id], c)
			}
		}
	}
	issued := time.Date(2026, 10, 10, 8, 0, 0, 0, zone)
	y.emerg = store.Emergency{Series: "storm", Kind: store.KindEmergency, Area: "qn/dl", Class: "emergency", Title: "Bão số 6",
		Text: "Bão số 6 đổ bộ", Items: []byte("[]"), IssuedAt: issued, Start: issued, Until: issued.Add(2 * time.Hour), Volume: 1,
		Source: "cli", CreatedBy: "admin"}
	return y
}

// emergencyDelays is when each Đại Lộc cluster first played the emergency (0: never).
var emergencyDelays = []time.Duration{30 * time.Second, 50 * time.Second, 3 * time.Minute, 10 * time.Minute, 40 * time.Minute, 0}

// load puts the year into the hub's store: most batches as they happen, one cluster's
// three months after an outage at the end, in reverse order and twice.
func (y *knownYear) load(t *testing.T, db *store.DB) {
	ctx := context.Background()
	for _, a := range []struct{ id, name string }{{"qn/dl", "Huyện Đại Lộc"}, {"qn/dl/ai-nghia", "Xã Ái Nghĩa"}, {"qn/dl/dai-hong", "Xã Đại Hồng"},
		{"qn/dl/dai-son", "Xã Đại Sơn"}, {"qn/dl/ai-nghia/thon-2", "Thôn 2"}, {"qn/dl/dai-hong/thon-2", "Thôn 2"}, {"qn/dl/dai-son/thon-2", "Thôn 2"},
		{"qn/tk", "Thành phố Tam Kỳ"}, {"qn/tk/tam-thanh", "Xã Tam Thanh"}} {
		if _, err := db.AddArea(ctx, store.Area{ID: a.id, Name: a.name}); err != nil {
			t.Fatal(err)
		}
	}
	for _, term := range []store.Term{{Dimension: store.DimLanguage, Value: "vie", Label: "Tiếng Việt"}, {Dimension: store.DimLanguage, Value: "ctu", Label: "Cơ Tu"}, {Dimension: store.DimLanguage, Value: "eng", Label: "Tiếng Anh"},
		{Dimension: store.DimTheme, Value: "human-rights", Label: "Quyền con người"}, {Dimension: store.DimTheme, Value: "disaster", Label: "Phòng chống thiên tai"},
		{Dimension: store.DimFormat, Value: "radio-report", Label: "Phóng sự truyền thanh"}, {Dimension: store.DimFormat, Value: "digital", Label: "Sản phẩm số"}} {
		if err := db.AddTerm(ctx, term); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range y.content {
		if _, _, err := db.AddContent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range y.devices {
		if _, err := db.EnrolDevice(ctx, store.Device{ID: d.id, Name: "Cụm loa " + d.id, Area: d.area, Kind: "cluster", Outputs: []string{"speakers"}},
			sha256.Sum256([]byte(d.id))); err != nil {
			t.Fatal(err)
		}
	}
	added, _, err := db.AddEmergencies(ctx, []store.Emergency{y.emerg})
	if err != nil {
		t.Fatal(err)
	}
	y.emerg = added[0]
	for i, d := range y.devices[:6] {
		if emergencyDelays[i] == 0 {
			continue
		}
		at := y.emerg.IssuedAt.Add(emergencyDelays[i])
		c := store.Confirmation{Confirmation: protocol.Confirmation{Seq: uint64(len(y.plays[d.id]) + 1), Output: "speakers", ScheduleID: "emergency", Revision: 1, Program: fmt.Sprintf("emergency:%d", y.emerg.ID), Item: ref(4), Scheduled: y.emerg.IssuedAt, Start: at, End: at.Add(time.Minute), Result: "completed", Clock: "synced", Amplifier: "on", Proof: protocol.Proof{PlayedS: 60}}}
		y.plays[d.id] = append(y.plays[d.id], c)
	}
	late := "qn-dl-dai-hong-cl1"
	for _, d := range y.devices {
		cs := y.plays[d.id]
		var held []store.Confirmation
		for i := 0; i < len(cs); i += store.MaxBatch {
			batch := cs[i:min(i+store.MaxBatch, len(cs))]
			if d.id == late { // days 100..190 arrive after everything else
				var now []store.Confirmation
				for _, c := range batch {
					if c.Scheduled.After(time.Date(2026, 4, 10, 0, 0, 0, 0, y.zone)) && c.Scheduled.Before(time.Date(2026, 7, 10, 0, 0, 0, 0, y.zone)) {
						held = append(held, c)
					} else {
						now = append(now, c)
					}
				}
				batch = now
			}
			if _, err := db.AddConfirmations(ctx, d.id, batch); err != nil {
				t.Fatal(err)
			}
		}
		if len(held) > 0 {
			defer func(id string, held []store.Confirmation) {
				for i, j := 0, len(held)-1; i < j; i, j = i+1, j-1 {
					held[i], held[j] = held[j], held[i]
				}
				for k := 0; k < 2; k++ { // resent: stored once
					if _, err := db.AddConfirmations(ctx, id, held); err != nil {
						t.Fatal(err)
					}
				}
				if ack, err := db.AckedSeq(ctx, id); err != nil || ack != int64(len(y.plays[id])) {
					t.Fatalf("late batch of %s: ack %d, %v; want %d", id, ack, err, len(y.plays[id]))
				}
			}(d.id, held)
		}
	}
	// Time connected: device i from 20:00 of day 3i for 7(i+1) days and 5 h; the first also
	// across the new year's midnight, half of it in 2025.
	y.online = map[string]float64{}
	jan1 := time.Date(2026, 1, 1, 0, 0, 0, 0, y.zone)
	for i, d := range y.devices {
		from := jan1.AddDate(0, 0, 3*i).Add(20 * time.Hour)
		span := time.Duration(7*(i+1))*24*time.Hour + 5*time.Hour
		if err := db.AddOnline(ctx, d.id, from, from.Add(span)); err != nil {
			t.Fatal(err)
		}
		y.online[d.id] = span.Seconds()
		if i == 0 {
			if err := db.AddOnline(ctx, d.id, jan1.Add(-2*time.Hour), jan1.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			y.online[d.id] += 2 * 3600
		}
	}
}

// elapsed2026 is the part of 2026 past now: what an online share is of.
func (y *knownYear) elapsed2026() float64 {
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, y.zone), time.Date(2027, 1, 1, 0, 0, 0, 0, y.zone)
	if now := time.Now(); now.Before(to) {
		to = now
	}
	return to.Sub(from).Seconds()
}

func pctf(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) }

func (y *knownYear) title(r string) string {
	for _, c := range y.content {
		if c.Ref == r {
			return c.Title
		}
	}
	return r
}

func (y *knownYear) meta(r string) (store.Content, bool) {
	for _, c := range y.content {
		if c.Ref == r {
			return c, true
		}
	}
	return store.Content{}, false
}

var labels = map[string]string{"vie": "Tiếng Việt", "ctu": "Cơ Tu", "eng": "Tiếng Anh", "human-rights": "Quyền con người",
	"disaster": "Phòng chống thiên tai", "radio-report": "Phóng sự truyền thanh", "digital": "Sản phẩm số", "": report.Untagged}

func pct(a, b int) string {
	if b == 0 {
		return "0.0"
	}
	return strconv.FormatFloat(float64(a)/float64(b)*100, 'f', 1, 64)
}

func hrs(s float64) string { return strconv.FormatFloat(s/3600, 'f', 1, 64) }

// expected is a report as the test counts it: summary lines and each table's rows in the CSV's
// plain form, by table title.
type expected struct {
	summary map[string]string
	tables  map[string][][]string
}

// expectPlan counts the plan report of qn/dl for 2026 from the generated plays.
func (y *knownYear) expectPlan() expected {
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, y.zone), time.Date(2027, 1, 1, 0, 0, 0, 0, y.zone)
	type agg struct {
		n    int
		s    float64
		devs map[string]bool
	}
	items := map[string]*agg{}
	communeItems := map[string]map[string]bool{}
	communeN, communeS := map[string]int{}, map[string]float64{}
	total, totalS := 0, 0.0
	for _, d := range y.devices {
		if !strings.HasPrefix(d.area, "qn/dl/") {
			continue
		}
		for _, c := range y.plays[d.id] {
			at := c.Start
			if at.IsZero() {
				at = c.Scheduled
			}
			if at.Before(from) || !at.Before(to) || c.PlayedS <= 0 {
				continue
			}
			a := items[c.Item]
			if a == nil {
				a = &agg{devs: map[string]bool{}}
				items[c.Item] = a
			}
			a.n++
			a.s += c.PlayedS
			a.devs[d.id] = true
			if communeItems[d.commune] == nil {
				communeItems[d.commune] = map[string]bool{}
			}
			communeItems[d.commune][c.Item] = true
			communeN[d.commune]++
			communeS[d.commune] += c.PlayedS
			total++
			totalS += c.PlayedS
		}
	}
	isTarget := func(r string) (tagged, target bool) {
		m, ok := y.meta(r)
		if !ok || m.Language == "" || m.Format == "" {
			return false, false
		}
		return true, m.Language != "vie" || m.Format == "digital"
	}
	tagged, target, untagged, untaggedN := 0, 0, 0, 0
	for r, a := range items {
		tg, tt := isTarget(r)
		if !tg {
			untagged++
			untaggedN += a.n
		}
		if tg {
			tagged++
		}
		if tt {
			target++
		}
	}
	e := expected{tables: map[string][][]string{}}
	e.summary = map[string]string{
		"Số sản phẩm đã phát": strconv.Itoa(len(items)), "Số lượt phát": strconv.Itoa(total), "Số giờ phát": hrs(totalS),
		"Sản phẩm tiếng dân tộc, tiếng nước ngoài, trên nền tảng số": strconv.Itoa(target), "Sản phẩm có phân loại": strconv.Itoa(tagged),
		"Tỷ lệ (chỉ tiêu 15–20%)": pct(target, tagged), "Sản phẩm chưa phân loại (không tính vào tỷ lệ)": strconv.Itoa(untagged),
		"Lượt phát sản phẩm chưa phân loại": strconv.Itoa(untaggedN), "Số cụm loa, bảng tin của địa bàn": "6",
	}
	online := 0.0
	for _, d := range y.devices {
		if strings.HasPrefix(d.area, "qn/dl/") {
			online += y.online[d.id]
		}
	}
	e.summary["Tỷ lệ thời gian trực tuyến bình quân của cụm loa, bảng tin"] = pctf(online / (6 * y.elapsed2026()))
	group := func(key func(m store.Content) string) [][]string {
		type g struct {
			code string
			p, n int
			s    float64
		}
		gs := map[string]*g{}
		for r, a := range items {
			m, _ := y.meta(r)
			k := key(m)
			if gs[k] == nil {
				gs[k] = &g{code: k}
			}
			gs[k].p++
			gs[k].n += a.n
			gs[k].s += a.s
		}
		var list []*g
		for _, v := range gs {
			list = append(list, v)
		}
		sort.Slice(list, func(i, j int) bool {
			if (list[i].code == "") != (list[j].code == "") {
				return list[j].code == ""
			}
			if list[i].n != list[j].n {
				return list[i].n > list[j].n
			}
			return list[i].code < list[j].code
		})
		var rows [][]string
		for _, v := range list {
			rows = append(rows, []string{labels[v.code], strconv.Itoa(v.p), strconv.Itoa(v.n), hrs(v.s), pct(v.n, total)})
		}
		return rows
	}
	e.tables["Theo ngôn ngữ"] = group(func(m store.Content) string { return m.Language })
	e.tables["Theo chủ đề"] = group(func(m store.Content) string { return m.Theme })
	e.tables["Theo thể loại"] = group(func(m store.Content) string { return m.Format })
	names := map[string]string{"qn/dl/ai-nghia": "Xã Ái Nghĩa", "qn/dl/dai-hong": "Xã Đại Hồng", "qn/dl/dai-son": "Xã Đại Sơn"}
	var communes [][]string
	for _, cm := range []string{"qn/dl/ai-nghia", "qn/dl/dai-hong", "qn/dl/dai-son"} {
		p, tt, u := 0, 0, 0
		for r := range communeItems[cm] {
			tg, t := isTarget(r)
			switch {
			case !tg:
				u++
			case t:
				p++
				tt++
			default:
				p++
			}
		}
		ok := "Đạt"
		if p == 0 || float64(tt)/float64(p) < 0.15 {
			ok = "Chưa đạt"
		}
		communes = append(communes, []string{names[cm], strconv.Itoa(p), strconv.Itoa(tt), pct(tt, p), ok, strconv.Itoa(u), strconv.Itoa(communeN[cm]), hrs(communeS[cm])})
	}
	e.tables["Theo xã (chỉ tiêu 15%)"] = communes
	var refs []string
	for r := range items {
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool {
		if items[refs[i]].n != items[refs[j]].n {
			return items[refs[i]].n > items[refs[j]].n
		}
		return refs[i] < refs[j]
	})
	var rows [][]string
	for _, r := range refs {
		m, _ := y.meta(r)
		a := items[r]
		approver := "" // the scheduled programmes have no schedule stored; the storm was not reviewed
		if r == ref(4) {
			approver = "chờ xem xét"
		}
		rows = append(rows, []string{y.title(r), labels[m.Language], labels[m.Theme], labels[m.Format], strconv.Itoa(a.n), hrs(a.s), strconv.Itoa(len(a.devs)), pct(len(a.devs), 6), approver})
	}
	e.tables["Độ phủ từng sản phẩm"] = rows
	w1, w5, w15, later, never := 0, 0, 0, 0, 0
	for _, d := range emergencyDelays {
		switch {
		case d == 0:
			never++
		case d <= 15*time.Minute:
			w15++
			if d <= 5*time.Minute {
				w5++
			}
			if d <= time.Minute {
				w1++
			}
		default:
			later++
		}
	}
	e.tables["Phát tin khẩn cấp"] = [][]string{{"Bão số 6", "Huyện Đại Lộc", "10/10/2026 08:00", "6", strconv.Itoa(w1), strconv.Itoa(w5), strconv.Itoa(w15), strconv.Itoa(later), strconv.Itoa(never)}}
	return e
}

// expectDevices counts the devices report of qn/dl for 2026.
func (y *knownYear) expectDevices() expected {
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, y.zone), time.Date(2027, 1, 1, 0, 0, 0, 0, y.zone)
	e := expected{summary: map[string]string{"Số ngày": "365", "Số thiết bị": "6"}, tables: map[string][][]string{}}
	var rows [][]string
	for _, d := range y.devices {
		if !strings.HasPrefix(d.area, "qn/dl/") {
			continue
		}
		n, h, amp := 0, 0, 0
		s := 0.0
		res := map[string]int{}
		days := map[string]bool{}
		for _, c := range y.plays[d.id] {
			at := c.Start
			if at.IsZero() {
				at = c.Scheduled
			}
			if at.Before(from) || !at.Before(to) {
				continue
			}
			n++
			res[string(c.Result)]++
			if c.Amplifier != "on" {
				amp++
			}
			if c.PlayedS > 0 {
				h++
				s += c.PlayedS
				days[at.In(y.zone).Format("2006-01-02")] = true
			}
		}
		names := map[string]string{"qn/dl/ai-nghia": "Xã Ái Nghĩa", "qn/dl/dai-hong": "Xã Đại Hồng", "qn/dl/dai-son": "Xã Đại Sơn"}
		area := names[d.area]
		if area == "" {
			area = "Thôn 2"
		}
		row := []string{d.id, "Cụm loa " + d.id, area, strconv.Itoa(n), strconv.Itoa(h), hrs(s), strconv.Itoa(len(days)), strconv.Itoa(365 - len(days)),
			pct(len(days), 365), hrs(y.online[d.id]), pctf(y.online[d.id] / y.elapsed2026()), strconv.Itoa(amp), "0"}
		for _, r := range report.Results {
			row = append(row, strconv.Itoa(res[r]))
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	e.tables["Theo thiết bị"] = rows
	return e
}

// expectPlays counts the plays report of one device for 2026.
func (y *knownYear) expectPlays(device string) expected {
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, y.zone), time.Date(2027, 1, 1, 0, 0, 0, 0, y.zone)
	type line struct {
		n, h int
		s    float64
		res  map[string]int
	}
	lines := map[[2]string]*line{}
	total := &line{res: map[string]int{}}
	reasons := map[[2]string]int{}
	for _, c := range y.plays[device] {
		at := c.Start
		if at.IsZero() {
			at = c.Scheduled
		}
		if at.Before(from) || !at.Before(to) {
			continue
		}
		k := [2]string{c.Program, c.Item}
		if lines[k] == nil {
			lines[k] = &line{res: map[string]int{}}
		}
		for _, l := range []*line{lines[k], total} {
			l.n++
			l.res[string(c.Result)]++
			l.s += c.PlayedS
			if c.PlayedS > 0 {
				l.h++
			}
		}
		if c.Result != "completed" {
			reasons[[2]string{string(c.Result), c.Error}]++
		}
	}
	var keys [][2]string
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	row := func(prog, item string, l *line) []string {
		r := []string{prog, item, strconv.Itoa(l.n), strconv.Itoa(l.h), hrs(l.s)}
		for _, res := range report.Results {
			r = append(r, strconv.Itoa(l.res[res]))
		}
		approver := "" // as in expectPlan
		if strings.HasPrefix(prog, "emergency:") {
			approver = "chờ xem xét"
		}
		return append(r, approver)
	}
	e := expected{summary: map[string]string{"Thiết bị": device, "Số lượt theo lịch": strconv.Itoa(total.n), "Số lượt đã nghe": strconv.Itoa(total.h), "Số giờ đã nghe": hrs(total.s)},
		tables: map[string][][]string{}}
	var rows [][]string
	for _, k := range keys {
		rows = append(rows, row(k[0], y.title(k[1]), lines[k]))
	}
	rows = append(rows, row("Tổng cộng", "", total))
	e.tables["Theo chương trình và nội dung"] = rows
	words := map[string]string{"preempted": "nhường ưu tiên", "interrupted": "bị ngắt", "failed": "lỗi", "missed": "bỏ lỡ", "suppressed": "giờ yên tĩnh"}
	var rs [][]string
	for k, n := range reasons {
		rs = append(rs, []string{words[k[0]], k[1], strconv.Itoa(n)})
	}
	sort.Slice(rs, func(i, j int) bool { // as the hub orders them: most first, then result, error codes
		a, _ := strconv.Atoi(rs[i][2])
		b, _ := strconv.Atoi(rs[j][2])
		if a != b {
			return a > b
		}
		return rs[i][0]+rs[i][1] < rs[j][0]+rs[j][1]
	})
	e.tables["Lý do không phát trọn"] = rs
	return e
}

// readCSV splits the report's CSV into its summary and its tables by title.
func readCSV(t *testing.T, b []byte) (map[string]string, map[string][][]string) {
	t.Helper()
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, b)
	}
	summary, tables := map[string]string{}, map[string][][]string{}
	title, head := "", false
	for _, rec := range recs {
		switch {
		case title == "" && len(rec) == 2:
			summary[rec[0]] = rec[1]
		case len(rec) == 1 && strings.HasPrefix(rec[0], "Địa bàn chưa"): // a table's note
		case len(rec) == 1:
			title, head = rec[0], true
			tables[title] = nil
		case head:
			head = false
		default:
			tables[title] = append(tables[title], rec)
		}
	}
	return summary, tables
}

func compare(t *testing.T, form string, want expected, summary map[string]string, tables map[string][][]string) {
	t.Helper()
	for k, v := range want.summary {
		if summary[k] != v {
			t.Errorf("%s: summary %q = %q, counted %q", form, k, summary[k], v)
		}
	}
	for title, rows := range want.tables {
		got := tables[title]
		if len(got) != len(rows) {
			t.Errorf("%s: table %q has %d rows, counted %d:\n got %q\nwant %q", form, title, len(got), len(rows), got, rows)
			continue
		}
		for i := range rows {
			if strings.Join(got[i], "|") != strings.Join(rows[i], "|") {
				t.Errorf("%s: table %q row %d:\n got %q\nwant %q", form, title, i+1, got[i], rows[i])
			}
		}
	}
}

// readXLSX reads the workbook back into the CSV's plain form: raw numbers, shares times 100.
func readXLSX(t *testing.T, b []byte, want expected) (map[string]string, map[string][][]string) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("XLSX: %v", err)
	}
	defer f.Close()
	// Each cell rounded as the expected one is (its decimals), shares read as fractions.
	plain := func(raw, like string, share bool) string {
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || like == "" {
			return raw
		}
		if _, err := strconv.ParseFloat(like, 64); err != nil {
			return raw
		}
		if share {
			v *= 100
		}
		dec := 0
		if i := strings.IndexByte(like, '.'); i >= 0 {
			dec = len(like) - i - 1
		}
		return strconv.FormatFloat(v, 'f', dec, 64)
	}
	summary := map[string]string{}
	rows, err := f.GetRows(report.SummarySheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if len(r) == 2 {
			summary[r[0]] = plain(r[1], want.summary[r[0]], strings.HasPrefix(r[0], "Tỷ lệ"))
		}
	}
	tables := map[string][][]string{}
	for title, wrows := range want.tables {
		rows, err := f.GetRows(report.SheetName(title), excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatalf("sheet %q: %v", title, err)
		}
		head := rows[0]
		var out [][]string
		for i, r := range rows[1:] {
			if len(r) == 1 && strings.HasPrefix(r[0], "Địa bàn chưa") || len(r) == 0 {
				continue
			}
			for j := range r {
				like := ""
				if i < len(wrows) && j < len(wrows[i]) {
					like = wrows[i][j]
				}
				r[j] = plain(r[j], like, strings.HasPrefix(head[j], "Tỷ lệ") || head[j] == "Độ phủ")
			}
			for len(r) < len(head) { // a workbook ends a row at its last cell with a value
				r = append(r, "")
			}
			out = append(out, r)
		}
		tables[title] = out
	}
	return summary, tables
}

// checkPDF finds each counted figure in the text pdftotext reads from the PDF: each summary
// value on its label's line, each row's cells in order on the line starting with its first
// cell, in the Vietnamese number form the page shows.
func checkPDF(t *testing.T, form string, pdf []byte, want expected) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.pdf")
	os.WriteFile(path, pdf, 0o644)
	out, err := exec.Command("pdftotext", "-layout", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext (apt-get install poppler-utils): %v", err)
	}
	text := string(out)
	lines := strings.Split(text, "\n")
	vi := func(s string) string {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return s
		}
		dec := 0
		if i := strings.IndexByte(s, '.'); i >= 0 {
			dec = len(s) - i - 1
		}
		return api.Number(v, dec)
	}
	findLine := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "-")), prefix) {
				return l
			}
		}
		return ""
	}
	for k, v := range want.summary {
		l := findLine(k)
		if l == "" || !strings.Contains(l, vi(v)) {
			t.Errorf("%s: no line %q with %q in the PDF's text", form, k, vi(v))
		}
	}
	for title, rows := range want.tables {
		if !strings.Contains(text, title) {
			t.Errorf("%s: the PDF has no table %q", form, title)
		}
		for _, r := range rows {
			if r[0] == "" {
				continue
			}
			// Rows with the same first cell (a programme's items) are told apart by their second.
			found := false
			for _, l := range lines {
				if !strings.HasPrefix(strings.TrimSpace(l), r[0]) {
					continue
				}
				rest, ok := l, true
				for _, c := range r {
					c = vi(c)
					if strings.HasSuffix(c, "%") || c == "" {
						continue
					}
					i := strings.Index(rest, c)
					if i < 0 {
						ok = false
						break
					}
					rest = rest[i+len(c):]
				}
				if ok {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: table %q: no line of the PDF reads %q", form, title, r)
			}
		}
	}
	return text
}

// startReportHub is a real hub on loopback over a real SQLite file, whose store the test fills.
func startReportHub(t *testing.T) (string, string, *store.DB) {
	t.Helper()
	return startHubIn(t, "Tỉnh Quảng Nam", time.FixedZone("+07", 7*3600))
}

// TestReportsFromKnownYear: every figure of the plan, plays and devices reports, as `loa
// report` writes them in CSV, XLSX and PDF and prints them as a table, equals the count this
// test makes of the year it generated (late arrivals after an outage included, plays outside
// the period and the district left out).
func TestReportsFromKnownYear(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is missing: run scripts/install-deps (poppler-utils)")
	}
	url, tok, db := startReportHub(t)
	y := genYear()
	func() { y.load(t, db) }() // the deferred late batches run at its end
	env := Env{Getenv: func(k string) string {
		return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k]
	}}
	dir := t.TempDir()
	for _, rc := range []struct {
		kind string
		args []string
		want expected
	}{
		{"plan", []string{"--area", "qn/dl"}, y.expectPlan()},
		{"devices", []string{"--area", "qn/dl"}, y.expectDevices()},
		{"plays", []string{"--area", "qn/dl", "--device", "qn-dl-dai-son-cl2"}, y.expectPlays("qn-dl-dai-son-cl2")},
	} {
		args := append([]string{"report", rc.kind, "--year", "2026"}, rc.args...)
		get := func(format string) []byte {
			out := filepath.Join(dir, rc.kind+"."+format)
			code, stdout, stderr := runCLI(env, append(args, "--format", format, "--out", out)...)
			if code != 0 {
				t.Fatalf("loa %s --format %s: %d %s %s", strings.Join(args, " "), format, code, stdout, stderr)
			}
			b, _ := os.ReadFile(out)
			return b
		}
		s, tables := readCSV(t, get("csv"))
		compare(t, rc.kind+" CSV", rc.want, s, tables)
		s, tables = readXLSX(t, get("xlsx"), rc.want)
		compare(t, rc.kind+" XLSX", rc.want, s, tables)
		pdf := get("pdf")
		if d := os.Getenv("LOA_REPORT_KEEP"); d != "" { // to look at the pages: LOA_REPORT_KEEP=/tmp/x
			os.WriteFile(filepath.Join(d, rc.kind+".pdf"), pdf, 0o644)
		}
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Fatalf("%s: not a PDF: %.100q", rc.kind, pdf)
		}
		text := checkPDF(t, rc.kind+" PDF", pdf, rc.want)
		for _, s := range []string{"CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "Từ ngày 01/01/2026 đến ngày 31/12/2026", "HUYỆN ĐẠI LỘC"} {
			if !strings.Contains(text, s) {
				t.Errorf("%s PDF: no %q in its text", rc.kind, s)
			}
		}
		if rc.kind == "plan" {
			for _, s := range []string{"Tỷ lệ lượt phát theo ngôn ngữ", "Tỷ lệ lượt phát theo chủ đề"} {
				if !strings.Contains(text, s) {
					t.Errorf("plan PDF: no chart %q", s)
				}
			}
			// Every font embedded (pdffonts' emb column), TrueType with Unicode maps.
			fonts, err := exec.Command("pdffonts", filepath.Join(dir, "plan.pdf")).Output()
			lines := strings.Split(strings.TrimSpace(string(fonts)), "\n")
			if err != nil || len(lines) < 3 {
				t.Fatalf("pdffonts: %v\n%s", err, fonts)
			}
			for _, l := range lines[2:] {
				f := strings.Fields(l)
				if len(f) < 7 || f[len(f)-5] != "yes" || f[len(f)-3] != "yes" || !strings.Contains(l, "TrueType") {
					t.Errorf("plan PDF: a font not embedded as TrueType with Unicode: %q", l)
				}
			}
		}
		// The table on the terminal shows the same figures in the Vietnamese form.
		code, out, stderr := runCLI(env, args...)
		if code != 0 {
			t.Fatalf("loa %s: %d %s", strings.Join(args, " "), code, stderr)
		}
		for k, v := range rc.want.summary {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				dec := 0
				if i := strings.IndexByte(v, '.'); i >= 0 {
					dec = len(v) - i - 1
				}
				v = api.Number(n, dec)
			}
			if !strings.Contains(out, k+":") || !strings.Contains(out, v) {
				t.Errorf("loa %s: no %q %q in\n%s", strings.Join(args, " "), k, v, out)
			}
		}
	}
}

// TestReportScope: staff of a commune get their commune's report and are refused another's.
func TestReportScope(t *testing.T) {
	url, _, db := startReportHub(t)
	y := genYear()
	func() { y.load(t, db) }()
	ctok, err := hub.AddUser(context.Background(), db, "xa", "", "qn/dl/ai-nghia", "")
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Getenv: func(k string) string { return map[string]string{"LOA_HUB": url, "LOA_TOKEN": ctok}[k] }}
	code, out, stderr := runCLI(env, "report", "plan", "--year", "2026")
	if code != 0 || !strings.Contains(out, "Xã Ái Nghĩa") || strings.Contains(out, "Xã Đại Sơn") {
		t.Fatalf("commune staff's own plan: %d\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = runCLI(env, "report", "devices", "--area", "qn/dl/dai-son", "--year", "2026")
	// Answered as an unknown area (issue 12: another commune's areas are not the caller's to learn).
	if code == 0 || !strings.Contains(stderr, "no area qn/dl/dai-son in your scope qn/dl/ai-nghia") {
		t.Fatalf("another commune's report: %d %s", code, stderr)
	}
	code, _, stderr = runCLI(env, "report", "plan", "--year", "2026", "--from", "01/01/2026")
	if code == 0 || !strings.Contains(stderr, "not both") {
		t.Fatalf("--year with --from: %d %s", code, stderr)
	}
}

// `loa report settings` shows the defaults, changes one list keeping the other, and a code
// outside the hub's list is refused naming it.
func TestReportSettingsCLI(t *testing.T) {
	url, tok, db := startReportHub(t)
	for _, term := range []store.Term{{Dimension: store.DimLanguage, Value: "vie", Label: "Tiếng Việt"}, {Dimension: store.DimLanguage, Value: "ctu", Label: "Cơ Tu"}} {
		if err := db.AddTerm(context.Background(), term); err != nil {
			t.Fatal(err)
		}
	}
	env := Env{Getenv: func(k string) string { return map[string]string{"LOA_HUB": url, "LOA_TOKEN": tok}[k] }}
	code, out, stderr := runCLI(env, "report", "settings")
	if code != 0 || !strings.Contains(out, "home languages (not counted): vi, vie\n") || !strings.Contains(out, "never set") {
		t.Errorf("defaults: %d %q %s", code, out, stderr)
	}
	code, out, stderr = runCLI(env, "report", "settings", "--home", "Tiếng Việt,co tu")
	if code != 0 || !strings.Contains(out, "home languages (not counted): vie, ctu\n") || !strings.Contains(out, "digital formats (counted):     digital\n") {
		t.Errorf("after --home: %d %q %s", code, out, stderr)
	}
	if code, _, stderr = runCLI(env, "report", "settings", "--home", "fra"); code == 0 || !strings.Contains(stderr, `"fra"`) {
		t.Errorf("a language not in the list: %d %s", code, stderr)
	}
}
