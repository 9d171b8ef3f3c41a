package console

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
)

// The library, emergency, relay/bulletin and CAP pages: their templates, helpers and routes.

var opsPages = []string{"content", "emergency", "live", "relay", "cap"}

func init() {
	// span says a Go duration ("30m", "2h0m0s") in the page's words: "30 phút", "2 giờ".
	funcs["span"] = func(lang, d string) string {
		if x, err := time.ParseDuration(d); err == nil && x > 0 && x%time.Minute == 0 {
			d = strings.TrimSuffix(x.String(), "0s") // 30m, 1h30m, 2h0m
			if strings.HasSuffix(d, "h0m") {
				d = strings.TrimSuffix(d, "0m")
			}
		}
		if t := tr(lang, "span."+d); t != "span."+d {
			return t
		}
		return d
	}
	funcs["has"] = func(xs []string, x string) bool {
		for _, v := range xs {
			if v == x {
				return true
			}
		}
		return false
	}
	funcs["areaName"] = func(areas []api.AreaJSON, id string) string {
		for _, a := range areas {
			if a.ID == id {
				return a.Name
			}
		}
		return id
	}
	funcs["recTitle"] = func(recs []api.ContentJSON, ref string) string {
		for _, c := range recs {
			if c.Ref == ref {
				return c.Title
			}
		}
		return ref
	}
	funcs["areaTree"] = func(v view, areas []api.AreaJSON, chosen []string) any {
		return struct {
			V      view
			Areas  []api.AreaJSON
			Chosen []string
		}{v, areas, chosen}
	}
	funcs["whatFields"] = func(v view, f broadcastForm, recs []api.ContentJSON) any {
		return struct {
			V          view
			Form       broadcastForm
			Recordings []api.ContentJSON
		}{v, f, recs}
	}
	funcs["activeList"] = func(v view, list []api.EmergencyJSON) any {
		return struct {
			V    view
			List []api.EmergencyJSON
		}{v, list}
	}
	// termField is a metadata control: a list's choices when the hub keeps one, else a text box.
	funcs["termField"] = func(v view, dim string, terms []api.TermJSON, value string, req, any bool, id string) any {
		return struct {
			V              view
			Dim, Value, ID string
			Terms          []api.TermJSON
			Req, Any       bool
		}{v, dim, value, id, terms, req, any}
	}
}

// addOpsPages parses these pages (each with the layout and the shared ops.html blocks) and
// adds their routes.
func (c *Console) addOpsPages(m *http.ServeMux) error {
	for _, name := range opsPages {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/ops.html", "templates/"+name+".html")
		if err != nil {
			return err
		}
		c.pages[name] = t
	}
	m.HandleFunc("GET /console/content", c.signedIn(c.library))
	m.HandleFunc("POST /console/content/upload", c.signedIn(c.upload))
	m.HandleFunc("POST /console/content/edit", c.signedIn(c.editContent))
	m.HandleFunc("GET /console/content/file/{ref}", c.signedIn(c.contentFile))
	m.HandleFunc("GET /console/emergency", c.signedIn(c.emergency))
	m.HandleFunc("POST /console/emergency", c.signedIn(c.emergencyBack))
	m.HandleFunc("POST /console/emergency/confirm", c.signedIn(c.confirmEmergency))
	m.HandleFunc("POST /console/emergency/send", c.signedIn(c.sendEmergency))
	m.HandleFunc("GET /console/emergency/live", c.signedIn(c.emergencyLive))
	m.HandleFunc("POST /console/emergency/cancel", c.signedIn(c.cancelBroadcast))
	m.HandleFunc("GET /console/broadcasts", c.signedIn(c.relay))
	m.HandleFunc("POST /console/broadcasts/{kind}", c.signedIn(c.startBroadcast))
	m.HandleFunc("GET /console/cap", c.signedIn(c.capAlerts))
	return nil
}
