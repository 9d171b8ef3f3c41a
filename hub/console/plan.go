package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/scheduler"
)

// The planning pages: the week calendar of what a device or area will play, the editor that
// writes a schedule document, the push preview and the live delivery view.

var planPages = []string{"plan", "editor", "planpreview", "plandelivery", "plantemplates"}

// parsePlanPages adds the planning pages to the console's templates.
func (c *Console) parsePlanPages() error {
	for _, name := range planPages {
		t, err := template.New(name).Funcs(funcs).Funcs(planFuncs).ParseFS(templateFS, "templates/layout.html", "templates/plays.html", "templates/calendar.html", "templates/"+name+".html")
		if err != nil {
			return err
		}
		c.pages[name] = t
	}
	return nil
}

func (c *Console) planRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /console/plan", c.signedIn(c.planCalendar))
	m.HandleFunc("GET /console/plan/grid.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Write(gridCSS)
	})
	m.HandleFunc("GET /console/plan/edit", c.signedIn(c.planEdit))
	m.HandleFunc("POST /console/plan/edit", c.signedIn(c.planEdit))
	m.HandleFunc("POST /console/plan/push", c.signedIn(c.planPush))
	m.HandleFunc("GET /console/plan/delivery", c.signedIn(c.planDelivery))
	m.HandleFunc("GET /console/plan/delivery/events", c.signedIn(c.planDeliveryEvents))
	m.HandleFunc("GET /console/plan/templates", c.signedIn(c.planTemplates))
	m.HandleFunc("POST /console/plan/templates/{action}", c.signedIn(c.planTemplateAction))
}

var planFuncs = template.FuncMap{
	"day":  func(t time.Time) string { return t.Format("02/01") },
	"date": func(t time.Time) string { return t.Format("02/01/2006") },
	"iso":  func(t time.Time) string { return t.Format("2006-01-02") },
	"hm":   func(t time.Time) string { return t.Format("15:04") },
	"weekday": func(v view, t time.Time) string {
		return v.T(fmt.Sprintf("wd.%d", (int(t.Weekday())+6)%7))
	},
	"pct":         func(x float64) template.CSS { return template.CSS(strconv.FormatFloat(x, 'f', -1, 64) + "%") },
	"idx":         func(i, j int) string { return fmt.Sprintf("p.%d.i.%d.", i, j) },
	"pf":          func(i int) string { return fmt.Sprintf("p.%d.", i) },
	"dayNames":    func() [7]string { return dayNames },
	"outputNames": func() []string { return outputNames },
	"segBoxes":    segBoxes,
	"calView": func(v view, cal calendar, caption string) any {
		return struct {
			View    view
			Cal     calendar
			Caption string
		}{v, cal, caption}
	},
}

// targetOf reads ?to= as the API names targets: "area:ID" or "device:ID"; a bare id is an area.
func targetOf(to string) (kind, id string) {
	if k, rest, ok := strings.Cut(to, ":"); ok && (k == "area" || k == "device") {
		return k, rest
	}
	return "area", to
}

type planData struct {
	To, Kind, ID string
	Areas        []api.AreaJSON
	Devices      []api.DeviceJSON
	Plan         api.PlanJSON
	Cal          calendar
	Day          bool // a day view
	Prev, Next   string
	Emergencies  []api.EmergencyJSON
}

