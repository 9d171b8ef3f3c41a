package cap

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Geometry is planar in degrees (polygon tests) or in a local equirectangular projection around
// a circle's centre (distances). Both are exact enough for commune-sized areas away from the
// poles and the antimeridian, which is where Loa runs.

const earthRadiusKm = 6371.0

// ParsePoint reads CAP's "lat,lon".
func ParsePoint(s string) (Point, error) {
	la, lo, ok := strings.Cut(strings.TrimSpace(s), ",")
	if !ok {
		return Point{}, fmt.Errorf("point %q is not lat,lon", s)
	}
	lat, err1 := strconv.ParseFloat(la, 64)
	lon, err2 := strconv.ParseFloat(lo, 64)
	if err1 != nil || err2 != nil {
		return Point{}, fmt.Errorf("point %q is not two decimal numbers lat,lon", s)
	}
	if !(lat >= -90 && lat <= 90) {
		return Point{}, fmt.Errorf("point %q: latitude must be within -90..90", s)
	}
	if !(lon >= -180 && lon <= 180) {
		return Point{}, fmt.Errorf("point %q: longitude must be within -180..180", s)
	}
	return Point{lat, lon}, nil
}

// ParsePolygon reads CAP's "lat,lon lat,lon ...": at least four points, first equal to last.
func ParsePolygon(s string) (Polygon, error) {
	fields := strings.Fields(s)
	if len(fields) < 4 {
		return nil, fmt.Errorf("polygon has %d points, needs at least 4 (closed: the first repeated last)", len(fields))
	}
	p := make(Polygon, 0, len(fields))
	for i, f := range fields {
		pt, err := ParsePoint(f)
		if err != nil {
			return nil, fmt.Errorf("polygon point %d: %w", i+1, err)
		}
		p = append(p, pt)
	}
	if p[0] != p[len(p)-1] {
		return nil, fmt.Errorf("polygon is not closed: first point %s differs from last %s", fields[0], fields[len(fields)-1])
	}
	return p, nil
}

// ParseCircle reads CAP's "lat,lon radius" with the radius in kilometres.
func ParseCircle(s string) (Circle, error) {
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return Circle{}, fmt.Errorf("circle %q is not \"lat,lon radius_km\"", s)
	}
	pt, err := ParsePoint(fields[0])
	if err != nil {
		return Circle{}, fmt.Errorf("circle centre: %w", err)
	}
	r, err := strconv.ParseFloat(fields[1], 64)
	if err != nil || !(r >= 0) || math.IsInf(r, 0) {
		return Circle{}, fmt.Errorf("circle radius %q is not a number of kilometres >= 0", fields[1])
	}
	return Circle{pt, r}, nil
}

// Contains reports whether pt lies inside p or on its boundary (even-odd rule).
func (p Polygon) Contains(pt Point) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		a, b := p[i], p[j]
		if onSegment(a, b, pt) {
			return true
		}
		if (a.Lat > pt.Lat) != (b.Lat > pt.Lat) {
			x := a.Lon + (pt.Lat-a.Lat)*(b.Lon-a.Lon)/(b.Lat-a.Lat)
			if pt.Lon < x {
				in = !in
			}
		}
	}
	return in
}

// Intersects reports whether two polygons share any point: one holds a vertex of the other,
// or two edges cross.
func (p Polygon) Intersects(q Polygon) bool {
	if !p.bbox().overlaps(q.bbox()) {
		return false
	}
	for _, v := range q {
		if p.Contains(v) {
			return true
		}
	}
	for _, v := range p {
		if q.Contains(v) {
			return true
		}
	}
	for i := 0; i+1 < len(p); i++ {
		for j := 0; j+1 < len(q); j++ {
			if segmentsCross(p[i], p[i+1], q[j], q[j+1]) {
				return true
			}
		}
	}
	return false
}

// IntersectsCircle reports whether the circle (a point when the radius is 0) touches p.
func (p Polygon) IntersectsCircle(c Circle) bool {
	if p.Contains(c.Center) {
		return true
	}
	if c.RadiusKm == 0 {
		return false
	}
	// Project around the centre: x east, y north, in km.
	k := math.Cos(c.Center.Lat * math.Pi / 180)
	proj := func(pt Point) (float64, float64) {
		return (pt.Lon - c.Center.Lon) * math.Pi / 180 * earthRadiusKm * k, (pt.Lat - c.Center.Lat) * math.Pi / 180 * earthRadiusKm
	}
	for i := 0; i+1 < len(p); i++ {
		ax, ay := proj(p[i])
		bx, by := proj(p[i+1])
		if distToSegment(ax, ay, bx, by) <= c.RadiusKm {
			return true
		}
	}
	return false
}

// distToSegment is the distance from the origin to segment ab.
func distToSegment(ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	t := 0.0
	if l := dx*dx + dy*dy; l > 0 {
		t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l))
	}
	return math.Hypot(ax+t*dx, ay+t*dy)
}

type bbox struct{ minLat, minLon, maxLat, maxLon float64 }

func (p Polygon) bbox() bbox {
	b := bbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, v := range p {
		b.minLat, b.maxLat = math.Min(b.minLat, v.Lat), math.Max(b.maxLat, v.Lat)
		b.minLon, b.maxLon = math.Min(b.minLon, v.Lon), math.Max(b.maxLon, v.Lon)
	}
	return b
}

func (a bbox) overlaps(b bbox) bool {
	return a.minLat <= b.maxLat && b.minLat <= a.maxLat && a.minLon <= b.maxLon && b.minLon <= a.maxLon
}

func cross(o, a, b Point) float64 {
	return (a.Lon-o.Lon)*(b.Lat-o.Lat) - (a.Lat-o.Lat)*(b.Lon-o.Lon)
}

func onSegment(a, b, p Point) bool {
	return cross(a, b, p) == 0 &&
		math.Min(a.Lon, b.Lon) <= p.Lon && p.Lon <= math.Max(a.Lon, b.Lon) &&
		math.Min(a.Lat, b.Lat) <= p.Lat && p.Lat <= math.Max(a.Lat, b.Lat)
}

func segmentsCross(a, b, c, d Point) bool {
	d1, d2 := cross(c, d, a), cross(c, d, b)
	d3, d4 := cross(a, b, c), cross(a, b, d)
	// Proper crossings only: a touch puts a vertex on the other's boundary, which Contains
	// already counts.
	return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))
}
