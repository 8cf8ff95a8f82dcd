package deb

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStatusRealCapture(t *testing.T) {
	f, err := os.Open("testdata/status-bookworm-minbase")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := ParseStatus(f, "status-bookworm-minbase")
	if err != nil {
		t.Fatal(err)
	}
	// grep -c '^Package:' testdata/status-bookworm-minbase
	if len(pkgs) != 88 {
		t.Errorf("got %d packages, want 88", len(pkgs))
	}
	byName := map[string]InstalledPackage{}
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	libc := byName["libc6"]
	if libc.Arch != "amd64" || libc.Source != "glibc" || libc.Version == "" || libc.SourceVersion != libc.Version || !libc.Current() {
		t.Errorf("libc6 = %+v", libc)
	}
	if bash := byName["bash"]; bash.Source != "bash" || !strings.Contains(bash.Version, "+b") || bash.SourceVersion == bash.Version {
		t.Errorf("bash (a binNMU, Source: bash (5.2.15-2)) = %+v", bash)
	}
}

func TestParseStatusStates(t *testing.T) {
	f, err := os.Open("testdata/status-states")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := ParseStatus(f, "status-states")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, arch, version, src, srcVer, state string
		current, held                           bool
	}{
		{"held-pkg", "amd64", "1.0-1+b1", "held-src", "1.0-1", "installed", true, true},
		{"old-conf", "amd64", "2:0.9-3", "old-conf", "2:0.9-3", "config-files", false, false},
		{"broken", "all", "3.1~rc1-2", "broken", "3.1~rc1-2", "half-installed", true, false},
		{"libfoo1", "i386", "1.2-3", "foo", "1.2-3", "installed", true, false},
		{"gone", "amd64", "", "", "", "not-installed", false, false},
	}
	if len(pkgs) != len(want) {
		t.Fatalf("got %d packages, want %d", len(pkgs), len(want))
	}
	for i, w := range want {
		p := pkgs[i]
		if p.Name != w.name || p.Arch != w.arch || p.Version != w.version || p.Source != w.src ||
			p.SourceVersion != w.srcVer || p.State != w.state || p.Current() != w.current || p.Held() != w.held {
			t.Errorf("record %d = %+v, want %+v", i, p, w)
		}
	}
}

func TestParseStatusBadInput(t *testing.T) {
	good := "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n"
	tests := []struct {
		name, input, wantErr string
	}{
		{"truncated mid-line", good + "Package: b\nStatus: install ok inst", "status:7: unexpected end of file"},
		{"bad status word", good + "Package: b\nStatus: install ok sideways\nArchitecture: amd64\nVersion: 1\n\n", "status:6: package b: bad Status"},
		{"no package", good + "Status: install ok installed\nVersion: 1\n\n", "status:6: record has no Package field"},
		{"no version", "Package: a\nStatus: install ok installed\nArchitecture: amd64\n\n", "status:1: package a: installed but no Version"},
		{"bad version", "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1 2\n\n", "status:1: package a:"},
		{"no architecture", "Package: a\nStatus: install ok installed\nVersion: 1\n\n", "no Architecture"},
		{"garbage line", good + "this is not a field\n", "status:6: line is not a field"},
		{"continuation first", " leading space\n", "status:1: continuation line"},
		{"binary junk", good + "\x00\x01\x02\n", "status:6:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStatus(strings.NewReader(tt.input), "status")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	_, err := ParseStatus(strings.NewReader(good+"Package: b\nStatus: install ok inst"), "status")
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("truncation not reported as ErrTruncated: %v", err)
	}
}

func TestReadStatusMissingFile(t *testing.T) {
	_, err := ReadStatus(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "var/lib/dpkg/status") {
		t.Fatalf("err = %v, want one naming the status path", err)
	}
}

func TestParseSourceField(t *testing.T) {
	tests := []struct{ field, src, ver string }{
		{"", "bin", "1.0-1"},
		{"glibc", "glibc", "1.0-1"},
		{"glibc (2.36-9)", "glibc", "2.36-9"},
	}
	for _, tt := range tests {
		src, ver, err := ParseSourceField(tt.field, "bin", "1.0-1")
		if err != nil || src != tt.src || ver != tt.ver {
			t.Errorf("ParseSourceField(%q) = %q, %q, %v", tt.field, src, ver, err)
		}
	}
	if _, _, err := ParseSourceField("glibc 2.36", "bin", "1"); err == nil {
		t.Error("want an error for a version without parentheses")
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, name := range []string{"testdata/status-states", "testdata/status-bookworm-minbase"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 4000 {
			data = data[:4000]
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseStatus(strings.NewReader(string(data)), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || (p.Current() && (p.Version == "" || p.Arch == "")) {
				t.Fatalf("accepted an incomplete record: %+v", p)
			}
		}
	})
}
