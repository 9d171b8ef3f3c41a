package cap

import (
	"strings"
	"testing"
)

func mustPolygon(t *testing.T, s string) Polygon {
	t.Helper()
	p, err := ParsePolygon(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Boxes around real places in Quảng Nam (the same as testdata/quang-nam-areas.yaml).
const (
	camThanh = "15.89,108.35 15.89,108.39 15.86,108.39 15.86,108.35 15.89,108.35"
	tamThanh = "15.57,108.52 15.57,108.56 15.53,108.56 15.53,108.52 15.57,108.52"
	tamQuang = "15.44,108.68 15.44,108.72 15.40,108.72 15.40,108.68 15.44,108.68"
)

func TestPolygonContains(t *testing.T) {
	// An L-shaped (concave) commune: the notch must be outside.
	l := mustPolygon(t, "15.90,108.30 15.90,108.32 15.86,108.32 15.86,108.36 15.84,108.36 15.84,108.30 15.90,108.30")
	cases := []struct {
		name string
		pt   Point
		want bool
	}{
		{"inside the upright", Point{15.88, 108.31}, true},
		{"inside the foot", Point{15.85, 108.35}, true},
		{"in the notch", Point{15.88, 108.34}, false},
		{"on an edge", Point{15.90, 108.31}, true},
		{"on a vertex", Point{15.84, 108.36}, true},
		{"far away (Tam Kỳ)", Point{15.57, 108.47}, false},
		{"same latitude as a vertex, outside", Point{15.86, 108.40}, false},
	}
	for _, c := range cases {
		if got := l.Contains(c.pt); got != c.want {
			t.Errorf("%s: Contains(%v) = %v, want %v", c.name, c.pt, got, c.want)
		}
	}
}

func TestPolygonIntersects(t *testing.T) {
	box := mustPolygon(t, camThanh)
	cases := []struct {
		name, poly string
		want       bool
	}{
		{"covers it (Hội An coast)", "15.84,108.33 16.00,108.33 16.00,108.60 15.84,108.60 15.84,108.33", true},
		{"inside it", "15.87,108.36 15.88,108.36 15.88,108.37 15.87,108.36", true},
		{"thin strip crossing, no vertex inside either", "15.870,108.30 15.875,108.30 15.875,108.45 15.870,108.45 15.870,108.30", true},
		{"shares an edge", "15.89,108.39 15.89,108.42 15.86,108.42 15.86,108.39 15.89,108.39", true},
		{"east of it", "15.86,108.40 15.89,108.40 15.89,108.45 15.86,108.40", false},
		{"Tam Kỳ", tamThanh, false},
		{"bounding boxes overlap, shapes do not", "15.90,108.34 15.90,108.40 15.895,108.40 15.90,108.34", false},
	}
	for _, c := range cases {
		p := mustPolygon(t, c.poly)
		if got := box.Intersects(p); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if got := p.Intersects(box); got != c.want {
			t.Errorf("%s (reversed): %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPolygonIntersectsCircle(t *testing.T) {
	// (15.55,108.65) lies about 9.6 km east of Tam Thanh's east edge (108.56) and about
	// 12.6 km from Tam Quang's north-west corner (15.44,108.68).
	tt, tq := mustPolygon(t, tamThanh), mustPolygon(t, tamQuang)
	cases := []struct {
		circle   string
		tam, nui bool
	}{
		{"15.55,108.54 0", true, false},   // a point inside Tam Thanh
		{"15.55,108.65 0", false, false},  // a point at sea
		{"15.55,108.65 9", false, false},  // not quite reaching the coast
		{"15.55,108.65 10", true, false},  // reaches Tam Thanh
		{"15.55,108.65 12", true, false},  // not yet Tam Quang
		{"15.55,108.65 13", true, true},   // both
		{"15.42,108.70 0.5", false, true}, // small circle inside Tam Quang
		{"15.45,108.70 2", false, true},   // 1.1 km north of Tam Quang's edge
		{"15.46,108.70 2", false, false},  // 2.2 km north: misses
	}
	for _, c := range cases {
		circ, err := ParseCircle(c.circle)
		if err != nil {
			t.Fatal(err)
		}
		if got := tt.IntersectsCircle(circ); got != c.tam {
			t.Errorf("Tam Thanh vs circle %s: %v, want %v", c.circle, got, c.tam)
		}
		if got := tq.IntersectsCircle(circ); got != c.nui {
			t.Errorf("Tam Quang vs circle %s: %v, want %v", c.circle, got, c.nui)
		}
	}
}

func TestParseGeometryErrors(t *testing.T) {
	for s, want := range map[string]string{
		"15.1,108.1 15.2,108.2 15.1,108.1":            "needs at least 4",
		"15.1,108.1 15.2,108.2 15.3,108.1 15.1,108.2": "not closed",
		"15.1,108.1 15.2;108.2 15.3,108.1 15.1,108.1": "point 2",
		"15.1,108.1 15.2,188.2 15.3,108.1 15.1,108.1": "longitude",
		"15.1,108.1 NaN,108.2 15.3,108.1 15.1,108.1":  "latitude",
	} {
		if _, err := ParsePolygon(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolygon(%q) = %v, want error with %q", s, err, want)
		}
	}
	for s, want := range map[string]string{
		"15.1,108.1":     "radius_km",
		"15.1,108.1 -1":  "radius",
		"15.1,108.1 Inf": "radius",
		"15.1 5":         "lat,lon",
		"15.1,108.1 5 6": "radius_km",
	} {
		if _, err := ParseCircle(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCircle(%q) = %v, want error with %q", s, err, want)
		}
	}
}
