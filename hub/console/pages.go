package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/store"
)

// recorder holds an API answer made in-process.
type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}

// apiError is the API's refusal, shown on the page as the API words it.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

// call asks the hub's API as the session's user; out receives the JSON answer.
func (c *Console) call(ctx context.Context, s *session, method, target string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.ZoneHeader, c.opts.Location.String())
	rec := &recorder{h: http.Header{}}
	c.opts.API.ServeAs(rec, req, s.User)
	if rec.code/100 != 2 {
		var e api.Error
		json.Unmarshal(rec.body.Bytes(), &e)
		if e.Error == "" {
			e.Error = http.StatusText(rec.code)
		}
		return &apiError{code: rec.code, msg: e.Error}
	}
	if out != nil {
		return json.Unmarshal(rec.body.Bytes(), out)
	}
	return nil
}

// apiFail shows an API refusal: its status and its words (which say what to do).
func (c *Console) apiFail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if e, ok := err.(*apiError); ok {
		if e.code == http.StatusForbidden {
			c.fail(w, r, s, e.code, "err.forbidden")
			return
		}
		c.fail(w, r, s, e.code, "err.api", e.msg)
		return
	}
	c.opts.Log.Error("console", "path", r.URL.Path, "err", err)
	c.fail(w, r, s, http.StatusInternalServerError, "err.internal")
}

type alarm struct {
	Device api.DeviceJSON
	Text   string
}

type areaNode struct {
	api.AreaJSON
	Online, Offline, Playing, Alarms int
	Below                            bool // has areas below it that the page does not show
}

type overviewData struct {
	Root       string // the node the tree starts from ("": the scope)
	More       moreData
	Areas      []*areaNode
	OnAir      []api.DeviceJSON
	Broadcasts []api.EmergencyJSON // emergencies, bulletins and relays on the air in the scope
	Alarms     []alarm
}

func (c *Console) alarmsOf(lang string, d api.DeviceJSON, now time.Time) []string {
	var out []string
	if !d.Online && !d.Revoked {
		switch {
		case d.LastSeen == nil && now.Sub(d.EnrolledAt) > api.AlarmOfflineAfter:
			out = append(out, tr(lang, "alarm.never"))
		case d.LastSeen != nil && now.Sub(*d.LastSeen) > api.AlarmOfflineAfter:
			out = append(out, tr(lang, "alarm.offline", fmtTime(*d.LastSeen, c.opts.Location)))
		}
	}
	for _, part := range d.Parts() {
		if part.Part != nil && part.Part.Error != "" {
			since := "—"
			if part.Part.Since != nil {
				since = fmtTime(*part.Part.Since, c.opts.Location)
			}
			out = append(out, tr(lang, "alarm."+part.Name, since, part.Part.Error))
		}
	}
	if d.DiskFreeBytes > 0 && d.DiskFreeBytes < api.AlarmLowDisk {
		out = append(out, tr(lang, "alarm.disk", d.DiskFreeBytes>>20))
	}
	if d.Online && math.Abs(d.ClockOffsetS) > api.AlarmClockSkew.Seconds() {
		out = append(out, tr(lang, "alarm.clock", d.ClockOffsetS))
	}
	if d.Delivery == "refused" {
		out = append(out, tr(lang, "alarm.refused", d.Revision, d.RefusedReason))
	}
	return out
}

// overview reads the hub's counts per area (GET /api/overview), not every device: the first
// listCap devices on the air and with alarms come with them.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	tree, ov, ok := c.areaCounts(w, r, s, listCap)
	if !ok {
		return
	}
	data := overviewData{Areas: tree, OnAir: ov.OnAir, More: moreData{OnAir: ov.MoreOnAir, Alarms: ov.MoreAlarmed}}
	if err := c.call(r.Context(), s, "GET", "/api/emergencies", nil, &data.Broadcasts); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	lang, now := langOf(r), c.opts.Now()
	for _, d := range ov.Alarmed {
		for _, t := range c.alarmsOf(lang, d, now) {
			data.Alarms = append(data.Alarms, alarm{Device: d, Text: t})
		}
	}
	data.Root = r.URL.Query().Get("area")
	data.Areas = shown(data.Areas, data.Root)
	c.render(w, r, http.StatusOK, "overview", s, data)
}

