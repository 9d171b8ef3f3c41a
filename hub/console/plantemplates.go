package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/loa-project/loa/hub/api"
)

type templatesData struct {
	Templates []api.TemplateJSON
	Areas     []api.AreaJSON
	Notice    string
	Errors    []string
}

// template reads one saved template with its document.
func (c *Console) template(r *http.Request, s *session, area, name string) (api.TemplateJSON, error) {
	var t api.TemplateJSON
	err := c.call(r.Context(), s, "GET", "/api/schedule-templates?"+url.Values{"area": {area}, "name": {name}}.Encode(), nil, &t)
	return t, err
}

// planTemplates lists the saved weeks of the user's areas and those above, each with a form
// to apply it to several areas at once.
func (c *Console) planTemplates(w http.ResponseWriter, r *http.Request, s *session) {
	d := templatesData{Notice: r.URL.Query().Get("notice")}
	if err := c.call(r.Context(), s, "GET", "/api/schedule-templates", nil, &d.Templates); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	if err := c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas); err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "plantemplates", s, d)
}

// planTemplateAction applies a template: the template's document is pushed to each ticked
// area through POST /api/schedules as the user, so each push is checked, scoped and audited as
// one from the CLI is.
func (c *Console) planTemplateAction(w http.ResponseWriter, r *http.Request, s *session) {
	if r.PathValue("action") != "apply" {
		c.fail(w, r, s, http.StatusNotFound, "err.notfound")
		return
	}
	lang := langOf(r)
	t, err := c.template(r, s, r.PostFormValue("area"), r.PostFormValue("name"))
	if err != nil {
		c.apiFail(w, r, s, err)
		return
	}
	targets := r.PostForm["to"]
	if len(targets) == 0 {
		c.fail(w, r, s, http.StatusBadRequest, "tpl.none")
		return
	}
	var done []string
	var errs []string
	for _, to := range targets {
		var res api.PushResponse
		if err := c.call(r.Context(), s, "POST", "/api/schedules", api.PushRequest{To: "area:" + to, Name: "template " + t.Name, Document: t.Document}, &res); err != nil {
			if ae, ok := err.(*apiError); ok && ae.code == http.StatusForbidden {
				c.apiFail(w, r, s, err) // the role may not push: no area will take it
				return
			}
			errs = append(errs, fmt.Sprintf("%s: %v", to, err))
			continue
		}
		if res.Submission != nil {
			done = append(done, submittedNotice(lang, res))
			continue
		}
		done = append(done, tr(lang, "tpl.rev", to, res.Revision))
	}
	if len(errs) > 0 {
		d := templatesData{Errors: errs}
		if len(done) > 0 {
			d.Notice = tr(lang, "tpl.applied", t.Name, strings.Join(done, ", "))
		}
		c.call(r.Context(), s, "GET", "/api/schedule-templates", nil, &d.Templates)
		c.call(r.Context(), s, "GET", "/api/areas", nil, &d.Areas)
		c.render(w, r, http.StatusUnprocessableEntity, "plantemplates", s, d)
		return
	}
	http.Redirect(w, r, "/console/plan/templates?notice="+url.QueryEscape(tr(lang, "tpl.applied", t.Name, strings.Join(done, ", "))), http.StatusSeeOther)
}
