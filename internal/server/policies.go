package server

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/store"
)

// policyName is what a stored baseline may be called: it is a path
// segment and, with ".yaml", the file name its errors and decisions name.
var policyName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// policyFile is the file name policy errors and decisions name.
func policyFile(name string) string { return name + ".yaml" }

// yamlTypes are the Content-Types a policy PUT accepts.
var yamlTypes = map[string]bool{"application/yaml": true, "application/x-yaml": true, "text/yaml": true, "text/x-yaml": true}

// putPolicy validates a baseline with package policy and stores it;
// ?dry_run=true only validates, ?priority=N orders it in the set.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !policyName.MatchString(name) {
		httpError(w, http.StatusBadRequest, "policy name %q: want 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		return
	}
	q, err := queryParams(r.URL.Query(), "priority", "dry_run")
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	prio, dryRun := -1, false
	if v, ok := q["priority"]; ok {
		if prio, err = strconv.Atoi(v); err != nil || prio < 0 || prio > 1_000_000 {
			httpError(w, http.StatusBadRequest, "priority %q: want a whole number from 0 to 1000000", v)
			return
		}
	}
	if v, ok := q["dry_run"]; ok {
		if dryRun, err = strconv.ParseBool(v); err != nil {
			httpError(w, http.StatusBadRequest, "dry_run %q: want true or false", v)
			return
		}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); !yamlTypes[mt] {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/yaml, got %q", ct)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, api.MaxPolicyBody+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "read body: %v", err)
		return
	}
	if len(data) > api.MaxPolicyBody {
		httpError(w, http.StatusRequestEntityTooLarge, "policy larger than %d bytes", api.MaxPolicyBody)
		return
	}
	b, err := policy.Parse(policyFile(name), data)
	if err != nil {
		policyError(w, err)
		return
	}
	if b.Name != name {
		httpError(w, http.StatusBadRequest, "%s:%d: name %q differs from %q in the path", policyFile(name), b.Line, b.Name, name)
		return
	}
	p := store.Policy{Name: name, Source: data, Priority: prio, UpdatedAt: s.cfg.Now(), UpdatedBy: adminOf(r)}
	if dryRun {
		if old, err := s.store.Policy(r.Context(), name); err == nil && prio < 0 {
			p.Priority = old.Priority
		} else if prio < 0 {
			p.Priority = store.DefaultPolicyPriority
		}
		out := api.PolicyPut{Policy: policyView(p, b, true), DryRun: true}
		writeJSON(w, http.StatusOK, out)
		return
	}
	stored, changed, err := s.store.PutPolicy(r.Context(), p)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if changed {
		s.log.Info("policy stored", "policy", name, "version", stored.Version, "by", p.UpdatedBy)
	}
	code := http.StatusOK
	if changed && stored.Version == 1 {
		code = http.StatusCreated
	}
	writeJSON(w, code, api.PolicyPut{Policy: policyView(stored, b, true), Changed: changed})
}

// policyError answers 400 with every problem policy.Parse found, each
// "file:line: message"; the one-line error names the first.
func policyError(w http.ResponseWriter, err error) {
	var details []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			details = append(details, e.Error())
		}
	} else {
		details = strings.Split(err.Error(), "\n")
	}
	msg := details[0]
	if len(details) > 1 {
		msg = fmt.Sprintf("%s (and %d more problems)", msg, len(details)-1)
	}
	writeJSON(w, http.StatusBadRequest, api.Error{Error: msg, Details: details})
}

// policyView renders a stored policy; b, when not nil, is it parsed.
func policyView(p store.Policy, b *policy.Baseline, withSource bool) api.Policy {
	v := api.Policy{Name: p.Name, Priority: p.Priority, Version: p.Version, CreatedAt: p.CreatedAt.UTC(),
		UpdatedAt: p.UpdatedAt.UTC(), UpdatedBy: p.UpdatedBy}
	if b != nil {
		v.Description = b.Description
	}
	if withSource {
		v.Source = string(p.Source)
	}
	return v
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.ListPolicies(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := []api.Policy{}
	for _, p := range list {
		b, _ := policy.Parse(policyFile(p.Name), p.Source)
		out = append(out, policyView(p, b, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) showPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.store.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		s.storeAction(w, err)
		return
	}
	b, _ := policy.Parse(policyFile(p.Name), p.Source)
	writeJSON(w, http.StatusOK, policyView(p, b, true))
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	err := s.store.DeletePolicy(r.Context(), r.PathValue("name"))
	if err == nil {
		s.log.Info("policy deleted", "policy", r.PathValue("name"), "by", adminOf(r))
	}
	s.storeAction(w, err)
}

// policySet parses the stored baselines in their order (priority, then
// name): the first whose selector matches a host is its baseline.
func (s *Server) policySet(r *http.Request) (*policy.Set, error) {
	list, err := s.store.ListPolicies(r.Context())
	if err != nil {
		return nil, err
	}
	files := make([]policy.File, len(list))
	for i, p := range list {
		files[i] = policy.File{Name: policyFile(p.Name), Data: p.Source}
	}
	set, err := policy.ParseSet(files)
	if err != nil {
		return nil, fmt.Errorf("stored policies: %w", err)
	}
	return set, nil
}

// queryParams returns the query's parameters, refusing unknown ones and
// ones given twice, so that a misspelt filter is an error, not ignored.
func queryParams(q url.Values, known ...string) (map[string]string, error) {
	out := map[string]string{}
	for k, vs := range q {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return nil, fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
		out[k] = vs[0]
	}
	return out, nil
}
