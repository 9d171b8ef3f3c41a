package hub

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loa-project/loa/hub/accounts"
	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/protocol"
)

// Credentials can be retired: staff tokens expire (a year by default), can be rotated and
// revoked, users disabled, device secrets replaced; each through the API, audited, and only
// within the caller's scope.
func TestCredentialsCanBeRetired(t *testing.T) {
	h := newTestHub(t)
	h.addArea("qn/c1")
	h.addArea("qn/c2")
	ctx := context.Background()

	// A token from user add expires.
	raw, err := sql.Open("sqlite", h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var open int
	if err := raw.QueryRow("SELECT COUNT(*) FROM tokens WHERE expires_at IS NULL").Scan(&open); err != nil || open != 0 {
		t.Fatalf("%d tokens never expire (%v)", open, err)
	}
	old, _, err := accounts.IssueToken(ctx, h.db, "admin", "test", time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if code := h.call(old, "GET", "/api/whoami", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("an expired token: %d", code)
	}

	// Rotation: a new token for the caller, then the old one revoked.
	lan := h.userToken("lan", "qn/c1")
	var nt api.TokenResponse
	h.mustCall(lan, "POST", "/api/tokens", api.TokenRequest{ValidFor: "720h"}, &nt, http.StatusCreated)
	if nt.User != "lan" || !strings.HasPrefix(nt.Token, "loa-st1-") || nt.Expires.Sub(time.Now()) > 721*time.Hour {
		t.Fatalf("new token %+v", nt)
	}
	h.mustCall(nt.Token, "POST", "/api/tokens/revoke", api.TokenRequest{Token: lan}, nil, http.StatusOK)
	if code := h.call(lan, "GET", "/api/whoami", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %d", code)
	}
	h.mustCall(nt.Token, "GET", "/api/whoami", nil, nil, http.StatusOK)
	// Another commune's token is not c1's to revoke (nor to learn of).
	mai := h.userToken("mai", "qn/c2")
	var e api.Error
	if code := h.call(nt.Token, "POST", "/api/tokens/revoke", api.TokenRequest{Token: mai}, &e); code != http.StatusNotFound {
		t.Fatalf("revoking another commune's token: %d %q", code, e.Error)
	}
	h.mustCall(mai, "GET", "/api/whoami", nil, nil, http.StatusOK)

	// Disabling a user ends all their tokens; only within scope.
	if code := h.call(nt.Token, "POST", "/api/users/disable", api.UserRequest{ID: "mai"}, &e); code != http.StatusNotFound {
		t.Fatalf("disabling another commune's user: %d %q", code, e.Error)
	}
	h.mustCall(h.admin, "POST", "/api/users/disable", api.UserRequest{ID: "lan"}, nil, http.StatusOK)
	if code := h.call(nt.Token, "GET", "/api/whoami", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a disabled user's token: %d", code)
	}

	// Re-keying a device: the old secret stops at once, the live connection is closed.
	oldSecret := h.enrol("c1/cl-01", "qn/c1")
	a, _ := h.connect("c1/cl-01", oldSecret, protocol.Hello{})
	var rk api.EnrolResponse
	h.mustCall(h.admin, "POST", "/api/devices/rekey", api.RekeyRequest{ID: "c1/cl-01"}, &rk, http.StatusOK)
	if rk.Secret == "" || rk.Secret == oldSecret {
		t.Fatalf("rekey answer %+v", rk)
	}
	a.closed()
	if _, resp, err := h.dial("c1/cl-01", oldSecret); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old secret after rekey: %v", err)
	}
	h.connect("c1/cl-01", rk.Secret, protocol.Hello{})

	var audit []api.AuditJSON
	h.mustCall(h.admin, "GET", "/api/audit", nil, &audit, http.StatusOK)
	acts := ""
	for _, a := range audit {
		acts += a.Action + " "
	}
	for _, w := range []string{"token.add", "token.revoke", "user.disable", "device.rekey"} {
		if !strings.Contains(acts, w) {
			t.Errorf("audit lacks %s: %s", w, acts)
		}
	}
}
