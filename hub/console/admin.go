package console

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// Device enrolment, revocation and re-keying, the areas tree, people's roles and API tokens:
// the administrator's pages. Each acts through the API as the signed-in user, so a role too
// low is refused there (403), as it is for the CLI.

// areaTree makes the tree's nodes, in id order (a parent before its children), and an index.
func areaTree(areas []api.AreaJSON) ([]*areaNode, map[string]*areaNode) {
	nodes := map[string]*areaNode{}
	out := make([]*areaNode, 0, len(areas))
	for _, a := range areas {
		n := &areaNode{AreaJSON: a}
		nodes[a.ID] = n
		out = append(out, n)
	}
	sortNodes(out)
	return out, nodes
}

// sortNodes puts the tree in order: each area after its parent, its children together (a
// plain sort of the ids would put qn/tk-2 between qn/tk and qn/tk/tt, since '-' < '/').
func sortNodes(ns []*areaNode) {
	key := func(n *areaNode) string { return strings.ReplaceAll(n.ID, "/", "\x00") }
	sort.Slice(ns, func(i, j int) bool { return key(ns[i]) < key(ns[j]) })
}

// count adds an area's own counts to it and every area above it in the tree.
func count(nodes map[string]*areaNode, n api.AreaCountJSON) {
	for a := n.Area; a != ""; {
		node := nodes[a]
		if node == nil {
			return
		}
		node.Online += n.Online
		node.Offline += n.Offline
		node.Playing += n.Playing
		node.Alarms += n.Alarms
		a = node.Parent
	}
}

// areaCounts asks the API for the scope's areas and its overview (the first `limit` devices
// on the air and with alarms) and puts the counts on the tree; on a refusal it shows it.
func (c *Console) areaCounts(w http.ResponseWriter, r *http.Request, s *session, limit int) ([]*areaNode, api.OverviewJSON, bool) {
	var areas []api.AreaJSON
	var ov api.OverviewJSON
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &areas); err != nil {
		c.apiFail(w, r, s, err)
		return nil, ov, false
	}
	if err := c.call(r.Context(), s, "GET", "/api/overview?limit="+strconv.Itoa(limit), nil, &ov); err != nil {
		c.apiFail(w, r, s, err)
		return nil, ov, false
	}
	tree, nodes := areaTree(areas)
	for _, n := range ov.Counts {
		count(nodes, n)
	}
	return tree, ov, true
}

type areasData struct {
	Areas  []*areaNode
	Notice string
	Parent string // the form's parent, kept after a refusal
	Root   string // the node the tree starts from ("": the scope)
}

// areas shows the tree with the counts of each node and, for administrators, a form to add
// an area under any node of the scope.
func (c *Console) areas(w http.ResponseWriter, r *http.Request, s *session) {
	tree, _, ok := c.areaCounts(w, r, s, 0)
	if !ok {
		return
	}
	d := areasData{Areas: tree, Notice: r.URL.Query().Get("notice"), Parent: r.URL.Query().Get("parent"), Root: r.URL.Query().Get("area")}
	d.Areas = shown(d.Areas, d.Root)
	c.render(w, r, http.StatusOK, "areas", s, d)
}

// addArea adds an area under a parent: the id is the parent's and the new part, as the CLI
// writes it (qn/tk/tt).
func (c *Console) addArea(w http.ResponseWriter, r *http.Request, s *session) {
	parent := strings.TrimSpace(r.PostFormValue("parent"))
	part := strings.Trim(strings.TrimSpace(r.PostFormValue("part")), "/")
	a := api.AreaJSON{ID: part, Name: strings.TrimSpace(r.PostFormValue("name"))}
	if parent != "" {
		a.ID = parent + "/" + part
	}
	if part == "" || a.Name == "" {
		c.fail(w, r, s, http.StatusBadRequest, "areas.missing")
		return
	}
	if err := c.call(r.Context(), s, "POST", "/api/areas", a, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/areas?notice="+url.QueryEscape(tr(langOf(r), "areas.added", a.Name, a.ID)), http.StatusSeeOther)
}

type enrolData struct {
	Areas  []api.AreaJSON
	Area   string
	Kinds  []string
	Result *api.EnrolResponse
	Rekey  bool
	Config string // the agent's config block, as `loa device enroll` prints it
}

// enrolPage is the form to enrol a device; enrol posts it and shows the secret, once.
func (c *Console) enrolPage(w http.ResponseWriter, r *http.Request, s *session) {
	// The form only: enrolling is refused by the API's role check anyway (POST /api/devices).
	if !store.Can(s.User.Role, store.RoleAdmin) {
		c.fail(w, r, s, http.StatusForbidden, "err.forbidden")
		return
	}
	d := enrolData{Area: r.URL.Query().Get("area"), Kinds: []string{string(store.KindCluster), string(store.KindBoard)}}
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "enrol", s, d)
}

func (c *Console) enrol(w http.ResponseWriter, r *http.Request, s *session) {
	req := api.EnrolRequest{ID: strings.TrimSpace(r.PostFormValue("id")), Area: r.PostFormValue("area"),
		Name: strings.TrimSpace(r.PostFormValue("name")), Kind: r.PostFormValue("kind")}
	var res api.EnrolResponse
	if err := c.call(r.Context(), s, "POST", "/api/devices", req, &res); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.showSecret(w, r, s, res, false)
}

// showSecret shows a new device secret in the agent's config block. It is rendered once and
// never stored by the console (Cache-Control: no-store, from signedIn).
func (c *Console) showSecret(w http.ResponseWriter, r *http.Request, s *session, res api.EnrolResponse, rekey bool) {
	var b bytes.Buffer
	res.WriteAgentConfig(&b)
	c.render(w, r, http.StatusOK, "enrol", s, enrolData{Result: &res, Rekey: rekey, Config: b.String()})
}

