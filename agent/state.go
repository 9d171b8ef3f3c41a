package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/loa-project/loa/internal/atomicfile"
)

// state is what the agent keeps between runs besides the journal and the store.
type state struct {
	// LastWall is the latest wall time the agent saw on a trusted clock: after a reboot with
	// no RTC, a clock earlier than this is known to be wrong.
	LastWall time.Time `json:"last_wall"`
	// Held is the highest schedule revision ever accepted per schedule id: an older push
	// replayed after a reboot is still refused.
	Held map[string]int64 `json:"held,omitempty"`
	// Volume is the device volume the hub last set by command, overriding the config's.
	Volume *float64 `json:"volume,omitempty"`
}

func loadState(path string) (state, error) {
	var s state
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		// A state file is only a hint; a broken one is replaced, not fatal.
		return state{}, fmt.Errorf("state file %s is unreadable (%v); starting without it", path, err)
	}
	return s, nil
}

func saveState(path string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}
