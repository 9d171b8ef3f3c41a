package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// A form that changes something is refused without its session's CSRF token, with a wrong
// one, and from another origin; with it, it goes through.
func TestCSRF(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	if code, body := c.signIn("admin", adminPass); code != http.StatusOK || !strings.Contains(body, "Tổng quan") {
		t.Fatalf("sign-in: %d\n%s", code, body)
	}
	cmd := url.Values{"device": {"tt/cl-1"}, "action": {"reload"}}
	if code, body, _ := c.do("POST", "/console/command", cmd); code != http.StatusForbidden || !strings.Contains(body, "Hãy tải lại trang") {
		t.Fatalf("command without CSRF token: %d\n%s", code, body)
	}
	cmd.Set("csrf", "forged")
	if code, _, _ := c.do("POST", "/console/command", cmd); code != http.StatusForbidden {
		t.Fatalf("command with a wrong CSRF token: %d", code)
	}
	cmd.Set("csrf", c.csrf)
	req, _ := http.NewRequest("POST", h.url+"/console/command", strings.NewReader(cmd.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := c.c.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("command from another origin: %d", resp.StatusCode)
	}
	code, _, hdr := c.do("POST", "/console/command", cmd)
	if code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "notice=") {
		t.Fatalf("command with its CSRF token: %d %s", code, hdr.Get("Location"))
	}
	// The sign-in form has its own token: a post without it is refused before any password check.
	c2 := h.client()
	if code, _, _ := c2.do("POST", "/console/login", url.Values{"user": {"admin"}, "password": {adminPass}}); code != http.StatusForbidden {
		t.Fatalf("sign-in without the form's token: %d", code)
	}
}

// A session cookie from before sign-out is refused, for pages and for forms.
func TestLogoutEndsSession(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	c.signIn("admin", adminPass)
	u, _ := url.Parse(h.url + "/console/")
	old := c.c.Jar.Cookies(u)
	csrf := c.csrf
	if code, _, hdr := c.do("POST", "/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || hdr.Get("Location") != "/console/login" {
		t.Fatalf("logout: %d %v", code, hdr)
	}
	replay := h.client()
	replay.c.Jar.SetCookies(u, old)
	if code, _, hdr := replay.do("GET", "/console/devices", nil); code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/console/login") {
		t.Fatalf("a page with the old cookie: %d %v", code, hdr)
	}
	if code, _, _ := replay.do("POST", "/console/command", url.Values{"csrf": {csrf}, "device": {"tt/cl-1"}, "action": {"stop"}}); code != http.StatusUnauthorized {
		t.Fatalf("a form with the old cookie: %d", code)
	}
}

// Five wrong passwords lock the user out for a while: then even the right one is refused,
// and the page says until when and what to do.
func TestLockout(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	for i := 1; i <= 4; i++ {
		if code, body := c.signIn("admin", "sai-mat-khau"); code != http.StatusUnauthorized || !strings.Contains(body, "mật khẩu không đúng") {
			t.Fatalf("wrong password %d: %d\n%s", i, code, body)
		}
	}
	if code, body := c.signIn("admin", "sai-mat-khau"); code != http.StatusTooManyRequests || !strings.Contains(body, "tạm khoá đến") {
		t.Fatalf("fifth wrong password: %d\n%s", code, body)
	}
	if code, body := c.signIn("admin", adminPass); code != http.StatusTooManyRequests || !strings.Contains(body, "nhờ quản trị viên đặt lại mật khẩu") {
		t.Fatalf("right password while locked: %d\n%s", code, body)
	}
	// Another user is not locked by them.
	if code, _ := h.client().signIn("xem-tp", viewerPass); code != http.StatusOK {
		t.Fatalf("another user's sign-in: %d", code)
	}
	// An unknown user is answered as a wrong password.
	if code, body := h.client().signIn("khong-co", "x"); code != http.StatusUnauthorized || !strings.Contains(body, "mật khẩu không đúng") {
		t.Fatalf("unknown user: %d\n%s", code, body)
	}
	// Guessing across user names is bounded per address by the hub's auth_failure_limit (60 a
	// minute, these failures included): then sign-in is refused before any password is checked.
	for i := 1; ; i++ {
		code, body := c.signIn(fmt.Sprintf("doan-%d", i), "x")
		if code == http.StatusTooManyRequests {
			if !strings.Contains(body, "quá nhiều lần đăng nhập sai từ địa chỉ này") {
				t.Fatalf("refused sign-in %d:\n%s", i, body)
			}
			break
		}
		if code != http.StatusUnauthorized || i > 60 {
			t.Fatalf("failed sign-in %d: %d", i, code)
		}
	}
}