// deviceAction revokes or re-keys a device (administrators).
func (c *Console) deviceAction(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PostFormValue("device")
	switch r.PathValue("action") {
	case "revoke":
		if err := c.call(r.Context(), s, "DELETE", "/api/devices/"+url.PathEscape(id), nil, nil); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		http.Redirect(w, r, "/console/devices/"+url.PathEscape(id)+"?notice="+url.QueryEscape(tr(langOf(r), "device.revoked", id)), http.StatusSeeOther)
	case "rekey":
		var res api.EnrolResponse
		if err := c.call(r.Context(), s, "POST", "/api/devices/rekey", api.RekeyRequest{ID: id}, &res); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		c.showSecret(w, r, s, res, true)
	default:
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
	}
}

// screenshot serves a device's screenshot (the newest, or a command's) as the API does.
func (c *Console) screenshot(w http.ResponseWriter, r *http.Request, s *session) {
	target := "/api/screenshots/" + url.PathEscape(r.PathValue("id"))
	if cmd := r.URL.Query().Get("command"); cmd != "" {
		target += "?" + url.Values{"command": {cmd}}.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), "GET", target, nil)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "err.notfound")
		return
	}
	c.opts.API.ServeAs(w, req, s.User)
}

type tokensData struct {
	Tokens []api.TokenJSON
	New    *api.TokenResponse // the token just made, shown this once
	Notice string
}

// tokens lists the API tokens of the scope's users (administrators) and lets the signed-in
// user make one for themselves (for the `loa` CLI).
func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderTokens(w, r, s, tokensData{Notice: r.URL.Query().Get("notice")})
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, s *session, d tokensData) {
	if err := c.call(r.Context(), s, "GET", "/api/tokens", nil, &d.Tokens); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "tokens", s, d)
}

func (c *Console) tokenAction(w http.ResponseWriter, r *http.Request, s *session) {
	switch r.PathValue("action") {
	case "add":
		req := api.TokenRequest{Label: strings.TrimSpace(r.PostFormValue("label"))}
		if days := strings.TrimSpace(r.PostFormValue("days")); days != "" {
			n, err := strconv.Atoi(days)
			if err != nil || n < 1 || n > 5*365 {
				c.fail(w, r, s, http.StatusBadRequest, "tokens.baddays", days)
				return
			}
			req.ValidFor = (time.Duration(n) * 24 * time.Hour).String()
		}
		var res api.TokenResponse
		if err := c.call(r.Context(), s, "POST", "/api/tokens", req, &res); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		c.renderTokens(w, r, s, tokensData{New: &res})
	case "revoke":
		id := r.PostFormValue("id")
		var res api.TokenResponse
		if err := c.call(r.Context(), s, "POST", "/api/tokens/revoke", api.TokenRequest{ID: id}, &res); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		http.Redirect(w, r, "/console/tokens?notice="+url.QueryEscape(tr(langOf(r), "tokens.revoked", res.User)), http.StatusSeeOther)
	default:
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
	}
}

// playChoices bounds the play-now list: the newest items; the content library page searches
// the rest.
const playChoices = 200

// libraryForPlay is the library's newest items, for the play-now picker.
func (c *Console) libraryForPlay(ctx context.Context, s *session, out *[]api.ContentJSON) error {
	if err := c.call(ctx, s, "GET", "/api/content", nil, out); err != nil {
		return err
	}
	items := *out
	sort.SliceStable(items, func(i, j int) bool { return items[i].At.After(items[j].At) })
	if len(items) > playChoices {
		*out = items[:playChoices]
	}
	return nil
}

// treeRows bounds the tree's rows: a province of 2,000 areas would be 2,000 rows (half a
// megabyte on a phone over 3G). The tree shows as many levels below its root as fit (at least
// one); each node with more below it opens its own tree.
const treeRows = 200

// shown keeps the nodes of root's subtree ("": all) down to the deepest level that keeps
// them within treeRows, and marks those with hidden areas below them.
func shown(ns []*areaNode, root string) []*areaNode {
	top := 0
	var sub []*areaNode
	for _, n := range ns {
		if root != "" && n.ID != root && !strings.HasPrefix(n.ID, root+"/") {
			continue
		}
		sub = append(sub, n)
		if n.ID == root || root == "" && (top == 0 || n.Depth < top) {
			top = n.Depth
		}
	}
	perDepth := map[int]int{}
	for _, n := range sub {
		perDepth[n.Depth]++
	}
	limit, rows := top+1, perDepth[top]+perDepth[top+1]
	for d := top + 2; perDepth[d] > 0 && rows+perDepth[d] <= treeRows; d++ {
		limit, rows = d, rows+perDepth[d]
	}
	var out []*areaNode
	for _, n := range sub {
		if n.Depth <= limit {
			out = append(out, n)
		} else if n.Depth == limit+1 {
			for _, m := range out { // a parent is before its children (sortNodes)
				if m.ID == n.Parent {
					m.Below = true
				}
			}
		}
	}
	return out
}

// listCap is how many alarms or devices on the air the overview lists; the device list's
// filters show the rest.
const listCap = 50

type moreData struct{ OnAir, Alarms int }

// devicesPerPage keeps the device list's page small on a phone.
const devicesPerPage = 100

type pagination struct {
	Page, Of, Total int
	Query           string // the filters, for the links
}

func (d *devicesData) paginate(q url.Values) {
	f := url.Values{}
	for _, k := range []string{"area", "state", "kind", "software", "q"} {
		if v := q.Get(k); v != "" {
			f.Set(k, v)
		}
	}
	d.Pages.Query = f.Encode()
}
