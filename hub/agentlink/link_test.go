package agentlink

import (
	"strings"
	"testing"
)

// A hub that leaves out an option is told which, at New, not by a nil call at the first
// connection.
func TestNewNamesTheMissingOption(t *testing.T) {
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), "Options.Store is required") {
		t.Fatalf("New with no options: %v, want the missing Store named", err)
	}
}

// HoldWelcomes takes every free slot and gives back exactly those it took.
func TestHoldWelcomes(t *testing.T) {
	s := &Link{hellos: make(chan struct{}, 3)}
	s.hellos <- struct{}{} // one welcome in progress
	release := s.HoldWelcomes()
	if len(s.hellos) != 3 {
		t.Fatalf("%d of 3 slots taken while held", len(s.hellos))
	}
	release()
	release() // a second call gives back nothing more
	if len(s.hellos) != 1 {
		t.Fatalf("%d slots taken after release, want the 1 welcome in progress", len(s.hellos))
	}
	(&Link{}).HoldWelcomes()() // no limit: nothing to hold
}
