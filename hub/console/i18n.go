package console

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
	"html/template"
	"net/http"
	"time"
)

// catalogue is every string the console shows, Vietnamese first (words from the project's
// glossary), English switchable. A key missing from a language shows as the key itself, and
// TestCatalogueComplete fails.
var catalogue = map[string]map[string]string{
	"vi": {
		"app":                    "Loa — hệ thống truyền thanh cơ sở",
		"nav.overview":           "Tổng quan",
		"nav.devices":            "Thiết bị",
		"nav.audit":              "Nhật ký thao tác",
		"audit.title":            "Nhật ký thao tác",
		"audit.none":             "Không có thao tác nào khớp bộ lọc.",
		"audit.at":               "Thời điểm",
		"audit.actor":            "Cán bộ",
		"audit.action":           "Thao tác",
		"audit.target":           "Đối tượng",
		"audit.detail":           "Chi tiết",
		"nav.users":              "Cán bộ",
		"users.title":            "Cán bộ và vai trò",
		"users.add":              "Thêm cán bộ",
		"users.id":               "Tên đăng nhập",
		"users.name":             "Họ và tên",
		"users.password":         "Mật khẩu (ít nhất 10 ký tự)",
		"users.newpassword":      "Mật khẩu mới",
		"users.setpassword":      "Đặt lại mật khẩu",
		"users.disable":          "Khoá tài khoản",
		"users.state":            "Tình trạng",
		"users.active":           "đang dùng",
		"users.isdisabled":       "đã khoá",
		"users.added":            "Đã thêm cán bộ %s.",
		"users.passwordset":      "Đã đặt mật khẩu mới cho %s; các phiên đăng nhập cũ của họ đã kết thúc.",
		"users.disabled":         "Đã khoá tài khoản %s: mọi phiên đăng nhập và mã truy cập của họ không dùng được nữa.",
		"kind.b.emergency":       "Tin khẩn cấp",
		"kind.b.bulletin":        "Bản tin ưu tiên",
		"kind.b.live":            "Tiếp sóng",
		"onair.until":            "đến %s",
		"login.address":          "Có quá nhiều lần đăng nhập sai từ địa chỉ này. Hãy đợi %d giây rồi thử lại.",
		"account.title":          "Đổi mật khẩu",
		"account.current":        "Mật khẩu hiện tại",
		"account.new":            "Mật khẩu mới (ít nhất 10 ký tự)",
		"account.again":          "Nhập lại mật khẩu mới",
		"account.wrong":          "Mật khẩu hiện tại không đúng.",
		"account.mismatch":       "Hai lần nhập mật khẩu mới không giống nhau.",
		"account.note":           "Sau khi đổi, mọi phiên đăng nhập của bạn kết thúc; hãy đăng nhập lại bằng mật khẩu mới.",
		"nav.plays":              "Nhật ký phát",
		"signout":                "Đăng xuất",
		"signin":                 "Đăng nhập",
		"login.title":            "Đăng nhập",
		"login.user":             "Tên đăng nhập",
		"login.password":         "Mật khẩu",
		"login.bad":              "Tên đăng nhập hoặc mật khẩu không đúng. Hãy kiểm tra lại (chữ hoa, chữ thường, bộ gõ tiếng Việt).",
		"login.locked":           "Tài khoản tạm khoá đến %s vì nhập sai mật khẩu nhiều lần. Hãy đợi đến giờ đó hoặc nhờ quản trị viên đặt lại mật khẩu.",
		"role":                   "Vai trò",
		"role.viewer":            "Xem",
		"role.operator":          "Vận hành",
		"role.emergency":         "Phát tin khẩn cấp",
		"role.admin":             "Quản trị",
		"scope":                  "Địa bàn",
		"lang.other":             "English",
		"overview.title":         "Tổng quan",
		"area":                   "Địa bàn",
		"online":                 "Trực tuyến",
		"offline":                "Mất kết nối",
		"playing":                "Đang phát",
		"alarms":                 "Cảnh báo",
		"onair.title":            "Đang phát",
		"onair.none":             "Không có cụm loa nào đang phát.",
		"alarms.title":           "Cảnh báo cần xử lý",
		"alarms.none":            "Không có cảnh báo.",
		"alarm.offline":          "Mất kết nối từ %s (quá 1 ngày): kiểm tra nguồn điện và đường truyền 3G/4G của cụm.",
		"alarm.never":            "Chưa kết nối lần nào từ khi đăng ký: kiểm tra cấu hình hub.url và khoá thiết bị.",
		"alarm.relay":            "Rơ-le nguồn âm ly lỗi từ %s: %s. Kỹ thuật viên kiểm tra rơ-le và dây nối.",
		"alarm.sign":             "Bảng LED mất kết nối từ %s: %s. Kiểm tra nguồn và cáp nối bảng.",
		"alarm.screen":           "Màn hình ngừng hoạt động từ %s: %s.",
		"alarm.audio":            "Mất tiếng (im lặng kéo dài) từ %s: %s.",
		"alarm.disk":             "Thẻ nhớ sắp đầy (còn %d MiB): nội dung mới có thể không tải được.",
		"alarm.clock":            "Đồng hồ thiết bị lệch %.0f giây: kiểm tra đồng bộ giờ (NTP).",
		"alarm.refused":          "Thiết bị từ chối lịch phát sóng phiên bản %d: %s",
		"devices.title":          "Thiết bị",
		"devices.none":           "Không có thiết bị nào khớp bộ lọc.",
		"filter":                 "Lọc",
		"filter.all":             "Tất cả",
		"state":                  "Trạng thái",
		"kind":                   "Loại",
		"kind.cluster":           "Cụm loa",
		"kind.board":             "Bảng tin điện tử / màn hình",
		"search":                 "Tìm theo mã hoặc tên",
		"device":                 "Thiết bị",
		"name":                   "Tên",
		"lastseen":               "Lần cuối kết nối",
		"software":               "Phiên bản phần mềm",
		"nowplaying":             "Đang phát",
		"nothing":                "—",
		"device.heartbeat":       "Tình trạng",
		"volume":                 "Âm lượng",
		"temperature":            "Nhiệt độ",
		"diskfree":               "Dung lượng trống",
		"clockoffset":            "Lệch đồng hồ",
		"link":                   "Đường truyền",
		"part.relay":             "Âm ly (rơ-le nguồn)",
		"part.sign":              "Bảng LED",
		"part.screen":            "Màn hình",
		"schedule":               "Lịch phát sóng",
		"revision":               "Phiên bản",
		"delivery":               "Trạng thái gửi",
		"active":                 "Đang áp dụng",
		"delivery.composed":      "chưa gửi",
		"delivery.sent":          "đã gửi",
		"delivery.received":      "thiết bị đã nhận",
		"delivery.content_ready": "đã tải đủ nội dung",
		"delivery.active":        "đang áp dụng",
		"delivery.refused":       "bị từ chối",
		"commands":               "Điều khiển",
		"cmd.volume":             "Đặt âm lượng",
		"cmd.stop":               "Dừng phát",
		"cmd.reload":             "Tải lại lịch",
		"cmd.sent":               "Đã gửi lệnh %s tới %d thiết bị (%d đang trực tuyến nhận ngay, các thiết bị khác nhận khi kết nối lại).",
		"plays.title":            "Nhật ký phát",
		"plays.none":             "Không có xác nhận phát nào khớp bộ lọc.",
		"plays.csv":              "Tải về CSV",
		"result":                 "Kết quả",
		"result.completed":       "đã phát",
		"result.preempted":       "bị ngắt (ưu tiên cao hơn)",
		"result.interrupted":     "bị ngắt",
		"result.missed":          "bỏ lỡ",
		"result.failed":          "lỗi",
		"result.suppressed":      "không phát (giờ yên tĩnh)",
		"since":                  "Từ",
		"until":                  "Đến",
		"time.hint":              "dd/mm/yyyy hoặc dd/mm/yyyy hh:mm",
		"programme":              "Chương trình",
		"content":                "Nội dung",
		"start":                  "Bắt đầu",
		"played":                 "Thời lượng phát",
		"levels":                 "Mức âm (đỉnh / trung bình)",
		"gaps":                   "Ngắt quãng",
		"page.prev":              "Trang trước",
		"page.first":             "Trang đầu",
		"page.next":              "Trang sau",
		"page":                   "Trang %d",
		"live":                   "Tự động cập nhật",
		"live.off":               "Mất cập nhật tự động; tải lại trang",
		"err.title":              "Không thực hiện được",
		"err.notfound":           "Không tìm thấy trang này. Quay về Tổng quan.",
		"err.signin":             "Phiên đăng nhập đã hết hạn hoặc đã đăng xuất. Hãy đăng nhập lại.",
		"err.csrf":               "Biểu mẫu đã cũ hoặc không gửi từ trang của hệ thống. Hãy tải lại trang rồi làm lại.",
		"err.internal":           "Lỗi máy chủ. Hãy thử lại; nếu vẫn lỗi, báo kỹ thuật viên quản lý hub.",
		"err.api":                "Hub trả lời: %s",
		"err.forbidden":          "Vai trò của bạn không được làm việc này. Hãy nhờ quản trị viên của địa bàn.",
		"back":                   "Quay lại",
	},
	"en": {
		"app":                    "Loa — grassroots broadcasting",
		"nav.overview":           "Overview",
		"nav.devices":            "Devices",
		"nav.audit":              "Audit log",
		"audit.title":            "Audit log",
		"audit.none":             "No entry matches the filters.",
		"audit.at":               "When",
		"audit.actor":            "Who",
		"audit.action":           "Action",
		"audit.target":           "On",
		"audit.detail":           "Detail",
		"nav.users":              "Staff",
		"users.title":            "Staff and roles",
		"users.add":              "Add a staff member",
		"users.id":               "User name",
		"users.name":             "Full name",
		"users.password":         "Password (at least 10 characters)",
		"users.newpassword":      "New password",
		"users.setpassword":      "Reset password",
		"users.disable":          "Disable",
		"users.state":            "State",
		"users.active":           "active",
		"users.isdisabled":       "disabled",
		"users.added":            "Added %s.",
		"users.passwordset":      "New password set for %s; their earlier sessions are ended.",
		"users.disabled":         "Disabled %s: none of their sessions or tokens works any more.",
		"kind.b.emergency":       "Emergency",
		"kind.b.bulletin":        "Priority bulletin",
		"kind.b.live":            "Relay",
		"onair.until":            "until %s",
		"login.address":          "Too many failed sign-ins from your address. Wait %d s and try again.",
		"account.title":          "Change password",
		"account.current":        "Current password",
		"account.new":            "New password (at least 10 characters)",
		"account.again":          "New password again",
		"account.wrong":          "The current password is wrong.",
		"account.mismatch":       "The two new passwords differ.",
		"account.note":           "Changing it ends all your sessions; sign in again with the new password.",
		"nav.plays":              "Play log",
		"signout":                "Sign out",
		"signin":                 "Sign in",
		"login.title":            "Sign in",
		"login.user":             "User name",
		"login.password":         "Password",
		"login.bad":              "Wrong user name or password. Check capitals and your keyboard's input method.",
		"login.locked":           "This account is locked until %s after too many wrong passwords. Wait until then or ask an administrator to reset the password.",
		"role":                   "Role",
		"role.viewer":            "Viewer",
		"role.operator":          "Operator",
		"role.emergency":         "Emergency broadcaster",
		"role.admin":             "Administrator",
		"scope":                  "Area",
		"lang.other":             "Tiếng Việt",
		"overview.title":         "Overview",
		"area":                   "Area",
		"online":                 "Online",
		"offline":                "Offline",
		"playing":                "Playing",
		"alarms":                 "Alarms",
		"onair.title":            "On the air",
		"onair.none":             "No cluster is playing.",
		"alarms.title":           "Alarms to act on",
		"alarms.none":            "No alarms.",
		"alarm.offline":          "Offline since %s (over a day): check the cluster's power and 3G/4G link.",
		"alarm.never":            "Never connected since enrolment: check its hub.url and device secret.",
		"alarm.relay":            "Amplifier relay fault since %s: %s. A technician should check the relay and its wiring.",
		"alarm.sign":             "LED sign unreachable since %s: %s. Check its power and cable.",
		"alarm.screen":           "Screen down since %s: %s.",
		"alarm.audio":            "Dead air since %s: %s.",
		"alarm.disk":             "Storage nearly full (%d MiB free): new content may not download.",
		"alarm.clock":            "Device clock off by %.0f s: check time sync (NTP).",
		"alarm.refused":          "The device refused schedule revision %d: %s",
		"devices.title":          "Devices",
		"devices.none":           "No device matches the filters.",
		"filter":                 "Filter",
		"filter.all":             "All",
		"state":                  "State",
		"kind":                   "Kind",
		"kind.cluster":           "Loudspeaker cluster",
		"kind.board":             "Bulletin board / screen",
		"search":                 "Search by id or name",
		"device":                 "Device",
		"name":                   "Name",
		"lastseen":               "Last seen",
		"software":               "Software version",
		"nowplaying":             "Now playing",
		"nothing":                "—",
		"device.heartbeat":       "Heartbeat",
		"volume":                 "Volume",
		"temperature":            "Temperature",
		"diskfree":               "Free disk",
		"clockoffset":            "Clock offset",
		"link":                   "Link",
		"part.relay":             "Amplifier relay",
		"part.sign":              "LED sign",
		"part.screen":            "Screen",
		"schedule":               "Schedule",
		"revision":               "Revision",
		"delivery":               "Delivery",
		"active":                 "Active",
		"delivery.composed":      "not sent",
		"delivery.sent":          "sent",
		"delivery.received":      "received",
		"delivery.content_ready": "content ready",
		"delivery.active":        "active",
		"delivery.refused":       "refused",
		"commands":               "Commands",
		"cmd.volume":             "Set volume",
		"cmd.stop":               "Stop",
		"cmd.reload":             "Reload schedule",
		"cmd.sent":               "Command %s sent to %d devices (%d online got it now, the others will when they reconnect).",
		"plays.title":            "Play log",
		"plays.none":             "No confirmation matches the filters.",
		"plays.csv":              "Download CSV",
		"result":                 "Result",
		"result.completed":       "played",
		"result.preempted":       "preempted",
		"result.interrupted":     "interrupted",
		"result.missed":          "missed",
		"result.failed":          "failed",
		"result.suppressed":      "suppressed (quiet hours)",
		"since":                  "From",
		"until":                  "To",
		"time.hint":              "dd/mm/yyyy or dd/mm/yyyy hh:mm",
		"programme":              "Programme",
		"content":                "Content",
		"start":                  "Start",
		"played":                 "Played",
		"levels":                 "Levels (peak / mean)",
		"gaps":                   "Gaps",
		"page.prev":              "Previous page",
		"page.first":             "First page",
		"page.next":              "Next page",
		"page":                   "Page %d",
		"live":                   "Live updates",
		"live.off":               "Live updates lost; reload the page",
		"err.title":              "Could not do that",
		"err.notfound":           "No such page. Go back to the overview.",
		"err.signin":             "Your session expired or you signed out. Sign in again.",
		"err.csrf":               "This form is stale or did not come from the console. Reload the page and try again.",
		"err.internal":           "Server error. Try again; if it persists, tell the hub's technician.",
		"err.api":                "The hub answered: %s",
		"err.forbidden":          "Your role may not do this. Ask an administrator of your area.",
		"back":                   "Back",
	},
}

