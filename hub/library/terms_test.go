package library

import (
	"strings"
	"testing"

	"github.com/loa-project/loa/hub/store"
)

// Staff type a list entry by code or label, with or without accents, dashes or "Tiếng";
// anything else is refused naming the entries, and with no list a code is taken as it is.
func TestResolveTerm(t *testing.T) {
	terms := []store.Term{{Dimension: store.DimLanguage, Value: "vie", Label: "Tiếng Việt"},
		{Dimension: store.DimLanguage, Value: "ktv", Label: "Cơ Tu"},
		{Dimension: store.DimLanguage, Value: "sed", Label: "Xơ Đăng"},
		{Dimension: store.DimTheme, Value: "human-rights", Label: "Quyền con người"}}
	for in, want := range map[string]string{"Cơ Tu": "ktv", "cơ-tu": "ktv", "co tu": "ktv", "CO_TU": "ktv", "ktv": "ktv",
		"tiếng việt": "vie", "Việt": "vie", "Tiếng Xơ Đăng": "sed", "xo dang": "sed", "  vie ": "vie", "": ""} {
		got, err := ResolveTerm(terms, store.DimLanguage, in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	_, err := ResolveTerm(terms, store.DimLanguage, "Co Tuu")
	if err == nil || !strings.Contains(err.Error(), `--language "Co Tuu": not in the hub's list of languages (ngôn ngữ): Tiếng Việt (vie), Cơ Tu (ktv), Xơ Đăng (sed)`) {
		t.Errorf("a language not in the list: %v", err)
	}
	if _, err := ResolveTerm(terms, store.DimLanguage, "human-rights"); err == nil {
		t.Error("a theme's code was taken for a language")
	}
	// No list of formats: a code as it is; a label-like value is refused saying how to write it.
	if got, err := ResolveTerm(terms, store.DimFormat, "radio-report"); err != nil || got != "radio-report" {
		t.Errorf("a format with no list: %q %v", got, err)
	}
	if _, err := ResolveTerm(terms, store.DimFormat, "Phóng sự"); err == nil || !strings.Contains(err.Error(), "loa term add format") {
		t.Errorf("a label with no list: %v", err)
	}
}
