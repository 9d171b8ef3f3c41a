package console

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/report"
	"github.com/loa-project/loa/hub/store"
)

// The report pages (issue 16): the hub's three reports for an area and period, read from
// GET /api/reports/{kind} as the signed-in user (so scope holds as for `loa report`), shown as
// tables, and downloaded as the API's own CSV, XLSX and PDF. Administrators of a top area also
// set what the plan report counts towards its target (PUT /api/settings/reports).

var reportKinds = []string{"plan", "plays", "devices"}

// reportRoutes parses the page and adds its routes.
func (c *Console) reportRoutes(m *http.ServeMux) error {
	t, err := template.New("reports").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/reports.html")
	if err != nil {
		return err
	}
	c.pages["reports"] = t
	m.HandleFunc("GET /console/reports", c.signedIn(c.reports))
	m.HandleFunc("GET /console/reports/download", c.signedIn(c.reportDownload))
	m.HandleFunc("POST /console/reports/settings", c.signedIn(c.reportSettings))
	return nil
}

type reportsData struct {
	Kinds                 []string
	Kind, Area, From, To  string
	Device, Program       string
	Areas                 []api.AreaJSON
	Doc                   *api.ReportDoc
	Query                 template.URL // the form's filters (url.Values.Encode), for the download links
	Error, Notice         string
	Settings              *api.ReportSettings // administrators only
	Languages, Formats    []api.TermJSON
	HomeText, DigitalText string // the settings as text when the hub keeps no list
	Home, Digital         map[string]bool
	Charts                *planCharts // the plan report's charts over time and by area
}

// reportQuery is what the API reads for the form's filters: the dates dd/mm/yyyy as its
// yyyy-mm-dd (the last day included), the plays report's narrowing only for it.
func reportQuery(d *reportsData) url.Values {
	v := url.Values{}
	set := func(k, x string) {
		if x = strings.TrimSpace(x); x != "" {
			v.Set(k, x)
		}
	}
	set("area", d.Area)
	set("from", apiTime(strings.TrimSpace(d.From)))
	set("to", apiTime(strings.TrimSpace(d.To)))
	if d.Kind == "plays" {
		set("device", d.Device)
		set("program", d.Program)
	}
	return v
}

func (c *Console) reportForm(r *http.Request) reportsData {
	q := r.URL.Query()
	now := c.opts.Now().In(c.opts.Location)
	d := reportsData{Kinds: reportKinds, Kind: q.Get("kind"), Area: q.Get("area"), From: q.Get("from"), To: q.Get("to"),
		Device: q.Get("device"), Program: q.Get("program"), Notice: q.Get("notice")}
	valid := false
	for _, k := range reportKinds {
		valid = valid || d.Kind == k
	}
	if !valid {
		d.Kind = ""
	}
	// No dates given: this year up to today, the plan report's usual period.
	if d.From == "" && d.To == "" {
		d.From = time.Date(now.Year(), 1, 1, 0, 0, 0, 0, c.opts.Location).Format("02/01/2006")
		d.To = now.Format("02/01/2006")
	}
	return d
}

// reports shows the form and, once a report is chosen, the report.
func (c *Console) reports(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.reportForm(r)
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if err := c.loadSettings(r.Context(), s, &d); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	code := http.StatusOK
	if d.Kind != "" {
		q := reportQuery(&d)
		d.Query = template.URL("kind=" + d.Kind + "&" + q.Encode())
		q.Set("format", "json")
		// The plan's charts are read beside the report: each reads a year of summaries, and
		// the store answers them in parallel.
		var charts func() (*planCharts, error)
		if d.Kind == "plan" {
			charts = c.loadCharts(r, s, &d, q)
		}
		var doc api.ReportDoc
		err := c.call(r.Context(), s, "GET", "/api/reports/"+d.Kind+"?"+q.Encode(), nil, &doc)
		var pc *planCharts
		var chartErr error
		if charts != nil {
			pc, chartErr = charts() // waited for whatever the report's answer
		}
		if err != nil {
			e, ok := err.(*apiError)
			if !ok {
				c.apiFail(w, r, s, err)
				return
			}
			// The form stays filled in: a mistyped date is corrected where it was typed.
			code, d.Error, d.Query = e.code, e.msg, ""
		} else {
			d.Doc = &doc
		}
		if d.Doc != nil && chartErr != nil {
			c.apiFail(w, r, s, chartErr)
			return
		}
		d.Charts = pc
	}
	c.render(w, r, code, "reports", s, d)
}

