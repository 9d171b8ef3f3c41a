package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHubHelpAndUsage: `loa-hub COMMAND --help` and `loa-hub help COMMAND` print that
// command's usage and flags and exit 0; wrong usage exits 2 with that command's usage.
func TestHubHelpAndUsage(t *testing.T) {
	hubBin, _, _ := bins(t)
	hub := func(args ...string) (int, string, string) {
		cmd := exec.Command(hubBin, args...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		return code, o.String(), e.String()
	}
	for _, args := range [][]string{{"user", "add", "--help"}, {"help", "user", "add"}} {
		code, out, _ := hub(args...)
		if code != 0 || !strings.Contains(out, "loa-hub user add NAME --scope AREA") || !strings.Contains(out, "--valid-for") || strings.Contains(out, "keygen") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	for _, tc := range []struct {
		args        []string
		want, usage string
	}{
		{[]string{"keygen", "--colour", "red"}, "keygen: flag provided but not defined: --colour", "loa-hub keygen --out FILE"},
		{[]string{"keygen"}, "--out FILE is required", "loa-hub keygen --out FILE"},
		{[]string{"user", "add", "--scope", "qn"}, "NAME, --scope and --config are required", "loa-hub user add NAME"},
		{[]string{"user"}, "user takes add, passwd, token or disable", "loa-hub user"},
		{[]string{"serve", "extra"}, `unknown command "extra"`, "loa-hub serve --config FILE"},
	} {
		code, out, errOut := hub(tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "Usage:\n  "+tc.usage) {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit 2, %q and the usage %q", tc.args, code, out, errOut, tc.want, tc.usage)
		}
	}
}
