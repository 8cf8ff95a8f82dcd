package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/detect"
	"github.com/patchloop/patchloop/internal/policy"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
)

// ringName is what a ring may be called: it is part of job keys.
var ringName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// createRollout is POST /api/v1/rollouts: it freezes the patch set from
// the hosts' missing updates now and plans the rollout (status created).
func (s *Server) createRollout(w http.ResponseWriter, r *http.Request) {
	var req api.CreateRolloutRequest
	if !decodeBody(w, r, api.MaxBody, &req) {
		return
	}
	if req.Updates == "" {
		req.Updates = api.UpdatesApproved
	}
	switch {
	case len(req.Name) > 100:
		httpError(w, http.StatusBadRequest, "name: at most 100 characters")
		return
	case req.Updates != api.UpdatesApproved && req.Updates != api.UpdatesAll && req.Updates != api.UpdatesSecurity:
		httpError(w, http.StatusBadRequest, "updates %q: want approved, all or security", req.Updates)
		return
	}
	var minAge time.Duration
	if req.MinAge != "" {
		d, err := time.ParseDuration(req.MinAge)
		if err != nil || d < 0 {
			httpError(w, http.StatusBadRequest, "min_age %q: want a duration such as 72h", req.MinAge)
			return
		}
		minAge = d
	}
	for i, ring := range req.Rings {
		if !ringName.MatchString(ring.Name) {
			httpError(w, http.StatusBadRequest, "rings[%d]: name %q: want 1 to 32 of a-z 0-9 . _ -", i, ring.Name)
			return
		}
	}
	// The install options are checked as the install jobs will be.
	if _, err := api.ParseJobParams(api.JobInstall, api.Raw(api.InstallParams{
		Packages: []apply.Pin{{Package: "probe", Version: "1"}}, LockTimeoutSeconds: req.Options.LockTimeoutSeconds})); err != nil {
		httpError(w, http.StatusBadRequest, "options: %v", err)
		return
	}
	now := s.cfg.Now()
	inputs, err := s.freezeInputs(r, req.Updates, minAge, now)
	if err != nil {
		var he httpErr
		if errors.As(err, &he) {
			httpError(w, he.code, "%s", he.msg)
			return
		}
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	// Hosts that share a list of candidates (and a target) are one input
	// of Freeze: the set depends on which candidates some host offered,
	// not on how many hosts did.
	ups := make([]rollout.HostUpdates, 0, len(inputs))
	type shared struct {
		t     rollout.Target
		first *rollout.Candidate
		n     int
	}
	given := map[shared]bool{}
	for _, in := range inputs {
		if len(in.candidates) > 0 {
			k := shared{in.target, &in.candidates[0], len(in.candidates)}
			if given[k] {
				continue
			}
			given[k] = true
		}
		ups = append(ups, rollout.HostUpdates{Host: in.host.ID, Target: in.target, Candidates: in.candidates})
	}
	set, err := rollout.Freeze(ups, minAge, now)
	if err != nil {
		httpError(w, http.StatusUnprocessableEntity, "freeze the patch set: %v", err)
		return
	}
	// Hosts of one target, inventory and set of declined packages get
	// the same pins: one list, shared (the store keeps it once).
	var hosts []rollout.Host
	same := map[string][]apply.Pin{}
	for _, in := range inputs {
		declined := slices.Sorted(maps.Keys(in.declined))
		k := strings.Join(append([]string{in.target.String(), in.host.InventoryHash}, declined...), "\x00")
		pins, ok := same[k]
		if !ok {
			skip := func(p apply.Pin) bool { return in.declined[p.Package+":"+p.Arch] }
			pins = set.HostPins(in.target, in.installed, skip)
			same[k] = pins
		}
		hosts = append(hosts, rollout.Host{ID: in.host.ID, Labels: in.host.Labels, Pins: pins})
	}
	spec := rollout.Spec{ID: newID(), SetHash: set.Hash, Rings: req.Rings, Groups: req.WindowGroups, Options: req.Options.Options}
	st, err := rollout.New(spec, hosts, now)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	// A ring that selects nothing is a selector's typo more often than a
	// plan: the rollout would go straight on to the next ring.
	for _, rs := range st.Rings {
		if rs.Hosts == 0 {
			httpError(w, http.StatusBadRequest, "ring %s selects none of the %d active hosts: check its hosts selector", rs.Name, len(hosts))
			return
		}
	}
	actor := adminOf(r)
	audit := []store.RolloutAudit{{At: now, Actor: actor, What: "create",
		Detail: fmt.Sprintf("updates %s, min age %s, %d pins in %d targets, %d left out", req.Updates, minAge, pinCount(set), len(set.Targets), len(set.Left))}}
	place := make(map[string]int, len(st.Hosts))
	for i := range st.Hosts {
		place[st.Hosts[i].ID] = i
	}
	for _, in := range inputs {
		if in.problem == "" {
			continue
		}
		if i, ok := place[in.host.ID]; ok {
			st.Hosts[i].Note = "not frozen: " + in.problem
		}
		audit = append(audit, store.RolloutAudit{At: now, Actor: "server", What: "not-frozen", Host: in.host.ID, Detail: in.problem})
	}
	for _, a := range st.Audit {
		audit = append(audit, store.RolloutAudit{At: a.At, Actor: a.Actor, What: a.What, Ring: a.Ring, Host: a.Host, Detail: a.Detail})
	}
	reqJSON, _ := json.Marshal(req)
	setJSON, _ := json.Marshal(set)
	head, err := headJSON(st)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	all := make([]int, len(st.Hosts))
	for i := range all {
		all[i] = i
	}
	refs := pinRefs{}
	rows, lists, err := hostRows(st, all, refs)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	rec := store.Rollout{ID: spec.ID, Name: req.Name, Spec: reqJSON, PatchSet: setJSON, SetHash: set.Hash, State: head,
		Status: string(st.Status), CreatedAt: now, CreatedBy: actor}
	if err := s.store.CreateRollout(r.Context(), rec, rows, lists, audit); err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	st.Audit = nil
	s.rolloutStates.Store(spec.ID, &cachedRollout{version: 1, st: st, refs: refs})
	s.log.Info("rollout created", "rollout", spec.ID, "hosts", len(st.Hosts), "pin lists", len(lists), "set", set.Hash, "by", actor)
	s.writeRollout(w, r, spec.ID, http.StatusCreated, summaryView)
}

func pinCount(set rollout.PatchSet) int {
	n := 0
	for _, t := range set.Targets {
		n += len(t.Pins)
	}
	return n
}

// httpErr is an error with the status the client should see.
type httpErr struct {
	code int
	msg  string
}

func (e httpErr) Error() string { return e.msg }

// freezeInput is one active host's part of a freeze.
type freezeInput struct {
	host       store.Host
	target     rollout.Target
	installed  []rollout.Installed
	candidates []rollout.Candidate
	declined   map[string]bool // package:arch its own baseline declines
	problem    string          // why nothing could be frozen for it
}

// freezeInputs reads every active host's facts, inventory and missing
// updates, with its baseline's decisions when updates is approved.
func (s *Server) freezeInputs(r *http.Request, updates string, minAge time.Duration, now time.Time) ([]freezeInput, error) {
	ctx := r.Context()
	var a *assessment
	if updates == api.UpdatesApproved {
		ps, err := s.store.ListPolicies(ctx)
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			return nil, httpErr{http.StatusBadRequest, "updates approved: no patch baselines are stored; apply one (patchloop policy apply) or give updates all or security"}
		}
		if a, err = s.newAssessment(r); err != nil {
			return nil, err
		}
		if err := a.forHosts(ctx, s.store); err != nil {
			return nil, err
		}
	}
	hosts, err := s.store.ListHosts(ctx, store.HostFilter{})
	if err != nil {
		return nil, err
	}
	var out []freezeInput
	memo := freezeMemo{inventories: map[string]parsedInventory{}, updates: map[string][]detect.Update{},
		candidates: map[string][]rollout.Candidate{}, refs: map[string]store.UpdateRef{}}
	if a == nil {
		refs, err := s.store.UpdateRefs(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			memo.refs[r.HostID] = r
		}
	}
	for _, h := range hosts {
		in := freezeInput{host: h, declined: map[string]bool{}}
		if err := s.hostFreezeInput(ctx, a, updates, minAge, &in, memo); err != nil {
			return nil, fmt.Errorf("host %s: %w", h.ID, err)
		}
		out = append(out, in)
	}
	return out, nil
}

