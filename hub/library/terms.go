package library

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/hub/staffapi"
	"github.com/loa-project/loa/hub/store"
)

// dimensionWords names each metadata dimension for staff: the flag and the word on their
// forms (GLOSSARY-vi.md).
var dimensionWords = map[store.Dimension]struct{ flag, vi string }{
	store.DimLanguage: {"--language", "ngôn ngữ"},
	store.DimTheme:    {"--theme", "chủ đề"},
	store.DimFormat:   {"--format", "thể loại"},
	store.DimUnit:     {"--unit", "đơn vị sản xuất"},
}

// viFold maps Vietnamese letters to their bare Latin letter, so "Cơ Tu", "cơ-tu" and "co tu"
// are one name.
var viFold = func() map[rune]rune {
	m := map[rune]rune{'đ': 'd'}
	for base, vs := range map[rune]string{
		'a': "àáảãạăằắẳẵặâầấẩẫậ", 'e': "èéẻẽẹêềếểễệ", 'i': "ìíỉĩị",
		'o': "òóỏõọôồốổỗộơờớởỡợ", 'u': "ùúủũụưừứửữự", 'y': "ỳýỷỹỵ",
	} {
		for _, r := range vs {
			m[r] = base
		}
	}
	return m
}()

// foldName lowers a name, drops its diacritics, joins words with '-' and drops a leading
// "tieng-" (language), so a label typed any usual way meets the code or label kept.
func foldName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if f, ok := viFold[r]; ok {
			r = f
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return strings.TrimPrefix(b.String(), "tieng-")
}

// ResolveTerm turns what staff typed for a dimension (a code or a label, any case or
// accents) into the code stored. With no list kept for the dimension a code is taken as it
// is (checked as an id); with one, only its entries. The error lists them.
func ResolveTerm(terms []store.Term, dim store.Dimension, in string) (string, error) {
	in = strings.TrimSpace(in)
	if in == "" {
		return "", nil
	}
	var list []store.Term
	for _, t := range terms {
		if t.Dimension == dim {
			list = append(list, t)
		}
	}
	w := dimensionWords[dim]
	if len(list) == 0 {
		if err := store.ValidateAreaID(in); err != nil || strings.Contains(in, "/") {
			return "", fmt.Errorf("%s %q (%s): no list of %ss is kept on this hub yet, so give a code of lowercase letters, digits and '-' (e.g. %s); "+
				"an administrator keeps the list with `loa term add %s CODE --label \"…\"`", w.flag, in, w.vi, dim, exampleCode(dim), dim)
		}
		return in, nil
	}
	f := foldName(in)
	for _, t := range list {
		if in == t.Value || f == foldName(t.Value) || f == foldName(t.Label) {
			return t.Value, nil
		}
	}
	names := make([]string, 0, len(list))
	for _, t := range list {
		names = append(names, fmt.Sprintf("%s (%s)", t.Label, t.Value))
	}
	return "", fmt.Errorf("%s %q: not in the hub's list of %ss (%s): %s; write one of these, by name or code, or ask an administrator to add it (`loa term add %s CODE --label \"…\"`)",
		w.flag, in, dim, w.vi, strings.Join(names, ", "), dim)
}

func exampleCode(dim store.Dimension) string {
	switch dim {
	case store.DimLanguage:
		return "vie"
	case store.DimTheme:
		return "human-rights"
	case store.DimFormat:
		return "radio-report"
	}
	return "tam-ky"
}

// contentMeta is the metadata of an upload or an edit, resolved to codes; nil fields were
// not given.
type contentMeta struct{ theme, language, format, unit *string }

// resolveMeta resolves the four dimensions of in (keys language, theme, format, unit; absent
// keys stay nil) against the hub's lists, all errors at once.
func (rm *Room) resolveMeta(ctx context.Context, in map[string]*string) (contentMeta, error) {
	terms, err := rm.o.Store.ListTerms(ctx, "")
	if err != nil {
		return contentMeta{}, err
	}
	var m contentMeta
	var errs []string
	for _, f := range []struct {
		key string
		dim store.Dimension
		dst **string
	}{{"language", store.DimLanguage, &m.language}, {"theme", store.DimTheme, &m.theme},
		{"format", store.DimFormat, &m.format}, {"unit", store.DimUnit, &m.unit}} {
		v := in[f.key]
		if v == nil {
			continue
		}
		code, err := ResolveTerm(terms, f.dim, *v)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		*f.dst = &code
	}
	if len(errs) > 0 {
		return contentMeta{}, staffapi.BadRequest("%s", strings.Join(errs, "; "))
	}
	return m, nil
}

