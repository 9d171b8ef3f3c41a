package cap

import (
	"encoding/xml"
	"testing"
)

// BenchmarkParse is the full path (scan, decode, validate) for the OASIS thunderstorm
// example; BenchmarkParseReferenceUnmarshal is plain encoding/xml on the same bytes, the floor.
func BenchmarkParse(b *testing.B) {
	doc := readFile(b, "oasis-a2-thunderstorm.xml")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseReferenceUnmarshal(b *testing.B) {
	doc := readFile(b, "oasis-a2-thunderstorm.xml")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var raw xmlAlert
		if err := xml.Unmarshal(doc, &raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMap(b *testing.B) {
	m, err := NewMapper(Config{}, loadAreas(b))
	if err != nil {
		b.Fatal(err)
	}
	a := mustParse(b, "quang-nam-storm.xml")
	for b.Loop() {
		if _, err := m.Map(a, stormNow); err != nil {
			b.Fatal(err)
		}
	}
}
