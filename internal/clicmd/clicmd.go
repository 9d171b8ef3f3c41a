// Package clicmd holds what the three command lines (loa, loa-agent, loa-hub) share on top of
// spf13/cobra: wrong usage exits 2 with that command's usage, help exits 0, and a hidden
// gen-docs command writes the man pages and shell completions the Debian packages install.
package clicmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// UsageError is wrong usage: the program prints it with the command's usage and exits 2.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }

// ExitError ends the program with Code after the command printed what it had to say itself
// (loa-agent validate exits 1 for a bad schedule without that being a crash); Code 2 is wrong
// usage, and the command's usage follows.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Prepare sets the conventions on root, once its subcommands are added: usage errors for bad
// flags, unknown commands and a group command without its subcommand; no cobra error
// printing (Execute does it); and the hidden gen-docs command.
func Prepare(root *cobra.Command) {
	root.SilenceErrors, root.SilenceUsage = true, true
	// Commands are listed in the order they were added: the order the docs explain them.
	cobra.EnableCommandSorting = false
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		where := strings.TrimSpace(strings.TrimPrefix(c.CommandPath(), root.Name()))
		if where != "" {
			where += ": "
		}
		return UsageError{where + flagMessage(err)}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		c.DisableFlagsInUseLine = true // the Use lines name their flags themselves
		if c.HasSubCommands() && c.Args == nil && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error { return groupError(root, c, args) }
		}
	}
	walk(root)
	root.AddCommand(genDocs(root))
}

// groupError is the usage error of a group command (loa area, loa-hub user) run without one
// of its subcommands.
func groupError(root, c *cobra.Command, args []string) error {
	path := strings.TrimSpace(strings.TrimPrefix(c.CommandPath(), root.Name()))
	if len(args) > 0 {
		return Usagef("unknown command %q", strings.TrimSpace(path+" "+args[0]))
	}
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() && s.Name() != "help" {
			names = append(names, s.Name())
		}
	}
	if len(names) > 1 {
		names = append(names[:len(names)-2], names[len(names)-2]+" or "+names[len(names)-1])
	}
	if path == "" {
		return Usagef("no command")
	}
	return Usagef("%s takes %s", path, strings.Join(names, ", "))
}

// flagMessage words pflag's errors as Go's flag package did ("flag provided but not defined"),
// which scripts and docs tests already look for.
func flagMessage(err error) string {
	m := err.Error()
	if f, ok := strings.CutPrefix(m, "unknown flag: "); ok {
		return "flag provided but not defined: " + f
	}
	if rest, ok := strings.CutPrefix(m, "unknown shorthand flag: "); ok {
		if q, _, ok := strings.Cut(rest, " in "); ok {
			return "flag provided but not defined: -" + strings.Trim(q, "'")
		}
	}
	return m
}

// Execute runs root with args and returns the exit code: 0, 1 for a failure (printed as
// "NAME: error"), 2 for wrong usage (the error, then that command's usage, on stderr).
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if c == nil {
		c = root
	}
	var ee ExitError
	if errors.As(err, &ee) {
		if ee.Code == 2 { // the command said what was wrong; its usage follows
			fmt.Fprintln(stderr)
			c.SetOut(stderr)
			c.Usage()
		}
		return ee.Code
	}
	var ue UsageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(stderr, "%s: %v\n\n", root.Name(), err)
		c.SetOut(stderr)
		c.Usage()
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
	return 1
}

// isCobraUsage says whether err is one of cobra's own usage errors (an argument count, an
// unknown subcommand of root) rather than the command's.
func isCobraUsage(err error) bool {
	m := err.Error()
	for _, s := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// genDocs is `PROGRAM gen-docs DIR`: man pages in DIR/usr/share/man/man1 and bash, zsh and
// fish completions where Debian's shells look for them, as the packages install them.
func genDocs(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "write the man pages and shell completions under DIR (for packaging)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return GenDocs(root, args[0])
		},
	}
}

// GenDocs writes root's man pages (one per command, section 1) and its completion scripts
// under dir, laid out as installed: usr/share/man/man1, usr/share/bash-completion/completions,
// usr/share/zsh/vendor-completions and usr/share/fish/vendor_completions.d. Man pages are
// dated by SOURCE_DATE_EPOCH when it is set (cobra/doc reads it), so builds repeat.
func GenDocs(root *cobra.Command, dir string) error {
	name := root.Name()
	man := filepath.Join(dir, "usr", "share", "man", "man1")
	places := map[string]string{
		"bash": filepath.Join(dir, "usr", "share", "bash-completion", "completions", name),
		"zsh":  filepath.Join(dir, "usr", "share", "zsh", "vendor-completions", "_"+name),
		"fish": filepath.Join(dir, "usr", "share", "fish", "vendor_completions.d", name+".fish"),
	}
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	root.DisableAutoGenTag = true // no "Auto generated by spf13/cobra on DATE": builds repeat
	if err := doc.GenManTree(root, &doc.GenManHeader{Title: strings.ToUpper(name), Section: "1", Source: "Loa", Manual: "Loa manual"}, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for shell, path := range places {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		switch shell {
		case "bash":
			err = root.GenBashCompletionV2(f, true)
		case "zsh":
			err = root.GenZshCompletion(f)
		case "fish":
			err = root.GenFishCompletion(f, true)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s completion: %w", shell, err)
		}
	}
	return nil
}
