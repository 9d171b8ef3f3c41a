package hub

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// Routes the console's library, emergency and CAP pages read; the CLI may use them too.

// capActions are the audit actions applyCAP writes, one per alert received.
var capActions = []string{"cap.create", "cap.replace", "cap.cancel", "cap.ignore", "cap.refused"}

// apiCAPAlerts lists the CAP alerts the hub received, newest first, with what it decided and
// why, from the audit entries applyCAP writes. A caller sees an alert whose areas touch their
// scope (inside it or above it), and refusals sent by someone of their subtree; a feed entry
// refused before it was mapped names no area and is shown to every staff user, since it says
// only that the feed sent something unreadable.
func (s *Server) apiCAPAlerts(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var all []store.AuditEntry
	for _, a := range capActions {
		es, err := s.st.ListAudit(r.Context(), store.AuditFilter{Action: a, Limit: 200})
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