// planCalendar shows the compiled week (or ?day=) of a device or an area: what the hub's
// GET /api/schedules/plan gives, which is scheduler.Compile over the effective schedule.
func (c *Console) planCalendar(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	loc := c.opts.Location
	d := planData{To: q.Get("to")}
	if d.To == "" {
		d.To = "area:" + s.User.Scope
	}
	d.Kind, d.ID = targetOf(d.To)
	d.To = d.Kind + ":" + d.ID
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if err := c.call(r.Context(), s, "GET", "/api/devices", nil, &d.Devices); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	from, days := startOfWeek(c.opts.Now(), loc), 7
	if v := q.Get("week"); v != "" {
		t, err := parseDay(v, loc)
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, "plan.baddate", v)
			return
		}
		from = startOfWeek(t, loc)
	}
	if v := q.Get("day"); v != "" {
		t, err := parseDay(v, loc)
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, "plan.baddate", v)
			return
		}
		from, days, d.Day = t, 1, true
	}
	step := "week"
	if d.Day {
		step = "day"
	}
	d.Prev = url.Values{"to": {d.To}, step: {from.AddDate(0, 0, -days).Format("2006-01-02")}}.Encode()
	d.Next = url.Values{"to": {d.To}, step: {from.AddDate(0, 0, days).Format("2006-01-02")}}.Encode()
	v := url.Values{"to": {d.To}, "from": {from.Format(time.RFC3339)}, "until": {from.AddDate(0, 0, days).Format(time.RFC3339)}}
	if err := c.call(r.Context(), s, "GET", "/api/schedules/plan?"+v.Encode(), nil, &d.Plan); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if err := c.call(r.Context(), s, "GET", "/api/emergencies", nil, &d.Emergencies); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	d.Cal = buildCalendar(planSegs(d.Plan, loc), d.Plan.QuietHours, from, days, loc)
	d.Cal.To = d.To
	c.render(w, r, http.StatusOK, "plan", s, d)
}

// parseDay reads a day as the form shows it (dd/mm/yyyy) or as links carry it (yyyy-mm-dd).
func parseDay(v string, loc *time.Location) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.ParseInLocation("02/01/2006", v, loc); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02", v, loc)
}

type editorData struct {
	To      string
	Doc     editorDoc
	YAML    string
	Notice  string
	Content []api.ContentJSON // the library, to pick items from
	Error   string            // the API's refusal of a push
}

// editorName is what the scheduler's messages call the document being edited.
const editorName = "editor"

// planEdit shows and takes the editor. A GET loads the target's stored document (or a new
// one); a POST reads the forms or the YAML (act says which) and shows both again, with the
// scheduler's messages at their fields, or moves on to the preview.
func (c *Console) planEdit(w http.ResponseWriter, r *http.Request, s *session) {
	d := editorData{To: r.FormValue("to")}
	if d.To == "" {
		d.To = "area:" + s.User.Scope
	}
	kind, id := targetOf(d.To)
	d.To = kind + ":" + id
	if err := c.call(r.Context(), s, "GET", "/api/content", nil, &d.Content); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	var src []byte
	act := r.PostFormValue("act")
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("template") != "":
		t, err := c.template(r, s, r.URL.Query().Get("tarea"), r.URL.Query().Get("template"))
		if err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		src = []byte(t.Document)
	case r.Method == http.MethodGet:
		var sc api.ScheduleJSON
		err := c.call(r.Context(), s, "GET", "/api/schedules/show?"+url.Values{"to": {d.To}}.Encode(), nil, &sc)
		var ae *apiError
		switch {
		case err == nil:
			src = []byte(sc.Document)
		case errors.As(err, &ae) && ae.code == http.StatusNotFound:
			src = c.starter(id)
		default:
			c.apiFail(w, r, s, err)
			return
		}
	case act == "import":
		f, _, err := r.FormFile("file")
		if err != nil {
			d.Doc.Errors = append(d.Doc.Errors, tr(langOf(r), "editor.nofile"))
			src = []byte(r.PostFormValue("yaml"))
			break
		}
		defer f.Close()
		src, err = io.ReadAll(io.LimitReader(f, scheduler.MaxDocumentBytes+1))
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, "err.api", err.Error())
			return
		}
	case act == "yaml", act == "yaml-preview":
		src = []byte(r.PostFormValue("yaml"))
	default: // the forms: check, add a programme, preview, save as a template
		doc := readEditorForm(r.PostForm)
		src = doc.toYAML(c.opts.Location)
		d.Doc = doc
	}
	fromForm := r.Method == http.MethodPost && act != "yaml" && act != "yaml-preview" && act != "import"
	parsed, perr := scheduler.Parse(editorName, src)
	if !fromForm {
		loose, err := decodeLoose(src)
		errs := d.Doc.Errors
		if err != nil {
			// YAML that does not decode cannot fill the forms: they keep what was posted.
			d.Doc = readEditorForm(r.PostForm)
		} else {
			d.Doc = fromDocument(loose, c.opts.Location)
		}
		d.Doc.Errors = errs
	}
	if perr != nil {
		d.Doc.placeErrors(perr, editorName)
	}
	d.YAML = string(src)
	if perr == nil && !d.Doc.HasErrors() {
		switch act {
		case "preview", "yaml-preview":
			c.planPreview(w, r, s, d.To, src, parsed)
			return
		case "template":
			name := strings.TrimSpace(r.PostFormValue("template_name"))
			if err := c.call(r.Context(), s, "POST", "/api/schedule-templates", api.TemplateRequest{Name: name, Area: id, Document: string(src)}, nil); err != nil {
				d.Error = err.Error()
				break
			}
			http.Redirect(w, r, "/console/plan/templates?notice="+url.QueryEscape(tr(langOf(r), "tpl.saved", name)), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			d.Notice = tr(langOf(r), "editor.ok", len(parsed.Programs))
		}
	}
	d.Doc.addBlanks()
	code := http.StatusOK
	if r.Method == http.MethodPost && (perr != nil || d.Doc.HasErrors()) {
		code = http.StatusUnprocessableEntity
	}
	c.render(w, r, code, "editor", s, d)
}