// loadCharts starts reading the plan report's series and area tree for the form's filters;
// the function it returns waits for both and draws them.
func (c *Console) loadCharts(r *http.Request, s *session, d *reportsData, q url.Values) func() (*planCharts, error) {
	var ser report.Series
	var tree report.AreaTree
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs[0] = c.call(r.Context(), s, "GET", "/api/reports/plan/series?"+q.Encode(), nil, &ser)
	}()
	go func() {
		defer wg.Done()
		errs[1] = c.call(r.Context(), s, "GET", "/api/reports/plan/areas?"+q.Encode(), nil, &tree)
	}()
	from, to := d.From, d.To
	return func() (*planCharts, error) {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		return newPlanCharts(langOf(r), ser, tree, from, to), nil
	}
}

// loadSettings reads the report settings and the lists they choose from, for an
// administrator of a top area (who alone may change them).
func (c *Console) loadSettings(ctx context.Context, s *session, d *reportsData) error {
	if s.User.Role != store.RoleAdmin || strings.Contains(s.User.Scope, "/") {
		return nil
	}
	d.Settings = &api.ReportSettings{}
	if err := c.call(ctx, s, "GET", "/api/settings/reports", nil, d.Settings); err != nil {
		return err
	}
	var terms []api.TermJSON
	if err := c.call(ctx, s, "GET", "/api/terms", nil, &terms); err != nil {
		return err
	}
	for _, t := range terms {
		switch t.Dimension {
		case "language":
			d.Languages = append(d.Languages, t)
		case "format":
			d.Formats = append(d.Formats, t)
		}
	}
	d.Home, d.Digital = map[string]bool{}, map[string]bool{}
	for _, v := range d.Settings.HomeLanguages {
		d.Home[v] = true
	}
	for _, v := range d.Settings.DigitalFormats {
		d.Digital[v] = true
	}
	d.HomeText, d.DigitalText = strings.Join(d.Settings.HomeLanguages, ", "), strings.Join(d.Settings.DigitalFormats, ", ")
	return nil
}

// reportDownload is the API's CSV, XLSX or PDF for the form's filters; a refusal is a page.
func (c *Console) reportDownload(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.reportForm(r)
	format := r.URL.Query().Get("format")
	if d.Kind == "" || (format != "csv" && format != "xlsx" && format != "pdf") {
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	q := reportQuery(&d)
	q.Set("format", format)
	req, err := http.NewRequestWithContext(r.Context(), "GET", "/api/reports/"+d.Kind+"?"+q.Encode(), nil)
	if err != nil {
		c.fail(w, r, s, http.StatusBadRequest, "err.internal")
		return
	}
	req.Header.Set(api.ZoneHeader, c.opts.Location.String())
	rec := &recorder{h: http.Header{}}
	c.opts.API.ServeAs(rec, req, s.User)
	if rec.code/100 != 2 {
		c.apiFail(w, r, s, &apiError{code: rec.code, msg: apiMessage(rec)})
		return
	}
	for _, k := range []string{"Content-Type", "Content-Disposition", api.ZoneHeader} {
		w.Header().Set(k, rec.h.Get(k))
	}
	w.Write(rec.body.Bytes())
}

// reportSettings changes what the plan report counts towards its target.
func (c *Console) reportSettings(w http.ResponseWriter, r *http.Request, s *session) {
	split := func(k string) []string {
		var out []string
		for _, v := range r.PostForm[k] {
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					out = append(out, x)
				}
			}
		}
		return out
	}
	req := api.ReportSettings{HomeLanguages: split("home"), DigitalFormats: split("digital")}
	if err := c.call(r.Context(), s, "PUT", "/api/settings/reports", req, nil); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/reports?notice="+url.QueryEscape(tr(langOf(r), "reports.saved")), http.StatusSeeOther)
}

// apiMessage is the words of an API refusal held in rec.
func apiMessage(rec *recorder) string {
	var e api.Error
	if json.Unmarshal(rec.body.Bytes(), &e) != nil || e.Error == "" {
		return http.StatusText(rec.code)
	}
	return e.Error
}
