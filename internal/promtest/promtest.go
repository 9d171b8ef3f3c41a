// Package promtest reads a Prometheus metrics endpoint the way Prometheus does (the text
// format, parsed by expfmt), for the tests of the hub's and the agent's metrics.
package promtest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is one scrape: metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url and parses the answer, failing t when it is not the text format.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s is not the Prometheus text format: %v", url, err)
	}
	return fams
}

// Value is the series of name whose labels include want (name, value, name, value…): a
// counter's or gauge's value, a histogram's count; -1 when there is no such series.
func (f Families) Value(name string, want ...string) float64 {
	if m := f.find(name, want); m != nil {
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// Sum is a histogram's sum of observations; -1 when there is no such series.
func (f Families) Sum(name string, want ...string) float64 {
	if m := f.find(name, want); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleSum()
	}
	return -1
}

func (f Families) find(name string, want []string) *dto.Metric {
next:
	for _, m := range f[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if got[want[i]] != want[i+1] {
				continue next
			}
		}
		return m
	}
	return nil
}