// freezeMemo keeps what a freeze has parsed, by content: a fleet built
// from a few images has few distinct inventories and update lists, and
// parsing each host's copy again was most of a freeze's time.
type freezeMemo struct {
	inventories map[string]parsedInventory // by inventory hash
	updates     map[string][]detect.Update // by the stored list itself
	// candidates are the candidates of a stored list (by hash), shared
	// by the hosts that name it: Freeze and the pins then see one list.
	candidates map[string][]rollout.Candidate
	refs       map[string]store.UpdateRef // by host, for updates all and security
}

type parsedInventory struct {
	installed []rollout.Installed
	arch      string
}

func (s *Server) hostFreezeInput(ctx context.Context, a *assessment, updates string, minAge time.Duration, in *freezeInput, memo freezeMemo) error {
	h := in.host
	var facts api.Facts
	if len(h.Facts) > 0 {
		json.Unmarshal(h.Facts, &facts) // checked when stored
	}
	if h.InventoryHash == "" {
		in.problem = "no inventory received yet"
		return nil
	}
	pi, ok := memo.inventories[h.InventoryHash]
	if !ok {
		data, err := s.store.Inventory(ctx, h.InventoryHash)
		if err != nil {
			return err
		}
		var inv api.Inventory
		if err := json.Unmarshal(data, &inv); err != nil {
			return fmt.Errorf("stored inventory: %w", err)
		}
		pi = parsedInventory{installed: rollout.FromStatus(inv.InstalledPackages()), arch: inv.NativeArch}
		memo.inventories[h.InventoryHash] = pi
	}
	in.installed = pi.installed
	in.target = rollout.Target{Distro: facts.Distro, Release: facts.Release, Arch: pi.arch}
	// A version whose release date is unknown is dated when the server
	// found it missing: without a minimum age that is all Freeze needs.
	dated := func(t, seen time.Time) time.Time {
		if t.IsZero() && minAge == 0 {
			return seen
		}
		return t
	}
	if a != nil {
		hf, err := a.host(ctx, s.store, h, &findingFilter{})
		if err != nil {
			return err
		}
		if hf.Error != "" {
			in.problem = hf.Error
			return nil
		}
		for _, f := range hf.Findings {
			in.candidates = append(in.candidates, rollout.Candidate{Package: f.Package, Arch: f.Arch, Version: f.Candidate,
				Source: f.Source, SourceVersion: f.SourceVersion, Released: dated(f.Released, *hf.ComputedAt), Verdict: f.Decision.Verdict})
			if f.Decision.Verdict == policy.Declined {
				in.declined[f.Package+":"+f.Arch] = true
			}
		}
		return nil
	}
	ref, ok := memo.refs[h.ID]
	switch {
	case !ok:
		in.problem = "no detection result yet"
		return nil
	case ref.Error != "":
		in.problem = "detection failed: " + ref.Error
		return nil
	}
	// Without a minimum age, a candidate's date only needs to be known:
	// the first host's detection time dates a list shared by many. With
	// one, an unknown date stays unknown whoever found it.
	if cands, ok := memo.candidates[ref.Hash]; ok && ref.Hash != "" {
		in.candidates = cands
		return nil
	}
	data, err := updateList(ctx, s.store, ref)
	if errors.Is(err, store.ErrNotFound) { // replaced by a newer detection since the listing
		in.problem = "its detection result changed during the freeze: create the rollout again to include it"
		return nil
	}
	if err != nil {
		return err
	}
	list, ok := memo.updates[string(data)]
	if !ok {
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("stored updates: %w", err)
		}
		memo.updates[string(data)] = list
	}
	for _, x := range list {
		if updates == api.UpdatesSecurity && !x.Security {
			continue
		}
		in.candidates = append(in.candidates, rollout.Candidate{Package: x.Package, Arch: x.Arch, Version: x.Candidate,
			Source: x.Source, SourceVersion: x.SourceVersion, Released: dated(time.Time{}, ref.ComputedAt), Verdict: policy.Approved})
	}
	if ref.Hash != "" {
		memo.candidates[ref.Hash] = in.candidates
	}
	return nil
}

