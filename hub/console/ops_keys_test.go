package console

import "testing"

// Keys the library, emergency and CAP pages build at run time are in the catalogue.
func TestOpsDynamicKeys(t *testing.T) {
	for _, k := range []string{"lib.language", "lib.theme", "lib.format", "lib.unit", "lib.kind.audio", "lib.kind.video", "lib.kind.image",
		"cap.d.create", "cap.d.replace", "cap.d.cancel", "cap.d.ignore", "cap.d.refused", "cap.c.emergency", "cap.c.priority", "cap.c.normal",
		"span.15m", "span.30m", "span.1h", "span.2h", "span.3h", "span.6h", "span.12h", "span.24h"} {
		for _, lang := range []string{"vi", "en"} {
			if _, ok := catalogue[lang][k]; !ok {
				t.Errorf("%s: %q is not in the catalogue", lang, k)
			}
		}
	}
}

// Durations are said in words whatever form the API gives them in.
func TestSpan(t *testing.T) {
	span := funcs["span"].(func(string, string) string)
	for in, want := range map[string]string{"30m": "30 phút", "30m0s": "30 phút", "2h0m0s": "2 giờ", "1h": "1 giờ", "1h30m0s": "1h30m", "45s": "45s", "": ""} {
		if got := span("vi", in); got != want {
			t.Errorf("span(%q) = %q, want %q", in, got, want)
		}
	}
}
