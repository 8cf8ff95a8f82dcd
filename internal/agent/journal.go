package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/apply"
)

// The journal keeps, per job that changes the machine, what the agent
// was about to do (written and synced before it starts) and the result
// once it has one, under StateDir/jobs/ID.json. The job's ID is its
// idempotency key: a job handed out again, or found unfinished after the
// agent restarts, is never run twice; its result is reported from the
// journal, or, when the agent stopped half-way, made from what the
// machine shows (dpkg-query -W against the recorded plan).

// Journal entry states.
const (
	jobStarted  = "started"  // about to change the machine; result unknown
	jobDone     = "done"     // result known, not yet acknowledged by the server
	jobReported = "reported" // the server has the result
)

// journalKeep is how long reported entries are kept to recognise a job
// handed out again.
const journalKeep = 30 * 24 * time.Hour

type journalEntry struct {
	Job     api.Job   `json:"job"`
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// BootID is /proc/sys/kernel/random/boot_id when the job started.
	BootID string `json:"boot_id,omitempty"`
	// Plan is the install's plan, recorded before apt runs.
	Plan *apply.InstallPlan `json:"plan,omitempty"`
	// KeepDir is where (inside the system) the install keeps its record.
	KeepDir string `json:"keep_dir,omitempty"`
	// Record is the record a rollback puts back.
	Record *apply.Record  `json:"record,omitempty"`
	Result *api.JobResult `json:"result,omitempty"`
}

type journal struct{ dir string }

func (j journal) path(id string) string { return filepath.Join(j.dir, id+".json") }

// get returns the entry of job id, nil when there is none.
func (j journal) get(id string) (*journalEntry, error) {
	if !api.ValidJobID(id) {
		return nil, fmt.Errorf("job ID %q cannot be journaled", id)
	}
	data, err := os.ReadFile(j.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e journalEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("journal %s: %w", j.path(id), err)
	}
	return &e, nil
}

// put writes e atomically and durably: the file and the directory are
// synced before it returns.
func (j journal) put(e *journalEntry) error {
	if !api.ValidJobID(e.Job.ID) {
		return fmt.Errorf("job ID %q cannot be journaled", e.Job.ID)
	}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return err
	}
	e.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return writeSynced(j.path(e.Job.ID), append(data, '\n'))
}

// unfinished returns the jobs whose result the server may not have,
// oldest first, and removes reported entries older than journalKeep.
func (j journal) unfinished() ([]api.Job, error) {
	entries, err := os.ReadDir(j.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*journalEntry
	for _, de := range entries {
		id, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		e, err := j.get(id)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue
		}
		if e.State == jobReported {
			if time.Since(e.Updated) > journalKeep {
				os.Remove(j.path(id))
			}
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Started.Before(out[b].Started) })
	jobs := make([]api.Job, len(out))
	for i, e := range out {
		jobs[i] = e.Job
	}
	return jobs, nil
}

func bootID() string {
	data, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(data))
}
