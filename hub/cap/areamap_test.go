package cap

import (
	"reflect"
	"strings"
	"testing"
)

func loadAreas(t testing.TB) *AreaMap {
	t.Helper()
	m, err := ParseAreaMap(readFile(t, "quang-nam-areas.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAreaMapResolve(t *testing.T) {
	m := loadAreas(t)
	poly := func(s string) []Polygon { return []Polygon{mustPolygon(t, s)} }
	circ := func(s string) []Circle {
		c, err := ParseCircle(s)
		if err != nil {
			t.Fatal(err)
		}
		return []Circle{c}
	}
	cases := []struct {
		name string
		area Area
		want []string
	}{
		{"commune geocode", Area{Geocodes: []NameValue{{"VN-COMMUNE", "20356"}}}, []string{"quang-nam/hoi-an/cam-thanh"}},
		{"geocode names are case-sensitive", Area{Geocodes: []NameValue{{"vn-commune", "20356"}}}, []string{}},
		{"unknown geocode", Area{Geocodes: []NameValue{{"SAME", "006037"}}}, []string{}},
		{"explicit province code", Area{Geocodes: []NameValue{{"VN-PROVINCE", "49"}}}, []string{"quang-nam"}},
		{"Hội An coast polygon", Area{Polygons: poly("15.84,108.33 16.00,108.33 16.00,108.60 15.84,108.60 15.84,108.33")},
			[]string{"quang-nam/hoi-an/cam-thanh", "quang-nam/hoi-an/tan-hiep"}},
		{"geocode and polygon, deduplicated", Area{Geocodes: []NameValue{{"VN-COMMUNE", "20356"}}, Polygons: poly(camThanh)},
			[]string{"quang-nam/hoi-an/cam-thanh"}},
		{"circle off Tam Kỳ", Area{Circles: circ("15.55,108.65 13")}, []string{"quang-nam/nui-thanh/tam-quang", "quang-nam/tam-ky/tam-thanh"}},
		{"California polygon", Area{Polygons: poly("38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14")}, []string{}},
		{"nothing", Area{Desc: "somewhere"}, []string{}},
	}
	for _, c := range cases {
		if got := m.Resolve(c.area); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseAreaMapErrors(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"typo key":        {"geocode:\n  - {name: A, value: '1', areas: [x]}\n", "field geocode not found"},
		"no value":        {"geocodes:\n  - {name: A, areas: [x]}\n", "geocodes[1]: name and value"},
		"duplicate":       {"geocodes:\n  - {name: A, value: '1', areas: [x]}\n  - {name: A, value: '1', areas: [y]}\n", "listed twice"},
		"no areas":        {"geocodes:\n  - {name: A, value: '1'}\n", "maps to no areas"},
		"bad area id":     {"geocodes:\n  - {name: A, value: '1', areas: ['quang nam']}\n", "not a hub area path"},
		"trailing slash":  {"areas:\n  - {id: quang-nam/, polygon: '1,1 1,2 2,2 1,1'}\n", "not a hub area path"},
		"no polygon":      {"areas:\n  - {id: quang-nam}\n", "give a polygon"},
		"open polygon":    {"areas:\n  - {id: quang-nam, polygon: '1,1 1,2 2,2 2,1'}\n", "areas[1] (quang-nam): polygon is not closed"},
		"not yaml at all": {"[", "CAP area map"},
	} {
		_, err := ParseAreaMap([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	if m, err := ParseAreaMap(nil); err != nil || len(m.Resolve(Area{Geocodes: []NameValue{{"A", "1"}}})) != 0 {
		t.Errorf("empty map: %v", err)
	}
}

func FuzzParseAreaMap(f *testing.F) {
	f.Add(readFile(f, "quang-nam-areas.yaml"))
	f.Add([]byte("areas:\n  - {id: a, polygon: '1,1 1,2 2,2 1,1'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseAreaMap(data)
		if err != nil {
			return
		}
		m.Resolve(Area{Polygons: []Polygon{{{1, 1}, {1, 2}, {2, 2}, {1, 1}}}, Circles: []Circle{{Point{1, 1}, 5}}})
	})
}
