package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// State is what an enrolled agent keeps in its state directory. Losing it
// means enrolling again (the server keeps the same host for the same
// machine-id), never a crash.
type State struct {
	Server        string `json:"server"`         // base URL, e.g. https://10.0.0.1:8443
	CAFingerprint string `json:"ca_fingerprint"` // pinned server CA
	HostID        string `json:"host_id"`
	Credential    string `json:"credential"` // plh_... (file mode 0600)
}

const stateFile = "state.json"

// ErrNotEnrolled is returned by LoadState when the directory holds no state.
var ErrNotEnrolled = errors.New("not enrolled")

// LoadState reads the state in dir.
func LoadState(dir string) (*State, error) {
	path := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (run 'patchloop agent enroll')", path, ErrNotEnrolled)
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil || st.Server == "" || st.Credential == "" || st.CAFingerprint == "" {
		return nil, fmt.Errorf("%s: corrupt state (%v): %w (enroll again)", path, err, ErrNotEnrolled)
	}
	return &st, nil
}

// Save writes the state atomically, readable only by its owner.
func (st *State) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeSynced(filepath.Join(dir, stateFile), append(data, '\n'))
}

// writeSynced replaces path with data atomically and durably: through a
// private temporary file in the same directory, synced, renamed over
// path, and the directory synced so the rename survives a crash.
func writeSynced(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
