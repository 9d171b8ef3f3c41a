// Command loa-hub is the district server: `loa-hub serve --config FILE`, `loa-hub keygen`,
// `loa-hub user add`, `loa-hub migrate`. The work is done in package hub (and hub/store).
package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/accounts"
	"github.com/loa-project/loa/hub/console"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/clicmd"
)

// runFunc runs a subcommand with its positional arguments, its flags parsed, and returns the
// process exit code (2: wrong usage, after saying what is wrong).
type runFunc func(pos []string) int

// command is one subcommand: its path under loa-hub, synopsis, help, and define, which adds
// its flags to fs and returns what it runs.
type command struct {
	path, use, short string
	args             cobra.PositionalArgs
	define           func(fs *pflag.FlagSet) runFunc
}

func commands() []command {
	return []command{
		{"", "serve --config FILE", "run the hub", cobra.NoArgs, serve},
		{"", "keygen --out FILE [--key-id ID]", "write a signing key; prints the agents' trusted_keys line", cobra.NoArgs, keygen},
		{"user", "add NAME --scope AREA --config FILE [--name TEXT] [--area-name TEXT] [--valid-for DURATION] [--role viewer|operator|emergency|admin] [--password]",
			"create a staff user (admin by default); prints its token once (valid a year by default); --password reads a console password from stdin",
			cobra.MaximumNArgs(1), userAdd},
		{"user", "passwd NAME --config FILE", "set the user's console password, read from standard input", cobra.MaximumNArgs(1), credential("user passwd")},
		{"user", "token NAME --config FILE [--valid-for DURATION]", "a new token for a user (rotation); prints it once", cobra.MaximumNArgs(1), credential("user token")},
		{"user", "disable NAME --config FILE", "no token of the user works any more", cobra.MaximumNArgs(1), credential("user disable")},
		{"token", "revoke --config FILE", "revoke the token read from standard input", cobra.NoArgs, credential("token revoke")},
		{"", "migrate --from SOURCE --to SOURCE", "copy every row of a hub store into a new, empty one: sqlite:PATH or postgres://USER@HOST/DB (stop the hub first)",
			cobra.NoArgs, migrate},
	}
}

// newRoot is the loa-hub command tree.
func newRoot() *cobra.Command {
	root := &cobra.Command{Use: "loa-hub", Short: "the Loa hub: device registry, schedules, content, push, confirmations, reports",
		Long: "loa-hub is the district server of Loa: `loa-hub serve --config FILE` runs it; the other commands\n" +
			"act on its store on the server itself (the way back in when no administrator token works).\n\n" +
			"Shell completion: loa-hub completion bash|zsh|fish (the Debian package installs it)."}
	groups := map[string]*cobra.Command{"": root,
		"user":  {Use: "user", Short: "staff users: add, passwd, token, disable"},
		"token": {Use: "token", Short: "staff tokens: revoke"}}
	for _, c := range commands() {
		cc := &cobra.Command{Use: c.use, Short: c.short, Args: c.args}
		run := c.define(cc.Flags())
		cc.RunE = func(_ *cobra.Command, args []string) error {
			if code := run(args); code != 0 {
				return clicmd.ExitError{Code: code}
			}
			return nil
		}
		groups[c.path].AddCommand(cc)
	}
	root.AddCommand(groups["user"], groups["token"])
	clicmd.Prepare(root)
	return root
}

func main() {
	os.Exit(clicmd.Execute(context.Background(), newRoot(), os.Args[1:], os.Stdout, os.Stderr))
}

func logger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func serve(fs *pflag.FlagSet) runFunc {
	cfgPath := fs.String("config", "", "config file (YAML)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	return func(pos []string) int {
		if *cfgPath == "" {
			fmt.Fprintln(os.Stderr, "loa-hub serve: --config FILE is required")
			return 2
		}
		cfg, err := hub.LoadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := hub.Run(ctx, cfg, logger(*level)); err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		return 0
	}
}

