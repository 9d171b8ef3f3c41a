package cli

import (
	"strings"
)

// Per-command help from the one Usage text: `loa COMMAND --help` and `loa help COMMAND` print
// that command's lines and exit 0; a usage error prints them with the error and exits 2. The
// Usage text stays the single place a command's synopsis is written.

// commandWords are the command and, for the commands that have them, its subcommand, as
// written on the command line after the global flags.
func commandWords(args []string) []string {
	var words []string
	for i := 0; i < len(args) && len(words) < 2; i++ {
		a := args[i]
		switch {
		case a == "--hub" || a == "-hub" || a == "--token" || a == "-token":
			i++ // its value
		case strings.HasPrefix(a, "-"):
			if len(words) > 0 {
				return words
			}
		default:
			words = append(words, a)
		}
	}
	return words
}

// usageOf returns the lines of Usage about the command named by words (the longest prefix
// that has lines), with their continuation lines; "" when none do.
func usageOf(words []string) string {
	for n := len(words); n > 0; n-- {
		prefix := "loa " + strings.Join(words[:n], " ")
		var out []string
		taking := false
		for _, l := range strings.Split(Usage, "\n") {
			t := strings.TrimSpace(l)
			switch {
			case t == prefix || strings.HasPrefix(t, prefix+" "):
				out, taking = append(out, l), true
			case taking && t != "" && !strings.HasPrefix(t, "loa ") && strings.HasPrefix(l, "    "):
				out = append(out, l) // a continuation of the line above
			default:
				taking = false
			}
		}
		if len(out) > 0 {
			return "usage:\n" + strings.Join(out, "\n") + "\n"
		}
	}
	return ""
}

// wantsHelp reports whether args ask for help: -h, -help or --help anywhere, or the help
// command; it returns the words of the command asked about.
func wantsHelp(args []string) (bool, []string) {
	words := commandWords(args)
	if len(words) > 0 && words[0] == "help" {
		return true, commandWords(args[indexOf(args, "help")+1:])
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true, words
		}
	}
	return false, nil
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}
