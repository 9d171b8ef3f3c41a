package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"os"
	"path/filepath"

	"github.com/loa-project/loa/hub/api"
)

// UploadRelease uploads a signed agent package (debPath) with its statement (stmtPath, as
// `loa release sign` writes it).
func (c *Client) UploadRelease(ctx context.Context, debPath, stmtPath string) (api.ReleaseJSON, error) {
	stmt, err := os.ReadFile(stmtPath)
	if err != nil {
		return api.ReleaseJSON{}, fmt.Errorf("%v: a package is uploaded with its signed statement; make it with `loa release sign --key FILE %s`", err, debPath)
	}
	f, err := os.Open(debPath)
	if err != nil {
		return api.ReleaseJSON{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() { // streams the package: it may be far larger than is worth holding in memory
		defer close(done)
		fw, err := mw.CreateFormFile("statement", filepath.Base(stmtPath))
		if err == nil {
			_, err = fw.Write(stmt)
		}
		if err == nil {
			fw, err = mw.CreateFormFile("package", filepath.Base(debPath))
		}
		if err == nil {
			_, err = io.Copy(fw, f)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	resp, err := c.request(ctx, "POST", "/api/releases", pr, mw.FormDataContentType())
	pr.Close()
	<-done
	if err != nil {
		return api.ReleaseJSON{}, err
	}
	defer resp.Body.Close()
	var out api.ReleaseJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("the hub's answer to a release upload is not the JSON expected: %w", err)
	}
	return out, nil
}

// ListReleases lists the releases the hub holds.
func (c *Client) ListReleases(ctx context.Context) ([]api.ReleaseJSON, error) {
	var out []api.ReleaseJSON
	return out, c.do(ctx, "GET", "/api/releases", nil, &out)
}

// StartRollout starts a staged rollout.
func (c *Client) StartRollout(ctx context.Context, r api.RolloutRequest) (api.RolloutJSON, error) {
	var out api.RolloutJSON
	return out, c.do(ctx, "POST", "/api/rollouts", r, &out)
}

// ListRollouts lists the rollouts under area ("" = the caller's scope), newest first.
func (c *Client) ListRollouts(ctx context.Context, area string) ([]api.RolloutJSON, error) {
	path := "/api/rollouts"
	if area != "" {
		path += "?" + url.Values{"area": {area}}.Encode()
	}
	var out []api.RolloutJSON
	return out, c.do(ctx, "GET", path, nil, &out)
}

// GetRollout returns a rollout with each of its devices.
func (c *Client) GetRollout(ctx context.Context, id string) (api.RolloutJSON, error) {
	var out api.RolloutJSON
	return out, c.do(ctx, "GET", "/api/rollouts/"+url.PathEscape(id), nil, &out)
}

// StopRollout stops a running rollout, saying why.
func (c *Client) StopRollout(ctx context.Context, id, reason string) (api.RolloutJSON, error) {
	var out api.RolloutJSON
	return out, c.do(ctx, "POST", "/api/rollouts/"+url.PathEscape(id)+"/stop", api.RolloutStopRequest{Reason: reason}, &out)
}