// addStrings registers one page's strings (a vi and an en map of the same keys); each page's
// file calls it from init, so pages grow the catalogue without touching one shared map.
// A key given twice is a programming error and panics at start-up.
func addStrings(vi, en map[string]string) {
	for lang, m := range map[string]map[string]string{"vi": vi, "en": en} {
		for k, v := range m {
			if _, dup := catalogue[lang][k]; dup {
				panic("console: catalogue key " + k + " given twice")
			}
			catalogue[lang][k] = v
		}
	}
}

func langOf(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil {
		if _, ok := catalogue[ck.Value]; ok {
			return ck.Value
		}
	}
	return "vi"
}

// tr looks a key up in lang's catalogue and formats it with args.
func tr(lang, key string, args ...any) string {
	s, ok := catalogue[lang][key]
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// fmtTime is dd/mm/yyyy hh:mm, 24-hour, in loc.
func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format("02/01/2006 15:04")
}

var funcs = template.FuncMap{
	"list": func(xs ...string) []string { return xs },
	"can": func(s *session, need string) bool {
		return s != nil && store.Can(s.User.Role, store.Role(need))
	},
	"percent":    func(v *float64) string { return fmt.Sprintf("%.0f %%", *v*100) },
	"percentNum": func(v *float64) string { return fmt.Sprintf("%.0f", *v*100) },
	"short": func(ref string) string { // a content ref's hash is long; its start tells items apart
		if len(ref) > 19 && strings.HasPrefix(ref, "sha256:") {
			return ref[:19] + "…"
		}
		return ref
	},
	"celsius": func(v *float64) string { return fmt.Sprintf("%.0f °C", *v) },
	"mib":     func(n int64) string { return fmt.Sprintf("%d MiB", n>>20) },
	"inc":     func(n int) int { return n + 1 },
	"dec":     func(n int) int { return n - 1 },
	"dur": func(s float64) string {
		d := time.Duration(s * float64(time.Second)).Round(time.Second)
		return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
	},
	"db": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f dB", *v)
	},
	"playsView": func(v view, plays []api.ConfirmationJSON) any {
		return struct {
			View  view
			Plays []api.ConfirmationJSON
		}{v, plays}
	},
}

