package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/loa-project/loa/hub/store"
)

// argon2id parameters: OWASP's 19 MiB, 2 passes, 1 lane — a sign-in costs tens of
// milliseconds on a district server, a guess as much to an attacker with the database.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// HashPassword returns the argon2id hash of password in the PHC string form.
func HashPassword(password string) (string, error) {
	if len([]rune(password)) < MinPasswordLen {
		return "", fmt.Errorf("a password needs at least %d characters", MinPasswordLen)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a HashPassword hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when the user is unknown, so a sign-in takes as long either way.
var dummyHash, _ = HashPassword("not-a-password-of-anyone")

const (
	sessionCookie = "loa_session"
	loginCookie   = "loa_login" // the sign-in form's CSRF value (double submit: no session yet)
	langCookie    = "loa_lang"
)

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) secure(r *http.Request) bool { return c.opts.Secure || r.TLS != nil }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
}

// session is the signed-in user of a request.
type session struct {
	User store.User
	CSRF string
	hash [32]byte
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// signedIn passes a request with a live session to h, after checking the CSRF token of any
// request that changes something; without one it sends the browser to sign in (or answers
// 401 to a script).
func (c *Console) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		var s *session
		if err == nil && ck.Value != "" {
			hash := sha256.Sum256([]byte(ck.Value))
			// The live stream is not the user at work: it must not keep an idle session alive.
			touch := r.URL.Path != "/console/events"
			u, csrf, err := c.opts.Store.Session(r.Context(), hash, c.opts.IdleTimeout, c.opts.MaxAge, touch)
			if err == nil {
				s = &session{User: u, CSRF: csrf, hash: hash}
			} else if !errors.Is(err, store.ErrUnauthorized) {
				c.opts.Log.Error("console session", "err", err)
			}
		}
		if s == nil {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, http.StatusUnauthorized, "err.signin")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) || !c.csrfOK(r, s.CSRF) {
				c.fail(w, r, s, http.StatusForbidden, "err.csrf")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s)
	}
}

// csrfOK checks the form field or, for fetch, the X-CSRF-Token header.
func (c *Console) csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin refuses a request a browser says came from another origin (a second line
// behind the CSRF token).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "", "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, user, msg string) {
	tok := randomToken()
	c.setCookie(w, r, loginCookie, tok, 3600)
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, code, "login", nil, map[string]any{"CSRF": tok, "UserID": user, "Error": msg, "Next": safeNext(r.FormValue("next"))})
}

// safeNext keeps a post-sign-in destination inside the console.
func safeNext(n string) string {
	if strings.HasPrefix(n, "/console/") && !strings.HasPrefix(n, "/console//") && !strings.Contains(n, "\\") {
		return n
	}
	return "/console/"
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !c.csrfOK(r, ck.Value) {
		c.fail(w, r, nil, http.StatusForbidden, "err.csrf")
		return
	}
	id := strings.TrimSpace(r.PostFormValue("user"))
	pw := r.PostFormValue("password")
	ctx := r.Context()
	if lim := c.opts.Limiter; lim != nil {
		if wait := lim.Wait(r); wait > 0 {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			c.renderLogin(w, r, http.StatusTooManyRequests, id, tr(lang, "login.address", secs))
			return
		}
	}
	failed := func() {
		if c.opts.Limiter != nil {
			c.opts.Limiter.Failed(r)
		}
	}
	l, err := c.opts.Store.GetLogin(ctx, id)
	now := c.opts.Now()
	switch {
	case err != nil || l.PasswordHash == "" || l.User.Disabled:
		CheckPassword(dummyHash, pw)
		failed()
		c.opts.Log.Info("console sign-in refused", "user", id, "addr", r.RemoteAddr, "err", err, "disabled", l.User.Disabled)
		c.renderLogin(w, r, http.StatusUnauthorized, id, tr(lang, "login.bad"))
		return
	case now.Before(l.LockedUntil):
		c.renderLogin(w, r, http.StatusTooManyRequests, id, tr(lang, "login.locked", fmtTime(l.LockedUntil, c.opts.Location)))
		return
	case !CheckPassword(l.PasswordHash, pw):
		failed()
		locked, err := c.opts.Store.LoginFailed(ctx, id, c.opts.LockAfter, c.opts.LockFor)
		if err != nil {
			c.opts.Log.Error("console sign-in: count failure", "user", id, "err", err)
		}
		c.opts.Log.Info("console sign-in: wrong password", "user", id, "addr", r.RemoteAddr, "locked", locked)
		if locked {
			c.audit(ctx, id, "user.lock", r, nil)
			c.renderLogin(w, r, http.StatusTooManyRequests, id, tr(lang, "login.locked", fmtTime(now.Add(c.opts.LockFor), c.opts.Location)))
			return
		}
		c.renderLogin(w, r, http.StatusUnauthorized, id, tr(lang, "login.bad"))
		return
	}
	if err := c.opts.Store.LoginSucceeded(ctx, id); err != nil {
		c.fail(w, r, nil, http.StatusInternalServerError, "err.internal")
		return
	}
	tok := randomToken()
	if err := c.opts.Store.AddSession(ctx, sha256.Sum256([]byte(tok)), id, randomToken()); err != nil {
		c.opts.Log.Error("console: add session", "user", id, "err", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "err.internal")
		return
	}
	c.audit(ctx, id, "session.start", r, nil)
	c.setCookie(w, r, loginCookie, "", -1)
	c.setCookie(w, r, sessionCookie, tok, 0)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.opts.Store.EndSession(r.Context(), s.hash); err != nil {
		c.fail(w, r, s, http.StatusInternalServerError, "err.internal")
		return
	}
	c.audit(r.Context(), s.User.ID, "session.end", r, nil)
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// setLang keeps the chosen language in a cookie; it changes nothing on the hub, so it needs
// no session, only the same origin.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.fail(w, r, nil, http.StatusForbidden, "err.csrf")
		return
	}
	lang := r.PostFormValue("lang")
	if _, ok := catalogue[lang]; !ok {
		lang = "vi"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/console/", MaxAge: 365 * 86400,
		Secure: c.secure(r), SameSite: http.SameSiteLaxMode, HttpOnly: true})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) audit(ctx context.Context, actor, action string, r *http.Request, detail []byte) {
	if detail == nil {
		detail = []byte(fmt.Sprintf(`{"from":%q}`, r.RemoteAddr))
	}
	if _, err := c.opts.Store.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: action, Target: "user:" + actor, Detail: detail}); err != nil {
		c.opts.Log.Error("console audit", "action", action, "err", err)
	}
}
