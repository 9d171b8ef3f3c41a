// Package client is a Go client of the hub's staff HTTP API (what the loa CLI uses).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-project/loa/hub/api"
)

// Client talks to one hub with one staff token.
type Client struct {
	BaseURL string // e.g. https://hub.example.vn
	Token   string
	HTTP    *http.Client // default http.DefaultClient
	// Zone is the user's time zone (IANA name), sent so the hub reads dates and times in it;
	// "" leaves them in the hub's zone.
	Zone string

	hubZone string // the zone the hub's last answer named (api.ZoneHeader)
}

// Location is the zone to show times in: the user's, else the one the hub named in its last
// answer, else the machine's.
func (c *Client) Location() *time.Location {
	for _, name := range []string{c.Zone, c.hubZone} {
		if name != "" {
			if loc, err := api.LoadZone(name); err == nil {
				return loc
			}
		}
	}
	return time.Local
}

// Error is an error answer of the hub: its HTTP status and its message (which says what to do).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	if c.BaseURL == "" {
		return nil, fmt.Errorf("no hub URL: pass --hub URL, set LOA_HUB, or write hub: in ~/.config/loa/config.yaml")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Zone != "" {
		req.Header.Set(api.ZoneHeader, c.Zone)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the hub at %s: %w", c.BaseURL, err)
	}
	if z := resp.Header.Get(api.ZoneHeader); z != "" {
		c.hubZone = z
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("hub answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.request(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("the hub's answer to %s %s is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// Whoami returns the token's user, scope and the hub's signing key id.
func (c *Client) Whoami(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	return out, c.do(ctx, "GET", "/api/whoami", nil, &out)
}

// AddArea adds an area below an existing one.
func (c *Client) AddArea(ctx context.Context, id, name string) (api.AreaJSON, error) {
	var out api.AreaJSON
	return out, c.do(ctx, "POST", "/api/areas", api.AreaJSON{ID: id, Name: name}, &out)
}

// ListAreas lists an area's subtree ("" = the token's scope).
func (c *Client) ListAreas(ctx context.Context, area string) ([]api.AreaJSON, error) {
	var out []api.AreaJSON
	return out, c.do(ctx, "GET", "/api/areas"+query("area", area), nil, &out)
}

// Enrol enrols a device and returns its secret (shown once).
func (c *Client) Enrol(ctx context.Context, r api.EnrolRequest) (api.EnrolResponse, error) {
	var out api.EnrolResponse
	return out, c.do(ctx, "POST", "/api/devices", r, &out)
}

// ListDevices lists the devices of an area's subtree with their state.
func (c *Client) ListDevices(ctx context.Context, area string) ([]api.DeviceJSON, error) {
	var out []api.DeviceJSON
	return out, c.do(ctx, "GET", "/api/devices"+query("area", area), nil, &out)
}

// Status is ListDevices through the status route.
func (c *Client) Status(ctx context.Context, area string) ([]api.DeviceJSON, error) {
	var out []api.DeviceJSON
	return out, c.do(ctx, "GET", "/api/status"+query("area", area), nil, &out)
}

// ShowDevice returns one device.
func (c *Client) ShowDevice(ctx context.Context, id string) (api.DeviceJSON, error) {
	var out api.DeviceJSON
	return out, c.do(ctx, "GET", "/api/devices/"+escapePath(id), nil, &out)
}

// RevokeDevice revokes a device's secret and drops its connection.
func (c *Client) RevokeDevice(ctx context.Context, id string) (api.DeviceJSON, error) {
	var out api.DeviceJSON
	return out, c.do(ctx, "DELETE", "/api/devices/"+escapePath(id), nil, &out)
}

// RekeyDevice gives a device a new secret; the answer carries it, shown this once.
func (c *Client) RekeyDevice(ctx context.Context, id string) (api.EnrolResponse, error) {
	var out api.EnrolResponse
	return out, c.do(ctx, "POST", "/api/devices/rekey", api.RekeyRequest{ID: id}, &out)
}

// NewToken issues the caller a new token (valid for validFor, "" = a year).
func (c *Client) NewToken(ctx context.Context, label, validFor string) (api.TokenResponse, error) {
	var out api.TokenResponse
	return out, c.do(ctx, "POST", "/api/tokens", api.TokenRequest{Label: label, ValidFor: validFor}, &out)
}

// RevokeToken revokes a token of the caller or of a user in the caller's scope.
func (c *Client) RevokeToken(ctx context.Context, token string) (api.TokenResponse, error) {
	var out api.TokenResponse
	return out, c.do(ctx, "POST", "/api/tokens/revoke", api.TokenRequest{Token: token}, &out)
}

// DisableUser disables a user of the caller's scope.
func (c *Client) DisableUser(ctx context.Context, id string) (api.UserJSON, error) {
	var out api.UserJSON
	return out, c.do(ctx, "POST", "/api/users/disable", api.UserRequest{ID: id}, &out)
}

// ContentMeta is the metadata of an upload.
type ContentMeta struct {
	Title, Language, Theme, Format, Unit string
}

// AddContent uploads an audio file to the library (the hub transcodes it).
func (c *Client) AddContent(ctx context.Context, path string, m ContentMeta) (api.ContentJSON, error) {
	f, err := os.Open(path)
	if err != nil {
		return api.ContentJSON{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, kv := range [][2]string{{"title", m.Title}, {"language", m.Language}, {"theme", m.Theme}, {"format", m.Format}, {"unit", m.Unit}} {
			if kv[1] != "" {
				mw.WriteField(kv[0], kv[1])
			}
		}
		fw, err := mw.CreateFormFile("file", filepath.Base(path))
		if err == nil {
			_, err = io.Copy(fw, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	resp, err := c.request(ctx, "POST", "/api/content", pr, mw.FormDataContentType())
	pr.Close()
	if err != nil {
		return api.ContentJSON{}, err
	}
	defer resp.Body.Close()
	var out api.ContentJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("the hub's answer to an upload is not the JSON expected: %w", err)
	}
	return out, nil
}

// ListContent lists the library.
func (c *Client) ListContent(ctx context.Context, f ContentFilter) ([]api.ContentJSON, error) {
	v := url.Values{}
	for k, s := range map[string]string{"language": f.Language, "theme": f.Theme, "format": f.Format, "unit": f.Unit,
		"title": f.Title, "by": f.By, "since": f.Since, "until": f.Until, "state": f.State} {
		if s != "" {
			v.Set(k, s)
		}
	}
	path := "/api/content"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []api.ContentJSON
	return out, c.do(ctx, "GET", path, nil, &out)
}

// ContentFilter selects library items; metadata by code or label; empty fields do not filter.
type ContentFilter struct {
	Language, Theme, Format, Unit string
	Title                         string // the title contains it
	By                            string // uploaded by this user
	Since, Until                  string // uploaded in [Since, Until)
	State                         string // approval: submitted, approved, rejected
}

// EditContent changes a library item's title and metadata.
func (c *Client) EditContent(ctx context.Context, ref string, e api.ContentEdit) (api.ContentJSON, error) {
	var out api.ContentJSON
	return out, c.do(ctx, "PATCH", "/api/content/"+url.PathEscape(ref), e, &out)
}

// ListTerms lists the hub's metadata lists (dimension "" = all).
func (c *Client) ListTerms(ctx context.Context, dimension string) ([]api.TermJSON, error) {
	var out []api.TermJSON
	return out, c.do(ctx, "GET", "/api/terms"+query("dimension", dimension), nil, &out)
}

// AddTerm adds an entry to a metadata list, or relabels it.
func (c *Client) AddTerm(ctx context.Context, t api.TermJSON) (api.TermJSON, error) {
	var out api.TermJSON
	return out, c.do(ctx, "POST", "/api/terms", t, &out)
}

// PushSchedule attaches a schedule document to an area or device and pushes it.
func (c *Client) PushSchedule(ctx context.Context, to, name string, doc []byte) (api.PushResponse, error) {
	var out api.PushResponse
	return out, c.do(ctx, "POST", "/api/schedules", api.PushRequest{To: to, Name: name, Document: string(doc)}, &out)
}

// DryRunSchedule checks a document for a target and says what a push would change.
func (c *Client) DryRunSchedule(ctx context.Context, to, name string, doc []byte) (api.PushResponse, error) {
	var out api.PushResponse
	return out, c.do(ctx, "POST", "/api/schedules", api.PushRequest{To: to, Name: name, Document: string(doc), DryRun: true}, &out)
}

// ListSchedules lists a target's stored revisions, or ("") the newest of every target in scope.
func (c *Client) ListSchedules(ctx context.Context, to string) ([]api.ScheduleJSON, error) {
	var out []api.ScheduleJSON
	return out, c.do(ctx, "GET", "/api/schedules"+query("to", to), nil, &out)
}

// ShowSchedule returns a stored revision (0: the newest) with its document.
func (c *Client) ShowSchedule(ctx context.Context, to string, revision int64) (api.ScheduleJSON, error) {
	v := url.Values{"to": {to}}
	if revision > 0 {
		v.Set("revision", fmt.Sprint(revision))
	}
	var out api.ScheduleJSON
	return out, c.do(ctx, "GET", "/api/schedules/show?"+v.Encode(), nil, &out)
}

// Plan returns what a device or an area's devices will play over [from, until) ("" = defaults;
// days > 0 sets until that many days after from).
func (c *Client) Plan(ctx context.Context, to, from, until string, days int) (api.PlanJSON, error) {
	v := url.Values{"to": {to}}
	if days > 0 {
		v.Set("days", fmt.Sprint(days))
	}
	if from != "" {
		v.Set("from", from)
	}
	if until != "" {
		v.Set("until", until)
	}
	var out api.PlanJSON
	return out, c.do(ctx, "GET", "/api/schedules/plan?"+v.Encode(), nil, &out)
}

// ConfirmationFilter selects confirmations; empty fields do not filter.
type ConfirmationFilter struct {
	Area, Device, Since, Until, Result string
	Limit                              int
}

func (f ConfirmationFilter) query(format string) string {
	v := url.Values{}
	for k, s := range map[string]string{"area": f.Area, "device": f.Device, "since": f.Since, "until": f.Until, "result": f.Result, "format": format} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Limit > 0 {
		v.Set("limit", fmt.Sprint(f.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Confirmations returns the confirmations matching f.
func (c *Client) Confirmations(ctx context.Context, f ConfirmationFilter) ([]api.ConfirmationJSON, error) {
	var out []api.ConfirmationJSON
	return out, c.do(ctx, "GET", "/api/confirmations"+f.query(""), nil, &out)
}

// ConfirmationsCSV copies the CSV form to w.
func (c *Client) ConfirmationsCSV(ctx context.Context, f ConfirmationFilter, w io.Writer) error {
	resp, err := c.request(ctx, "GET", "/api/confirmations"+f.query("csv"), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

func query(k, v string) string {
	if v == "" {
		return ""
	}
	return "?" + url.Values{k: {v}}.Encode()
}

// escapePath escapes each segment of a device id, keeping its slashes.
func escapePath(id string) string {
	segs := strings.Split(id, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// CreateEmergency puts an emergency, a next-session bulletin or a live relay on the air.
func (c *Client) CreateEmergency(ctx context.Context, r api.EmergencyRequest) (api.EmergencyResponse, error) {
	var out api.EmergencyResponse
	return out, c.do(ctx, "POST", "/api/emergencies", r, &out)
}

// ListEmergencies lists the broadcasts that reach the token's scope: active ones, or all.
func (c *Client) ListEmergencies(ctx context.Context, all bool) ([]api.EmergencyJSON, error) {
	var out []api.EmergencyJSON
	q := ""
	if all {
		q = "?all=1"
	}
	return out, c.do(ctx, "GET", "/api/emergencies"+q, nil, &out)
}

// CancelEmergency ends one broadcast now.
func (c *Client) CancelEmergency(ctx context.Context, id int64) (api.EmergencyResponse, error) {
	var out api.EmergencyResponse
	return out, c.do(ctx, "POST", fmt.Sprintf("/api/emergencies/%d/cancel", id), nil, &out)
}

// CancelSeries ends every active broadcast of a series, or every live relay of an area.
func (c *Client) CancelSeries(ctx context.Context, r api.CancelRequest) (api.EmergencyResponse, error) {
	var out api.EmergencyResponse
	return out, c.do(ctx, "POST", "/api/emergencies/cancel", r, &out)
}

// PostCAP sends one CAP 1.2 alert document.
func (c *Client) PostCAP(ctx context.Context, alert []byte) (api.CAPResponse, error) {
	resp, err := c.request(ctx, "POST", "/api/cap", bytes.NewReader(alert), "application/cap+xml")
	if err != nil {
		return api.CAPResponse{}, err
	}
	defer resp.Body.Close()
	var out api.CAPResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("the hub's answer to a CAP alert is not the JSON expected: %w", err)
	}
	return out, nil
}

// IssueCommand signs and sends a command (play_now, stop, volume, reload) to an area's
// devices or one device.
func (c *Client) IssueCommand(ctx context.Context, r api.CommandRequest) (api.CommandJSON, error) {
	var out api.CommandJSON
	return out, c.do(ctx, "POST", "/api/commands", r, &out)
}

// CommandFilter selects commands; empty fields do not filter.
type CommandFilter struct {
	Area, Device string
	Limit        int // default 20 at the hub
}

// ListCommands returns the newest commands reaching the token's scope, with each device's
// outcome.
func (c *Client) ListCommands(ctx context.Context, f CommandFilter) ([]api.CommandJSON, error) {
	v := url.Values{}
	if f.Area != "" {
		v.Set("area", f.Area)
	}
	if f.Device != "" {
		v.Set("device", f.Device)
	}
	if f.Limit > 0 {
		v.Set("limit", fmt.Sprint(f.Limit))
	}
	q := ""
	if len(v) > 0 {
		q = "?" + v.Encode()
	}
	var out []api.CommandJSON
	return out, c.do(ctx, "GET", "/api/commands"+q, nil, &out)
}

// GetCommand returns one command with each device's outcome.
func (c *Client) GetCommand(ctx context.Context, id string) (api.CommandJSON, error) {
	var out api.CommandJSON
	return out, c.do(ctx, "GET", "/api/commands/"+url.PathEscape(id), nil, &out)
}

// Report fetches a laid-out report (kind plan, plays or devices) with the query q.
func (c *Client) Report(ctx context.Context, kind string, q url.Values) (api.ReportDoc, error) {
	var out api.ReportDoc
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("format", "json")
	return out, c.do(ctx, "GET", "/api/reports/"+url.PathEscape(kind)+"?"+q2.Encode(), nil, &out)
}

// ReportFile copies a report in format (csv, xlsx, pdf) to w and returns the file name the hub
// suggests.
func (c *Client) ReportFile(ctx context.Context, kind, format string, q url.Values, w io.Writer) (string, error) {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("format", format)
	resp, err := c.request(ctx, "GET", "/api/reports/"+url.PathEscape(kind)+"?"+q2.Encode(), nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	name := "loa-" + kind + "." + format
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		name = filepath.Base(params["filename"])
	}
	_, err = io.Copy(w, resp.Body)
	return name, err
}

// ReportSettings reads what the plan report counts towards its target.
func (c *Client) ReportSettings(ctx context.Context) (api.ReportSettings, error) {
	var out api.ReportSettings
	return out, c.do(ctx, "GET", "/api/settings/reports", nil, &out)
}

// SetReportSettings changes them (administrators of a top area) and returns them as stored.
func (c *Client) SetReportSettings(ctx context.Context, s api.ReportSettings) (api.ReportSettings, error) {
	var out api.ReportSettings
	return out, c.do(ctx, "PUT", "/api/settings/reports", s, &out)
}
