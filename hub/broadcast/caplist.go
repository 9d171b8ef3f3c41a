package broadcast

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// Routes the console's library, emergency and CAP pages read; the CLI may use them too.

// capActions are the audit actions applyCAP writes, one per alert received.
var capActions = []string{"cap.create", "cap.replace", "cap.cancel", "cap.ignore", "cap.refused"}

// CAPAlerts lists the CAP alerts the hub received, newest first, with what it decided and
// why, from the audit entries applyCAP writes. A caller sees an alert whose areas touch their
// scope (inside it or above it), and refusals sent by someone of their subtree; a feed entry
// refused before it was mapped names no area and is shown to every staff user, since it says
// only that the feed sent something unreadable.
func (rm *Room) CAPAlerts(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var all []store.AuditEntry
	for _, a := range capActions {
		es, err := rm.o.Store.ListAudit(r.Context(), store.AuditFilter{Action: a, Limit: 200})
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		all = append(all, es...)
	}
	slices.SortFunc(all, func(a, b store.AuditEntry) int { return b.At.Compare(a.At) })
	out := []api.CAPAlertJSON{}
	for _, e := range all {
		var d struct {
			Message string   `json:"message"`
			Entry   string   `json:"entry"`
			Series  string   `json:"series"`
			Areas   []string `json:"areas"`
			Class   string   `json:"class"`
			Status  string   `json:"status"`
			Reason  string   `json:"reason"`
			Error   string   `json:"error"`
		}
		json.Unmarshal(e.Detail, &d)
		if !capVisible(p, e.Target, d.Areas) {
			continue
		}
		j := api.CAPAlertJSON{At: e.At, By: e.Actor, Decision: strings.TrimPrefix(e.Action, "cap."), Message: d.Message,
			Series: d.Series, Areas: d.Areas, Class: d.Class, Status: d.Status, Reason: d.Reason}
		if j.Message == "" {
			j.Message = d.Entry
		}
		if d.Error != "" {
			j.Reason = d.Error
		}
		out = append(out, j)
		if len(out) == 200 {
			break
		}
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

func capVisible(p staffapi.Caller, target string, areas []string) bool {
	for _, a := range areas {
		if store.Allowed(p.Scope, a) || store.Allowed(a, p.Scope) {
			return true
		}
	}
	if len(areas) > 0 {
		return false
	}
	if sender, ok := strings.CutPrefix(target, "area:"); ok {
		return store.Allowed(p.Scope, sender)
	}
	return true // a feed entry refused unread (target cap:…)
}

// Review records that an emergency warning, which went out without approval, was reviewed.
func (rm *Room) Review(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	as, ok := staffapi.StoreAs[reviewStore](w, rm.o.Store, "keeps no approvals")
	if !ok {
		return
	}
	es, err := rm.emStore()
	if err != nil {
		staffapi.Error(w, http.StatusNotImplemented, err.Error())
		return
	}
	var req api.ReviewRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("%q is not a broadcast id: `loa emergency list --review` shows those to review", r.PathValue("id")))
		return
	}
	e, err := es.GetEmergency(r.Context(), id)
	if err != nil || !store.Allowed(p.Scope, e.Area) {
		staffapi.Error(w, http.StatusNotFound, fmt.Sprintf("no broadcast %d in your scope %s; `loa emergency list --review` shows those to review", id, p.Scope))
		return
	}
	if e.Kind != store.KindEmergency {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("broadcast %d is a %s, not an emergency warning: only emergency warnings are reviewed after they went out", id, e.Kind))
		return
	}
	e, err = as.Review(r.Context(), id, p.User.ID, strings.TrimSpace(req.Note))
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "emergency.review", e.Target().String(), map[string]any{"emergency": id, "note": e.ReviewNote, "created_by": e.CreatedBy})
	staffapi.WriteJSON(w, http.StatusOK, rm.emergencyJSON(e, time.Now()))
}
