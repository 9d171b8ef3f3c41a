package store

import (
	"fmt"
	"strings"
)

// Role is what a staff user may do within their scope. A token is a credential of its user,
// so the role bounds the token and the console session alike: the one check is Can.
type Role string

// The roles, each allowed what the ones before it are.
const (
	RoleViewer    Role = "viewer"    // sees the scope: devices, schedules, proof of play
	RoleOperator  Role = "operator"  // content, schedules, commands, bulletins and relays
	RoleApprover  Role = "approver"  // approves or rejects what waits for approval in the scope
	RoleEmergency Role = "emergency" // may broadcast and end emergency warnings
	RoleAdmin     Role = "admin"     // areas, devices (enrol, revoke, re-key), users, lists
)

// Roles lists the roles from least to most allowed.
var Roles = []Role{RoleViewer, RoleOperator, RoleApprover, RoleEmergency, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i
		}
	}
	return -1
}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() < 0 {
		return "", fmt.Errorf("%w: role %q: use viewer, operator, approver, emergency or admin", ErrInvalid, s)
	}
	return r, nil
}

// Can reports whether a user with role has may do what needs role need. An unknown role
// (a row written by a newer hub) may do nothing.
func Can(has, need Role) bool {
	h, n := has.rank(), need.rank()
	return h >= 0 && n >= 0 && h >= n
}