type devicesData struct {
	Devices  []api.DeviceJSON
	Areas    []api.AreaJSON
	Versions []string // software versions reported in the scope, for the filter
	Area     string
	State    string
	Kind     string
	Software string
	Q        string
	Pages    pagination
}

// devices is one page of the device list, filtered by the API (GET /api/device-list).
func (c *Console) devices(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := devicesData{Area: q.Get("area"), State: q.Get("state"), Kind: q.Get("kind"), Software: q.Get("software"), Q: strings.TrimSpace(q.Get("q"))}
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	page := 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && n <= 1_000_000 {
		page = n
	}
	f := url.Values{"per_page": {strconv.Itoa(devicesPerPage)}}
	for k, v := range map[string]string{"area": d.Area, "state": d.State, "kind": d.Kind, "software": d.Software, "q": d.Q} {
		if v != "" {
			f.Set(k, v)
		}
	}
	var l api.DeviceListJSON
	for {
		f.Set("page", strconv.Itoa(page))
		if err := c.call(r.Context(), s, "GET", "/api/device-list?"+f.Encode(), nil, &l); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
		last := max(1, (l.Total+devicesPerPage-1)/devicesPerPage)
		if page <= last { // a page past the end (the list shrank) shows the last one
			d.Pages = pagination{Page: page, Of: last, Total: l.Total}
			break
		}
		page = last
	}
	d.Devices, d.Versions = l.Devices, l.Versions
	d.paginate(q)
	c.render(w, r, http.StatusOK, "devices", s, d)
}

type deviceData struct {
	Device  api.DeviceJSON
	Alarms  []string
	Plays   []api.ConfirmationJSON
	Notice  string
	Content []api.ContentJSON // the library, for play now (operators)
	Shot    string            // a screenshot command just sent, whose image the page waits for
}