// listRollouts is GET /api/v1/rollouts: every rollout, newest first,
// without hosts, patch set and audit.
func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.ListRollouts(r.Context())
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := []api.Rollout{}
	for _, rec := range list {
		v, err := s.rolloutView(r.Context(), rec, rolloutViewOpts{})
		if err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// rolloutViewOpts says what a rollout's view shows besides its summary.
type rolloutViewOpts struct {
	detail  bool // the request and the patch set
	audit   bool
	members bool // the hosts, as filtered by ring, phase and host
	pins    bool // each member's pins
	ring    string
	phase   string
	host    string
}

// summaryView is what create and the commands answer: a rollout of
// 100,000 hosts has too many members to send back each time.
var summaryView = rolloutViewOpts{detail: true}

// showRollout is GET /api/v1/rollouts/{id}. Query parameters:
// members=all (default) or none; pins=false leaves each member's pins
// out (pin_count stays); audit=false leaves the audit out; ring, phase
// and host keep only the members that match.
func (s *Server) showRollout(w http.ResponseWriter, r *http.Request) {
	opts := rolloutViewOpts{detail: true, audit: true, members: true, pins: true}
	q := r.URL.Query()
	for k, vs := range q {
		v := vs[len(vs)-1]
		var bad bool
		switch k {
		case "members":
			opts.members, bad = v == "all", v != "all" && v != "none"
		case "pins", "audit":
			b, err := strconv.ParseBool(v)
			bad = err != nil
			if k == "pins" {
				opts.pins = b
			} else {
				opts.audit = b
			}
		case "ring":
			opts.ring = v
		case "phase":
			opts.phase = v
		case "host":
			opts.host = v
		default:
			httpError(w, http.StatusBadRequest, "unknown query parameter %q (members, pins, audit, ring, phase, host)", k)
			return
		}
		if bad {
			httpError(w, http.StatusBadRequest, "query parameter %s=%q: want members=all|none, pins and audit true|false", k, v)
			return
		}
	}
	s.writeRollout(w, r, r.PathValue("id"), http.StatusOK, opts)
}

func (s *Server) writeRollout(w http.ResponseWriter, r *http.Request, id string, code int, opts rolloutViewOpts) {
	rec, err := s.store.Rollout(r.Context(), id)
	if err != nil {
		s.storeAction(w, err)
		return
	}
	v, err := s.rolloutView(r.Context(), rec, opts)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, code, v)
}

