package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// The emergency page (send with a confirmation step, watch, cancel), the relay and bulletin
// page and the CAP alerts page. Every action is a call to /api/emergencies as the signed-in
// user, so the API's role checks decide (the pages only hide what a role cannot do).

type reach struct {
	Communes, Clusters, Boards int
}

// reachOf counts what broadcasts to areas would reach: the devices (not revoked) of their
// subtrees, clusters and boards apart, and the communes — the areas those devices sit in.
func reachOf(areas []string, devs []api.DeviceJSON) reach {
	var n reach
	communes := map[string]bool{}
	for _, d := range devs {
		if d.Revoked {
			continue
		}
		in := false
		for _, a := range areas {
			if store.Allowed(a, d.Area) {
				in = true
				break
			}
		}
		if !in {
			continue
		}
		communes[d.Area] = true
		if d.Kind == string(store.KindBoard) {
			n.Boards++
		} else {
			n.Clusters++
		}
	}
	n.Communes = len(communes)
	return n
}

type broadcastForm struct {
	To                                      []string
	Title, Text, Content, Every, For, Until string
	Stream                                  string
}

func readBroadcastForm(r *http.Request) broadcastForm {
	r.ParseForm()
	f := broadcastForm{To: r.PostForm["to"]}
	for k, dst := range map[string]*string{"title": &f.Title, "text": &f.Text, "content": &f.Content, "every": &f.Every,
		"for": &f.For, "until": &f.Until, "stream": &f.Stream} {
		*dst = strings.TrimSpace(r.PostFormValue(k))
	}
	return f
}

// until is the form's end: a written dd/mm/yyyy hh:mm, or the chosen length from now.
func (f broadcastForm) until() string {
	if f.Until != "" {
		return apiTime(f.Until)
	}
	return f.For
}

type emergencyData struct {
	Areas      []api.AreaJSON
	Recordings []api.ContentJSON // audio in the library, to play instead of speaking a text
	Active     []api.EmergencyJSON
	Form       broadcastForm
	Reach      reach
	Error      string
	Confirm    bool
	Kind       string // emergency, or live/bulletin on the relay page
	Notice     string
}

func (c *Console) broadcastPage(w http.ResponseWriter, r *http.Request, s *session, page, kind string, d emergencyData) {
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	sort.Slice(d.Areas, func(i, j int) bool { return d.Areas[i].ID < d.Areas[j].ID })
	var items []api.ContentJSON
	if err := c.call(r.Context(), s, "GET", "/api/content", nil, &items); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	for _, it := range items {
		if mediaKind(it.MIME) == "audio" {
			d.Recordings = append(d.Recordings, it)
		}
	}
	var all []api.EmergencyJSON
	if err := c.call(r.Context(), s, "GET", "/api/emergencies", nil, &all); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	for _, e := range all {
		if e.Kind == kind || (kind != store.KindEmergency && e.Kind != store.KindEmergency) {
			d.Active = append(d.Active, e)
		}
	}
	d.Kind = kind
	code := http.StatusOK
	if d.Error != "" {
		code = http.StatusBadRequest
	}
	c.render(w, r, code, page, s, d)
}

func (c *Console) emergency(w http.ResponseWriter, r *http.Request, s *session) {
	c.broadcastPage(w, r, s, "emergency", store.KindEmergency, emergencyData{Form: broadcastForm{For: "2h"}, Notice: r.URL.Query().Get("notice")})
}

// emergencyBack is the confirmation step's "change": the form again, as it was filled in.
func (c *Console) emergencyBack(w http.ResponseWriter, r *http.Request, s *session) {
	c.broadcastPage(w, r, s, "emergency", store.KindEmergency, emergencyData{Form: readBroadcastForm(r)})
}

// mayWarn is the API's rule for warnings, checked again here so that the confirmation step
// itself is refused to a role that could not send (the API refuses the send as well).
func (c *Console) mayWarn(w http.ResponseWriter, r *http.Request, s *session) bool {
	if store.Can(s.User.Role, store.RoleEmergency) {
		return true
	}
	c.fail(w, r, s, http.StatusForbidden, "err.forbidden")
	return false
}