// starter is a new document for a target that has none: the hub's zone, no programmes yet.
func (c *Console) starter(id string) []byte {
	sid := strings.NewReplacer("/", "-", ":", "-").Replace(id)
	return []byte(fmt.Sprintf("version: 1\nid: %s\nrevision: 1\ntimezone: %s\nprograms: []\n", sid, c.opts.Location))
}

type previewData struct {
	To        string
	YAML      string
	Old, New  calendar
	Changes   []planChange
	Warnings  []string
	Devices   int
	Revision  int64
	Unchanged bool
	Counts    map[string]int
	Refused   string // why the API's dry run refused the document; no push is offered
	Approval  int64  // set: the calendar of submission N waiting for approval; no push is offered
}

// planPreview shows, before the push, the target's effective week as it is and as it would be
// with the new document (GET and POST /api/schedules/plan: scheduler.Compile over the target's
// own schedule composed with the broadcasts and areas above it, what its devices really play),
// what moves between the two, and the validator's warnings. For an area it is what a device
// there without a schedule of its own plays.
func (c *Console) planPreview(w http.ResponseWriter, r *http.Request, s *session, to string, src []byte, doc *scheduler.Document) {
	c.planPreviewOf(w, r, s, to, src, doc, 0)
}

// planPreviewOf is planPreview; approval, when set, is the submission whose calendar it shows
// in the approval queue (issue 22).
func (c *Console) planPreviewOf(w http.ResponseWriter, r *http.Request, s *session, to string, src []byte, doc *scheduler.Document, approval int64) {
	loc := c.opts.Location
	d := previewData{To: to, YAML: string(src), Counts: map[string]int{}, Approval: approval}
	var library []api.ContentJSON
	if err := c.call(r.Context(), s, "GET", "/api/content", nil, &library); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	lengths := map[string]time.Duration{}
	for _, ct := range library {
		lengths[ct.Ref] = time.Duration(ct.DurationS * float64(time.Second))
	}
	// The dry run is the API's own check (content there, playable on a device) and says
	// what revision the push makes and how many devices it reaches.
	// A refusal (content not uploaded, a cron no device could compile) is shown with the
	// calendars and warnings, and no push button.
	var dry api.PushResponse
	if err := c.call(r.Context(), s, "POST", "/api/schedules", api.PushRequest{To: to, Name: editorName, Document: string(src), DryRun: true}, &dry); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.code == http.StatusForbidden {
			c.apiFail(w, r, s, err)
			return
		}
		d.Refused = err.Error()
	}
	d.Devices, d.Revision, d.Unchanged = dry.Devices, dry.Revision, dry.Unchanged
	from := startOfWeek(c.opts.Now(), loc)
	until := from.AddDate(0, 0, 7)
	week := "/api/schedules/plan?" + url.Values{"to": {to}, "from": {from.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)}}.Encode()
	var oldPlan, newPlan api.PlanJSON
	if err := c.call(r.Context(), s, "GET", week, nil, &oldPlan); err != nil {
		d.Warnings = append(d.Warnings, err.Error())
	}
	if err := c.call(r.Context(), s, "POST", week, api.PushRequest{To: to, Name: editorName, Document: string(src)}, &newPlan); err != nil {
		d.Warnings = append(d.Warnings, err.Error())
	}
	oldSegs, newSegs := planSegs(oldPlan, loc), planSegs(newPlan, loc)
	d.Changes = diffTimelines(oldSegs, newSegs, loc)
	for _, ch := range d.Changes {
		d.Counts[ch.Kind]++
	}
	for _, wn := range scheduler.Warnings(doc, from, until) {
		d.Warnings = append(d.Warnings, wn.Message)
	}
	for _, p := range doc.Programs {
		for j, it := range p.Items {
			if it.Content != "" && lengths[it.Content] == 0 {
				d.Warnings = append(d.Warnings, tr(langOf(r), "preview.nocontent", p.ID, j+1, it.Content))
			}
		}
	}
	d.Old = buildCalendar(oldSegs, oldPlan.QuietHours, from, 7, loc)
	d.New = buildCalendar(newSegs, newPlan.QuietHours, from, 7, loc)
	c.render(w, r, http.StatusOK, "planpreview", s, d)
}

