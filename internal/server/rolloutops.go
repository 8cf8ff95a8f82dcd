package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
)

// Job kinds of a rollout's own, outside the engine: their keys end in
// these (rollout.Key with them as the kind).
const (
	planKind           = "plan"
	manualRollbackKind = "manual-rollback"
)

// rolloutPlan is GET /api/v1/rollouts/{id}/plan. The first call queues a
// plan job (apt-get -s of the host's pins) for every host with pins;
// every call collects the answers so far. A plan is shown refused when
// the install would refuse it.
func (s *Server) rolloutPlan(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		httpError(w, http.StatusBadRequest, "the plan takes no query parameters")
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	l, err := s.loadRollout(ctx, id)
	if err != nil {
		s.storeAction(w, err)
		return
	}
	rec, st := l.rec, l.st
	var req api.CreateRolloutRequest
	if err := json.Unmarshal(rec.Spec, &req); err != nil {
		httpError(w, http.StatusInternalServerError, "stored request of rollout %s: %v", id, err)
		return
	}
	have, err := s.rolloutJobsByKey(r, id)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	now := s.cfg.Now()
	var jobs []store.RolloutJob
	refs, stored := pinRefs{}, map[string]bool{}
	for _, h := range st.Hosts {
		ring := st.Rings[h.Ring].Name
		key := rollout.Key(id, ring, h.ID, planKind)
		if len(h.Pins) == 0 || have[key].Key != "" {
			continue
		}
		// Hosts of a ring with the same pins share a plan job.
		j := store.RolloutJob{Key: key, HostID: h.ID, Ring: ring,
			Job: store.Job{ID: sharedJobID(id, ring, planKind, refs.ref(h.Pins)), Kind: api.JobPlan, CreatedAt: now, CreatedBy: "rollout " + id}}
		if !stored[j.Job.ID] {
			stored[j.Job.ID], j.Job.Params = true, api.Raw(api.PlanParams{Packages: h.Pins})
		}
		jobs = append(jobs, j)
	}
	if len(jobs) > 0 {
		audit := []store.RolloutAudit{{At: now, Actor: adminOf(r), What: "plan", Detail: fmt.Sprintf("plan jobs for %d hosts", len(jobs))}}
		if _, err := s.queueRolloutJobs(ctx, id, jobs, audit); err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		if have, err = s.rolloutJobsByKey(r, id); err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	names, err := s.hostnames(ctx)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := api.RolloutPlan{RolloutID: id, Complete: true, Hosts: []api.RolloutHostPlan{}}
	for _, h := range st.Hosts {
		key := rollout.Key(id, st.Rings[h.Ring].Name, h.ID, planKind)
		rj, ok := have[key]
		if !ok {
			continue
		}
		hp := api.RolloutHostPlan{HostID: h.ID, Hostname: names[h.ID], Ring: st.Rings[h.Ring].Name, JobID: rj.HostJob.JobID,
			State: rj.HostJob.State, Pins: h.Pins, Status: rj.HostJob.Status}
		if rj.HostJob.State != store.JobDone {
			out.Complete = false
		} else if err := rj.HostJob.ResultErr; err != nil {
			hp.Error = err.Error()
		} else {
			readPlan(&hp, rj.HostJob.Result, req.Options.AllowRemovals)
		}
		out.Hosts = append(out.Hosts, hp)
	}
	writeJSON(w, http.StatusOK, out)
}

// readPlan reads a plan job's result and judges it as Install would.
func readPlan(hp *api.RolloutHostPlan, result []byte, allowRemovals bool) {
	var res api.JobResult
	if err := json.Unmarshal(result, &res); err != nil {
		hp.Error = "unreadable result: " + err.Error()
		return
	}
	hp.Error = res.Error
	var plan apply.InstallPlan
	if len(res.Result) == 0 || json.Unmarshal(res.Result, &plan) != nil {
		return
	}
	hp.Plan = &plan
	var why []string
	if plan.Removes && !allowRemovals {
		var gone []string
		for _, c := range plan.Changes {
			if c.Kind == apply.Remove {
				gone = append(gone, c.Package)
			}
		}
		why = append(why, "removes "+strings.Join(gone, ", ")+" (the rollout does not allow removals)")
	}
	if plan.Downgrades {
		why = append(why, "downgrades packages")
	}
	if len(plan.ChangesHeld) > 0 {
		why = append(why, "changes held packages "+strings.Join(plan.ChangesHeld, ", "))
	}
	hp.Refused = strings.Join(why, "; ")
}

func (s *Server) rolloutJobsByKey(r *http.Request, id string) (map[string]store.RolloutJobRef, error) {
	jobs, err := s.store.RolloutJobs(r.Context(), id)
	if err != nil {
		return nil, err
	}
	m := map[string]store.RolloutJobRef{}
	for _, j := range jobs {
		m[j.Key] = j
	}
	return m, nil
}

// rolloutRollback is POST /api/v1/rollouts/{id}/rollback: queue a
// rollback of the install of one host, of a ring's hosts or of every
// host, for hosts whose install kept a rollback record. The rollout must
// not be running (pause or cancel it first). A host is rolled back by
// hand at most once.
func (s *Server) rolloutRollback(w http.ResponseWriter, r *http.Request) {
	var req api.RolloutRollbackRequest
	if !decodeBody(w, r, api.MaxBody, &req) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	l, err := s.loadRollout(ctx, id)
	if err != nil {
		s.storeAction(w, err)
		return
	}
	st := l.st
	if st.Status == rollout.StatusRunning || st.Status == rollout.StatusCreated {
		httpError(w, http.StatusConflict, "rollout is %s: pause or cancel it before rolling back", st.Status)
		return
	}
	ringOK, hostOK := req.Ring == "", req.Host == ""
	for _, rs := range st.Rings {
		ringOK = ringOK || rs.Name == req.Ring
	}
	for _, h := range st.Hosts {
		hostOK = hostOK || h.ID == req.Host
	}
	if !ringOK || !hostOK {
		httpError(w, http.StatusNotFound, "rollout %s has no ring %q or no host %q", id, req.Ring, req.Host)
		return
	}
	have, err := s.rolloutJobsByKey(r, id)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	now, actor := s.cfg.Now(), adminOf(r)
	out := api.RolloutRollback{Queued: []api.RolloutRollbackHost{}, Skipped: []api.RolloutRollbackHost{}}
	var (
		jobs  []store.RolloutJob
		audit []store.RolloutAudit
	)
	for _, h := range st.Hosts {
		ring := st.Rings[h.Ring].Name
		if (req.Ring != "" && ring != req.Ring) || (req.Host != "" && h.ID != req.Host) {
			continue
		}
		one := api.RolloutRollbackHost{HostID: h.ID, Ring: ring}
		// The host's last install that was not withdrawn: after a retry
		// (install#2) a host may be rolled back by hand once more, under
		// a key of that install's (manual-rollback#2).
		install := rollout.Key(id, ring, h.ID, rollout.JobInstall)
		if j, ok := h.LastRun(rollout.JobInstall); ok {
			install = j.Key
		}
		key := rollout.Key(id, ring, h.ID, manualRollbackKind) + again(install)
		if why := rollbackBlocked(h, have[install], have[key]); why != "" {
			one.Reason = why
			out.Skipped = append(out.Skipped, one)
			continue
		}
		raw := api.Raw(api.RollbackParams{InstallJob: have[install].HostJob.JobID})
		one.JobID = rolloutJobID(key)
		jobs = append(jobs, store.RolloutJob{Key: key, HostID: h.ID, Ring: ring,
			Job: store.Job{ID: one.JobID, Kind: api.JobRollback, Params: raw, CreatedAt: now, CreatedBy: actor}})
		audit = append(audit, store.RolloutAudit{At: now, Actor: actor, What: "rollback", Ring: ring, Host: h.ID, Detail: req.Reason})
		out.Queued = append(out.Queued, one)
	}
	if len(jobs) > 0 {
		if _, err := s.queueRolloutJobs(ctx, id, jobs, audit); err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		s.log.Info("rollout rollback", "rollout", id, "hosts", len(jobs), "by", actor)
	}
	writeJSON(w, http.StatusOK, out)
}

// rollbackBlocked says why a host cannot be rolled back by hand ("" if
// it can): its install must have run and kept a record, and it must not
// be rolled back already.
func rollbackBlocked(h *rollout.HostState, install, manual store.RolloutJobRef) string {
	switch {
	case manual.Key != "":
		return "rolled back by hand already (job " + manual.HostJob.JobID + ", " + manual.HostJob.State + ")"
	case h.Phase == rollout.PhaseRolledBack || h.Phase == rollout.PhaseRollingBack:
		return "rolled back by the rollout (" + string(h.Phase) + ")"
	case install.Key == "":
		return "nothing installed (" + string(h.Phase) + ")"
	case install.HostJob.State != store.JobDone:
		return "install still running (" + install.HostJob.State + ")"
	case install.HostJob.ResultErr != nil:
		return "the install's " + install.HostJob.ResultErr.Error()
	}
	var res api.JobResult
	var ir api.InstallResult
	if json.Unmarshal(install.HostJob.Result, &res) != nil || json.Unmarshal(res.Result, &ir) != nil || ir.Record == "" {
		return "the install kept no rollback record"
	}
	return ""
}
