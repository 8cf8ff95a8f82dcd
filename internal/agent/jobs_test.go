package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/store"
)

// runJob queues one job for a's host on the real server, checks in once
// and returns what the server stored.
func runJob(t *testing.T, ts *testServer, a *Agent, id, kind, params string) (status string, res api.JobResult) {
	t.Helper()
	ctx := context.Background()
	if err := ts.st.CreateJob(ctx, store.Job{ID: id, Kind: kind, Params: []byte(params), CreatedAt: time.Now()}, []string{a.st.HostID}); err != nil {
		t.Fatal(err)
	}
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	return jobResult(t, ts, a, id)
}

func jobResult(t *testing.T, ts *testServer, a *Agent, id string) (string, api.JobResult) {
	t.Helper()
	_, parts, err := ts.st.Job(context.Background(), id)
	if err != nil || len(parts) != 1 || parts[0].State != store.JobDone {
		t.Fatalf("job %s: %+v, %v", id, parts, err)
	}
	var res api.JobResult
	if err := json.Unmarshal(parts[0].Result, &res); err != nil {
		t.Fatalf("job %s result %s: %v", id, parts[0].Result, err)
	}
	return parts[0].Status, res
}

func TestJobsRefusedOrChecked(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	for _, tc := range []struct{ id, kind, params, err string }{
		{"j1", "shell", `{"cmd":"id"}`, "unknown job kind"},
		{"j2", "install", `{"packages":[{"package":"zlib1g","version":"1","pre_script":"x"}]}`, "unknown field"},
		{"j3", "install", `{"packages":[{"package":"-o","version":"1"}]}`, "bad package name"},
		{"j4", "rollback", `{"install_job":"nope"}`, "no rollback record of install job nope"},
		{"j5", "reboot", `{}`, "does not allow reboots"},
	} {
		status, res := runJob(t, ts, a, tc.id, tc.kind, tc.params)
		if status != "failed" || !strings.Contains(res.Error, tc.err) {
			t.Errorf("%s %s: %s %q, want failed %q", tc.kind, tc.params, status, res.Error, tc.err)
		}
	}
	// Nothing was kept for rollback: no install ran.
	if _, err := os.Stat(filepath.Join(a.cfg.Root, a.cfg.KeepDir)); !os.IsNotExist(err) {
		t.Errorf("keep dir after refused jobs: %v", err)
	}
}

// TestJobAnsweredFromJournal hands the same reboot job out twice (a lost
// result, or a lease that ran out): the second time it is answered from
// the journal, not run again, even though the local configuration
// changed in between.
func TestJobAnsweredFromJournal(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	a.local.AllowReboot = true
	status, res := runJob(t, ts, a, "rb1", api.JobReboot, `{}`)
	var rr api.RebootResult
	if err := json.Unmarshal(res.Result, &rr); err != nil {
		t.Fatal(err)
	}
	if status != "ok" || rr.Rebooted || !strings.Contains(rr.Note, "chroot") || !strings.Contains(rr.Note, "not run") {
		t.Fatalf("reboot in a chroot: %s %+v", status, rr)
	}
	e, err := a.journal.get("rb1")
	if err != nil || e == nil || e.State != jobReported || e.Result == nil {
		t.Fatalf("journal after the report: %+v, %v", e, err)
	}
	a.local.AllowReboot = false
	again, err := a.run(context.Background(), api.Job{ID: "rb1", Kind: api.JobReboot, Params: []byte(`{}`)})
	var x, y bytes.Buffer
	json.Compact(&x, again.Result)
	json.Compact(&y, res.Result)
	if err != nil || again.Status != "ok" || x.String() != y.String() {
		t.Errorf("the same job again: %s %s, %v; first %s", again.Status, x.String(), err, y.String())
	}
	// A new agent (a restart) has nothing to report: all was reported.
	b, err := New(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.pending) != 0 {
		t.Errorf("pending after restart: %+v", b.pending)
	}
}

// TestUnreportedResultSurvivesRestart: a result journaled but not
// acknowledged by the server is reported by the next agent process.
func TestUnreportedResultSurvivesRestart(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	ctx := context.Background()
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.CreateJob(ctx, store.Job{ID: "rb2", Kind: api.JobReboot, Params: []byte(`{"if_required":true}`), CreatedAt: time.Now()}, []string{a.st.HostID}); err != nil {
		t.Fatal(err)
	}
	a.local.AllowReboot = true
	// The job is handed out and run, then the agent dies before reporting.
	_, facts, err := Collect(a.cfg.Root)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.client.CheckIn(ctx, api.CheckInRequest{Facts: facts})
	if err != nil || len(resp.Jobs) != 1 {
		t.Fatalf("check-in: %+v, %v", resp, err)
	}
	if _, err := a.run(ctx, resp.Jobs[0]); err != nil {
		t.Fatal(err)
	}
	b, err := New(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.pending) != 1 || b.pending[0].job.ID != "rb2" {
		t.Fatalf("pending after restart: %+v", b.pending)
	}
	if err := b.Once(ctx); err != nil {
		t.Fatal(err)
	}
	status, res := jobResult(t, ts, b, "rb2")
	var rr api.RebootResult
	json.Unmarshal(res.Result, &rr)
	if status != "ok" || rr.Note != "no reboot required" {
		t.Errorf("reported after restart: %s %+v", status, rr)
	}
}

func TestRestartServicesInChroot(t *testing.T) {
	ts := newTestServer(t)
	a := enrolled(t, ts)
	status, res := runJob(t, ts, a, "rs1", api.JobRestartServices, `{"units":["nginx.service"]}`)
	var rr api.RestartResult
	if err := json.Unmarshal(res.Result, &rr); err != nil {
		t.Fatal(err)
	}
	// No process runs in this root, so nothing needs a restart and a
	// unit asked for is skipped, not restarted.
	if status != "ok" || len(rr.Needed) != 0 || len(rr.Restarted) != 0 || len(rr.Skipped) != 1 ||
		rr.Skipped[0].Unit != "nginx.service" || !strings.Contains(rr.Skipped[0].Detail, "no replaced file") {
		t.Errorf("restart-services: %s %+v", status, rr)
	}
}

func TestResultFitsTheServerLimit(t *testing.T) {
	var out api.InstallResult
	for i := 0; i < 1500; i++ {
		name := "libexample" + strings.Repeat("x", 20) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		out.Plan.Changes = append(out.Plan.Changes, apply.Change{Package: name, Arch: "amd64", Before: "1.0-1", After: "1.0-1+deb12u1", Kind: apply.Upgrade, Releases: "Debian-Security:12/stable-security [amd64]"})
		out.Packages = append(out.Packages, apply.PackageResult{Package: name, Arch: "amd64", Before: "1.0-1", Want: "1.0-1+deb12u1", Now: "1.0-1+deb12u1", Status: "ii ", OK: i != 7})
	}
	out.Log = strings.Repeat("apt says something\n", 1000)
	res := failed(os.ErrInvalid, &out)
	if len(res.Result) > maxResult {
		t.Fatalf("result of %d bytes, limit %d", len(res.Result), maxResult)
	}
	var back api.InstallResult
	if err := json.Unmarshal(res.Result, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Packages) != 1 || back.Packages[0].OK || !strings.Contains(back.Error, "1499 packages as planned left out") {
		t.Errorf("shrunk result keeps %d packages, error %q", len(back.Packages), back.Error)
	}
	small := succeeded(&api.InstallResult{ChangeResult: api.ChangeResult{Log: "short"}})
	if !strings.Contains(string(small.Result), `"log":"short"`) {
		t.Errorf("small result changed: %s", small.Result)
	}
}