func (c *Console) device(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	var d deviceData
	if err := c.call(r.Context(), s, "GET", "/api/devices/"+url.PathEscape(id), nil, &d.Device); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if err := c.call(r.Context(), s, "GET", "/api/confirmations?"+url.Values{"device": {id}, "limit": {"10"}}.Encode(), nil, &d.Plays); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	d.Alarms = c.alarmsOf(langOf(r), d.Device, c.opts.Now())
	d.Notice, d.Shot = r.URL.Query().Get("notice"), r.URL.Query().Get("shot")
	if store.Can(s.User.Role, store.RoleOperator) && !d.Device.Revoked {
		if err := c.libraryForPlay(r.Context(), s, &d.Content); err != nil {
			c.apiFail(w, r, s, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "device", s, d)
}

// command sends volume, stop or reload to a device through POST /api/commands.
func (c *Console) command(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PostFormValue("device")
	action := r.PostFormValue("action")
	req := map[string]any{"to": "device:" + id, "action": action}
	if action == "volume" {
		v, err := strconv.ParseFloat(r.PostFormValue("volume"), 64)
		if err != nil || v < 0 || v > 100 {
			c.fail(w, r, s, http.StatusBadRequest, "err.api", "âm lượng từ 0 đến 100")
			return
		}
		req["volume"] = v / 100
	}
	if action == "play_now" {
		req["content"] = r.PostFormValue("content")
	}
	var out api.CommandJSON
	if err := c.call(r.Context(), s, "POST", "/api/commands", req, &out); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if out.Submission != nil { // the area requires approval: it waits in the queue
		c.toQueue(w, r, out.Submission, out.Approvers)
		return
	}
	notice := tr(langOf(r), "cmd.sent", tr(langOf(r), "cmd."+action), len(out.Outcomes), out.Counts["sent"])
	q := url.Values{"notice": {notice}}
	if action == "screenshot" { // the page waits for this command's image
		q.Set("shot", out.ID)
	}
	http.Redirect(w, r, "/console/devices/"+url.PathEscape(id)+"?"+q.Encode(), http.StatusSeeOther)
}

const playsPerPage = 50

type playsData struct {
	Plays                              []api.ConfirmationJSON
	Area, Device, Result, Since, Until string
	Program, Content                   string
	Items                              []api.ContentJSON // the library's newest, for the content filter
	Page                               int
	Next                               string // the cursor of the next page (the last row's DEVICE:SEQ); "" on the last
	Query                              string // the filters, for the CSV link and the pages
	Live                               string // the event stream of new rows (page 1)
}

// playsFilterKeys are the play log's filters, as the form and the API name them.
var playsFilterKeys = []string{"area", "device", "result", "program", "content", "since", "until"}

// playsFilter turns the form's dd/mm/yyyy [hh:mm] into what the API reads (its own dates).
func playsFilter(q url.Values) url.Values {
	v := url.Values{}
	for _, k := range []string{"area", "device", "result", "program", "content"} {
		if x := strings.TrimSpace(q.Get(k)); x != "" {
			v.Set(k, x)
		}
	}
	for _, k := range []string{"since", "until"} {
		if x := strings.TrimSpace(q.Get(k)); x != "" {
			v.Set(k, apiTime(x))
		}
	}
	return v
}

// apiTime reads dd/mm/yyyy [hh:mm] as the API's yyyy-mm-dd [hh:mm]; anything else is passed
// as it is (the API's error names it).
func apiTime(s string) string {
	date, clock, _ := strings.Cut(s, " ")
	p := strings.Split(date, "/")
	if len(p) != 3 {
		return s
	}
	out := fmt.Sprintf("%s-%02s-%02s", p[2], p[1], p[0])
	if clock != "" {
		out += " " + strings.TrimSpace(clock)
	}
	return out
}

// confirmations is one page of the play log, newest first; a deeper page continues after the
// last row of the one before (the API's cursor), so it costs what the first page costs.
func (c *Console) confirmations(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := playsData{Area: q.Get("area"), Device: q.Get("device"), Result: q.Get("result"), Since: q.Get("since"), Until: q.Get("until"),
		Program: strings.TrimSpace(q.Get("program")), Content: strings.TrimSpace(q.Get("content")), Page: 1}
	after := q.Get("after")
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 && after != "" {
		d.Page = n // shown only: the cursor says where the page starts
	}
	f := playsFilter(q)
	f.Set("limit", strconv.Itoa(playsPerPage+1))
	if after != "" {
		f.Set("after", after)
	}
	if err := c.call(r.Context(), s, "GET", "/api/confirmations?"+f.Encode(), nil, &d.Plays); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if len(d.Plays) > playsPerPage {
		d.Plays = d.Plays[:playsPerPage]
		last := d.Plays[len(d.Plays)-1]
		d.Next = fmt.Sprintf("%s:%d", last.Device, last.Seq)
	}
	if err := c.libraryForPlay(r.Context(), s, &d.Items); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	formQ := url.Values{}
	for _, k := range playsFilterKeys {
		if x := q.Get(k); x != "" {
			formQ.Set(k, x)
		}
	}
	d.Query = formQ.Encode()
	d.Live = livePlaysURL(d)
	c.render(w, r, http.StatusOK, "confirmations", s, d)
}

// confirmationsCSV is the API's CSV itself, streamed, for the page's filters.
func (c *Console) confirmationsCSV(w http.ResponseWriter, r *http.Request, s *session) {
	f := playsFilter(r.URL.Query())
	f.Set("format", "csv")
	req, err := http.NewRequestWithContext(r.Context(), "GET", "/api/confirmations?"+f.Encode(), nil)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "err.internal")
		return
	}
	req.Header.Set(api.ZoneHeader, c.opts.Location.String())
	w.Header().Set("Content-Disposition", `attachment; filename="nhat-ky-phat.csv"`)
	c.opts.API.ServeAs(w, req, s.User)
}

