package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/agent"
	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/rollout"
	"github.com/patchloop/patchloop/internal/store"
)

// TestRolloutBadInput runs bad input against the rollout API on SQLite
// and PostgreSQL: each is refused with an error naming the object, and
// no host is given a job it should not get. (A rollout started twice is
// refused with 409 in TestRollouts' RingsSoakRestartBudget.)
func TestRolloutBadInput(t *testing.T) {
	tests := map[string]func(*testing.T, *rolloutEnv){
		"UnknownZoneEmptyRing": tRolloutUnknownZoneEmptyRing,
		"ForeignResult":        tRolloutForeignResult,
		"VersionGone":          tRolloutVersionGone,
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for name, test := range tests {
			t.Run(backend+"/"+name, func(t *testing.T) { test(t, newRolloutEnv(t, backend)) })
		}
	}
}

// noRollouts checks that nothing was stored and no job queued.
func (e *rolloutEnv) noRollouts() {
	e.t.Helper()
	var list []api.Rollout
	e.adminJSON("GET", "/api/v1/rollouts", nil, &list)
	if len(list) != 0 || e.jobCount() != 0 {
		e.t.Fatalf("refused creates left %d rollouts and %d jobs", len(list), e.jobCount())
	}
}

// tRolloutUnknownZoneEmptyRing: a window in a time zone that does not
// exist, and a ring whose selector matches no host, are refused at
// create with 400 naming the zone and the ring; a create that differs
// only in the zone or the selector is accepted.
func tRolloutUnknownZoneEmptyRing(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"z1": "test", "z2": "prod"})
	rings := `"rings":[{"name":"test","hosts":{"match_labels":{"ring":"test"}},"concurrency":{"count":1}},` +
		`{"name":"prod","hosts":{"match_labels":{"ring":"RING"}},"concurrency":{"count":1}}]`
	window := `"window_groups":[{"name":"weekend","hosts":{"all":true},"windows":[{"start":"0 22 * * 6","duration":"6h","time_zone":"ZONE"}]}]`
	body := func(zone, prodLabel string) []byte {
		return []byte(`{"updates":"all",` + strings.Replace(rings, "RING", prodLabel, 1) + `,` + strings.Replace(window, "ZONE", zone, 1) + `}`)
	}
	for _, tc := range []struct {
		zone, prod string
		msg        []string
	}{
		{"Europe/Atlantis", "prod", []string{"Europe/Atlantis", "time zone"}},
		{"", "prod", []string{"0 22 * * 6", "no time zone"}},
		{"Europe/Berlin", "prdo", []string{"ring prod selects none of the 2 active hosts"}},
	} {
		code, resp := e.call("POST", "/api/v1/rollouts", e.admin, "application/json", body(tc.zone, tc.prod))
		if code != http.StatusBadRequest {
			t.Errorf("zone %q, prod label %q: %d %s, want 400", tc.zone, tc.prod, code, resp)
		}
		for _, m := range tc.msg {
			if !strings.Contains(resp, m) {
				t.Errorf("zone %q, prod label %q: %s does not name %q", tc.zone, tc.prod, resp, m)
			}
		}
	}
	e.noRollouts()
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", json.RawMessage(body("Europe/Berlin", "prod")), &r)
	if r.Status != "created" || len(r.Rings) != 2 || r.Rings[0].Hosts != 1 || r.Rings[1].Hosts != 1 {
		t.Fatalf("valid create: %+v", r)
	}
}

