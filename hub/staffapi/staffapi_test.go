package staffapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

func TestFailMapsErrorsToStatuses(t *testing.T) {
	cases := []struct {
		err  error
		code int
		want string
	}{
		{Refuse(http.StatusConflict, "series taken"), http.StatusConflict, "series taken"},
		{fmt.Errorf("wrapped: %w", BadRequest("bad %s", "until")), http.StatusBadRequest, "bad until"},
		{fmt.Errorf("area x: %w", store.ErrNotFound), http.StatusNotFound, "area x"},
		{store.ErrExists, http.StatusConflict, ""},
		{store.ErrInvalid, http.StatusBadRequest, ""},
		{store.ErrStaleRevision, http.StatusConflict, ""},
		{store.ErrDecided, http.StatusConflict, ""},
		{store.ErrUnauthorized, http.StatusForbidden, ""},
		{store.ErrFull, http.StatusInsufficientStorage, "free space"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "disk on fire"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		Fail(w, c.err)
		var e api.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("%v: answer %q is not an API error: %v", c.err, w.Body, err)
		}
		if w.Code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%v: %d %q, want %d containing %q", c.err, w.Code, e.Error, c.code, c.want)
		}
	}
}

func TestWriteJSONIndentsUnlessCompact(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]int{"a": 1})
	if !strings.Contains(w.Body.String(), "\n  \"a\"") {
		t.Errorf("answer %q is not indented", w.Body)
	}
	w = httptest.NewRecorder()
	WriteJSON(Compact(w), http.StatusOK, map[string]int{"a": 1})
	if w.Body.String() != "{\"a\":1}\n" {
		t.Errorf("compact answer %q, want {\"a\":1}", w.Body)
	}
}

func TestScopeChecks(t *testing.T) {
	p := Caller{Scope: "hue/phu-vang"}
	w := httptest.NewRecorder()
	if InScope(w, p, "hue") || w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no area hue in your scope") {
		t.Errorf("an area above the scope: %d %s", w.Code, w.Body)
	}
	if !InScope(httptest.NewRecorder(), p, "hue/phu-vang/thon-1") {
		t.Error("an area below the scope refused")
	}
	r := httptest.NewRequest("GET", "/api/devices", nil)
	if a, ok := AreaParam(httptest.NewRecorder(), r, p); !ok || a != p.Scope {
		t.Errorf("no ?area= gives %q %v, want the scope", a, ok)
	}
	if MayAct(p, "da-nang") || !MayAct(Caller{}, "da-nang") {
		t.Error("MayAct: a scoped caller acts outside it, or the CAP feed (no scope) does not act")
	}
	w = httptest.NewRecorder()
	if HubWide(w, p, "the settings are") || w.Code != http.StatusForbidden {
		t.Errorf("HubWide let a commune's staff through: %d", w.Code)
	}
}

func TestReadJSONRefusesUnknownFields(t *testing.T) {
	var v struct{ Name string }
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/api/x", strings.NewReader(`{"name":"a","nmae":"b"}`))
	if ReadJSON(w, r, &v) || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "nmae") {
		t.Errorf("unknown field: %d %s", w.Code, w.Body)
	}
}
