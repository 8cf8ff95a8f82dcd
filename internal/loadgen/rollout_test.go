package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
	"github.com/patchloop/patchloop/internal/store"
)

// storeRollout stands in for the rollout API: its "rollout" gives even
// hosts ring a, odd ones ring b, and queues an install job of two pins
// for each member when started, in the server's store.
type storeRollout struct {
	st      store.Store
	members map[string]string
	pins    []apply.Pin
}

func (s *storeRollout) Create(ctx context.Context) (string, map[string]string, error) {
	hosts, err := s.st.ListHosts(ctx, store.HostFilter{})
	if err != nil {
		return "", nil, err
	}
	s.members = map[string]string{}
	for i, h := range hosts {
		s.members[h.ID] = []string{"a", "b"}[i%2]
	}
	return "r1", s.members, nil
}

func (s *storeRollout) Start(ctx context.Context, id string) error {
	for host := range s.members {
		j := store.Job{ID: "ro-" + host, Kind: api.JobInstall, Params: api.Raw(api.InstallParams{Packages: s.pins}), CreatedAt: time.Now()}
		if err := s.st.CreateJob(ctx, j, []string{host}); err != nil {
			return err
		}
	}
	return nil
}

// TestRolloutMode: every member is handed its install job through real
// check-ins and answers it in the agent's result format; the server
// stores each result once, and the report counts each ring's hosts.
func TestRolloutMode(t *testing.T) {
	url, fpr, st, newToken := testServer(t)
	const hosts = 30
	drv := &storeRollout{st: st, pins: []apply.Pin{{Package: "libc6", Arch: "amd64", Version: "2.36-9+deb12u13"},
		{Package: "openssl", Arch: "amd64", Version: "3.0.17-1~deb12u3"}}}
	cfg := Config{Server: url, CAFingerprint: fpr, NewToken: newToken, Hosts: hosts, Seed: 1,
		StatePath: filepath.Join(t.TempDir(), "state.json"), Inventories: testFleet(t, 4),
		Facts:       api.Facts{OS: "Debian GNU/Linux 12 (bookworm)", Distro: "debian", Release: "12", Codename: "bookworm", Arch: "amd64"},
		Concurrency: 4, Mode: ModeRollout, Duration: time.Minute, Rollout: drv}
	ctx := context.Background()
	r := runOK(t, cfg)
	last := r.Phases[len(r.Phases)-1]
	if last.Name != "rollout" || r.Phases[len(r.Phases)-2].Name != "rollout-create" || last.RolloutID != "r1" {
		t.Fatalf("phases %+v", r.Phases)
	}
	got := fmt.Sprint(last.Rings)
	if len(last.Rings) != 2 || last.Rings[0].Name != "a" || last.Rings[1].Name != "b" ||
		last.Rings[0].Hosts+last.Rings[1].Hosts != hosts {
		t.Fatalf("rings %s", got)
	}
	for _, ring := range last.Rings {
		if ring.HandedOut != ring.Hosts || ring.Answered != ring.Hosts || ring.LastS < ring.FirstS || ring.SentS < ring.LastS || ring.AnsweredS < ring.SentS {
			t.Errorf("ring %+v", ring)
		}
	}
	for host := range drv.members {
		_, hjs, err := st.Job(ctx, "ro-"+host)
		if err != nil || len(hjs) != 1 || hjs[0].State != store.JobDone || hjs[0].Status != "ok" || hjs[0].Attempts != 1 {
			t.Fatalf("job of %s: %+v, %v", host, hjs, err)
		}
		var res api.JobResult
		var ir api.InstallResult
		if err := json.Unmarshal(hjs[0].Result, &res); err != nil || json.Unmarshal(res.Result, &ir) != nil {
			t.Fatalf("result of %s: %s", host, hjs[0].Result)
		}
		if !ir.Healthy || ir.Health == nil || len(ir.Packages) != 2 || !ir.Packages[1].OK || ir.Packages[1].Now != "3.0.17-1~deb12u3" {
			t.Errorf("install result of %s: %+v", host, ir)
		}
	}
}