// tRolloutForeignResult: an agent answering a job it never got (an
// unknown job, another host's job, its own job not handed out yet) is
// refused, and neither the queue nor the rollout changes; the right
// answers are then accepted.
func tRolloutForeignResult(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"f1": "test", "f2-nossl": "test"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Count: 2}}}}, &r)
	e.command(r.ID, "start", http.StatusOK)
	first, second := e.byID("f1", "f2-nossl")[0], e.byID("f1", "f2-nossl")[1]
	j1 := e.oneJob(first, api.JobInstall) // second has not checked in: its job stays queued
	r = e.rollout(r.ID)
	j2 := member(r, second).Jobs[0].JobID
	jobs := e.jobCount()
	ok := api.JobResult{Status: "ok", Result: api.Raw(installResult(t, j1, true, false))}
	// The hosts have different pins (f2 lacks libssl3), so different
	// install jobs (hosts with the same pins share theirs).
	if j1.ID == j2 {
		t.Fatalf("hosts with different pins share job %s", j1.ID)
	}
	for _, tc := range []struct {
		name, job string
		code      int
		msg       string
	}{
		{second, j1.ID, http.StatusNotFound, "no job " + j1.ID + " for this host"},
		{first, "ro-000000000000000000000000", http.StatusNotFound, "no job ro-000000000000000000000000 for this host"},
		{second, j2, http.StatusConflict, "job " + j2 + " was never handed to this host"},
	} {
		err := e.agents[tc.name].JobResult(context.Background(), tc.job, ok)
		var se *agent.StatusError
		if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(se.Reason, tc.msg) {
			t.Errorf("%s answering %s: %v, want %d %q", tc.name, tc.job, err, tc.code, tc.msg)
		}
	}
	ctx := context.Background()
	for _, id := range []string{j1.ID, j2} {
		_, hjs, err := e.st.Job(ctx, id)
		if err != nil || len(hjs) != 1 || hjs[0].State == store.JobDone || hjs[0].Result != nil {
			t.Errorf("job %s after foreign answers: %+v, %v", id, hjs, err)
		}
	}
	if n := e.jobCount(); n != jobs {
		t.Errorf("foreign answers queued %d jobs", n-jobs)
	}
	e.wantPhases(r.ID, map[string]rollout.Phase{first: "installing", second: "installing"})
	// The hosts' own answers to the jobs they were handed are taken.
	e.report(first, j1, "ok", "", installResult(t, j1, true, false))
	jb := e.oneJob(second, api.JobInstall)
	e.report(second, jb, "ok", "", installResult(t, jb, true, false))
	if r = e.wantPhases(r.ID, map[string]rollout.Phase{first: "succeeded", second: "succeeded"}); r.Status != "completed" {
		t.Errorf("status %s %s", r.Status, r.Reason)
	}
}

// tRolloutVersionGone: the mirror no longer has a version of the frozen
// set. The plan reports apt's refusal for the host, naming the package
// and version; the rollout may still be started (the plan informs, the
// operator decides), the install fails the same way, counts against the
// failure budget (0 here) and halts the rollout before any other host
// is given an install job.
func tRolloutVersionGone(t *testing.T, e *rolloutEnv) {
	e.fleet(map[string]string{"g1": "test", "g2": "test"})
	var r api.Rollout
	e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
		{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Count: 1}}}}, &r)
	first, second := e.byID("g1", "g2")[0], e.byID("g1", "g2")[1]
	jq := rolloutCandidates["jq"]
	// What apt-get -s says when the mirror dropped the version, as
	// apply.Plan reports it (internal/apply/testdata/host-error-version.txt).
	aptErr := "apt-get -s install jq:amd64=" + jq + " libssl3:amd64=" + rolloutCandidates["libssl3"] +
		": E: Version '" + jq + "' for 'jq' was not found"
	var plan api.RolloutPlan
	e.adminJSON("GET", "/api/v1/rollouts/"+r.ID+"/plan", nil, &plan)
	pj := e.oneJob(first, api.JobPlan)
	e.report(first, pj, "failed", aptErr, apply.InstallPlan{Output: "E: Version '" + jq + "' for 'jq' was not found\n"})
	e.adminJSON("GET", "/api/v1/rollouts/"+r.ID+"/plan", nil, &plan)
	var got api.RolloutHostPlan
	for _, hp := range plan.Hosts {
		if hp.HostID == e.ids[first] {
			got = hp
		}
	}
	if plan.Complete || got.State != store.JobDone || got.Status != "failed" || !strings.Contains(got.Error, "Version '"+jq+"' for 'jq' was not found") {
		t.Fatalf("plan of %s: %+v (complete %v)", first, got, plan.Complete)
	}
	e.command(r.ID, "start", http.StatusOK)
	j := e.oneJob(first, api.JobInstall)
	res := installResult(t, j, true, true)
	res.Error, res.Log = aptErr, "E: Version '"+jq+"' for 'jq' was not found\n"
	e.report(first, j, "failed", aptErr, res)
	r = e.wantPhases(r.ID, map[string]rollout.Phase{first: "failed", second: "pending"})
	if r.Status != "halted" || !strings.Contains(r.Reason, e.ids[first]) {
		t.Fatalf("after the install failed: %s %q", r.Status, r.Reason)
	}
	if m := member(r, first); !strings.Contains(m.Jobs[0].Error, "Version '"+jq+"' for 'jq' was not found") {
		t.Errorf("%s's install in the status: %+v", first, m.Jobs)
	}
	// Time passes and the rollout is stepped: the second host is handed
	// its plan job only, no install.
	e.clock.Add(time.Hour)
	if err := e.srv.StepRollouts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if js := e.jobs(second); len(js) != 1 || js[0].Kind != api.JobPlan {
		t.Fatalf("%s was handed %+v, want its plan job only", second, js)
	}
}
