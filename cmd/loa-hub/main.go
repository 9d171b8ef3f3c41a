// Command loa-hub is the district server: `loa-hub serve --config FILE`, `loa-hub keygen`,
// `loa-hub user add`. The work is done in package hub.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/loa-project/loa/hub"
	"github.com/loa-project/loa/hub/console"
	"github.com/loa-project/loa/hub/store"
)

const usage = `usage:
  loa-hub serve --config FILE                 run the hub
  loa-hub keygen --out FILE [--key-id ID]     write a signing key; prints the agents' trusted_keys line
  loa-hub user add NAME --scope AREA --config FILE [--name TEXT] [--area-name TEXT] [--valid-for DURATION]
                  [--role viewer|operator|emergency|admin] [--password]
                                              create a staff user (admin by default); prints its token once (valid
                                              a year by default); --password reads a console password from stdin
  loa-hub user passwd NAME --config FILE      set the user's console password, read from standard input
  loa-hub user token NAME --config FILE [--valid-for DURATION]
                                              a new token for a user (rotation); prints it once
  loa-hub user disable NAME --config FILE     no token of the user works any more
  loa-hub token revoke --config FILE          revoke the token read from standard input
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "keygen":
		return keygen(args[1:])
	case "user", "token":
		if len(args) < 2 {
			fmt.Fprint(os.Stderr, usage)
			return 2
		}
		switch args[0] + " " + args[1] {
		case "user add":
			return userAdd(args[2:])
		case "user token", "user disable", "token revoke", "user passwd":
			return credential(args[0]+" "+args[1], args[2:])
		}
		fmt.Fprintf(os.Stderr, "loa-hub: unknown command %q\n%s", args[0]+" "+args[1], usage)
		return 2
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "loa-hub: unknown command %q\n%s", args[0], usage)
	return 2
}

func logger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (YAML)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if fs.Parse(args) != nil {
		return 2
	}
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

func keygen(args []string) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "file to write the private key to (mode 0600)")
	keyID := fs.String("key-id", "hub", "the id agents know the key by (signing_key_id in the hub config)")
	if fs.Parse(args) != nil {
		return 2
	}
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

func userAdd(args []string) int {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	scope := fs.String("scope", "", "area whose subtree the user may act on")
	cfgPath := fs.String("config", "", "hub config file (for its data dir)")
	name := fs.String("name", "", "the person's name")
	areaName := fs.String("area-name", "", "create the scope area with this name if it does not exist")
	validFor := fs.Duration("valid-for", hub.DefaultTokenLifetime, "how long the token is valid")
	roleName := fs.String("role", "admin", "what the user may do in the scope: viewer, operator, emergency or admin")
	withPassword := fs.Bool("password", false, "read a console password from standard input")
	// The user id comes first (loa-hub user add lan --scope …); flags may follow it.
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if fs.Parse(args) != nil {
		return 2
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
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
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "hub.db"), clock{}, log)
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
	if *validFor != hub.DefaultTokenLifetime {
		// The token AddUser made has the default lifetime: replace it by one as asked.
		if err := db.RevokeToken(ctx, hub.HashToken(tok)); err != nil {
			fmt.Fprintln(os.Stderr, "loa-hub user add:", err)
			return 1
		}
		if tok, _, err = hub.IssueToken(ctx, db, id, "loa-hub user add", *validFor, time.Now()); err != nil {
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

// credential runs user token, user disable and token revoke on the hub's store, on the
// server itself (like user add: the way back in when no administrator token works).
func credential(cmd string, args []string) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	cfgPath := fs.String("config", "", "hub config file (for its data dir)")
	validFor := fs.Duration("valid-for", hub.DefaultTokenLifetime, "how long the new token is valid")
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if fs.Parse(args) != nil {
		return 2
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if *cfgPath == "" || (id == "") != (cmd == "token revoke") {
		fmt.Fprintf(os.Stderr, "loa-hub %s: see usage\n%s", cmd, usage)
		return 2
	}
	cfg, err := hub.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loa-hub:", err)
		return 1
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(cfg.DataDir, "hub.db"), clock{}, logger("warn"))
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
		tok, expires, err := hub.IssueToken(ctx, db, id, "loa-hub user token", *validFor, time.Now())
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
		u, _, aerr := db.Authenticate(ctx, hub.HashToken(strings.TrimSpace(line)))
		if err := db.RevokeToken(ctx, hub.HashToken(strings.TrimSpace(line))); err != nil {
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
