package cap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, name string) *Alert {
	t.Helper()
	a, err := Parse(readFile(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return a
}

func TestParseOASISExamples(t *testing.T) {
	t.Run("A.1 homeland security", func(t *testing.T) {
		a := mustParse(t, "oasis-a1-homeland-security.xml")
		if a.Identifier != "43b080713727" || a.Sender != "hsas@dhs.gov" || a.Status != "Actual" || a.MsgType != "Alert" || a.Scope != "Public" {
			t.Fatalf("header: %+v", a)
		}
		want := time.Date(2003, 4, 2, 19, 39, 1, 0, time.UTC)
		if !a.Sent.Equal(want) {
			t.Errorf("sent = %v, want %v", a.Sent, want)
		}
		if len(a.Infos) != 1 {
			t.Fatalf("infos = %d", len(a.Infos))
		}
		in := a.Infos[0]
		if in.Language != "en-US" {
			t.Errorf("default language = %q, want en-US", in.Language)
		}
		if in.Urgency != "Immediate" || in.Severity != "Severe" || in.Certainty != "Likely" || in.Categories[0] != "Security" {
			t.Errorf("info: %+v", in)
		}
		if !strings.HasPrefix(in.Instruction, "A High Condition") {
			t.Errorf("instruction not trimmed: %q", in.Instruction)
		}
		if len(in.Resources) != 1 || in.Resources[0].MimeType != "image/gif" {
			t.Errorf("resources: %+v", in.Resources)
		}
		if len(in.Parameters) != 1 || in.Parameters[0] != (NameValue{"HSAS", "ORANGE"}) {
			t.Errorf("parameters: %+v", in.Parameters)
		}
		if len(in.Areas) != 1 || in.Areas[0].Desc != "U.S. nationwide and interests worldwide" {
			t.Errorf("areas: %+v", in.Areas)
		}
	})
	t.Run("A.2 thunderstorm", func(t *testing.T) {
		a := mustParse(t, "oasis-a2-thunderstorm.xml")
		in := a.Infos[0]
		if in.Expires.Sub(a.Sent) != 63*time.Minute {
			t.Errorf("expires - sent = %v, want 1h3m", in.Expires.Sub(a.Sent))
		}
		ar := in.Areas[0]
		if len(ar.Polygons) != 1 || len(ar.Polygons[0]) != 5 || ar.Polygons[0][1] != (Point{38.34, -119.95}) {
			t.Errorf("polygon: %+v", ar.Polygons)
		}
		if len(ar.Geocodes) != 3 || ar.Geocodes[2] != (NameValue{"SAME", "006003"}) {
			t.Errorf("geocodes: %+v", ar.Geocodes)
		}
		if len(in.ResponseType) != 1 || in.ResponseType[0] != "Shelter" || len(in.EventCodes) != 1 || in.EventCodes[0].Value != "SVR" {
			t.Errorf("responseType/eventCode: %+v %+v", in.ResponseType, in.EventCodes)
		}
	})
	t.Run("A.3 earthquake update", func(t *testing.T) {
		a := mustParse(t, "oasis-a3-earthquake.xml")
		if a.MsgType != "Update" || len(a.References) != 1 {
			t.Fatalf("msgType %s refs %+v", a.MsgType, a.References)
		}
		r := a.References[0]
		if r.Key() != "trinet@caltech.edu,TRI13970876.1" || !r.Sent.Equal(time.Date(2003, 6, 12, 3, 30, 0, 0, time.UTC)) {
			t.Errorf("reference: %+v", r)
		}
		c := a.Infos[0].Areas[0].Circles
		if len(c) != 1 || c[0] != (Circle{Point{32.9525, -115.5527}, 0}) {
			t.Errorf("circle: %+v", c)
		}
		if len(a.Infos[0].Parameters) != 5 {
			t.Errorf("parameters: %d", len(a.Infos[0].Parameters))
		}
	})
	t.Run("A.4 AMBER multilingual", func(t *testing.T) {
		a := mustParse(t, "oasis-a4-amber.xml")
		if a.Source != "SW" || len(a.Infos) != 2 {
			t.Fatalf("source %q infos %d", a.Source, len(a.Infos))
		}
		if a.Infos[0].Language != "en-US" || a.Infos[1].Language != "es-US" || a.Infos[1].Event != "Abducción de Niño" {
			t.Errorf("languages: %q %q %q", a.Infos[0].Language, a.Infos[1].Language, a.Infos[1].Event)
		}
		if !strings.Contains(a.Infos[0].Description, `3'0"`) {
			t.Errorf("description lost a quote: %q", a.Infos[0].Description)
		}
	})
}

// mutate returns the thunderstorm example with one substitution, checked to apply.
func mutate(t *testing.T, old, new string) []byte {
	t.Helper()
	base := readFile(t, "oasis-a2-thunderstorm.xml")
	if !bytes.Contains(base, []byte(old)) {
		t.Fatalf("test bug: %q not in base document", old)
	}
	return bytes.Replace(base, []byte(old), []byte(new), 1)
}

func TestParseRefusesMalformed(t *testing.T) {
	cases := []struct {
		name     string
		doc      []byte
		path     string // the problem must name this element
		contains string // and say this
	}{
		{"missing identifier", mutate(t, "<identifier>KSTO1055887203</identifier>", ""), "alert/identifier", "missing"},
		{"empty sender", mutate(t, "<sender>KSTO@NWS.NOAA.GOV</sender>", "<sender> </sender>"), "alert/sender", "empty"},
		{"identifier with comma", mutate(t, "KSTO1055887203", "KSTO,1"), "alert/identifier", "commas"},
		{"sent without offset", mutate(t, "<sent>2003-06-17T14:57:00-07:00</sent>", "<sent>2003-06-17T14:57:00</sent>"), "alert/sent", "not a CAP time"},
		{"sent with Z", mutate(t, "<sent>2003-06-17T14:57:00-07:00</sent>", "<sent>2003-06-17T21:57:00Z</sent>"), "alert/sent", `forbids "Z"`},
		{"sent impossible date", mutate(t, "<sent>2003-06-17T14:57:00-07:00</sent>", "<sent>2003-02-30T14:57:00-07:00</sent>"), "alert/sent", "not a valid date"},
		{"unknown status", mutate(t, "<status>Actual</status>", "<status>Real</status>"), "alert/status", `"Real" is not one of Actual, Exercise`},
		{"unknown msgType", mutate(t, "<msgType>Alert</msgType>", "<msgType>Warning</msgType>"), "alert/msgType", "not one of"},
		{"missing scope", mutate(t, "<scope>Public</scope>", ""), "alert/scope", "missing"},
		{"restricted without restriction", mutate(t, "<scope>Public</scope>", "<scope>Restricted</scope>"), "alert/restriction", "Restricted"},
		{"unknown urgency", mutate(t, "<urgency>Immediate</urgency>", "<urgency>Soon</urgency>"), "alert/info[1]/urgency", `"Soon"`},
		{"unknown severity", mutate(t, "<severity>Severe</severity>", "<severity>High</severity>"), "alert/info[1]/severity", "not one of Extreme"},
		{"CAP 1.0 certainty", mutate(t, "<certainty>Observed</certainty>", "<certainty>Very Likely</certainty>"), "alert/info[1]/certainty", "not one of"},
		{"unknown category", mutate(t, "<category>Met</category>", "<category>Weather</category>"), "alert/info[1]/category", "not one of"},
		{"missing event", mutate(t, "<event>SEVERE THUNDERSTORM</event>", ""), "alert/info[1]/event", "missing"},
		{"expires before sent", mutate(t, "<expires>2003-06-17T16:00:00-07:00</expires>", "<expires>2003-06-17T14:00:00-07:00</expires>"), "alert/info[1]/expires", "not after alert/sent"},
		{"expires equal to sent", mutate(t, "<expires>2003-06-17T16:00:00-07:00</expires>", "<expires>2003-06-17T21:57:00+00:00</expires>"), "alert/info[1]/expires", "not after alert/sent"},
		{"open polygon", mutate(t, "38.62,-119.89 38.47,-120.14</polygon>", "38.62,-119.89 38.47,-120.15</polygon>"), "alert/info[1]/area[1]/polygon[1]", "not closed"},
		{"polygon latitude out of range", mutate(t, "<polygon>38.47,-120.14 38.34", "<polygon>38.47,-120.14 98.34"), "alert/info[1]/area[1]/polygon[1]", "latitude"},
		{"missing areaDesc", mutate(t, "<areaDesc>EXTREME NORTH CENTRAL TUOLUMNE COUNTY IN CALIFORNIA, EXTREME NORTHEASTERN CALAVERAS COUNTY IN CALIFORNIA, SOUTHWESTERN ALPINE COUNTY IN CALIFORNIA</areaDesc>", ""), "alert/info[1]/area[1]/areaDesc", "missing"},
		{"geocode without value", mutate(t, "<value>006009</value>", ""), "alert/info[1]/area[1]/geocode[2]/value", "missing"},
		{"bad circle", mutate(t, "<polygon>", "<circle>38.5,-120.0 -3</circle><polygon>"), "alert/info[1]/area[1]/circle[1]", "radius"},
		{"update without references", mutate(t, "<msgType>Alert</msgType>", "<msgType>Update</msgType>"), "alert/references", "missing"},
		{"bad reference", mutate(t, "<scope>Public</scope>", "<scope>Public</scope><references>KSTO@NWS.NOAA.GOV,KSTO1</references>"), "alert/references[1]", "sender,identifier,sent"},
		{"resource without mimeType", mutate(t, "<contact>", "<resource><resourceDesc>x</resourceDesc></resource><contact>"), "alert/info[1]/resource[1]/mimeType", "missing"},
		{"wrong namespace CAP 1.1", readFile(t, "wrong-namespace-cap11.xml"), "alert", "only CAP 1.2"},
		{"no namespace", mutate(t, ` xmlns = "urn:oasis:names:tc:emergency:cap:1.2"`, ""), "alert", "namespace"},
		{"wrong root", []byte(`<feed xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>`), "alert", "root element is <feed>"},
		{"truncated", readFile(t, "truncated.xml"), "alert", "not well-formed"},
		{"not XML", []byte("identifier=1 sender=x"), "alert", "no <alert>"},
		{"empty", nil, "alert", "empty document"},
		{"ampersand text", []byte("a=1&b=2"), "alert", "not well-formed"},
		{"billion laughs", readFile(t, "bomb-billion-laughs.xml"), "alert", "DOCTYPE"},
		{"external entity", readFile(t, "bomb-external-entity.xml"), "alert", "DOCTYPE"},
		{"undeclared entity", mutate(t, "KSTO1055887203", "&lol;"), "alert", "not well-formed"},
		{"latin-1", mutate(t, `encoding = "UTF-8"`, `encoding = "ISO-8859-1"`), "alert", "UTF-8"},
		{"processing instruction", mutate(t, "<alert ", "<?php echo 1 ?><alert "), "alert", "processing instruction"},
		{"two roots", append(readFile(t, "oasis-a2-thunderstorm.xml"), []byte("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"/>")...), "alert", "more than one root"},
		{"foreign element", mutate(t, "<contact>", `<x:identifier xmlns:x="urn:evil">1</x:identifier><contact>`), "alert", `<identifier> is in namespace "urn:evil"`},
		{"deep nesting", mutate(t, "<contact>", strings.Repeat("<x>", 20)+strings.Repeat("</x>", 20)+"<contact>"), "alert", "nested deeper"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse(c.doc)
			if err == nil {
				t.Fatalf("accepted: %+v", a)
			}
			found := false
			for _, p := range Problems(err) {
				if p.Path == c.path && strings.Contains(p.Msg, c.contains) {
					found = true
				}
			}
			if !found {
				t.Fatalf("error %q does not name %s with %q", err, c.path, c.contains)
			}
			if !strings.HasPrefix(err.Error(), "refused CAP alert: ") {
				t.Errorf("error does not say it refused: %q", err)
			}
		})
	}
}

func TestParseAcceptsSignature(t *testing.T) {
	doc := mutate(t, "</alert>", `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><Reference URI=""/></SignedInfo><SignatureValue>AAAA</SignatureValue></Signature></alert>`)
	a, err := Parse(doc)
	if err != nil || a.Identifier != "KSTO1055887203" {
		t.Fatalf("signed alert: %v", err)
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	doc := mutate(t, "<status>Actual</status>", "<status>Nope</status>")
	doc = bytes.Replace(doc, []byte("<urgency>Immediate</urgency>"), []byte("<urgency>Later</urgency>"), 1)
	_, err := Parse(doc)
	ps := Problems(err)
	if len(ps) != 2 || ps[0].Path != "alert/status" || ps[1].Path != "alert/info[1]/urgency" {
		t.Fatalf("problems = %v", ps)
	}
}

func TestReadRefusesOversize(t *testing.T) {
	pad := strings.Repeat(" ", MaxSize)
	doc := mutate(t, "<contact>", "<note>"+pad+"</note><contact>")
	if _, err := Read(bytes.NewReader(doc)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// Just under the limit is fine.
	base := readFile(t, "oasis-a2-thunderstorm.xml")
	fill := MaxSize - len(base) - len("<note></note>")
	doc = mutate(t, "<contact>", "<note>"+strings.Repeat("a", fill)+"</note><contact>")
	if len(doc) != MaxSize {
		t.Fatalf("test bug: len %d", len(doc))
	}
	if _, err := Read(bytes.NewReader(doc)); err != nil {
		t.Fatalf("document of exactly MaxSize refused: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	areas, err := ParseAreaMap(readFile(f, "quang-nam-areas.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	m, err := NewMapper(Config{AllowTest: true, AllowExercise: true}, areas)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			if len(Problems(err)) == 0 && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		// A parsed alert holds what validation promised.
		if a.Identifier == "" || a.Sender == "" || a.Sent.IsZero() {
			t.Fatalf("accepted alert without identifier/sender/sent: %+v", a)
		}
		for _, in := range a.Infos {
			if !in.Expires.IsZero() && !in.Expires.After(a.Sent) {
				t.Fatalf("accepted expires %v not after sent %v", in.Expires, a.Sent)
			}
			for _, ar := range in.Areas {
				for _, p := range ar.Polygons {
					if len(p) < 4 || p[0] != p[len(p)-1] {
						t.Fatalf("accepted bad polygon %v", p)
					}
				}
			}
		}
		// Whatever parses maps without panicking, and never to a broadcast without areas.
		d, err := m.Map(a, now)
		switch {
		case err != nil:
			if !errors.Is(err, ErrUnmapped) {
				t.Fatalf("Map error that is not ErrUnmapped: %v", err)
			}
		case d.Action == Ignore && d.Reason == "":
			t.Fatal("ignored without a reason")
		case (d.Action == Create || d.Action == Replace) && (len(d.Areas) == 0 || d.Text == "" || !d.Expires.After(now)):
			t.Fatalf("broadcast decision without areas, text or future expiry: %+v", d)
		}
	})
}