// view is what every page's template gets.
type view struct {
	Lang    string
	Session *session
	Path    string
	loc     *time.Location
	Data    any
}

// T is the page's string for key.
func (v view) T(key string, args ...any) string { return tr(v.Lang, key, args...) }

// Time formats t (a time.Time or *time.Time) in the hub's zone.
func (v view) Time(t any) string {
	switch t := t.(type) {
	case time.Time:
		return fmtTime(t, v.loc)
	case *time.Time:
		if t != nil {
			return fmtTime(*t, v.loc)
		}
	}
	return "—"
}

// OtherLang is the language the switch offers.
func (v view) OtherLang() string {
	if v.Lang == "vi" {
		return "en"
	}
	return "vi"
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, page string, s *session, data any) {
	v := view{Lang: langOf(r), Session: s, Path: r.URL.RequestURI(), loc: c.opts.Location, Data: data}
	// Rendered whole before anything is sent: a template error is a 500, not half a page.
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.opts.Log.Error("console: render", "page", page, "err", err)
		http.Error(w, tr(v.Lang, "err.internal"), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// fail shows an error page saying what to do; msg is a catalogue key, or with args a
// formatted one.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, code int, key string, args ...any) {
	if r.Header.Get("X-CSRF-Token") != "" || r.Header.Get("Accept") == "text/event-stream" {
		http.Error(w, tr(langOf(r), key, args...), code)
		return
	}
	c.render(w, r, code, "error", s, tr(langOf(r), key, args...))
}
