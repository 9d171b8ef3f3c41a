package cap

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxFeedSize bounds a feed document; a feed lists many alerts but links to most of them.
const MaxFeedSize = 4 << 20

const nsAtom = "http://www.w3.org/2005/Atom"

// FeedEntry is one alert a feed announces: either a link to fetch (URL) or the alert
// embedded in the entry (Alert, the raw CAP document).
type FeedEntry struct {
	ID      string    // Atom id / RSS guid, else the URL
	Updated time.Time // zero when the feed does not say
	URL     string    // absolute
	Alert   []byte    // embedded CAP document, when the entry carries one
}

// ParseFeed reads an alert feed fetched from feedURL: Atom (as national alert hubs publish),
// RSS 2.0, or a bare CAP <alert> (a URL serving the current alert). Entries that name no
// alert are reported in warnings, not silently dropped.
func ParseFeed(data []byte, feedURL string) (entries []FeedEntry, warnings []string, err error) {
	if len(data) > MaxFeedSize {
		return nil, nil, fmt.Errorf("refused CAP feed: larger than %d bytes", MaxFeedSize)
	}
	base, err := url.Parse(feedURL)
	if err != nil {
		return nil, nil, fmt.Errorf("CAP feed URL %q: %w", feedURL, err)
	}
	var root xml.Name
	err = scanXML(data, "feed", "a CAP feed", func(t xml.StartElement, depth int) string {
		if depth > 0 {
			return ""
		}
		root = t.Name
		switch {
		case t.Name.Space == nsAtom && t.Name.Local == "feed", t.Name.Space == "" && t.Name.Local == "rss", t.Name.Space == Namespace && t.Name.Local == "alert":
			return ""
		}
		return fmt.Sprintf("root element <%s> (namespace %q) is not an Atom <feed>, an RSS <rss> or a CAP 1.2 <alert>", t.Name.Local, t.Name.Space)
	})
	if err != nil {
		return nil, nil, err
	}
	resolve := func(href string) (string, bool) {
		u, err := base.Parse(strings.TrimSpace(href))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", false
		}
		return u.String(), true
	}
	switch root.Local {
	case "alert":
		return []FeedEntry{{ID: base.String(), URL: base.String(), Alert: data}}, nil, nil
	case "feed":
		var f atomFeed
		if err := xml.Unmarshal(data, &f); err != nil {
			return nil, nil, fmt.Errorf("refused CAP feed: %w", err)
		}
		for i, e := range f.Entries {
			fe := FeedEntry{ID: strings.TrimSpace(e.ID)}
			if t, err := time.Parse(time.RFC3339, strings.TrimSpace(e.Updated)); err == nil {
				fe.Updated = t
			}
			if c := bytes.TrimSpace(e.Content.Inner); bytes.Contains(c, []byte("<alert")) {
				fe.Alert = c
			}
			href := ""
			for _, l := range e.Links {
				if l.Type == "application/cap+xml" {
					href = l.Href
					break
				}
				if href == "" && (l.Rel == "" || l.Rel == "alternate" || l.Rel == "related") {
					href = l.Href
				}
			}
			if href != "" {
				if u, ok := resolve(href); ok {
					fe.URL = u
				} else if fe.Alert == nil {
					warnings = append(warnings, fmt.Sprintf("feed entry %d (%s): link %q is not an http(s) URL", i+1, fe.ID, href))
					continue
				}
			}
			if fe.URL == "" && fe.Alert == nil {
				warnings = append(warnings, fmt.Sprintf("feed entry %d (%s): no link to a CAP alert and no embedded alert", i+1, fe.ID))
				continue
			}
			if fe.ID == "" {
				fe.ID = fe.URL
			}
			entries = append(entries, fe)
		}
	case "rss":
		var r rssFeed
		if err := xml.Unmarshal(data, &r); err != nil {
			return nil, nil, fmt.Errorf("refused CAP feed: %w", err)
		}
		for i, it := range r.Items {
			fe := FeedEntry{ID: strings.TrimSpace(it.GUID)}
			if t, err := time.Parse(time.RFC1123Z, strings.TrimSpace(it.PubDate)); err == nil {
				fe.Updated = t
			}
			u, ok := resolve(it.Link)
			if !ok {
				warnings = append(warnings, fmt.Sprintf("feed item %d (%s): link %q is not an http(s) URL", i+1, fe.ID, it.Link))
				continue
			}
			fe.URL = u
			if fe.ID == "" {
				fe.ID = u
			}
			entries = append(entries, fe)
		}
	}
	return entries, warnings, nil
}

type atomFeed struct {
	Entries []struct {
		ID      string `xml:"id"`
		Updated string `xml:"updated"`
		Links   []struct {
			Rel  string `xml:"rel,attr"`
			Type string `xml:"type,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Content struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"content"`
	} `xml:"entry"`
}

type rssFeed struct {
	Items []struct {
		GUID    string `xml:"guid"`
		Link    string `xml:"link"`
		PubDate string `xml:"pubDate"`
	} `xml:"channel>item"`
}

// Fetcher gets feeds and alerts over HTTP(S) with size limits. The hub's poller owns the
// interval, remembers which MessageIDs it has applied, and maps each new alert.
type Fetcher struct {
	Client    *http.Client // nil: a client with a 30 s timeout
	UserAgent string
}

func (f *Fetcher) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("CAP fetch %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/cap+xml, application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.1")
	if f.UserAgent != "" {
		req.Header.Set("User-Agent", f.UserAgent)
	}
	c := f.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("CAP fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("CAP fetch %s: HTTP %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("CAP fetch %s: %w", u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("CAP fetch %s: larger than %d bytes, refused", u, limit)
	}
	return data, nil
}

// Feed fetches and parses the feed at u.
func (f *Fetcher) Feed(ctx context.Context, u string) ([]FeedEntry, []string, error) {
	data, err := f.get(ctx, u, MaxFeedSize)
	if err != nil {
		return nil, nil, err
	}
	return ParseFeed(data, u)
}

// Alert returns the entry's alert: the embedded one, else fetched from its URL.
func (f *Fetcher) Alert(ctx context.Context, e FeedEntry) (*Alert, error) {
	data := e.Alert
	if data == nil {
		var err error
		if data, err = f.get(ctx, e.URL, MaxSize); err != nil {
			return nil, err
		}
	}
	a, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("feed entry %s: %w", e.ID, err)
	}
	return a, nil
}
