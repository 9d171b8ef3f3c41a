package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/library"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// settingReportTarget keeps api.ReportSettings as JSON.
const settingReportTarget = "report.target"

// defaultReportSettings are the store's own defaults (store.PlanOptions.IsTarget), shown as
// such until an administrator sets them.
var defaultReportSettings = api.ReportSettings{HomeLanguages: []string{"vi", "vie"}, DigitalFormats: []string{"digital"}}

// reportSettings reads what the plan report counts towards its target.
func (s *Server) reportSettings(ctx context.Context) (api.ReportSettings, error) {
	st, err := s.st.GetSetting(ctx, settingReportTarget)
	if errors.Is(err, store.ErrNotFound) {
		return defaultReportSettings, nil
	}
	if err != nil {
		return api.ReportSettings{}, err
	}
	var out api.ReportSettings
	if err := json.Unmarshal([]byte(st.Value), &out); err != nil {
		return api.ReportSettings{}, fmt.Errorf("setting %s is not readable (%v): set it again with PUT /api/settings/reports", settingReportTarget, err)
	}
	out.UpdatedAt = &st.UpdatedAt
	return out, nil
}

func (s *Server) apiGetReportSettings(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	out, err := s.reportSettings(r.Context())
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// apiSetReportSettings changes them: administrators of a top area only, as for the lists of
// languages and formats they name (apiAddTerm). Each entry is resolved against those lists.
func (s *Server) apiSetReportSettings(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.ReportSettings
	if !staffapi.ReadJSON(w, r, &req) || !staffapi.HubWide(w, p, "the report settings are") {
		return
	}
	terms, err := s.st.ListTerms(r.Context(), "")
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	var errs []string
	resolve := func(dim store.Dimension, in []string, what string) []string {
		var out []string
		seen, before := map[string]bool{}, len(errs)
		for _, v := range in {
			if strings.TrimSpace(v) == "" {
				continue
			}
			code, err := library.ResolveTerm(terms, dim, v)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if !seen[code] {
				seen[code] = true
				out = append(out, code)
			}
		}
		if len(out) == 0 && len(errs) == before {
			errs = append(errs, what+" is empty: name at least one")
		}
		return out
	}
	next := api.ReportSettings{
		HomeLanguages:  resolve(store.DimLanguage, req.HomeLanguages, "home_languages (the national language's codes)"),
		DigitalFormats: resolve(store.DimFormat, req.DigitalFormats, "digital_formats (the digital products' format codes)"),
	}
	if len(errs) > 0 {
		staffapi.Error(w, http.StatusBadRequest, strings.Join(errs, "; "))
		return
	}
	old, _ := s.reportSettings(r.Context())
	b, _ := json.Marshal(next)
	if err := s.st.SetSetting(r.Context(), settingReportTarget, string(b)); err != nil {
		staffapi.Fail(w, err)
		return
	}
	s.audit(r.Context(), p, "settings.reports", "setting:"+settingReportTarget, map[string]any{
		"home_languages": next.HomeLanguages, "digital_formats": next.DigitalFormats,
		"was_home_languages": old.HomeLanguages, "was_digital_formats": old.DigitalFormats})
	out, err := s.reportSettings(r.Context())
	if err != nil {
		staffapi.Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}