func keygen(fs *pflag.FlagSet) runFunc {
	out := fs.String("out", "", "file to write the private key to (mode 0600)")
	keyID := fs.String("key-id", "hub", "the id agents know the key by (signing_key_id in the hub config)")
	return func(pos []string) int {
		if *out == "" {
			fmt.Fprintln(os.Stderr, "loa-hub keygen: --out FILE is required")
			return 2
		}
		line, err := hub.Keygen(*out, *keyID)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub keygen:", err)
			return 1
		}
		fmt.Printf("wrote %s; put this under trusted_keys in every agent's config:\n  %s\n", *out, line)
		return 0
	}
}

func userAdd(fs *pflag.FlagSet) runFunc {
	scope := fs.String("scope", "", "area whose subtree the user may act on")
	cfgPath := fs.String("config", "", "hub config file (for its data dir)")
	name := fs.String("name", "", "the person's name")
	areaName := fs.String("area-name", "", "create the scope area with this name if it does not exist")
	validFor := fs.Duration("valid-for", accounts.DefaultTokenLifetime, "how long the token is valid")
	roleName := fs.String("role", "admin", "what the user may do in the scope: viewer, operator, approver, emergency or admin")
	withPassword := fs.Bool("password", false, "read a console password from standard input")
	return func(pos []string) int {
		var id string
		if len(pos) == 1 {
			id = pos[0]
		}
		if id == "" || *scope == "" || *cfgPath == "" {
			fmt.Fprintln(os.Stderr, "loa-hub user add NAME --scope AREA --config FILE: NAME, --scope and --config are required")
			return 2
		}
		role, err := store.ParseRole(*roleName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
			return 2
		}
		var pwHash string
		if *withPassword {
			if pwHash, err = readPassword(); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
				return 2
			}
		}
		cfg, err := hub.LoadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		ctx := context.Background()
		log := logger("warn")
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		db, err := store.Open(ctx, cfg.StoreSource(), clock{}, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		defer db.Close()
		tok, err := hub.AddUser(ctx, db, id, *name, *scope, *areaName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
			return 1
		}
		if *validFor != accounts.DefaultTokenLifetime {
			// The token AddUser made has the default lifetime: replace it by one as asked.
			if err := db.RevokeToken(ctx, accounts.HashToken(tok)); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
				return 1
			}
			if tok, _, err = accounts.IssueToken(ctx, db, id, "loa-hub user add", *validFor, time.Now()); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
				return 1
			}
		}
		if role != store.RoleAdmin {
			if err := db.SetRole(ctx, id, role); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
				return 1
			}
		}
		if pwHash != "" {
			if err := db.SetPassword(ctx, id, pwHash); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
				return 1
			}
		}
		fmt.Printf("user %s (%s, scope %s) created; their token, shown only now:\n%s\n", id, role, *scope, tok)
		return 0
	}
}

// credential runs user token, user disable and token revoke on the hub's store, on the
// server itself (like user add: the way back in when no administrator token works).
func credential(cmd string) func(fs *pflag.FlagSet) runFunc {
	return func(fs *pflag.FlagSet) runFunc { return credentialCmd(cmd, fs) }
}

