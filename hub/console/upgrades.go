package console

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/loa-project/loa/hub/api"
)

// The rollouts of agent upgrades (docs/upgrades.md): every rollout of the scope with its
// counts per group of devices, and one rollout's devices. Read-only: staff start and stop
// rollouts with `loa upgrade`, an administrator's deliberate act at a terminal.

type upgradesData struct {
	Rollouts []rolloutView
	Open     *api.RolloutJSON // the one whose devices are shown
}

// rolloutView is a rollout with its counts in the order staff read them: the groups of
// devices (canaries, the rest, those not upgraded), each with its states by name.
type rolloutView struct {
	api.RolloutJSON
	Groups []groupCount
}

type groupCount struct {
	Group  string
	States []stateCount
}

type stateCount struct {
	State string
	N     int
}

func viewRollout(ro api.RolloutJSON) rolloutView {
	v := rolloutView{RolloutJSON: ro}
	for _, g := range []string{"canary", "rest", "none"} {
		counts := ro.Counts[g]
		if len(counts) == 0 {
			continue
		}
		gc := groupCount{Group: g}
		for st, n := range counts {
			gc.States = append(gc.States, stateCount{st, n})
		}
		slices.SortFunc(gc.States, func(a, b stateCount) int { return strings.Compare(a.State, b.State) })
		v.Groups = append(v.Groups, gc)
	}
	return v
}

// Seconds words a duration of whole seconds in the page's language: minutes when whole.
func (v view) Seconds(s int) string {
	if s%60 == 0 {
		return v.T("upgrades.minutes", s/60)
	}
	return v.T("upgrades.seconds", s)
}

func (c *Console) upgradeRoutes(m *http.ServeMux) error {
	t, err := template.New("upgrades").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/upgrades.html")
	if err != nil {
		return err
	}
	c.pages["upgrades"] = t
	m.HandleFunc("GET /console/upgrades", c.signedIn(c.upgrades))
	return nil
}

func (c *Console) upgrades(w http.ResponseWriter, r *http.Request, s *session) {
	var d upgradesData
	var ros []api.RolloutJSON
	if err := c.call(r.Context(), s, "GET", "/api/rollouts", nil, &ros); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	for _, ro := range ros {
		d.Rollouts = append(d.Rollouts, viewRollout(ro))
	}
	if id := strings.TrimSpace(r.URL.Query().Get("rollout")); id != "" {
		var ro api.RolloutJSON
		if err := c.call(r.Context(), s, "GET", "/api/rollouts/"+url.PathEscape(id), nil, &ro); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		d.Open = &ro
	}
	c.render(w, r, http.StatusOK, "upgrades", s, d)
}
