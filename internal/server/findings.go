package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/advisory"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/intel"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/store"
)

// findingFilter selects findings; the zero value selects all.
type findingFilter struct {
	host        string // ID or hostname
	cve         string
	kev         *bool
	overdue     *bool
	minSeverity assess.Severity
	decision    policy.Verdict
}

// findingParams are the query parameters of the findings endpoints;
// "severity>" makes the literal "?severity>=high" work.
var findingParams = []string{"host", "cve", "kev", "overdue", "min_severity", "severity>", "decision"}

func parseFindingFilter(q url.Values) (findingFilter, error) {
	var f findingFilter
	m, err := queryParams(q, findingParams...)
	if err != nil {
		return f, err
	}
	f.host = m["host"]
	if v, ok := m["cve"]; ok {
		if !advisory.IsCVE(strings.ToUpper(v)) {
			return f, fmt.Errorf("cve %q: not a CVE ID such as CVE-2024-3094", v)
		}
		f.cve = strings.ToUpper(v)
	}
	for _, b := range []struct {
		key string
		dst **bool
	}{{"kev", &f.kev}, {"overdue", &f.overdue}} {
		if v, ok := m[b.key]; ok {
			x, err := strconv.ParseBool(v)
			if err != nil {
				return f, fmt.Errorf("%s %q: want true or false", b.key, v)
			}
			*b.dst = &x
		}
	}
	sev, ok := m["min_severity"]
	if alt, ok2 := m["severity>"]; ok2 {
		if ok {
			return f, errors.New("min_severity and severity>= given both")
		}
		sev, ok = alt, true
	}
	if ok {
		if f.minSeverity, err = assess.ParseSeverity(sev); err != nil || f.minSeverity == assess.SeverityNone {
			return f, fmt.Errorf("min_severity %q: want low, medium, high or critical", sev)
		}
	}
	if v, ok := m["decision"]; ok {
		switch d := policy.Verdict(v); d {
		case policy.Approved, policy.Pending, policy.Declined:
			f.decision = d
		default:
			return f, fmt.Errorf("decision %q: want approved, pending or declined", v)
		}
	}
	return f, nil
}

func (f *findingFilter) selects(x *api.Finding) bool {
	switch {
	case f.cve != "" && !x.HasCVE(f.cve),
		f.kev != nil && x.KEV != *f.kev,
		f.overdue != nil && x.Overdue != *f.overdue,
		x.Severity < f.minSeverity,
		f.decision != "" && x.Decision.Verdict != f.decision:
		return false
	}
	return true
}

// assessment is what a request computes once for all the hosts it shows.
type assessment struct {
	now time.Time
	set *policy.Set
	as  *intel.Assessor
	// refs, once forHosts read them, name each host's stored list of
	// updates; lists keeps each list decoded once, by hash, for all the
	// hosts that name it (hosts of one image share theirs).
	refs  map[string]store.UpdateRef
	lists map[string][]intel.Update
}

// forHosts prepares a request about many hosts: every host's detection
// result is named in one read, and each distinct list decoded once.
func (a *assessment) forHosts(ctx context.Context, st store.Store) error {
	refs, err := st.UpdateRefs(ctx)
	if err != nil {
		return err
	}
	a.refs, a.lists = make(map[string]store.UpdateRef, len(refs)), map[string][]intel.Update{}
	for _, r := range refs {
		a.refs[r.HostID] = r
	}
	return nil
}

// updateList reads the list of updates ref names: by hash, or inline in
// the host's detection result for a list stored before update_lists.
func updateList(ctx context.Context, st store.Store, ref store.UpdateRef) ([]byte, error) {
	if ref.Hash != "" {
		return st.UpdateList(ctx, ref.Hash)
	}
	u, err := st.HostUpdates(ctx, ref.HostID)
	return u.Updates, err
}

// updates is a host's detection result and its decoded list (none when
// the detection failed); ErrNotFound when it has none.
func (a *assessment) updates(ctx context.Context, st store.Store, hostID string) (store.UpdateRef, []intel.Update, error) {
	ref, ok := a.refs[hostID]
	if a.refs != nil && !ok {
		return ref, nil, store.ErrNotFound
	}
	if ok && ref.Error != "" {
		return ref, nil, nil
	}
	if ups, cached := a.lists[ref.Hash]; ok && ref.Hash != "" && cached {
		return ref, ups, nil
	}
	var data []byte
	if ok && ref.Hash != "" {
		var err error
		data, err = st.UpdateList(ctx, ref.Hash)
		switch {
		case errors.Is(err, store.ErrNotFound): // replaced and pruned since the listing
			ok = false
		case err != nil:
			return ref, nil, err
		}
	}
	if data == nil { // one host, a list stored inline before update_lists, or replaced
		u, err := st.HostUpdates(ctx, hostID)
		if err != nil {
			return ref, nil, err
		}
		ref, ok = store.UpdateRef{HostID: hostID, ComputedAt: u.ComputedAt, Basis: u.Basis, Error: u.Error}, false
		if u.Error != "" {
			return ref, nil, nil
		}
		data = u.Updates
	}
	var ups []intel.Update
	if err := json.Unmarshal(data, &ups); err != nil {
		return ref, nil, fmt.Errorf("stored updates of host %s: %w", hostID, err)
	}
	if ok && ref.Hash != "" {
		a.lists[ref.Hash] = ups
	}
	return ref, ups, nil
}