// credentialCmd is credential's flags and what it runs.
func credentialCmd(cmd string, fs *pflag.FlagSet) runFunc {
	cfgPath := fs.String("config", "", "hub config file (for its data dir)")
	validFor := fs.Duration("valid-for", accounts.DefaultTokenLifetime, "how long the new token is valid")
	return func(pos []string) int {
		var id string
		if len(pos) == 1 {
			id = pos[0]
		}
		if *cfgPath == "" || (id == "") != (cmd == "token revoke") {
			fmt.Fprintf(os.Stderr, "loa-hub %s: NAME and --config are required (token revoke: --config only)\n", cmd)
			return 2
		}
		cfg, err := hub.LoadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		ctx := context.Background()
		db, err := store.Open(ctx, cfg.StoreSource(), clock{}, logger("warn"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub:", err)
			return 1
		}
		defer db.Close()
		audit := func(action, target string) {
			db.AppendAudit(ctx, store.AuditEntry{Actor: "hub", Action: action, Target: target, Detail: []byte(`{"by":"loa-hub ` + cmd + `"}`)})
		}
		switch cmd {
		case "user passwd":
			h, err := readPassword()
			if err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user passwd:", err)
				return 2
			}
			if err := db.SetPassword(ctx, id, h); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user passwd:", err)
				return 1
			}
			audit("user.passwd", "user:"+id)
			fmt.Printf("console password of %s set; their earlier console sessions are signed out\n", id)
		case "user token":
			tok, expires, err := accounts.IssueToken(ctx, db, id, "loa-hub user token", *validFor, time.Now())
			if err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user token:", err)
				return 1
			}
			audit("token.add", "user:"+id)
			fmt.Printf("a new token for %s, valid until %s, shown only now (revoke the old one with `loa-hub token revoke`):\n%s\n",
				id, expires.Format(time.RFC3339), tok)
		case "user disable":
			if err := db.DisableUser(ctx, id); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub user disable:", err)
				return 1
			}
			audit("user.disable", "user:"+id)
			fmt.Printf("user %s disabled: none of their tokens works any more\n", id)
		case "token revoke":
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if strings.TrimSpace(line) == "" {
				fmt.Fprintln(os.Stderr, "loa-hub token revoke: give the token on standard input (so it stays out of the shell history):", err)
				return 2
			}
			u, _, aerr := db.Authenticate(ctx, accounts.HashToken(strings.TrimSpace(line)))
			if err := db.RevokeToken(ctx, accounts.HashToken(strings.TrimSpace(line))); err != nil {
				fmt.Fprintln(os.Stderr, "loa-hub token revoke:", err)
				return 1
			}
			if aerr == nil {
				audit("token.revoke", "user:"+u.ID)
				fmt.Printf("the token of %s is revoked\n", u.ID)
			} else {
				audit("token.revoke", "token")
				fmt.Println("the token is revoked (it did not work already:", aerr, ")")
			}
		}
		return 0
	}
}

// migrate copies a district's store into another engine's (store.Copy), e.g. from its SQLite
// file into a new PostgreSQL database: `loa-hub migrate --from sqlite:/var/lib/loa-hub/hub.db
// --to postgres://loa@db/loa`.
func migrate(fs *pflag.FlagSet) runFunc {
	from := fs.String("from", "", "the store to copy: sqlite:PATH (or a path) or postgres://…")
	to := fs.String("to", "", "the new, empty store to copy into: postgres://… (the database must exist) or sqlite:PATH")
	return func(pos []string) int {
		if *from == "" || *to == "" {
			fmt.Fprintln(os.Stderr, "loa-hub migrate: --from and --to are required")
			return 2
		}
		if !store.IsPostgres(*from) {
			// Open would make an empty store of a mistyped path, and copy nothing.
			if _, err := os.Stat(strings.TrimPrefix(*from, "sqlite:")); err != nil {
				fmt.Fprintf(os.Stderr, "loa-hub migrate: no hub store to copy at --from %s: %v\n", *from, err)
				return 1
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		log := logger("info")
		src, err := store.Open(ctx, *from, clock{}, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub migrate: --from:", err)
			return 1
		}
		defer src.Close()
		dst, err := store.Open(ctx, *to, clock{}, log)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub migrate: --to:", err)
			return 1
		}
		defer dst.Close()
		n, err := store.Copy(ctx, src, dst)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub migrate:", err)
			return 1
		}
		fmt.Printf("copied %d rows from %s to %s\n", n, src.Path(), dst.Path())
		return 0
	}
}

type clock struct{}

func (clock) Now() time.Time { return time.Now() }

// readPassword reads one line from standard input (a pipe, or typed: it is echoed, so type it
// where nobody watches) and hashes it for the console.
func readPassword() (string, error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no password on standard input: e.g. read -rs P && printf '%%s\\n' \"$P\" | loa-hub user passwd NAME --config FILE")
	}
	return console.HashPassword(strings.TrimRight(line, "\r\n"))
}
