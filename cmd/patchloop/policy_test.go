package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPolicyValidate(t *testing.T) {
	good := []string{"../../docs/policies/10-production.yaml", "../../docs/policies/90-default.yaml"}
	if err := validatePolicies("table", good); err != nil {
		t.Fatalf("the example baselines: %v", err)
	}
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", "name: bad\nhosts: {all: true}\nrules:\n  - name: a\n    colour: red\n")
	twin := write("20-twin.yaml", "name: default\nhosts: {all: true}\n")
	for _, files := range [][]string{{bad}, append(good, twin), {filepath.Join(dir, "missing.yaml")}} {
		var ee exitError
		if err := validatePolicies("json", files); !errors.As(err, &ee) || ee.code != 1 {
			t.Errorf("validate %v: %v, want exit status 1", files, err)
		}
	}
	if err := validatePolicies("yaml", good); err == nil {
		t.Error("--format yaml accepted")
	}
}

func TestFilePriority(t *testing.T) {
	for file, want := range map[string]int{"10-production.yaml": 10, "dir/90_default.yaml": 90, "production.yaml": -1, "10production.yaml": -1, "007-x.yaml": 7} {
		got, ok := filePriority(file)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("filePriority(%q) = %d, want %d", file, got, want)
		}
	}
}
