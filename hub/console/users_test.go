package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An administrator adds an operator with a password from the console; the operator signs in;
// a password reset ends the operator's session and the new password works; disabling them
// ends everything. An operator cannot reach the staff page, nor hand out a role above theirs.
func TestAdminManagesUsers(t *testing.T) {
	h := newTestHub(t)
	admin := h.client()
	admin.signIn("admin", adminPass)
	code, body, _ := admin.do("GET", "/console/users", nil)
	if code != http.StatusOK || !strings.Contains(body, "xem-tp") || !strings.Contains(body, "Trần Thị Bình") {
		t.Fatalf("staff page: %d\n%s", code, body)
	}
	code, _, hdr := admin.do("POST", "/console/users/add", url.Values{"csrf": {admin.csrf}, "id": {"lan"}, "name": {"Lê Thị Lan"},
		"scope": {"qn/tk/tt"}, "role": {"operator"}, "password": {"mat-khau-lan-01"}})
	if code != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), "notice=") {
		t.Fatalf("add user: %d %v", code, hdr)
	}
	if code, body, _ := admin.do("POST", "/console/users/add", url.Values{"csrf": {admin.csrf}, "id": {"lan"}, "name": {"x"},
		"scope": {"qn/tk/tt"}, "role": {"viewer"}}); code != http.StatusConflict || !strings.Contains(body, "exists already") {
		t.Fatalf("the same user again: %d\n%s", code, body)
	}
	lan := h.client()
	if code, body := lan.signIn("lan", "mat-khau-lan-01"); code != http.StatusOK || !strings.Contains(body, "Lê Thị Lan · Vận hành") {
		t.Fatalf("the new operator's sign-in: %d\n%s", code, body)
	}
	if code, _, _ := lan.do("GET", "/console/users", nil); code != http.StatusForbidden {
		t.Fatalf("an operator's staff page: %d", code)
	}
	if code, _, _ := lan.do("POST", "/console/users/add", url.Values{"csrf": {lan.csrf}, "id": {"x2"}, "name": {"x"},
		"scope": {"qn/tk/tt"}, "role": {"admin"}}); code != http.StatusForbidden {
		t.Fatalf("an operator adding an admin: %d", code)
	}
	admin.do("GET", "/console/users", nil)
	if code, _, _ := admin.do("POST", "/console/users/password", url.Values{"csrf": {admin.csrf}, "id": {"lan"}, "password": {"mat-khau-moi-02"}}); code != http.StatusSeeOther {
		t.Fatalf("reset password: %d", code)
	}
	if code, _, hdr := lan.do("GET", "/console/devices", nil); code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/console/login") {
		t.Fatalf("the operator's session after a reset: %d", code)
	}
	if code, _ := h.client().signIn("lan", "mat-khau-lan-01"); code != http.StatusUnauthorized {
		t.Fatalf("the old password after a reset: %d", code)
	}
	lan2 := h.client()
	if code, _ := lan2.signIn("lan", "mat-khau-moi-02"); code != http.StatusOK {
		t.Fatalf("the new password: %d", code)
	}
	if code, _, _ := admin.do("POST", "/console/users/disable", url.Values{"csrf": {admin.csrf}, "id": {"lan"}}); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if code, _, _ := lan2.do("GET", "/console/devices", nil); code != http.StatusSeeOther {
		t.Fatalf("a disabled user's session: %d", code)
	}
	if code, _ := h.client().signIn("lan", "mat-khau-moi-02"); code != http.StatusUnauthorized {
		t.Fatalf("a disabled user's sign-in: %d", code)
	}
	if _, body, _ := admin.do("GET", "/console/users", nil); !strings.Contains(body, "đã khoá") {
		t.Fatal("the staff page does not show lan disabled")
	}
}

// A user changes their own password: the current one is asked, the two new ones must match,
// and then every session of theirs ends and only the new password signs in.
func TestOwnPassword(t *testing.T) {
	h := newTestHub(t)
	c := h.client()
	c.signIn("xem-tp", viewerPass)
	if code, body, _ := c.do("GET", "/console/account", nil); code != http.StatusOK || !strings.Contains(body, "Đổi mật khẩu") {
		t.Fatalf("account page: %d\n%s", code, body)
	}
	form := url.Values{"csrf": {c.csrf}, "current": {"sai"}, "password": {"mat-khau-moi-xa"}, "again": {"mat-khau-moi-xa"}}
	if code, body, _ := c.do("POST", "/console/account", form); code != http.StatusForbidden || !strings.Contains(body, "Mật khẩu hiện tại không đúng") {
		t.Fatalf("a wrong current password: %d\n%s", code, body)
	}
	form.Set("current", viewerPass)
	form.Set("again", "mat-khau-khac")
	if code, body, _ := c.do("POST", "/console/account", form); code != http.StatusBadRequest || !strings.Contains(body, "không giống nhau") {
		t.Fatalf("new passwords that differ: %d\n%s", code, body)
	}
	form.Set("again", "mat-khau-moi-xa")
	if code, _, hdr := c.do("POST", "/console/account", form); code != http.StatusSeeOther || hdr.Get("Location") != "/console/login" {
		t.Fatalf("change: %d %v", code, hdr)
	}
	if code, _ := h.client().signIn("xem-tp", viewerPass); code != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", code)
	}
	if code, _ := h.client().signIn("xem-tp", "mat-khau-moi-xa"); code != http.StatusOK {
		t.Fatalf("the new password: %d", code)
	}
}