// A viewer of Tam Phú sees their commune only, and changes nothing: the other commune's
// devices are not in their lists and answer "not found"; commands are refused by their role
// and not offered on their pages.
func TestViewerScopeAndRole(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	code, body := c.signIn("xem-tp", viewerPass)
	if code != http.StatusOK || !strings.Contains(body, "Xã Tam Phú") || strings.Contains(body, "Tam Thanh") {
		t.Fatalf("viewer's overview: %d\n%s", code, body)
	}
	if _, body, _ := c.do("GET", "/console/devices", nil); strings.Contains(body, "tt/cl-1") || !strings.Contains(body, "tp/cl-1") {
		t.Fatalf("viewer's device list:\n%s", body)
	}
	if code, _, _ := c.do("GET", "/console/devices/tt/cl-1", nil); code != http.StatusNotFound {
		t.Fatalf("another commune's device page: %d", code)
	}
	if code, _, _ := c.do("GET", "/console/devices?area=qn/tk/tt", nil); code != http.StatusNotFound {
		t.Fatalf("another commune's device list: %d", code)
	}
	if _, body, _ := c.do("GET", "/console/confirmations?device=tt/cl-1", nil); strings.Contains(body, "qn/tk/tt/morning") {
		t.Fatalf("another commune's plays shown")
	}
	if code, body, _ := c.do("GET", "/console/confirmations.csv", nil); code != http.StatusOK || strings.Contains(body, "tt/cl-1") {
		t.Fatalf("viewer's CSV: %d\n%s", code, body)
	}
	code, body, _ = c.do("GET", "/console/devices/tp/cl-1", nil)
	if code != http.StatusOK || strings.Contains(body, `action="/console/command"`) {
		t.Fatalf("viewer's own device page offers commands (%d)", code)
	}
	code, body, _ = c.do("POST", "/console/command", url.Values{"csrf": {c.csrf}, "device": {"tp/cl-1"}, "action": {"stop"}})
	if code != http.StatusForbidden || !strings.Contains(body, "Vai trò của bạn không được làm việc này") {
		t.Fatalf("viewer's command: %d\n%s", code, body)
	}
	if code, _, _ := c.do("POST", "/console/command", url.Values{"csrf": {c.csrf}, "device": {"tt/cl-1"}, "action": {"stop"}}); code != http.StatusForbidden {
		t.Fatalf("viewer's command to another commune: %d", code)
	}
	if strings.Contains(body, `href="/console/audit"`) {
		t.Fatal("a viewer is offered the audit log")
	}
	if code, _, _ := c.do("GET", "/console/audit", nil); code != http.StatusForbidden {
		t.Fatalf("viewer's audit page: %d", code)
	}
}

// Markup in what devices report and staff type shows as text.
func TestMarkupShownAsText(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	c.signIn("admin", adminPass)
	_, body, _ := c.do("GET", "/console/devices", nil)
	if strings.Contains(body, "<script>window.__xss") || !strings.Contains(body, "&lt;script&gt;window.__xss=1&lt;/script&gt;") {
		t.Fatalf("device name not escaped:\n%s", body)
	}
	// The filters: state, kind, software version.
	for q, want := range map[string][]string{"state=online": {"tt/cl-1"}, "state=alarm": {"tt/cl-2"}, "kind=board": nil,
		"software=loa-agent+0.9": {"tt/cl-1", "tt/cl-2"}, "q=ch%E1%BB%A3": {"tp/cl-1", "tt/cl-2"}} {
		_, body, _ := c.do("GET", "/console/devices?"+q, nil)
		for _, id := range []string{"tt/cl-1", "tt/cl-2", "tp/cl-1"} {
			if got := strings.Contains(body, `data-device="`+id+`"`); got != slices.Contains(want, id) {
				t.Errorf("devices?%s: %s listed %v", q, id, got)
			}
		}
	}
	_, body, _ = c.do("GET", "/console/devices/tt/cl-1", nil)
	if strings.Contains(body, "<i>thời sự</i>") || !strings.Contains(body, "&lt;i&gt;thời sự&lt;/i&gt;") {
		t.Fatalf("now playing not escaped")
	}
}