// rolloutCommand is POST /api/v1/rollouts/{id}/{start|pause|resume|cancel|promote|retry|exclude};
// retry and exclude name a host in the body. A command the engine refuses
// is a 409 saying why.
func (s *Server) rolloutCommand(w http.ResponseWriter, r *http.Request) {
	cmd := rollout.EventType(r.PathValue("cmd"))
	switch cmd {
	case rollout.CommandStart, rollout.CommandPause, rollout.CommandResume, rollout.CommandCancel, rollout.CommandPromote,
		rollout.CommandRetry, rollout.CommandExclude:
	default:
		httpError(w, http.StatusNotFound, "no rollout command %q (start, pause, resume, cancel, promote, retry, exclude, rollback)", cmd)
		return
	}
	var body api.RolloutCommand
	if r.ContentLength != 0 && !decodeBody(w, r, api.MaxBody, &body) {
		return
	}
	perHost := cmd == rollout.CommandRetry || cmd == rollout.CommandExclude
	switch {
	case perHost && body.Host == "":
		httpError(w, http.StatusBadRequest, "%s: name the host (\"host\": its ID or hostname)", cmd)
		return
	case !perHost && body.Host != "":
		httpError(w, http.StatusBadRequest, "%s applies to the whole rollout: \"host\" is for retry and exclude", cmd)
		return
	}
	id := r.PathValue("id")
	if _, err := s.store.Rollout(r.Context(), id); err != nil {
		s.storeAction(w, err)
		return
	}
	if perHost {
		host, err := s.memberID(r.Context(), id, body.Host)
		if err != nil {
			httpError(w, http.StatusBadRequest, "%s: %v", cmd, err)
			return
		}
		body.Host = host
	}
	ev := rollout.Event{Type: cmd, ID: newID(), Actor: adminOf(r), Reason: body.Reason, Host: body.Host}
	_, next, err := s.stepRollout(r.Context(), id, ev)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	for _, a := range next.Audit {
		if a.What == "rejected "+string(cmd) && a.Actor == ev.Actor {
			httpError(w, http.StatusConflict, "%s: %s", cmd, a.Detail)
			return
		}
	}
	s.log.Info("rollout "+string(cmd), "rollout", id, "by", ev.Actor, "host", body.Host, "reason", body.Reason)
	s.writeRollout(w, r, id, http.StatusOK, summaryView)
}