// TestRolloutHeld: with Wait, every member parks a held check-in (two
// shared transports carry them all over HTTP/2), the rollout starts once
// the server holds all of them, and each member is handed its install job
// by its held check-in and answers it, long before the server's hold
// would have ended.
func TestRolloutHeld(t *testing.T) {
	url, fpr, st, newToken := testServerHold(t, 30*time.Second)
	const hosts = 30
	drv := &storeRollout{st: st, pins: []apply.Pin{{Package: "libc6", Arch: "amd64", Version: "2.36-9+deb12u13"}}}
	cfg := Config{Server: url, CAFingerprint: fpr, NewToken: newToken, Hosts: hosts, Seed: 1,
		Inventories: testFleet(t, 4), Facts: api.Facts{OS: "Debian GNU/Linux 12 (bookworm)", Distro: "debian", Release: "12", Codename: "bookworm", Arch: "amd64"},
		Concurrency: 4, Mode: ModeRollout, Duration: 10 * time.Second, Rollout: drv, Wait: 30 * time.Second, Share: 2}
	ctx := context.Background()
	r := runOK(t, cfg)
	if r.Connections != "shared: 2 HTTP/2 transports" {
		t.Errorf("connections %q", r.Connections)
	}
	var names []string
	for _, p := range r.Phases {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[enroll inventory rollout-create rollout-park rollout]" {
		t.Fatalf("phases %v", names)
	}
	inv, park, last := r.Phases[1], r.Phases[3], r.Phases[4]
	// Shared: the inventory phase's connections (at most one per request
	// in flight, the extra ones closed) carry the held check-ins.
	if inv.NewConns > int64(cfg.Concurrency) || park.NewConns != 0 || last.NewConns != 0 {
		t.Errorf("new connections: %d, %d parking, %d in the rollout; want at most %d, then none", inv.NewConns, park.NewConns, last.NewConns, cfg.Concurrency)
	}
	if park.Ops[0].OK != 0 {
		t.Errorf("parking: %d check-ins answered, want all held", park.Ops[0].OK)
	}
	if last.Ops[1].Op != "checkin" || last.Ops[1].OK != hosts || last.Ops[2].OK != hosts {
		t.Errorf("rollout: ops %+v, want %d held check-ins answered and %d results", last.Ops, hosts, hosts)
	}
	if last.Seconds > 5 {
		t.Errorf("rollout took %.1f s: held check-ins not answered when the jobs came", last.Seconds)
	}
	if len(last.Rings) != 2 || last.Rings[0].Hosts+last.Rings[1].Hosts != hosts {
		t.Fatalf("rings %+v", last.Rings)
	}
	for _, ring := range last.Rings {
		if ring.HandedOut != ring.Hosts || ring.Answered != ring.Hosts || ring.FirstS < 0 || ring.AnsweredS < ring.LastS {
			t.Errorf("ring %+v", ring)
		}
	}
	for host := range drv.members {
		if _, hjs, err := st.Job(ctx, "ro-"+host); err != nil || len(hjs) != 1 || hjs[0].State != store.JobDone || hjs[0].Attempts != 1 {
			t.Fatalf("job of %s: %+v, %v", host, hjs, err)
		}
	}
	if s := last.ServerStore; s == nil || s.CheckInsHeld != 0 {
		t.Errorf("server still holds check-ins after the run: %+v", s)
	}

	// Shared transports cannot reconnect.
	cfg.Reconnect = true
	if _, err := Run(ctx, cfg); err == nil {
		t.Error("share and reconnect: no error")
	}
}

// TestRolloutInstallTime: with InstallTime, a member reports its install
// between InstallTime/2 and InstallTime after it was handed the job, not
// at once, and every result is still stored once. An install time
// without held check-ins is refused.
func TestRolloutInstallTime(t *testing.T) {
	url, fpr, st, newToken := testServerHold(t, 30*time.Second)
	const hosts, install = 10, 2 * time.Second
	drv := &storeRollout{st: st, pins: []apply.Pin{{Package: "libc6", Arch: "amd64", Version: "2.36-9+deb12u13"}}}
	cfg := Config{Server: url, CAFingerprint: fpr, NewToken: newToken, Hosts: hosts, Seed: 1,
		Inventories: testFleet(t, 2), Facts: api.Facts{OS: "Debian GNU/Linux 12 (bookworm)", Distro: "debian", Release: "12", Codename: "bookworm", Arch: "amd64"},
		Concurrency: 4, Mode: ModeRollout, Duration: 20 * time.Second, Rollout: drv, Wait: 30 * time.Second, InstallTime: install}
	ctx := context.Background()
	r := runOK(t, cfg)
	last := r.Phases[len(r.Phases)-1]
	for _, ring := range last.Rings {
		if ring.HandedOut != ring.Hosts || ring.Answered != ring.Hosts {
			t.Errorf("ring %+v", ring)
		}
		// Each answer comes install/2 to install after its hand-out, so
		// the last one at least install/2 after the first hand-out and
		// at most install (and the server's answer) after the last.
		if ring.AnsweredS < ring.FirstS+(install/2).Seconds() || ring.AnsweredS > ring.LastS+install.Seconds()+3 {
			t.Errorf("ring %s: handed out %.2f-%.2f s, last answered %.2f s: want the answers %s to %s later",
				ring.Name, ring.FirstS, ring.LastS, ring.AnsweredS, install/2, install)
		}
	}
	for host := range drv.members {
		if _, hjs, err := st.Job(ctx, "ro-"+host); err != nil || len(hjs) != 1 || hjs[0].State != store.JobDone || hjs[0].Attempts != 1 {
			t.Fatalf("job of %s: %+v, %v", host, hjs, err)
		}
	}

	cfg.Wait = 0
	if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "install time needs") {
		t.Errorf("install time without a wait: %v", err)
	}
}