// planPush pushes the previewed document as the signed-in user (POST /api/schedules) and
// goes on to the delivery view.
func (c *Console) planPush(w http.ResponseWriter, r *http.Request, s *session) {
	to, src := r.PostFormValue("to"), r.PostFormValue("yaml")
	var res api.PushResponse
	if err := c.call(r.Context(), s, "POST", "/api/schedules", api.PushRequest{To: to, Name: editorName, Document: src}, &res); err != nil {
		d := editorData{To: to, YAML: src, Error: err.Error()}
		if loose, derr := decodeLoose([]byte(src)); derr == nil {
			d.Doc = fromDocument(loose, c.opts.Location)
		}
		d.Doc.addBlanks()
		c.render(w, r, http.StatusUnprocessableEntity, "editor", s, d)
		return
	}
	if sub := res.Submission; sub != nil { // the area requires approval: nothing was sent
		http.Redirect(w, r, "/console/approvals?notice="+url.QueryEscape(submittedNotice(langOf(r), res)), http.StatusSeeOther)
		return
	}
	v := url.Values{"to": {to}, "revision": {strconv.FormatInt(res.Revision, 10)}, "devices": {strconv.Itoa(res.Devices)}}
	if res.Unchanged {
		v.Set("unchanged", "1")
	}
	http.Redirect(w, r, "/console/plan/delivery?"+v.Encode(), http.StatusSeeOther)
}

type deliveryData struct {
	To        string
	Revision  string
	Unchanged bool
	Devices   []api.DeviceJSON
}

// deliveryDevices are the devices a push to `to` reaches, as the API shows them now.
func (c *Console) deliveryDevices(r *http.Request, s *session, to string) ([]api.DeviceJSON, error) {
	kind, id := targetOf(to)
	if kind == "device" {
		var d api.DeviceJSON
		err := c.call(r.Context(), s, "GET", "/api/devices/"+url.PathEscape(id), nil, &d)
		return []api.DeviceJSON{d}, err
	}
	var all, out []api.DeviceJSON
	if err := c.call(r.Context(), s, "GET", "/api/devices?"+url.Values{"area": {id}}.Encode(), nil, &all); err != nil {
		return nil, err
	}
	for _, d := range all {
		if !d.Revoked {
			out = append(out, d)
		}
	}
	return out, nil
}

func (c *Console) planDelivery(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := deliveryData{To: q.Get("to"), Revision: q.Get("revision"), Unchanged: q.Get("unchanged") != ""}
	var err error
	if d.Devices, err = c.deliveryDevices(r, s, d.To); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "plandelivery", s, d)
}