// memberID is the ID of the rollout's member named host: by its ID, or
// by its hostname when that names one member (as the status's host
// filter reads it). A name of no member is returned as it is (the engine
// refuses it, saying so); one of several members is an error.
func (s *Server) memberID(ctx context.Context, id, host string) (string, error) {
	l, err := s.loadRollout(ctx, id)
	if err != nil {
		return "", err
	}
	if _, ok := l.st.Lookup(host); ok {
		return host, nil
	}
	names, err := s.hostnames(ctx)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, h := range l.st.Hosts {
		if names[h.ID] == host {
			ids = append(ids, h.ID)
		}
	}
	switch len(ids) {
	case 0:
		return host, nil
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("hostname %s names %d hosts of this rollout (%s): give the host's ID", host, len(ids), strings.Join(ids, ", "))
}

// rolloutView renders a rollout as opts say.
func (s *Server) rolloutView(ctx context.Context, rec store.Rollout, opts rolloutViewOpts) (api.Rollout, error) {
	head, legacy, err := readHead(rec)
	if err != nil {
		return api.Rollout{}, err
	}
	v := api.Rollout{ID: rec.ID, Name: rec.Name, Status: string(head.Status), Reason: head.Reason, SetHash: rec.SetHash,
		Version: rec.Version, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy, UpdatedAt: rec.UpdatedAt,
		Hosts: map[string]int{}, Unassigned: head.Unassigned}
	if head.Ring < len(head.Rings) {
		v.Ring = head.Rings[head.Ring].Name
	}
	for _, rs := range head.Rings {
		v.Rings = append(v.Rings, api.RolloutRing{RingState: rs})
	}
	if legacy { // stored before rollout_hosts
		for _, h := range head.Hosts {
			v.Hosts[string(h.Phase)]++
		}
	} else {
		phases, err := s.store.RolloutPhases(ctx, rec.ID)
		if err != nil {
			return v, err
		}
		v.Hosts = phases
	}
	if opts.detail {
		var req api.CreateRolloutRequest
		if err := json.Unmarshal(rec.Spec, &req); err == nil {
			v.Request = &req
		}
		var set rollout.PatchSet
		if err := json.Unmarshal(rec.PatchSet, &set); err != nil {
			return v, fmt.Errorf("stored patch set of rollout %s: %w", rec.ID, err)
		}
		if err := set.Verify(); err != nil {
			return v, fmt.Errorf("rollout %s: %w", rec.ID, err)
		}
		v.PatchSet = &set
	}
	if opts.audit {
		audit, err := s.store.RolloutAudit(ctx, rec.ID)
		if err != nil {
			return v, err
		}
		for _, a := range audit {
			v.Audit = append(v.Audit, api.RolloutAudit{Seq: a.Seq, At: a.At, Actor: a.Actor, What: a.What, Ring: a.Ring, Host: a.Host, Detail: a.Detail})
		}
	}
	if opts.members {
		if err := s.rolloutMembers(ctx, rec.ID, &v, opts); err != nil {
			return v, err
		}
	}
	return v, nil
}

// rolloutMembers adds the hosts opts selects to their rings in v.
func (s *Server) rolloutMembers(ctx context.Context, id string, v *api.Rollout, opts rolloutViewOpts) error {
	l, err := s.loadRollout(ctx, id)
	if err != nil {
		return err
	}
	st := l.st
	jobs, err := s.store.RolloutJobs(ctx, id)
	if err != nil {
		return err
	}
	byHost := map[string][]store.RolloutJobRef{}
	for _, j := range jobs {
		byHost[j.HostJob.HostID] = append(byHost[j.HostJob.HostID], j)
	}
	names, err := s.hostnames(ctx)
	if err != nil {
		return err
	}
	for _, h := range st.Hosts {
		if (opts.ring != "" && st.Rings[h.Ring].Name != opts.ring) || (opts.phase != "" && string(h.Phase) != opts.phase) ||
			(opts.host != "" && h.ID != opts.host && names[h.ID] != opts.host) {
			continue
		}
		hv := api.RolloutHost{ID: h.ID, Hostname: names[h.ID], Phase: h.Phase, Wave: h.Wave, PinCount: len(h.Pins),
			RebootPending: h.RebootPending, Note: h.Note}
		if opts.pins {
			hv.Pins = nonNil(h.Pins)
		}
		if !h.Finished.IsZero() {
			t := h.Finished
			hv.Finished = &t
		}
		byKey := map[string]store.RolloutJobRef{}
		for _, rj := range byHost[h.ID] {
			byKey[rj.Key] = rj
		}
		seen := map[string]bool{}
		for _, j := range h.Jobs {
			jv := api.RolloutJob{Kind: string(j.Kind), Key: j.Key, Dispatched: j.Dispatched, Result: j.Result, Reason: j.Reason, Retried: j.Retried}
			if rj, ok := byKey[j.Key]; ok {
				jv.JobID = rj.HostJob.JobID
				fillJob(&jv, rj)
			}
			seen[j.Key] = true
			hv.Jobs = append(hv.Jobs, jv)
		}
		for _, rj := range byHost[h.ID] { // plans and manual rollbacks
			if seen[rj.Key] {
				continue
			}
			jv := api.RolloutJob{Kind: extraKind(rj), Key: rj.Key, JobID: rj.HostJob.JobID, Dispatched: rj.CreatedAt}
			fillJob(&jv, rj)
			hv.Jobs = append(hv.Jobs, jv)
		}
		v.Rings[h.Ring].Members = append(v.Rings[h.Ring].Members, hv)
	}
	return nil
}

// extraKind names a job the engine did not dispatch by its key's end,
// without the "#n" of a rollback by hand of a retried host's install.
func extraKind(rj store.RolloutJobRef) string {
	kind := rj.Key[strings.LastIndex(rj.Key, "/")+1:]
	return strings.TrimSuffix(kind, again(kind))
}

func (s *Server) hostnames(ctx context.Context) (map[string]string, error) {
	hosts, err := s.store.ListHosts(ctx, store.HostFilter{IncludeRevoked: true})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, h := range hosts {
		names[h.ID] = h.Hostname
	}
	return names, nil
}

// logExcerpt is how much of a job's log a rollout's status shows.
const logExcerpt = 2 << 10

// fillJob adds the queue's state and the agent's result to a job view.
func fillJob(jv *api.RolloutJob, rj store.RolloutJobRef) {
	hj := rj.HostJob
	jv.State, jv.Attempts, jv.Status = hj.State, hj.Attempts, hj.Status
	if !hj.FinishedAt.IsZero() {
		t := hj.FinishedAt
		jv.Finished = &t
	}
	if hj.State != store.JobDone {
		return
	}
	if hj.ResultErr != nil {
		jv.Error = hj.ResultErr.Error()
		return
	}
	var res api.JobResult
	if json.Unmarshal(hj.Result, &res) != nil {
		return
	}
	jv.Error = res.Error
	var cr struct {
		api.InstallResult
		Required *bool `json:"required"` // a reboot's
	}
	if json.Unmarshal(res.Result, &cr) != nil {
		return
	}
	ir := cr.InstallResult
	if rj.Kind == api.JobInstall || rj.Kind == api.JobRollback {
		jv.Packages, jv.Duration = ir.Packages, ir.DurationMS
		code := ir.ExitCode
		jv.ExitCode = &code
		if len(ir.Log) > logExcerpt {
			ir.Log = "…" + ir.Log[len(ir.Log)-logExcerpt:]
		}
		jv.Log = ir.Log
	}
	if rj.Kind == api.JobInstall {
		healthy := ir.Healthy
		jv.Healthy, jv.Health, jv.Reboot = &healthy, ir.Health, ir.Reboot
	}
}
