package agent

import "syscall"

// diskFree is the space left for the agent's data, for the hub's status view.
func diskFree(dir string) (int64, bool) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, false
	}
	// Bsize is int32 on 32-bit ARM: convert both (the armhf package is cross-built).
	return int64(s.Bavail) * int64(s.Bsize), true
}