// deliveryEvent is one device's delivery as the view shows it.
type deliveryEvent struct {
	ID       string `json:"id"`
	Online   bool   `json:"online"`
	State    string `json:"state"`
	Label    string `json:"label"`
	Revision int64  `json:"revision"`
	Reason   string `json:"reason,omitempty"`
	// Played is a play the device confirmed from the revision delivered, the newest when the
	// view first found one ("" none yet): what, and when it began in the hub's zone.
	Played string `json:"played,omitempty"`
}

// playedFrom is the newest play a device confirmed from its newest composed revision (the one
// being delivered), nil when none has come yet.
func (c *Console) playedFrom(r *http.Request, s *session, d api.DeviceJSON) (*api.ConfirmationJSON, error) {
	if d.Revision == 0 {
		return nil, nil
	}
	var cs []api.ConfirmationJSON
	if err := c.call(r.Context(), s, "GET", "/api/confirmations?"+url.Values{"device": {d.ID}, "limit": {"1"}}.Encode(), nil, &cs); err != nil {
		return nil, err
	}
	if len(cs) == 0 || cs[0].Revision < d.Revision {
		return nil, nil
	}
	return &cs[0], nil
}

// playedLabel is how the delivery view names a confirmed play: "Bản tin sáng · 05:30:00 07/12".
func (c *Console) playedLabel(p *api.ConfirmationJSON) string {
	what := p.Title
	if what == "" {
		what = p.Program
	}
	at := p.ReceivedAt
	if p.Start != nil {
		at = *p.Start
	}
	return what + " · " + at.In(c.opts.Location).Format("15:04:05 02/01")
}

// planDeliveryEvents streams each device's delivery state as server-sent events: "done" once
// every device is active, refused or offline, then on until each active one has confirmed a
// play from the new revision, its first confirmation (then "end"). Like the overview's stream
// it checks the store every EventInterval and sends only what changed.
func (c *Console) planDeliveryEvents(w http.ResponseWriter, r *http.Request, s *session) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	to, lang := r.URL.Query().Get("to"), langOf(r)
	last := map[string]string{}
	// A play confirmed from a revision stays confirmed: each device's is looked up until it is
	// found, not on every tick (an area of a thousand clusters would cost a thousand queries
	// every EventInterval for as long as the page stays open).
	played := map[string]string{} // device id + revision -> label
	wasSettled := false
	t := time.NewTicker(c.opts.EventInterval)
	defer t.Stop()
	for {
		devs, err := c.deliveryDevices(r, s, to)
		if err != nil {
			return
		}
		if _, _, err := c.opts.Store.Session(r.Context(), s.hash, c.opts.IdleTimeout, c.opts.MaxAge, false); err != nil {
			return
		}
		var buf bytes.Buffer
		settled, allPlayed := true, true
		for _, d := range devs {
			ev := deliveryEvent{ID: d.ID, Online: d.Online, State: d.Delivery, Revision: d.Revision, Reason: d.RefusedReason}
			ev.Label = "—"
			if d.Delivery != "" {
				ev.Label = tr(lang, "delivery."+d.Delivery)
			}
			if d.Online && d.Delivery != "active" && d.Delivery != "refused" {
				settled = false
			}
			if d.Delivery == "active" {
				key := d.ID + "\x00" + strconv.FormatInt(d.Revision, 10)
				if label, ok := played[key]; ok {
					ev.Played = label
				} else if p, err := c.playedFrom(r, s, d); err != nil {
					return
				} else if p != nil {
					ev.Played = c.playedLabel(p)
					played[key] = ev.Played
				} else if d.Online {
					allPlayed = false
				}
			}
			b, _ := json.Marshal(ev)
			if last[d.ID] != string(b) {
				last[d.ID] = string(b)
				fmt.Fprintf(&buf, "event: delivery\ndata: %s\n\n", b)
			}
		}
		switch {
		case settled && !wasSettled:
			buf.WriteString("event: done\ndata: {}\n\n")
			wasSettled = true
		default:
			buf.WriteString(": alive\n\n")
		}
		end := settled && allPlayed
		if end {
			buf.WriteString("event: end\ndata: {}\n\n")
		}
		rc.SetWriteDeadline(time.Now().Add(c.opts.EventInterval + 30*time.Second))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil || end {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}
