package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/patchloop/patchloop/internal/api"
)

// loadgenRollout is loadgen's rollout driver: it creates the rollout of a
// spec file and starts it through the admin API, as `patchloop rollout
// create -f` and `rollout start` do.
type loadgenRollout struct {
	admin *adminClient
	spec  json.RawMessage
}

func newLoadgenRollout(admin *adminClient, file string) (*loadgenRollout, error) {
	spec, err := readSpec(file)
	if err != nil {
		return nil, err
	}
	// Freezing a large fleet's set takes longer than a status call.
	admin.http.Timeout = 30 * time.Minute
	return &loadgenRollout{admin: admin, spec: spec}, nil
}

func (l *loadgenRollout) Create(ctx context.Context) (string, map[string]string, error) {
	var r api.Rollout
	if err := l.admin.call(ctx, "POST", "/api/v1/rollouts", l.spec, &r); err != nil {
		return "", nil, err
	}
	// Create answers the summary; the members come from the status.
	if err := l.admin.call(ctx, "GET", "/api/v1/rollouts/"+r.ID+"?pins=false&audit=false", nil, &r); err != nil {
		return "", nil, err
	}
	members := map[string]string{}
	for _, ring := range r.Rings {
		for _, h := range ring.Members {
			if h.PinCount > 0 {
				members[h.ID] = ring.Name
			}
		}
	}
	return r.ID, members, nil
}

func (l *loadgenRollout) Start(ctx context.Context, id string) error {
	return l.admin.call(ctx, "POST", "/api/v1/rollouts/"+id+"/start", api.RolloutCommand{Reason: "loadgen"}, nil)
}
