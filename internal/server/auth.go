package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/store"
)

// splitCredential splits PREFIX+ID_SECRET.
func splitCredential(s, prefix string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(s, prefix)
	if !found {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	return id, secret, ok && id != "" && secret != ""
}

func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(v, "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(tok)
}

type hostKey struct{}

// agent wraps a handler for agents: it requires a valid, unrevoked host
// credential. Admin tokens are refused here, and host credentials on the
// admin API.
func (s *Server) agent(h func(http.ResponseWriter, *http.Request, store.Host)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := splitCredential(bearer(r), api.HostSecretPrefix)
		if !ok {
			s.metrics.authFailures.WithLabelValues("agent").Inc()
			httpError(w, http.StatusUnauthorized, "need a host credential (Authorization: Bearer %s...)", api.HostSecretPrefix)
			return
		}
		host, err := s.store.Host(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.metrics.authFailures.WithLabelValues("agent").Inc()
			httpError(w, http.StatusUnauthorized, "unknown host credential")
			return
		case err != nil:
			httpError(w, http.StatusInternalServerError, "look up host: %v", err)
			return
		}
		if subtle.ConstantTimeCompare(host.SecretHash, hashSecret(secret)) != 1 {
			s.metrics.authFailures.WithLabelValues("agent").Inc()
			httpError(w, http.StatusUnauthorized, "wrong host credential")
			return
		}
		if !host.RevokedAt.IsZero() {
			s.metrics.authFailures.WithLabelValues("agent").Inc()
			httpError(w, http.StatusForbidden, "host %s was revoked at %s; enroll again with a new token", host.ID, host.RevokedAt.UTC().Format("2006-01-02T15:04:05Z"))
			return
		}
		h(w, r, host)
	}
}

type adminKey struct{}

// admin wraps a handler for the admin API. The handler finds the admin
// token used in the request's context (adminOf).
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := s.checkAdmin(r.Context(), bearer(r))
		if err != nil {
			s.metrics.authFailures.WithLabelValues("admin").Inc()
			httpError(w, http.StatusUnauthorized, "%v", err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, t)))
	}
}

// adminOf names the admin token of an admin request, for the record of
// who changed what: "NAME (ID)".
func adminOf(r *http.Request) string {
	t, _ := r.Context().Value(adminKey{}).(store.AdminToken)
	return fmt.Sprintf("%s (%s)", t.Name, t.ID)
}

func (s *Server) checkAdmin(ctx context.Context, tok string) (store.AdminToken, error) {
	id, secret, ok := splitCredential(tok, api.AdminTokenPrefix)
	if !ok {
		return store.AdminToken{}, fmt.Errorf("need an admin token (Authorization: Bearer %s...)", api.AdminTokenPrefix)
	}
	t, err := s.store.AdminToken(ctx, id)
	if err != nil {
		return store.AdminToken{}, errors.New("unknown admin token")
	}
	if subtle.ConstantTimeCompare(t.SecretHash, hashSecret(secret)) != 1 {
		return store.AdminToken{}, errors.New("wrong admin token")
	}
	if !t.RevokedAt.IsZero() {
		return store.AdminToken{}, errors.New("admin token revoked")
	}
	t.SecretHash = nil
	return t, nil
}

// httpError writes a JSON error body with a one-line reason.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decodeBody checks the content type and decodes a JSON body of at most
// limit bytes, answering 415 or 400 itself; it reports whether to go on.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if !jsonBody(w, r, limit) {
		return false
	}
	if err := api.Decode(r.Body, limit, v); err != nil {
		code := http.StatusBadRequest
		if strings.Contains(err.Error(), "larger than") {
			code = http.StatusRequestEntityTooLarge
		}
		httpError(w, code, "%v", err)
		return false
	}
	return true
}

// jsonBody checks the content type and declared length of a JSON body of
// at most limit bytes, answering 415 or 413 itself.
func jsonBody(w http.ResponseWriter, r *http.Request, limit int64) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(mt) != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json, got %q", ct)
		return false
	}
	if r.ContentLength > limit {
		httpError(w, http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, limit)
		return false
	}
	return true
}

// readBody reads a JSON body of at most limit bytes as jsonBody checks it,
// answering 415, 413 or 400 itself.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if !jsonBody(w, r, limit) {
		return nil, false
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // (ReadFrom reads on until EOF)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	b := buf.Bytes()
	switch {
	case err != nil:
		httpError(w, http.StatusBadRequest, "reading the body: %v", err)
		return nil, false
	case int64(len(b)) > limit:
		httpError(w, http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		return nil, false
	}
	return b, true
}
