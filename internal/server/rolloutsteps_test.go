package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/rollout"
)

// TestRolloutResultsShareSteps: results posted at once by eight agents
// share steps (never more steps than results), and each agent's POST
// returns only once its own result is applied.
func TestRolloutResultsShareSteps(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := newRolloutEnv(t, backend)
			const n = 8
			hosts := map[string]string{}
			for i := range n {
				hosts[fmt.Sprintf("s%d", i)] = "test"
			}
			e.fleet(hosts)
			var r api.Rollout
			e.adminJSON("POST", "/api/v1/rollouts", api.CreateRolloutRequest{Updates: api.UpdatesAll, Rings: []rollout.Ring{
				{Name: "all", Hosts: rollout.Selector{All: true}, Concurrency: rollout.Limit{Percent: 100}}}}, &r)
			e.command(r.ID, "start", 200)
			jobs := map[string]api.Job{}
			for name := range hosts {
				jobs[name] = e.oneJob(name, api.JobInstall)
			}
			ctx := context.Background()
			before, err := e.st.Rollout(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, n)
			for name, j := range jobs {
				go func() {
					res := api.JobResult{Status: "ok", Result: api.Raw(installResult(t, j, true, false))}
					if err := e.agents[name].JobResult(ctx, j.ID, res); err != nil {
						errs <- err
						return
					}
					l, err := e.srv.loadRollout(ctx, r.ID)
					if err != nil {
						errs <- err
						return
					}
					if len(l.st.Hosts) == 0 {
						errs <- fmt.Errorf("rollout %s has no hosts", r.ID)
						return
					}
					for _, h := range l.st.Hosts {
						if h.ID == e.ids[name] && h.Phase != rollout.PhaseSucceeded {
							errs <- fmt.Errorf("%s's POST returned with the host %s", name, h.Phase)
							return
						}
					}
					errs <- nil
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			after := e.wantPhases(r.ID, map[string]rollout.Phase{"s0": "succeeded", "s1": "succeeded", "s2": "succeeded",
				"s3": "succeeded", "s4": "succeeded", "s5": "succeeded", "s6": "succeeded", "s7": "succeeded"})
			if after.Status != "completed" || after.Version-before.Version > n {
				t.Errorf("%s after %d steps for %d results", after.Status, after.Version-before.Version, n)
			}
			t.Logf("%d results applied in %d steps", n, after.Version-before.Version)
		})
	}
}
