package main

import (
	"strings"
	"testing"

	"github.com/loa-project/loa/internal/testkit"
)

// Enrolment errors say what exists and the full path expected, not "ask staff of that area"
// for an area that does not exist; a device id with a Vietnamese letter names that letter.
func TestEnrolErrorsSayWhatExists(t *testing.T) {
	h := startHubProc(t, nil)
	h.loaOK(t, "area", "add", "qn/tam-ky")
	h.loaOK(t, "area", "add", "qn/tam-ky/tam-thanh")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"device", "enroll", "tam-thanh/cl-07", "--area", "tam-thanh"},
			[]string{"no area tam-thanh in your scope qn", "full path", "use --area qn/tam-ky/tam-thanh"}},
		{[]string{"device", "enroll", "an-phu/cl-01", "--area", "qn/tam-ky/an-phu"},
			[]string{"no area qn/tam-ky/an-phu", "the areas are qn, qn/tam-ky, qn/tam-ky/tam-thanh", "loa area add qn/tam-ky/an-phu"}},
		{[]string{"device", "enroll", "x/cl-01", "--area", "hcm/q1"},
			[]string{"no area hcm/q1 in your scope qn", "the areas are qn, qn/tam-ky, qn/tam-ky/tam-thanh"}},
		{[]string{"device", "enroll", "tam-thanh/cụm-07", "--area", "qn/tam-ky/tam-thanh"},
			[]string{`"cụm-07" has 'ụ' at position 2`, "without accents"}},
	} {
		code, out, errs := h.loa(t, c.args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1\n%s%s", c.args, code, out, errs)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: message lacks %q:\n%s", c.args, w, errs)
			}
		}
		if strings.Contains(errs, "ask staff") {
			t.Errorf("%v: sends the user to other staff for an area that does not exist:\n%s", c.args, errs)
		}
	}
	// An area that exists outside the user's scope answers as an unknown one does (issue 12:
	// whether another commune's area exists is not the caller's to learn), naming the scope.
	lan := lastLine(testkit.Run(t, nil, h.hubBin, "user", "add", "lan", "--scope", "qn/tam-ky/tam-thanh", "--config", h.cfg))
	h.env = append(h.env, "LOA_TOKEN="+lan)
	code, _, above := h.loa(t, "device", "enroll", "tk/cl-01", "--area", "qn/tam-ky")
	_, _, unknown := h.loa(t, "device", "enroll", "tk/cl-01", "--area", "qn/tam-kz")
	if code != 1 || !strings.Contains(above, "no area qn/tam-ky in your scope qn/tam-ky/tam-thanh") ||
		strings.ReplaceAll(above, "qn/tam-ky ", "X ") != strings.ReplaceAll(unknown, "qn/tam-kz ", "X ") {
		t.Fatalf("enrolling above one's scope: %d %s\nan unknown area: %s", code, above, unknown)
	}
}