func (s *Server) newAssessment(r *http.Request) (*assessment, error) {
	set, err := s.policySet(r)
	if err != nil {
		return nil, err
	}
	return &assessment{now: s.cfg.Now(), set: set, as: s.assessor()}, nil
}

// host assesses a host's stored updates. A host without a usable
// detection result comes back with Error set and no findings.
func (a *assessment) host(ctx context.Context, st store.Store, h store.Host, f *findingFilter) (api.HostFindings, error) {
	out := api.HostFindings{HostID: h.ID, Hostname: h.Hostname, Findings: []api.Finding{}}
	if b := a.set.For(h.Labels); b != nil {
		out.Baseline = b.Name
	}
	u, ups, err := a.updates(ctx, st, h.ID)
	if errors.Is(err, store.ErrNotFound) {
		out.Error = "no inventory received yet"
		return out, nil
	}
	if err != nil {
		return out, err
	}
	t := u.ComputedAt.UTC()
	out.ComputedAt = &t
	if u.Error != "" {
		out.Error = "detection failed: " + u.Error
		return out, nil
	}
	var facts api.Facts
	if len(h.Facts) > 0 {
		json.Unmarshal(h.Facts, &facts) // checked when stored
	}
	rel := intel.Release{Distro: facts.Distro, Version: facts.Release, Codename: facts.Codename}
	items, err := a.as.Assess(rel, h.Hostname, h.Labels, ups, a.set, a.now)
	if err != nil {
		// A criticality the risk score does not know: weigh the host as
		// medium, and decide with its labels as they are.
		out.Warning = err.Error() + "; risk weighed as for criticality medium"
		weigh := map[string]string{}
		for k, v := range h.Labels {
			if k != assess.LabelCriticality {
				weigh[k] = v
			}
		}
		if items, err = a.as.Assess(rel, h.Hostname, weigh, ups, nil, a.now); err != nil {
			return out, err
		}
		for i := range items {
			d := a.set.Decide(&items[i].Finding.Finding, h.Labels, a.now)
			items[i].Decision = &d
		}
	}
	for _, it := range items {
		fd := it.Finding
		v := api.Finding{Finding: fd.Finding, Evidence: fd.Evidence, Notes: fd.Notes, KEV: fd.HasKEV(),
			Severity: fd.MaxSeverity(), Risk: it.Risk, Decision: *it.Decision}
		for _, c := range fd.CVEs {
			v.Overdue = v.Overdue || (c.KEV != nil && c.KEV.Overdue(a.now))
		}
		if f.selects(&v) {
			out.Findings = append(out.Findings, v)
		}
	}
	return out, nil
}

// listFindings is GET /api/v1/findings: the hosts with at least one
// finding the filters select.
func (s *Server) listFindings(w http.ResponseWriter, r *http.Request) {
	f, err := parseFindingFilter(r.URL.Query())
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	hosts, err := s.store.ListHosts(r.Context(), store.HostFilter{})
	if err != nil {
		httpError(w, http.StatusInternalServerError, "list hosts: %v", err)
		return
	}
	if f.host != "" {
		var one []store.Host
		for _, h := range hosts {
			if h.ID == f.host || h.Hostname == f.host {
				one = append(one, h)
			}
		}
		if len(one) == 0 {
			httpError(w, http.StatusNotFound, "host %q: no active host has this ID or hostname", f.host)
			return
		}
		hosts = one
	}
	a, err := s.newAssessment(r)
	if err == nil && len(hosts) > 1 {
		err = a.forHosts(r.Context(), s.store)
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := api.Findings{AssessedAt: a.now.UTC(), Hosts: []api.HostFindings{}}
	for _, h := range hosts {
		hf, err := a.host(r.Context(), s.store, h, &f)
		switch {
		case err != nil:
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		case hf.Error != "":
			out.Unassessed = append(out.Unassessed, hf)
		case len(hf.Findings) > 0:
			out.Hosts = append(out.Hosts, hf)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// hostFindings is GET /api/v1/hosts/{id}/findings.
func (s *Server) hostFindings(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("host") {
		httpError(w, http.StatusBadRequest, "query parameter \"host\": the host is the one in the path")
		return
	}
	f, err := parseFindingFilter(r.URL.Query())
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	h, err := s.store.Host(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeAction(w, err)
		return
	}
	a, err := s.newAssessment(r)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	hf, err := a.host(r.Context(), s.store, h, &f)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, hf)
}

// listFeeds is GET /api/v1/feeds: the provenance of each feed in service.
func (s *Server) listFeeds(w http.ResponseWriter, r *http.Request) {
	out := []api.Feed{}
	out = append(out, s.cfg.Intel.Status()...)
	writeJSON(w, http.StatusOK, out)
}

// RunFeeds refreshes the advisory feeds every interval until ctx ends.
// Findings are computed when asked for, so nothing else needs redoing.
func (s *Server) RunFeeds(ctx context.Context, every time.Duration) {
	if s.cfg.Intel == nil || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.cfg.Intel.Refresh(ctx); err != nil {
			s.log.Warn("feed refresh", "err", err)
		}
	}
}
