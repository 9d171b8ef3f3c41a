package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/loa-project/loa/hub/api"
)

func init() {
	funcs["playRow"] = func(v view, p api.ConfirmationJSON) any {
		return struct {
			View view
			Play api.ConfirmationJSON
		}{v, p}
	}
}

// livePlays is how many of the newest confirmations each check of the live play log looks at:
// more than land between two checks on a district's hub.
const livePlays = 20

// playsSource returns what the event stream sends to an open play log (?plays=1 with the
// page's filters): each check, the newest confirmations as rendered rows, oldest first, each
// keyed by device#seq so the page adds only those it does not show yet. Nil for other pages.
func (c *Console) playsSource(r *http.Request, s *session) func(ctx context.Context, buf *bytes.Buffer) error {
	q := r.URL.Query()
	if q.Get("plays") != "1" {
		return nil
	}
	f := playsFilter(q)
	f.Set("limit", fmt.Sprint(livePlays))
	target := "/api/confirmations?" + f.Encode()
	v := view{Lang: langOf(r), Session: s, loc: c.opts.Location}
	sent := map[string]bool{}
	return func(ctx context.Context, buf *bytes.Buffer) error {
		var plays []api.ConfirmationJSON
		if err := c.call(ctx, s, "GET", target, nil, &plays); err != nil {
			return err
		}
		// Only this check's keys are kept: a row that left the newest N does not come back.
		now := make(map[string]bool, len(plays))
		defer func() { sent = now }()
		for i := len(plays) - 1; i >= 0; i-- {
			p := plays[i]
			key := fmt.Sprintf("%s#%d", p.Device, p.Seq)
			now[key] = true
			if sent[key] {
				continue
			}
			var row bytes.Buffer
			if err := c.pages["confirmations"].ExecuteTemplate(&row, "playrow", funcs["playRow"].(func(view, api.ConfirmationJSON) any)(v, p)); err != nil {
				return err
			}
			b, _ := json.Marshal(map[string]string{"key": key, "html": row.String()})
			fmt.Fprintf(buf, "event: play\ndata: %s\n\n", b)
		}
		return nil
	}
}

// livePlaysURL is the event stream of a play log page with its filters (page 1 only: later
// pages are history).
func livePlaysURL(d playsData) string {
	if d.Page != 1 {
		return ""
	}
	q, _ := url.ParseQuery(d.Query)
	q.Set("plays", "1")
	return "/console/events?" + q.Encode()
}
