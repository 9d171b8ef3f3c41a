package hub

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/scheduler"
)

// Routes the console's library, emergency and CAP pages read; the CLI may use them too.

// apiContentFile streams a library file to staff (the console's listen/preview), with Range
// requests answered by http.ServeContent so a browser's <audio> can seek. The library is
// shared by every area, as GET /api/content lists it to every role.
func (s *Server) apiContentFile(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	s.serveLibraryFile(w, r, "; `loa content list` shows it", false)
}

// apiContentUsage says where library items are used: for each content ref, the newest
// schedules in the caller's scope (and the areas above it) whose programmes name it.
func (s *Server) apiContentUsage(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ctx := r.Context()
	chain, err := s.areaChain(ctx, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	under, err := s.st.LatestSchedulesUnder(ctx, p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	scs := append([]store.Schedule{}, chain...)
	for _, m := range []map[string]store.Schedule{under.Areas, under.Devices} {
		for _, sc := range m {
			scs = append(scs, sc)
		}
	}
	out := map[string][]api.ContentUseJSON{}
	seen := map[string]bool{}
	for _, sc := range scs {
		key := sc.Target.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		doc, err := scheduler.Parse(key, sc.Document) // YAML or JSON, as pushed
		if err != nil {
			continue // it was parsed when pushed; one that no longer parses names nothing
		}
		for _, pr := range doc.Programs {
			for _, it := range pr.Items {
				if it.Content == "" {
					continue
				}
				u := api.ContentUseJSON{Target: key, ScheduleID: sc.ID, Revision: sc.Revision, Program: pr.ID, Title: pr.Title}
				if !slices.Contains(out[it.Content], u) {
					out[it.Content] = append(out[it.Content], u)
				}
			}
		}
	}
	for _, us := range out {
		slices.SortFunc(us, func(a, b api.ContentUseJSON) int { return strings.Compare(a.Target+a.Program, b.Target+b.Program) })
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

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
