package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/loa-project/loa/hub/api"
	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/internal/clicmd"
	"github.com/loa-project/loa/internal/keyfile"
	"github.com/loa-project/loa/protocol"
)

// StatementSuffix is added to a package's path for its signed statement.
const StatementSuffix = ".release.json"

// upgradeCommands are loa release (keygen, sign, upload, list) and loa upgrade (start, status,
// stop): agent upgrades signed with a release key and rolled out in stages (docs/upgrades.md).
func (t *tree) upgradeCommands(root *cobra.Command) {
	release := group(root, "release", "agent releases: a release key, signed packages, what the hub holds")
	t.add(release, "keygen --out FILE [--key-id release]", "a new release key: the private key to FILE, the public key line printed", func(c *command) action {
		out := c.fs.String("out", "", "where to write the private key (mode 0600; never overwritten)")
		keyID := c.fs.String("key-id", "release", "the id agents and the hub know the key by")
		return func(ctx context.Context, pos []string) error {
			if *out == "" || len(pos) > 0 {
				return clicmd.Usagef("release keygen needs --out FILE and nothing else")
			}
			pub, err := keyfile.New(*out)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists: a new release key would not be trusted by any agent until each is reconfigured; remove it first if you mean it", *out)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "release key written to %s: keep it offline, with whoever builds releases (not on the hub).\n"+
				"Put this line under upgrade.release_keys in each agent's config and under release_keys in the hub's config:\n\n  %s: %q\n",
				*out, *keyID, protocol.FormatPublicKey(pub))
			return nil
		}
	})
	t.add(release, "sign --key FILE [--key-id release] PACKAGE.deb", "sign a loa-agent package: writes PACKAGE.deb.release.json beside it", func(c *command) action {
		key := c.fs.String("key", "", "the release key's private key file (from `loa release keygen`)")
		keyID := c.fs.String("key-id", "release", "the id agents know the key by")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("release sign", pos, 1, "one PACKAGE.deb"); err != nil {
				return err
			}
			if *key == "" {
				return clicmd.Usagef("release sign needs --key FILE (the release key's private key)")
			}
			p, err := SignPackage(ctx, pos[0], *key, *keyID)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "signed %s %s (%s), %d bytes, sha256 %s, with release key %s: %s\n",
				p.Name, p.Version, p.Arch, p.Size, p.SHA256, p.KeyID, pos[0]+StatementSuffix)
			return nil
		}
	})
	t.add(release, "upload PACKAGE.deb [--statement FILE]", "upload a signed package to the hub (its statement beside it)", func(c *command) action {
		stmt := c.fs.String("statement", "", "the signed statement (default PACKAGE.deb.release.json)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("release upload", pos, 1, "one PACKAGE.deb"); err != nil {
				return err
			}
			if *stmt == "" {
				*stmt = pos[0] + StatementSuffix
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			r, err := cl.UploadRelease(ctx, pos[0], *stmt)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, r)
			}
			what := "uploaded"
			if !r.Created {
				what = "already held (the same bytes)"
			}
			fmt.Fprintf(c.env.Stdout, "%s %s (%s) %s; roll it out with `loa upgrade --to AREA --version %s`\n", r.Name, r.Version, r.Arch, what, r.Version)
			return nil
		}
	})
	t.add(release, "list [--json]", "the releases the hub holds", func(c *command) action {
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			rs, err := cl.ListReleases(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, rs)
			}
			if len(rs) == 0 {
				fmt.Fprintln(c.env.Stdout, "the hub holds no release yet: `loa release upload PACKAGE.deb` adds one")
				return nil
			}
			tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tARCH\tSIZE\tKEY\tUPLOADED\tBY\tSHA256")
			loc := cl.Location()
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%s\t%.1f MB\t%s\t%s\t%s\t%s\n", r.Version, r.Arch, float64(r.Size)/1e6, r.KeyID,
					r.UploadedAt.In(loc).Format("2006-01-02 15:04"), r.UploadedBy, r.SHA256[:12]+"…")
			}
			return tw.Flush()
		}
	})

	up := t.add(root, "upgrade --to AREA --version V [--canary 10%] [--window 02:00-04:00] [--healthy-for 30m] [--healthy-within 10m] [--max-failures 20%]",
		"roll an agent release out to an area's devices: the canaries first, the rest once they are healthy", func(c *command) action {
			to := c.fs.String("to", "", "the area to upgrade (and every area below it)")
			version := c.fs.String("version", "", "the release's version (`loa release list`)")
			canary := c.fs.String("canary", "", "the share of devices upgraded first (default 10%; at least one device)")
			window := c.fs.String("window", "", "install only in this daily time, the devices' local time (default any time)")
			healthyFor := c.fs.Duration("healthy-for", 0, "how long the canaries stay healthy before the rest (default 30m)")
			healthyWithin := c.fs.Duration("healthy-within", 0, "how long a new version has to be healthy before the device reinstalls the old one (default 10m)")
			maxFail := c.fs.String("max-failures", "", "the rollout stops when more than this share of devices sent it roll back, refuse or fail (default 20%)")
			asJSON := c.fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, pos []string) error {
				if len(pos) > 0 {
					return clicmd.Usagef("upgrade takes flags only (got %q); see `loa upgrade status` and `loa upgrade stop`", pos[0])
				}
				if *to == "" || *version == "" {
					return clicmd.Usagef("upgrade needs --to AREA and --version V")
				}
				req := api.RolloutRequest{Area: *to, Version: *version, Window: *window}
				var err error
				if req.CanaryPercent, err = percentFlag("--canary", *canary); err != nil {
					return err
				}
				if req.MaxFailurePercent, err = percentFlag("--max-failures", *maxFail); err != nil {
					return err
				}
				req.HealthyForS, req.HealthyWithinS = secondsFlag(*healthyFor), secondsFlag(*healthyWithin)
				cl, err := c.client()
				if err != nil {
					return err
				}
				ro, err := cl.StartRollout(ctx, req)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(c.env.Stdout, ro)
				}
				fmt.Fprintf(c.env.Stdout, "rollout %s started: version %s to %s; follow it with `loa upgrade status %s`\n", ro.ID, ro.Version, ro.Area, ro.ID)
				return RolloutTable(c.env.Stdout, ro, time.Now().In(cl.Location()))
			}
		})
	t.add(up, "status [ROLLOUT] [--area AREA] [--json]", "rollouts: per stage how many devices are where, and (with ROLLOUT) each device", func(c *command) action {
		area := c.fs.String("area", "", "rollouts to this area and below (default: your scope)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, pos []string) error {
			if len(pos) > 1 {
				return clicmd.Usagef("upgrade status takes at most one ROLLOUT")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			now := time.Now().In(cl.Location())
			if len(pos) == 1 {
				ro, err := cl.GetRollout(ctx, pos[0])
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(c.env.Stdout, ro)
				}
				return RolloutTable(c.env.Stdout, ro, now)
			}
			ros, err := cl.ListRollouts(ctx, *area)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(c.env.Stdout, ros)
			}
			if len(ros) == 0 {
				fmt.Fprintln(c.env.Stdout, "no rollouts in your scope yet")
			}
			for i, ro := range ros {
				if i > 0 {
					fmt.Fprintln(c.env.Stdout)
				}
				if err := RolloutTable(c.env.Stdout, ro, now); err != nil {
					return err
				}
			}
			return nil
		}
	})
	t.add(up, "stop ROLLOUT --reason TEXT", "stop a rollout: no more devices get it; those not installing yet drop it", func(c *command) action {
		reason := c.fs.String("reason", "", "why (kept in the rollout and the audit log)")
		return func(ctx context.Context, pos []string) error {
			if err := wantArgs("upgrade stop", pos, 1, "one ROLLOUT id (`loa upgrade status` lists them)"); err != nil {
				return err
			}
			if strings.TrimSpace(*reason) == "" {
				return clicmd.Usagef("upgrade stop needs --reason TEXT")
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			ro, err := cl.StopRollout(ctx, pos[0], *reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.env.Stdout, "rollout %s stopped\n", ro.ID)
			return RolloutTable(c.env.Stdout, ro, time.Now().In(cl.Location()))
		}
	})
}

