package cap

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// stripDecl drops the XML declaration so a CAP document can sit inside an Atom entry.
func stripDecl(b []byte) []byte {
	if i := bytes.Index(b, []byte("?>")); bytes.HasPrefix(b, []byte("<?xml")) && i > 0 {
		return b[i+2:]
	}
	return b
}

func feedServer(t *testing.T) *httptest.Server {
	t.Helper()
	storm := readFile(t, "quang-nam-storm.xml")
	update := stripDecl(readFile(t, "quang-nam-storm-update.xml"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /feed.atom", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/atom+xml")
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Cảnh báo thiên tai</title>
  <entry>
    <id>urn:vndma:TS12-001</id>
    <updated>2026-11-26T01:00:00Z</updated>
    <link rel="self" href="https://elsewhere.example/ignored"/>
    <link rel="alternate" type="application/cap+xml" href="alerts/ts12-001.xml"/>
  </entry>
  <entry>
    <id>urn:vndma:TS12-002</id>
    <updated>2026-11-26T07:00:00Z</updated>
    <content type="text/xml">` + string(update) + `</content>
  </entry>
  <entry>
    <id>urn:vndma:broken</id>
    <title>no link</title>
  </entry>
  <entry>
    <id>urn:vndma:ftp</id>
    <link href="ftp://x.example/a.xml"/>
  </entry>
</feed>`))
	})
	mux.HandleFunc("GET /alerts/ts12-001.xml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/cap+xml")
		w.Write(storm)
	})
	mux.HandleFunc("GET /feed.rss", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><guid>TS12-001</guid><link>/alerts/ts12-001.xml</link><pubDate>Thu, 26 Nov 2026 08:00:00 +0700</pubDate></item>
<item><guid>bad</guid><link>mailto:a@b</link></item>
</channel></rss>`))
	})
	mux.HandleFunc("GET /current.xml", func(w http.ResponseWriter, r *http.Request) { w.Write(storm) })
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte(" "), MaxFeedSize+10))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchAtomFeedToDecisions(t *testing.T) {
	srv := feedServer(t)
	ctx := context.Background()
	f := &Fetcher{Client: srv.Client(), UserAgent: "loa-hub test"}
	entries, warnings, err := f.Feed(ctx, srv.URL+"/feed.atom")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("entries %+v", entries)
	}
	if entries[0].URL != srv.URL+"/alerts/ts12-001.xml" || entries[0].ID != "urn:vndma:TS12-001" ||
		!entries[0].Updated.Equal(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)) || entries[0].Alert != nil {
		t.Errorf("linked entry %+v", entries[0])
	}
	if entries[1].Alert == nil || entries[1].URL != "" {
		t.Errorf("embedded entry %+v", entries[1])
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "urn:vndma:broken") || !strings.Contains(warnings[1], `"ftp://x.example/a.xml" is not an http(s) URL`) {
		t.Errorf("warnings %q", warnings)
	}

	m := newMapper(t, Config{})
	var got []Action
	for _, e := range entries {
		a, err := f.Alert(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := m.Map(a, stormNow)
		if err != nil {
			t.Fatal(err)
		}
		if d.SeriesID != "canhbao@vndma.example.vn,VNDMA-2026-TS12-001" {
			t.Errorf("series %q", d.SeriesID)
		}
		got = append(got, d.Action)
	}
	if len(got) != 2 || got[0] != Create || got[1] != Replace {
		t.Errorf("actions %v, want create, replace", got)
	}
}

func TestFetchRSSAndBareAlert(t *testing.T) {
	srv := feedServer(t)
	ctx := context.Background()
	f := &Fetcher{Client: srv.Client()}
	entries, warnings, err := f.Feed(ctx, srv.URL+"/feed.rss")
	if err != nil || len(entries) != 1 || entries[0].URL != srv.URL+"/alerts/ts12-001.xml" || entries[0].ID != "TS12-001" ||
		!entries[0].Updated.Equal(time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)) || len(warnings) != 1 {
		t.Fatalf("rss: %+v %q %v", entries, warnings, err)
	}
	if a, err := f.Alert(ctx, entries[0]); err != nil || a.Identifier != "VNDMA-2026-TS12-001" {
		t.Fatalf("rss alert: %v", err)
	}
	entries, _, err = f.Feed(ctx, srv.URL+"/current.xml")
	if err != nil || len(entries) != 1 || entries[0].Alert == nil {
		t.Fatalf("bare alert: %+v %v", entries, err)
	}
	if a, err := f.Alert(ctx, entries[0]); err != nil || a.Identifier != "VNDMA-2026-TS12-001" {
		t.Fatalf("bare alert: %v", err)
	}
}

func TestFetchErrors(t *testing.T) {
	srv := feedServer(t)
	ctx := context.Background()
	f := &Fetcher{Client: srv.Client()}
	for path, want := range map[string]string{
		"/missing": "HTTP 404",
		"/huge":    "larger than",
	} {
		if _, _, err := f.Feed(ctx, srv.URL+path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), srv.URL+path) {
			t.Errorf("%s: %v, want %q and the URL", path, err, want)
		}
	}
	_, err := f.Alert(ctx, FeedEntry{ID: "x", URL: srv.URL + "/feed.rss"})
	if err == nil || !strings.Contains(err.Error(), "feed entry x") || !strings.Contains(err.Error(), "root element is <rss>") {
		t.Errorf("rss fetched as an alert: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := f.Feed(cancelled, srv.URL+"/feed.atom"); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestParseFeedRefuses(t *testing.T) {
	for name, c := range map[string]struct{ doc, want string }{
		"html":      {"<html><body>maintenance</body></html>", "root element <html>"},
		"dtd":       {`<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "b">]><feed xmlns="http://www.w3.org/2005/Atom"/>`, "DOCTYPE"},
		"cap 1.1":   {`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/>`, "not an Atom <feed>"},
		"truncated": {`<feed xmlns="http://www.w3.org/2005/Atom"><entry>`, "not well-formed"},
	} {
		if _, _, err := ParseFeed([]byte(c.doc), "https://feed.example/"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func FuzzParseFeed(f *testing.F) {
	f.Add([]byte(`<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>a</id><link href="/x.xml"/></entry></feed>`))
	f.Add([]byte(`<rss><channel><item><link>http://a/b</link></item></channel></rss>`))
	f.Add(readFile(f, "quang-nam-storm.xml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, _, err := ParseFeed(data, "https://feed.example/alerts/")
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.URL == "" && e.Alert == nil {
				t.Fatalf("entry with neither URL nor alert: %+v", e)
			}
			if e.URL != "" && !strings.HasPrefix(e.URL, "http://") && !strings.HasPrefix(e.URL, "https://") {
				t.Fatalf("entry URL %q", e.URL)
			}
		}
	})
}