// confirmEmergency is the step before sending: it names how many communes and clusters the
// chosen areas reach, counted here from the areas' subtrees.
func (c *Console) confirmEmergency(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.mayWarn(w, r, s) {
		return
	}
	f := readBroadcastForm(r)
	d := emergencyData{Form: f}
	lang := langOf(r)
	switch {
	case len(f.To) == 0:
		d.Error = tr(lang, "em.need.area")
	case f.Text == "" && f.Content == "":
		d.Error = tr(lang, "em.need.what")
	}
	if d.Error == "" {
		var devs []api.DeviceJSON
		if err := c.call(r.Context(), s, "GET", "/api/devices", nil, &devs); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		d.Reach, d.Confirm = reachOf(f.To, devs), true
	}
	c.broadcastPage(w, r, s, "emergency", store.KindEmergency, d)
}

func (c *Console) sendEmergency(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.mayWarn(w, r, s) {
		return
	}
	f := readBroadcastForm(r)
	req := api.EmergencyRequest{To: strings.Join(f.To, ","), Kind: store.KindEmergency, Title: f.Title, Text: f.Text,
		Content: f.Content, RepeatEvery: f.Every, Until: f.until()}
	var out api.EmergencyResponse
	if err := c.call(r.Context(), s, "POST", "/api/emergencies", req, &out); err != nil {
		if e, ok := err.(*apiError); ok && e.code == http.StatusBadRequest {
			c.broadcastPage(w, r, s, "emergency", store.KindEmergency, emergencyData{Form: f, Error: e.msg})
			return
		}
		c.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/emergency/live?"+url.Values{"series": {out.Emergencies[0].Series}}.Encode(), http.StatusSeeOther)
}

type liveRow struct {
	Device api.DeviceJSON
	Play   *api.ConfirmationJSON // its newest confirmation of the broadcast
}

type liveData struct {
	Series      string
	Broadcasts  []api.EmergencyJSON
	Active      bool
	Rows        []liveRow
	Reach       reach
	Heard       int // clusters with a confirmation
	Notice      string
	CanCancel   bool
	IssuedSince string
}

// broadcastPlays are the confirmations of a series' programmes since it was issued, read per
// area of the series (the API has no programme filter: the other plays of those areas since
// then are read and dropped here).
func (c *Console) broadcastPlays(r *http.Request, s *session, bs []api.EmergencyJSON) (map[string]api.ConfirmationJSON, error) {
	out := map[string]api.ConfirmationJSON{}
	for _, b := range bs {
		area := b.Area
		if !store.Allowed(s.User.Scope, area) {
			area = s.User.Scope // a broadcast from above: the plays of the caller's own subtree
		}
		var cs []api.ConfirmationJSON
		q := url.Values{"area": {area}, "since": {b.IssuedAt.Add(-time.Minute).Format(time.RFC3339)}}
		if err := c.call(r.Context(), s, "GET", "/api/confirmations?"+q.Encode(), nil, &cs); err != nil {
			return nil, err
		}
		for _, p := range cs {
			if p.Program == b.Program {
				out[p.Device] = p // in time order: the newest stays
			}
		}
	}
	return out, nil
}

func (c *Console) seriesOf(r *http.Request, s *session, series string) ([]api.EmergencyJSON, error) {
	var bs []api.EmergencyJSON
	err := c.call(r.Context(), s, "GET", "/api/emergencies?"+url.Values{"all": {"1"}, "series": {series}}.Encode(), nil, &bs)
	return bs, err
}

// emergencyLive shows which clusters a broadcast reaches and which have confirmed playing it;
// console.js adds confirmations as they land (the "play" events of /console/events).
func (c *Console) emergencyLive(w http.ResponseWriter, r *http.Request, s *session) {
	d := liveData{Series: r.URL.Query().Get("series"), Notice: r.URL.Query().Get("notice"), CanCancel: store.Can(s.User.Role, store.RoleEmergency)}
	bs, err := c.seriesOf(r, s, d.Series)
	if err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if len(bs) == 0 {
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	d.Broadcasts = bs
	var devs []api.DeviceJSON
	if err := c.call(r.Context(), s, "GET", "/api/devices", nil, &devs); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	plays, err := c.broadcastPlays(r, s, bs)
	if err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	var areas []string
	for _, b := range bs {
		areas = append(areas, b.Area)
		d.Active = d.Active || b.Active
	}
	d.Reach = reachOf(areas, devs)
	for _, dev := range devs {
		if dev.Revoked || !inAreas(areas, dev.Area) {
			continue
		}
		row := liveRow{Device: dev}
		if p, ok := plays[dev.ID]; ok {
			row.Play = &p
			d.Heard++
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(w, r, http.StatusOK, "live", s, d)
}

func inAreas(areas []string, area string) bool {
	for _, a := range areas {
		if store.Allowed(a, area) {
			return true
		}
	}
	return false
}

// cancelBroadcast ends every active broadcast of a series (POST /api/emergencies/cancel: the
// API lets the emergency role and admins do it).
func (c *Console) cancelBroadcast(w http.ResponseWriter, r *http.Request, s *session) {
	series := r.PostFormValue("series")
	var out api.EmergencyResponse
	if err := c.call(r.Context(), s, "POST", "/api/emergencies/cancel", api.CancelRequest{Series: series}, &out); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	notice := tr(langOf(r), "em.cancelled", len(out.Emergencies), out.Devices)
	http.Redirect(w, r, "/console/emergency/live?"+url.Values{"series": {series}, "notice": {notice}}.Encode(), http.StatusSeeOther)
}

func (c *Console) relay(w http.ResponseWriter, r *http.Request, s *session) {
	c.broadcastPage(w, r, s, "relay", store.KindLive, emergencyData{Form: broadcastForm{For: "1h"}, Notice: r.URL.Query().Get("notice")})
}

// startBroadcast starts a relay (kind live) or places a bulletin at the next session.
func (c *Console) startBroadcast(w http.ResponseWriter, r *http.Request, s *session) {
	f := readBroadcastForm(r)
	kind := r.PathValue("kind")
	req := api.EmergencyRequest{To: strings.Join(f.To, ","), Title: f.Title}
	switch kind {
	case store.KindLive:
		req.Kind, req.Stream, req.For = kind, f.Stream, f.For
	case store.KindBulletin:
		req.Kind, req.Content, req.Text, req.NextSession = kind, f.Content, f.Text, true
	default:
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	if len(f.To) == 0 {
		c.broadcastPage(w, r, s, "relay", store.KindLive, emergencyData{Form: f, Error: tr(langOf(r), "em.need.area")})
		return
	}
	var out api.EmergencyResponse
	if err := c.call(r.Context(), s, "POST", "/api/emergencies", req, &out); err != nil {
		if e, ok := err.(*apiError); ok && e.code != http.StatusForbidden && e.code < 500 {
			c.broadcastPage(w, r, s, "relay", store.KindLive, emergencyData{Form: f, Error: e.msg})
			return
		}
		c.apiFail(w, r, s, err)
		return
	}
	if out.Submission != nil { // the area requires approval: it waits in the queue
		c.toQueue(w, r, out.Submission, out.Approvers)
		return
	}
	http.Redirect(w, r, "/console/emergency/live?"+url.Values{"series": {out.Emergencies[0].Series}}.Encode(), http.StatusSeeOther)
}

type capData struct {
	Alerts []api.CAPAlertJSON
}

func (c *Console) capAlerts(w http.ResponseWriter, r *http.Request, s *session) {
	var d capData
	if err := c.call(r.Context(), s, "GET", "/api/cap/alerts", nil, &d.Alerts); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "cap", s, d)
}

// playEvents adds to a live stream (events) the confirmations of a series not sent yet, as
// "play" events the live view adds to its rows.
func (c *Console) playEvents(r *http.Request, s *session, series string, sent map[string]bool, buf *bytes.Buffer) error {
	bs, err := c.seriesOf(r, s, series)
	if err != nil || len(bs) == 0 {
		return err
	}
	plays, err := c.broadcastPlays(r, s, bs)
	if err != nil {
		return err
	}
	devs := make([]string, 0, len(plays))
	for id := range plays {
		devs = append(devs, id)
	}
	sort.Strings(devs)
	for _, id := range devs {
		p := plays[id]
		key := fmt.Sprintf("%s\x00%d", id, p.Seq)
		if sent[key] {
			continue
		}
		sent[key] = true
		b, _ := json.Marshal(map[string]any{"device": id, "result": p.Result, "start": fmtTime(derefTime(p.Start), c.opts.Location), "played_s": p.PlayedS})
		fmt.Fprintf(buf, "event: play\ndata: %s\n\n", b)
	}
	return nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