// percentFlag reads "10%" or "10"; "" is nil (the hub's default).
func percentFlag(name, s string) (*int, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil || v < 0 || v > 100 {
		return nil, clicmd.Usagef("%s %q: give a share from 0%% to 100%%, e.g. 10%%", name, s)
	}
	return &v, nil
}

// secondsFlag is a duration flag in whole seconds; 0 is nil (the hub's default).
func secondsFlag(d time.Duration) *int {
	if d == 0 {
		return nil
	}
	s := int(d.Round(time.Second) / time.Second)
	return &s
}

// RolloutTable prints a rollout: its settings, per device stage how many devices are in each
// state, and each device when the answer has them.
func RolloutTable(w io.Writer, ro api.RolloutJSON, now time.Time) error {
	fmt.Fprintf(w, "rollout %s: version %s to %s, %s", ro.ID, ro.Version, ro.Area, ro.Stage)
	if ro.Reason != "" {
		fmt.Fprintf(w, " (%s)", ro.Reason)
	}
	window := ro.Window
	if window == "" {
		window = "any time"
	}
	fmt.Fprintf(w, "\n  canary %d%%, healthy for %v, healthy within %v, stop above %d%% failures, window %s; started by %s %s\n",
		ro.CanaryPercent, time.Duration(ro.HealthyForS)*time.Second, time.Duration(ro.HealthyWithinS)*time.Second,
		ro.MaxFailurePercent, window, ro.CreatedBy, ago(&ro.CreatedAt, now))
	for _, stage := range []string{"canary", "rest", "none"} {
		counts := ro.Counts[stage]
		if len(counts) == 0 {
			continue
		}
		states := make([]string, 0, len(counts))
		for s := range counts {
			states = append(states, s)
		}
		sort.Strings(states)
		var parts []string
		for _, s := range states {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
		label := map[string]string{"canary": "canaries", "rest": "the rest", "none": "not upgraded"}[stage]
		fmt.Fprintf(w, "  %s: %s\n", label, strings.Join(parts, ", "))
	}
	if len(ro.Devices) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSTAGE\tFROM\tSTATE\tSINCE\tONLINE\tERROR")
	for _, d := range ro.Devices {
		online := "no"
		if d.Online {
			online = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Device, d.Stage, dash(d.From), d.State, ago(&d.Since, now), online, dash(d.Error))
	}
	return tw.Flush()
}

// SignPackage signs a loa-agent package with the release key in keyPath and writes its
// statement to debPath+StatementSuffix. The name, version and architecture are the package's
// own (its control file, read with dpkg-deb).
func SignPackage(ctx context.Context, debPath, keyPath, keyID string) (protocol.ReleasePackage, error) {
	keyText, err := os.ReadFile(keyPath)
	if err != nil {
		return protocol.ReleasePackage{}, fmt.Errorf("release key: %w", err)
	}
	priv, err := protocol.ParsePrivateKey(strings.TrimSpace(string(keyText)))
	if err != nil {
		return protocol.ReleasePackage{}, fmt.Errorf("release key %s: %w", keyPath, err)
	}
	fields, err := debFields(ctx, debPath)
	if err != nil {
		return protocol.ReleasePackage{}, err
	}
	f, err := os.Open(debPath)
	if err != nil {
		return protocol.ReleasePackage{}, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return protocol.ReleasePackage{}, err
	}
	p := protocol.ReleasePackage{Name: fields["Package"], Version: fields["Version"], Arch: fields["Architecture"], Size: size,
		SHA256: hex.EncodeToString(h.Sum(nil))}
	protocol.SignRelease(&p, keyID, priv)
	if err := protocol.CheckRelease(&p); err != nil {
		return protocol.ReleasePackage{}, fmt.Errorf("%s cannot be a release: %v", debPath, err)
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	if err := atomicfile.Write(debPath+StatementSuffix, append(b, '\n'), 0o644); err != nil {
		return protocol.ReleasePackage{}, err
	}
	return p, nil
}

// debFields reads a package's Package, Version and Architecture with dpkg-deb.
func debFields(ctx context.Context, debPath string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", debPath, "Package", "Version", "Architecture").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s is not a Debian package dpkg-deb can read: %s", debPath, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("reading %s needs dpkg-deb (apt install dpkg): %v", debPath, err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return fields, nil
}
