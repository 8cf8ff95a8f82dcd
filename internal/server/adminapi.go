package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/store"
)

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req api.CreateTokenRequest
	if !decodeBody(w, r, api.MaxBody, &req) {
		return
	}
	now := s.cfg.Now()
	t := store.EnrollToken{ID: newID(), Labels: req.Labels, CreatedAt: now, MaxUses: req.MaxUses, Note: req.Note}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			httpError(w, http.StatusBadRequest, "expires_in %q: want a positive duration such as 24h", req.ExpiresIn)
			return
		}
		t.ExpiresAt = now.Add(d)
	}
	if req.MaxUses < 0 {
		httpError(w, http.StatusBadRequest, "max_uses %d: want 0 (unlimited) or more", req.MaxUses)
		return
	}
	secret := newSecret()
	t.SecretHash = hashSecret(secret)
	if err := s.store.CreateEnrollToken(r.Context(), t); err != nil {
		httpError(w, http.StatusInternalServerError, "create token: %v", err)
		return
	}
	out := tokenView(t)
	out.Token = api.EnrollTokenPrefix + t.ID + "_" + secret
	out.CAFingerprint = s.CAFingerprint()
	writeJSON(w, http.StatusCreated, out)
}

func tokenView(t store.EnrollToken) api.EnrollToken {
	v := api.EnrollToken{ID: t.ID, Labels: t.Labels, CreatedAt: t.CreatedAt.UTC(), MaxUses: t.MaxUses, Uses: t.Uses,
		Revoked: !t.RevokedAt.IsZero(), Note: t.Note}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC()
		v.ExpiresAt = &e
	}
	return v
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.ListEnrollTokens(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, "list tokens: %v", err)
		return
	}
	out := []api.EnrollToken{}
	for _, t := range list {
		out = append(out, tokenView(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	s.storeAction(w, s.store.RevokeEnrollToken(r.Context(), r.PathValue("id"), s.cfg.Now()))
}

func (s *Server) revokeHost(w http.ResponseWriter, r *http.Request) {
	err := s.store.RevokeHost(r.Context(), r.PathValue("id"), s.cfg.Now())
	if err == nil {
		s.log.Info("host revoked", "host", r.PathValue("id"))
	}
	s.storeAction(w, err)
}

func (s *Server) storeAction(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpError(w, http.StatusNotFound, "%v", err)
	case err != nil:
		httpError(w, http.StatusInternalServerError, "%v", err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// hostView renders a host; u may be nil when not wanted.
func (s *Server) hostView(h store.Host, u *store.HostUpdates) api.Host {
	v := api.Host{ID: h.ID, Hostname: h.Hostname, MachineID: h.MachineID, Labels: h.Labels,
		EnrolledAt: h.EnrolledAt.UTC(), Revoked: !h.RevokedAt.IsZero()}
	if !h.LastSeen.IsZero() {
		t := h.LastSeen.UTC()
		v.LastSeen = &t
	}
	v.Stale = h.LastSeen.IsZero() || s.cfg.Now().Sub(h.LastSeen) > 3*s.cfg.Interval
	if len(h.Facts) > 0 {
		var f api.Facts
		if json.Unmarshal(h.Facts, &f) == nil {
			v.Facts = &f
		}
	}
	if !h.InventoryAt.IsZero() {
		t := h.InventoryAt.UTC()
		v.InventoryAt = &t
	}
	if u != nil && u.Error == "" && !u.ComputedAt.IsZero() {
		v.Updates, v.Security = &u.Count, &u.Security
	}
	return v
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request) {
	hosts, err := s.store.ListHosts(r.Context(), store.HostFilter{IncludeRevoked: r.URL.Query().Get("revoked") == "1"})
	if err != nil {
		httpError(w, http.StatusInternalServerError, "list hosts: %v", err)
		return
	}
	out := []api.Host{}
	for _, h := range hosts {
		u, err := s.store.HostUpdates(r.Context(), h.ID)
		if err != nil {
			out = append(out, s.hostView(h, nil))
			continue
		}
		out = append(out, s.hostView(h, &u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) showHost(w http.ResponseWriter, r *http.Request) {
	h, err := s.store.Host(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeAction(w, err)
		return
	}
	u, err := s.store.HostUpdates(r.Context(), h.ID)
	if err != nil {
		writeJSON(w, http.StatusOK, s.hostView(h, nil))
		return
	}
	writeJSON(w, http.StatusOK, s.hostView(h, &u))
}

func (s *Server) hostUpdates(w http.ResponseWriter, r *http.Request) {
	h, err := s.store.Host(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeAction(w, err)
		return
	}
	out, err := s.updatesOf(r, h, r.URL.Query().Get("security") == "1")
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// updatesOf renders a host's stored updates, security ones only if asked.
func (s *Server) updatesOf(r *http.Request, h store.Host, securityOnly bool) (api.HostUpdates, error) {
	out := api.HostUpdates{HostID: h.ID, Hostname: h.Hostname, Updates: json.RawMessage("[]")}
	u, err := s.store.HostUpdates(r.Context(), h.ID)
	if errors.Is(err, store.ErrNotFound) {
		out.Error = "no inventory received yet"
		return out, nil
	}
	if err != nil {
		return out, err
	}
	t := u.ComputedAt.UTC()
	out.ComputedAt, out.Error, out.Updates = &t, u.Error, u.Updates
	if securityOnly {
		var list []detect.Update
		if err := json.Unmarshal(u.Updates, &list); err != nil {
			return out, err
		}
		sec := []detect.Update{}
		for _, x := range list {
			if x.Security {
				sec = append(sec, x)
			}
		}
		out.Updates, _ = json.Marshal(sec)
	}
	return out, nil
}

func (s *Server) listUpdates(w http.ResponseWriter, r *http.Request) {
	hosts, err := s.store.ListHosts(r.Context(), store.HostFilter{})
	if err != nil {
		httpError(w, http.StatusInternalServerError, "list hosts: %v", err)
		return
	}
	out := []api.HostUpdates{}
	for _, h := range hosts {
		u, err := s.updatesOf(r, h, r.URL.Query().Get("security") == "1")
		if err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		out = append(out, u)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	var req api.CreateJobRequest
	if !decodeBody(w, r, api.MaxBody, &req) {
		return
	}
	params, err := api.ParseJobParams(req.Kind, req.Params)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	hosts := req.Hosts
	if len(hosts) == 0 {
		all, err := s.store.ListHosts(r.Context(), store.HostFilter{})
		if err != nil {
			httpError(w, http.StatusInternalServerError, "list hosts: %v", err)
			return
		}
		for _, h := range all {
			hosts = append(hosts, h.ID)
		}
	}
	for _, id := range hosts {
		if h, err := s.store.Host(r.Context(), id); err != nil || !h.RevokedAt.IsZero() {
			httpError(w, http.StatusBadRequest, "host %q: unknown or revoked", id)
			return
		}
	}
	j := store.Job{ID: newID(), Kind: req.Kind, Params: api.Raw(params), CreatedAt: s.cfg.Now(), CreatedBy: adminOf(r)}
	if err := s.store.CreateJob(r.Context(), j, hosts); err != nil {
		httpError(w, http.StatusInternalServerError, "create job: %v", err)
		return
	}
	s.holds.wake(hosts...)
	s.writeJob(w, r, j.ID, http.StatusCreated)
}

func (s *Server) showJob(w http.ResponseWriter, r *http.Request) {
	s.writeJob(w, r, r.PathValue("id"), http.StatusOK)
}

func (s *Server) writeJob(w http.ResponseWriter, r *http.Request, id string, code int) {
	j, parts, err := s.store.Job(r.Context(), id)
	if err != nil {
		s.storeAction(w, err)
		return
	}
	out := api.JobStatus{ID: j.ID, Kind: j.Kind, CreatedAt: j.CreatedAt.UTC(), Hosts: []api.JobHostStatus{}}
	for _, p := range parts {
		v := api.JobHostStatus{HostID: p.HostID, State: p.State, Attempts: p.Attempts, Status: p.Status}
		if len(p.Result) > 0 {
			v.Result = json.RawMessage(p.Result)
		}
		if p.ResultErr != nil {
			v.Error = p.ResultErr.Error()
		}
		if !p.FinishedAt.IsZero() {
			t := p.FinishedAt.UTC()
			v.FinishedAt = &t
		}
		out.Hosts = append(out.Hosts, v)
	}
	writeJSON(w, code, out)
}
