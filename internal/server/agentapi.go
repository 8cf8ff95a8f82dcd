package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/patchloop/patchloop/internal/api"
	"github.com/patchloop/patchloop/internal/store"
)

var machineIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req api.EnrollRequest
	if !decodeBody(w, r, api.MaxBody, &req) {
		return
	}
	id, secret, ok := splitCredential(req.Token, api.EnrollTokenPrefix)
	if !ok {
		httpError(w, http.StatusBadRequest, "token: want %sID_SECRET", api.EnrollTokenPrefix)
		return
	}
	if !machineIDPattern.MatchString(req.Facts.MachineID) {
		httpError(w, http.StatusBadRequest, "facts.machine_id %q: want the 32 hex digits of /etc/machine-id", req.Facts.MachineID)
		return
	}
	facts, _ := json.Marshal(req.Facts)
	credSecret := newSecret()
	h := store.Host{ID: newID(), MachineID: req.Facts.MachineID, Hostname: req.Facts.Hostname,
		SecretHash: hashSecret(credSecret), Facts: facts}
	got, err := s.store.Enroll(r.Context(), id, hashSecret(secret), h, s.cfg.Now())
	if errors.Is(err, store.ErrTokenInvalid) {
		s.metrics.authFailures.WithLabelValues("enroll").Inc()
		httpError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "enroll: %v", err)
		return
	}
	s.log.Info("host enrolled", "host", got.ID, "hostname", got.Hostname, "token", id)
	writeJSON(w, http.StatusOK, api.EnrollResponse{HostID: got.ID, Credential: api.HostSecretPrefix + got.ID + "_" + credSecret})
}

func (s *Server) checkIn(w http.ResponseWriter, r *http.Request, h store.Host) {
	var req api.CheckInRequest
	if !decodeBody(w, r, api.MaxBody, &req) {
		return
	}
	now := s.cfg.Now()
	var facts []byte
	if req.Facts != (api.Facts{}) {
		facts, _ = json.Marshal(req.Facts)
		if string(facts) == string(h.Facts) {
			facts = nil // unchanged: do not rewrite
		}
	}
	if err := s.store.CheckIn(r.Context(), store.CheckIn{HostID: h.ID, At: now, Facts: facts}); err != nil {
		httpError(w, http.StatusInternalServerError, "check-in: %v", err)
		return
	}
	resp := api.CheckInResponse{
		SendInventory:   req.InventoryHash == "" || req.InventoryHash != h.InventoryHash,
		IntervalSeconds: int(s.cfg.Interval.Seconds()),
	}
	// A check-in that may wait is registered before its first lease, so
	// that a job queued in between wakes it.
	var hw *holdWait
	if req.WaitSeconds > 0 && s.cfg.Hold > 0 && !resp.SendInventory {
		if hw = s.holds.add(h.ID); hw != nil {
			defer s.holds.remove(h.ID, hw)
		}
	}
	jobs, err := s.store.LeaseJobs(r.Context(), h.ID, now, s.cfg.JobLease, 10)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "lease jobs: %v", err)
		return
	}
	if len(jobs) == 0 && hw != nil {
		if sw, ok := w.(*statusWriter); ok {
			sw.held = true
		}
		var drained bool
		// (The wait is bounded before it becomes a Duration, which a
		// huge number of seconds would overflow.)
		wait := time.Duration(min(req.WaitSeconds, int(s.cfg.Hold/time.Second)+1)) * time.Second
		jobs, drained, err = s.holdCheckIn(r, h.ID, hw, holdFor(wait, s.cfg.Hold))
		if r.Context().Err() != nil {
			return // the agent is gone; a job leased meanwhile is handed out again when its lease ends
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		// Drained (shutting down): not held, so agents wait an interval
		// instead of all coming back at once to a closed port.
		resp.Held = !drained
	}
	for _, j := range jobs {
		resp.Jobs = append(resp.Jobs, api.Job{ID: j.JobID, Kind: j.Kind, Params: json.RawMessage(j.Params)})
	}
	s.metrics.checkIns.Inc()
	writeCheckIn(w, resp)
}