// events streams each device's state as server-sent events: the page's counts and rows
// change when a device connects, drops or starts playing. The hub has no change feed yet,
// so the stream checks the store every EventInterval and sends only what changed.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	area := r.URL.Query().Get("area")
	series := r.URL.Query().Get("series") // the emergency live view: its confirmations too
	sentPlays := map[string]bool{}
	last := map[string]string{}
	plays := c.playsSource(r, s) // the play log's stream: its new rows, not devices
	if plays == nil {
		plays = c.queueSource(r, s) // the approval queue's: what waits, not devices
	}
	t := time.NewTicker(c.opts.EventInterval)
	defer t.Stop()
	for {
		var devs []api.DeviceJSON
		var buf bytes.Buffer
		if plays != nil {
			if err := plays(r.Context(), &buf); err != nil {
				return
			}
		} else if err := c.call(r.Context(), s, "GET", "/api/devices?"+url.Values{"area": {area}}.Encode(), nil, &devs); err != nil {
			return
		}
		// A session ended meanwhile (sign-out elsewhere, disabled user) ends the stream.
		if _, _, err := c.opts.Store.Session(r.Context(), s.hash, c.opts.IdleTimeout, c.opts.MaxAge, false); err != nil {
			return
		}
		for _, d := range devs {
			ev := map[string]any{"id": d.ID, "online": d.Online, "now_playing": d.NowPlaying}
			b, _ := json.Marshal(ev)
			if last[d.ID] != string(b) {
				last[d.ID] = string(b)
				fmt.Fprintf(&buf, "event: device\ndata: %s\n\n", b)
			}
		}
		if series != "" {
			if err := c.playEvents(r, s, series, sentPlays, &buf); err != nil {
				return
			}
		}
		buf.WriteString(": alive\n\n")
		rc.SetWriteDeadline(time.Now().Add(c.opts.EventInterval + 30*time.Second))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

type auditData struct {
	Entries       []api.AuditJSON
	Actor, Action string
}

// audit lists who did what and when in the scope (GET /api/audit: administrators only).
func (c *Console) auditLog(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := auditData{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action"))}
	v := url.Values{}
	if d.Actor != "" {
		v.Set("actor", d.Actor)
	}
	if d.Action != "" {
		v.Set("action", d.Action)
	}
	if err := c.call(r.Context(), s, "GET", "/api/audit?"+v.Encode(), nil, &d.Entries); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	// Newest first: what an administrator looks for after something went wrong.
	sort.SliceStable(d.Entries, func(i, j int) bool { return d.Entries[i].At.After(d.Entries[j].At) })
	c.render(w, r, http.StatusOK, "audit", s, d)
}

type usersData struct {
	Users  []api.UserJSON
	Areas  []api.AreaJSON
	Roles  []string
	Notice string
}

// users lists the staff of the scope with forms to add one, reset a password and disable
// (GET /api/users and the routes below: administrators only).
func (c *Console) users(w http.ResponseWriter, r *http.Request, s *session) {
	d := usersData{Notice: r.URL.Query().Get("notice")}
	for _, role := range store.Roles {
		d.Roles = append(d.Roles, string(role))
	}
	if err := c.call(r.Context(), s, "GET", "/api/users", nil, &d.Users); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "users", s, d)
}

// userAction adds a user, sets a password or disables one through the API.
func (c *Console) userAction(w http.ResponseWriter, r *http.Request, s *session) {
	lang := langOf(r)
	req := api.UserRequest{ID: strings.TrimSpace(r.PostFormValue("id"))}
	var target, notice string
	switch r.PathValue("action") {
	case "add":
		req.Name, req.Scope, req.Role = strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("scope"), r.PostFormValue("role")
		req.Password = r.PostFormValue("password")
		target, notice = "/api/users", tr(lang, "users.added", req.ID)
	case "password":
		req.Password = r.PostFormValue("password")
		target, notice = "/api/users/password", tr(lang, "users.passwordset", req.ID)
	case "disable":
		target, notice = "/api/users/disable", tr(lang, "users.disabled", req.ID)
	case "role":
		req.Scope, req.Role = r.PostFormValue("scope"), r.PostFormValue("role")
		target, notice = "/api/users/role", tr(lang, "users.roleset", req.ID)
	default:
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	if err := c.call(r.Context(), s, "POST", target, req, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/users?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// account lets the signed-in user change their own password: the current one is asked first
// (a session left open on a shared computer must not be enough), then POST /api/users/password.
func (c *Console) account(w http.ResponseWriter, r *http.Request, s *session) {
	lang := langOf(r)
	if r.Method == http.MethodGet {
		c.render(w, r, http.StatusOK, "account", s, map[string]string{"Notice": r.URL.Query().Get("notice")})
		return
	}
	l, err := c.opts.Store.GetLogin(r.Context(), s.User.ID)
	if err != nil || l.PasswordHash == "" || !CheckPassword(l.PasswordHash, r.PostFormValue("current")) {
		c.render(w, r, http.StatusForbidden, "account", s, map[string]string{"Error": tr(lang, "account.wrong")})
		return
	}
	if r.PostFormValue("password") != r.PostFormValue("again") {
		c.render(w, r, http.StatusBadRequest, "account", s, map[string]string{"Error": tr(lang, "account.mismatch")})
		return
	}
	if err := c.call(r.Context(), s, "POST", "/api/users/password", api.UserRequest{Password: r.PostFormValue("password")}, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	// The new password ended every session of the user, this one too: sign in again.
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
