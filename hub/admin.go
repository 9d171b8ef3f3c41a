package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/loa-project/loa/hub/accounts"
	"github.com/loa-project/loa/hub/store"
	"github.com/loa-project/loa/internal/keyfile"
	"github.com/loa-project/loa/protocol"
)

// Keygen writes a new signing key to path (refusing to overwrite one) and returns the line
// agents put under trusted_keys in their config.
func Keygen(path, keyID string) (string, error) {
	pub, err := keyfile.New(path)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("%s exists: a new key would make every agent refuse pushes until reconfigured; remove it first if you mean it", path)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %q", keyID, protocol.FormatPublicKey(pub)), nil
}

// AddUser creates a staff account scoped to an area subtree and returns a token for it (shown
// once; only its hash is stored). When the scope area does not exist and areaName is given,
// it is created first: that is how the first (province) administrator is bootstrapped on the
// server itself.
func AddUser(ctx context.Context, st Store, id, name, scope, areaName string) (string, error) {
	if _, err := st.GetArea(ctx, scope); errors.Is(err, store.ErrNotFound) {
		if areaName == "" {
			return "", fmt.Errorf("area %s does not exist: add it with `loa area add` first, or pass --area-name to create it here (a root area for the first administrator)", scope)
		}
		if _, err := st.AddArea(ctx, store.Area{ID: scope, Name: areaName}); err != nil {
			return "", err
		}
		st.AppendAudit(ctx, store.AuditEntry{Actor: "hub", Action: "area.add", Target: "area:" + scope, Detail: []byte(`{"by":"loa-hub user add"}`)})
	} else if err != nil {
		return "", err
	}
	if name == "" {
		name = id
	}
	if _, err := st.AddUser(ctx, store.User{ID: id, Name: name, Scope: scope}); err != nil {
		return "", err
	}
	tok, _, err := accounts.IssueToken(ctx, st, id, "loa-hub user add", 0, time.Now())
	if err != nil {
		return "", err
	}
	st.AppendAudit(ctx, store.AuditEntry{Actor: "hub", Action: "user.add", Target: "area:" + scope, Detail: []byte(fmt.Sprintf(`{"user":%q}`, id))})
	return tok, nil
}
