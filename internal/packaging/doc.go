// Package packaging holds the checks of the Debian packages built by scripts/package and of
// the files in firmware-config/: the cross-built agent under qemu against the native one,
// lintian, systemd-analyze, and an install/upgrade/purge in a throwaway root. It has no code
// of its own beyond small test helpers; see docs/install.md for what the packages install.
package packaging
