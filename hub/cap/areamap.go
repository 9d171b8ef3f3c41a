package cap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// AreaMap says which hub areas a CAP <area> block means. It is loaded from a YAML file the
// district keeps (see docs/cap.md). Nothing outside it reaches a loudspeaker: an area block
// that matches no entry is reported, never widened to the whole province.
type AreaMap struct {
	geocodes map[NameValue][]string
	shapes   []areaShape
}

type areaShape struct {
	id      string
	polygon Polygon
}

type areaMapFile struct {
	Geocodes []struct {
		Name  string   `yaml:"name"`
		Value string   `yaml:"value"`
		Areas []string `yaml:"areas"`
	} `yaml:"geocodes"`
	Areas []struct {
		ID       string   `yaml:"id"`
		Polygon  string   `yaml:"polygon"`
		Polygons []string `yaml:"polygons"`
	} `yaml:"areas"`
}

// ParseAreaMap reads the YAML mapping file. Unknown keys are refused so a typo does not
// silently drop a mapping.
func ParseAreaMap(data []byte) (*AreaMap, error) {
	var f areaMapFile
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("CAP area map: %w", err)
	}
	m := &AreaMap{geocodes: map[NameValue][]string{}}
	for i, g := range f.Geocodes {
		where := fmt.Sprintf("CAP area map: geocodes[%d]", i+1)
		key := NameValue{strings.TrimSpace(g.Name), strings.TrimSpace(g.Value)}
		if key.Name == "" || key.Value == "" {
			return nil, fmt.Errorf("%s: name and value are both required (CAP <geocode> valueName and value)", where)
		}
		if _, dup := m.geocodes[key]; dup {
			return nil, fmt.Errorf("%s: %s=%s is listed twice; merge the area lists", where, key.Name, key.Value)
		}
		if len(g.Areas) == 0 {
			return nil, fmt.Errorf("%s: %s=%s maps to no areas", where, key.Name, key.Value)
		}
		for _, a := range g.Areas {
			if err := checkAreaID(a); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		m.geocodes[key] = g.Areas
	}
	for i, a := range f.Areas {
		where := fmt.Sprintf("CAP area map: areas[%d]", i+1)
		if err := checkAreaID(a.ID); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		polys := a.Polygons
		if a.Polygon != "" {
			polys = append([]string{a.Polygon}, polys...)
		}
		if len(polys) == 0 {
			return nil, fmt.Errorf("%s (%s): give a polygon (\"lat,lon lat,lon ...\", closed)", where, a.ID)
		}
		for _, s := range polys {
			p, err := ParsePolygon(s)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", where, a.ID, err)
			}
			m.shapes = append(m.shapes, areaShape{a.ID, p})
		}
	}
	return m, nil
}

func checkAreaID(id string) error {
	if id == "" || strings.TrimSpace(id) != id || strings.ContainsAny(id, " \t\n,") ||
		strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") || strings.Contains(id, "//") {
		return fmt.Errorf("area id %q is not a hub area path like quang-nam/thang-binh/binh-dao", id)
	}
	return nil
}

// Resolve returns the hub areas a CAP area block covers: those its geocodes name, plus those
// whose polygons meet its polygons or circles. Sorted, without duplicates.
func (m *AreaMap) Resolve(a Area) []string {
	set := map[string]bool{}
	for _, g := range a.Geocodes {
		for _, id := range m.geocodes[g] {
			set[id] = true
		}
	}
	for _, s := range m.shapes {
		if set[s.id] {
			continue
		}
		for _, p := range a.Polygons {
			if s.polygon.Intersects(p) {
				set[s.id] = true
				break
			}
		}
		if set[s.id] {
			continue
		}
		for _, c := range a.Circles {
			if s.polygon.IntersectsCircle(c) {
				set[s.id] = true
				break
			}
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
