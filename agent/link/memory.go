package link

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/loa-project/loa/internal/atomicfile"
	"github.com/loa-project/loa/protocol"
)

// FileCommandMemory keeps the command replay memory in a JSON file, replaced atomically
// (temp file, fsync, rename, fsync of the directory) so a power cut leaves the old or the
// new memory, never half of one.
type FileCommandMemory struct{ Path string }

// LoadCommandLog reads the file; a missing file is the empty memory of a new device.
func (m FileCommandMemory) LoadCommandLog() (protocol.CommandLogState, error) {
	var st protocol.CommandLogState
	b, err := os.ReadFile(m.Path)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return protocol.CommandLogState{}, fmt.Errorf("command replay memory %s is unreadable (%v): remove it only if no command issued in the last 24 h can be replayed", m.Path, err)
	}
	return st, nil
}

// SaveCommandLog writes the file.
func (m FileCommandMemory) SaveCommandLog(st protocol.CommandLogState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(m.Path, b, 0o600); err != nil {
		return fmt.Errorf("saving the command replay memory: %w", err)
	}
	return nil
}