// writeCheckIn writes a check-in's answer as writeJSON does, byte for byte,
// with encoding/json/v2's module: encoding/json compacts each job's params
// (an install job's pins) again for every host it hands them to, at about
// twice the cost (BenchmarkWriteCheckIn).
func writeCheckIn(w http.ResponseWriter, resp api.CheckInResponse) {
	b, err := jsonv2.Marshal(resp, v1Format)
	if err != nil {
		// What v2 refuses and encoding/json writes all the same (invalid
		// UTF-8, a name given twice in params): as writeJSON writes it.
		writeJSON(w, http.StatusOK, resp)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

// v1Format makes jsonv2.Marshal write what encoding/json writes.
var v1Format = jsonv2.JoinOptions(jsonv1.OmitEmptyWithLegacySemantics(true), jsonv2.FormatNilSliceAsNull(true),
	jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true), jsontext.PreserveRawStrings(true))

// holdFor is how long to hold a check-in that asks to wait up to wait
// under the server's limit: a random 75-100% of the shorter, so that
// agents parked together (after a restart, after a job for every host)
// do not all come back together every hold.
func holdFor(wait, limit time.Duration) time.Duration {
	d := min(wait, limit)
	return d - rand.N(d/4+1)
}

// holdCheckIn holds a check-in of host that found no job for up to wait,
// until a job is queued for it (hw is woken) and leased, the server
// drains (drained), or the agent goes away. A host revoked meanwhile
// gets no job.
func (s *Server) holdCheckIn(r *http.Request, host string, hw *holdWait, wait time.Duration) (jobs []store.HostJob, drained bool, err error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	// until waits for recv to be ready or send to take a value (one of
	// them nil): false when the hold ends first (drained if the server
	// drains).
	until := func(recv <-chan struct{}, send chan<- struct{}) (ok, drained bool) {
		select {
		case <-recv:
			return true, false
		case send <- struct{}{}:
			return true, false
		case <-t.C:
			return false, false
		case <-s.holds.drained:
			return false, true
		case <-r.Context().Done():
			return false, false
		}
	}
	for {
		if ok, drained := until(hw.c, nil); !ok {
			return nil, drained, nil
		}
		// A ring's start wakes thousands of check-ins at once: they lease
		// leasingAtOnce at a time, so that the step's own writes, and the
		// first results, are not queued behind all of them (SQLite has
		// one writer; its group commit takes leases first).
		if ok, drained := until(nil, s.holds.leasing); !ok {
			return nil, drained, nil
		}
		jobs, revoked, err := s.leaseWoken(r, host)
		if revoked {
			return nil, false, nil // its next check-in is refused
		}
		if err != nil {
			return nil, false, fmt.Errorf("lease jobs: %w", err)
		}
		if len(jobs) > 0 {
			return jobs, false, nil
		}
	}
}

// leaseWoken leases the jobs of a woken check-in's host, none if it was
// revoked meanwhile, and gives back the leasing slot it was given.
func (s *Server) leaseWoken(r *http.Request, host string) (jobs []store.HostJob, revoked bool, err error) {
	defer func() { <-s.holds.leasing }()
	return s.store.LeaseWoken(r.Context(), host, s.cfg.Now(), s.cfg.JobLease, 10)
}

func (s *Server) putInventory(w http.ResponseWriter, r *http.Request, h store.Host) {
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			httpError(w, http.StatusBadRequest, "gzip body: %v", err)
			return
		}
		defer zr.Close()
		r.Body = zr
		r.ContentLength = -1
	}
	var inv api.Inventory
	if !decodeBody(w, r, api.MaxInventoryBody, &inv) {
		return
	}
	if err := inv.Validate(); err != nil {
		httpError(w, http.StatusUnprocessableEntity, "inventory: %v", err)
		return
	}
	hash := inv.Hash()
	data, _ := json.Marshal(&inv)
	if err := s.store.PutInventory(r.Context(), h.ID, hash, data, s.cfg.Now()); err != nil {
		httpError(w, http.StatusInternalServerError, "store inventory: %v", err)
		return
	}
	s.metrics.inventories.Inc()
	if err := s.detectHost(r.Context(), h.ID, hash, &inv); err != nil {
		s.log.Warn("detect", "host", h.ID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// resultsAtOnce bounds the job results the server authenticates, reads
// and stores at once (two group commits' worth, store/group.go).
const resultsAtOnce = 512

// resultSlot is the context key of a job result's slot's release.
type resultSlot struct{}

// resultSlotWait is the longest a job result waits for a slot: with the
// step's ResultWait after it, well within an agent's time-out (30 s). (A
// variable for TestJobResultBusy.)
var resultSlotWait = 10 * time.Second

// admitResult takes a result slot for the job result h handles, waiting
// up to resultSlotWait, else refuses it: a ring's hosts finishing
// together send more results than the store takes at once. Those beyond
// resultsAtOnce wait before their credential is looked up and their body
// decoded, and those that waited too long are refused (503, Retry-After);
// their agents report again after their back-off. (The body arrives all
// the same, within HTTP/2's flow control: the wait saves the server's
// work, not the transfer.) Queued without a bound, they waited past the
// agents' time-out, which then sent them again: 190,000 timed-out
// reports for 90,000 results; refused at once, 336,000 refusals, each
// sent with its 14 KB result (docs/benchmarks.md). h frees the slot once
// the result is stored (releaseResultSlot), or when it returns.
func (s *Server) admitResult(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.resultSlots <- struct{}{}:
		default:
			t := time.NewTimer(resultSlotWait)
			select {
			case s.resultSlots <- struct{}{}:
				t.Stop()
			case <-t.C:
				w.Header().Set("Retry-After", "5")
				httpError(w, http.StatusServiceUnavailable, "busy: %d job results are being stored; report again in a few seconds", cap(s.resultSlots))
				return
			case <-s.holds.drained:
				t.Stop()
				w.Header().Set("Retry-After", "5")
				httpError(w, http.StatusServiceUnavailable, "shutting down; report again in a few seconds")
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		release := sync.OnceFunc(func() { <-s.resultSlots })
		defer release()
		h(w, r.WithContext(context.WithValue(r.Context(), resultSlot{}, release)))
	}
}

// releaseResultSlot frees the result slot admitResult took for r.
func releaseResultSlot(r *http.Request) {
	if release, ok := r.Context().Value(resultSlot{}).(func()); ok {
		release()
	}
}

func (s *Server) jobResult(w http.ResponseWriter, r *http.Request, h store.Host) {
	// The body is stored as it came once it decodes strictly: encoding the
	// decoded result again (what agents send: they encode this type) was
	// a twentieth of the server's time in a rollout of 100,000 hosts.
	raw, ok := readBody(w, r, api.MaxBody)
	if !ok {
		return
	}
	res, err := api.DecodeJobResult(raw)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if res.Status != "ok" && res.Status != "failed" {
		httpError(w, http.StatusBadRequest, "status %q: want ok or failed", res.Status)
		return
	}
	body := bytes.TrimSpace(raw) // (valid UTF-8: DecodeJobResult refuses any other, as PostgreSQL's text would)
	first, err := s.store.CompleteJob(r.Context(), r.PathValue("job"), h.ID, res.Status, body, summaryOf(outcomeOf(res)), s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		httpError(w, http.StatusNotFound, "no job %s for this host", r.PathValue("job"))
		return
	}
	if errors.Is(err, store.ErrConflict) {
		httpError(w, http.StatusConflict, "job %s was never handed to this host", r.PathValue("job"))
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "store job result: %v", err)
		return
	}
	releaseResultSlot(r) // stored: the step it may wait for takes no slot
	if first {
		s.rolloutResult(r.Context(), r.PathValue("job"), h.ID)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"first": first})
}
