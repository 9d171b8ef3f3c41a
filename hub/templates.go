package hub

import (
	"context"
	"net/http"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/scheduler"
)

// templateStore is what schedule templates need of the store; *store.DB has it.
type templateStore interface {
	SaveTemplate(ctx context.Context, t store.Template) (store.Template, error)
	Templates(ctx context.Context, areas []string) ([]store.Template, error)
	GetTemplate(ctx context.Context, area, name string) (store.Template, error)
}

func (s *Server) templates(w http.ResponseWriter) (templateStore, bool) {
	return staffapi.StoreAs[templateStore](w, s.st, "keeps no schedule templates")
}

// visibleTemplate reports whether a template of area is for p: one of the scope's own areas,
// or one above it (a district's week, offered to its communes).
func visibleTemplate(p staffapi.Caller, area string) bool {
	return store.Allowed(p.Scope, area) || store.IsWithin(p.Scope, area)
}

// apiSaveTemplate stores a schedule document as a named template of an area in the caller's
// scope; the document must be one the scheduler accepts.
func (s *Server) apiSaveTemplate(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.TemplateRequest
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	ts, ok := s.templates(w)
	if !ok {
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		staffapi.Error(w, http.StatusBadRequest, "a template needs a name, e.g. \"Tuần thường\"")
		return
	}
	if !store.Allowed(p.Scope, req.Area) {
		s.notFoundTarget(w, r, p, req.Area, "area")
		return
	}
	if _, err := scheduler.Parse("template "+req.Name, []byte(req.Document)); err != nil {
		staffapi.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	t, err := ts.SaveTemplate(r.Context(), store.Template{Area: req.Area, Name: req.Name, Document: []byte(req.Document), Author: p.User.ID})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "template.save", "area:"+t.Area, map[string]string{"name": t.Name})
	staffapi.WriteJSON(w, http.StatusCreated, templateJSON(t, false))
}

// apiListTemplates lists the templates of the caller's areas and of the areas above them;
// with ?area= and ?name=, that one template with its document.
func (s *Server) apiListTemplates(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	ts, ok := s.templates(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	if name := q.Get("name"); name != "" {
		area := q.Get("area")
		if !visibleTemplate(p, area) {
			s.notFoundTarget(w, r, p, area, "area")
			return
		}
		t, err := ts.GetTemplate(r.Context(), area, name)
		if err != nil {
			staffapi.Fail(w, err)
			return
		}
		staffapi.WriteJSON(w, http.StatusOK, templateJSON(t, true))
		return
	}
	var areas []string
	for a := store.ParentArea(p.Scope); a != ""; a = store.ParentArea(a) {
		areas = append(areas, a)
	}
	sub, err := s.st.ListSubtree(r.Context(), p.Scope)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	for _, a := range sub {
		areas = append(areas, a.ID)
	}
	list, err := ts.Templates(r.Context(), areas)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := []api.TemplateJSON{}
	for _, t := range list {
		out = append(out, templateJSON(t, false))
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

func templateJSON(t store.Template, withDoc bool) api.TemplateJSON {
	j := api.TemplateJSON{Area: t.Area, Name: t.Name, Author: t.Author, CreatedAt: t.CreatedAt}
	if d, err := scheduler.Parse("stored template", t.Document); err == nil {
		j.Programs = len(d.Programs)
	}
	if withDoc {
		j.Document = string(t.Document)
	}
	return j
}