// Labels maps "dimension\x00code" to its label, for answers (the reports use it too).
func Labels(ctx context.Context, st TermLister) map[string]string {
	out := map[string]string{}
	terms, _ := st.ListTerms(ctx, "")
	for _, t := range terms {
		out[string(t.Dimension)+"\x00"+t.Value] = t.Label
	}
	return out
}

func withLabels(j api.ContentJSON, l map[string]string) api.ContentJSON {
	j.LanguageLabel = l["language\x00"+j.Language]
	j.ThemeLabel = l["theme\x00"+j.Theme]
	j.FormatLabel = l["format\x00"+j.Format]
	j.UnitLabel = l["unit\x00"+j.Unit]
	return j
}

// ListTerms is GET /api/terms: the lists of languages, themes, formats and units.
func (rm *Room) ListTerms(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	dim := store.Dimension(r.URL.Query().Get("dimension"))
	if _, ok := dimensionWords[dim]; dim != "" && !ok {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("dimension %q: use language, theme, format or unit", dim))
		return
	}
	terms, err := rm.o.Store.ListTerms(r.Context(), dim)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	out := make([]api.TermJSON, 0, len(terms))
	for _, t := range terms {
		out = append(out, api.TermJSON{Dimension: string(t.Dimension), Code: t.Value, Label: t.Label})
	}
	staffapi.WriteJSON(w, http.StatusOK, out)
}

// AddTerm adds an entry to a list (or relabels one). The lists are the whole hub's, so
// only staff of a root area keep them.
func (rm *Room) AddTerm(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.TermJSON
	if !staffapi.ReadJSON(w, r, &req) || !staffapi.HubWide(w, p, "the lists of languages, themes, formats and units are") {
		return
	}
	dim := store.Dimension(req.Dimension)
	if _, ok := dimensionWords[dim]; !ok {
		staffapi.Error(w, http.StatusBadRequest, fmt.Sprintf("dimension %q: use language, theme, format or unit", req.Dimension))
		return
	}
	if strings.TrimSpace(req.Label) == "" {
		staffapi.Error(w, http.StatusBadRequest, "a list entry needs the name staff read: use --label (e.g. --label \"Cơ Tu\")")
		return
	}
	if err := rm.o.Store.AddTerm(r.Context(), store.Term{Dimension: dim, Value: req.Code, Label: strings.TrimSpace(req.Label)}); err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "term.add", "term:"+req.Dimension+"/"+req.Code, map[string]string{"label": req.Label})
	staffapi.WriteJSON(w, http.StatusCreated, api.TermJSON{Dimension: req.Dimension, Code: req.Code, Label: strings.TrimSpace(req.Label)})
}

// Edit changes a library item's title and metadata: the uploader or staff of a
// top area may.
func (rm *Room) Edit(w http.ResponseWriter, r *http.Request, p staffapi.Caller) {
	var req api.ContentEdit
	if !staffapi.ReadJSON(w, r, &req) {
		return
	}
	c, err := rm.o.Store.GetContent(r.Context(), r.PathValue("ref"))
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	if c.UploadedBy != p.User.ID && strings.Contains(p.Scope, "/") {
		staffapi.Error(w, http.StatusForbidden, fmt.Sprintf("content %s was uploaded by %s: only they or staff of a top area may edit it", c.Ref, c.UploadedBy))
		return
	}
	m, err := rm.resolveMeta(r.Context(), map[string]*string{"language": req.Language, "theme": req.Theme, "format": req.Format, "unit": req.Unit})
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	u := store.ContentUpdate{Title: req.Title, Language: m.language, Theme: m.theme, Format: m.format, ProducingUnit: m.unit}
	if u.Title != nil {
		t := strings.TrimSpace(*u.Title)
		u.Title = &t
	}
	c2, err := rm.o.Store.UpdateContent(r.Context(), c.Ref, u)
	if err != nil {
		staffapi.Fail(w, err)
		return
	}
	rm.o.Audit(r.Context(), p, "content.edit", "content:"+c.Ref, map[string]any{"before": contentJSON(c, ""), "after": contentJSON(c2, "")})
	staffapi.WriteJSON(w, http.StatusOK, withLabels(contentJSON(c2, rm.o.PublicURL), rm.labels(r.Context())))
}

func (rm *Room) labels(ctx context.Context) map[string]string { return Labels(ctx, rm.o.Store) }
