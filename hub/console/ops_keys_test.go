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
