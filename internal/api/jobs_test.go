package api

import (
	"strings"
	"testing"
	"time"
)

func TestParseJobParams(t *testing.T) {
	for _, tc := range []struct {
		kind, params string
		err          string // "" valid
	}{
		{"scan", ``, ""},
		{"scan", `null`, ""},
		{"scan", `{}`, ""},
		{"scan", `{"x":1}`, "unknown field"},
		{"shell", `{"cmd":"rm -rf /"}`, "unknown job kind"},
		{"", `{}`, "unknown job kind"},
		{"plan", `{"packages":[{"package":"libc6","arch":"amd64","version":"2.36-9+deb12u4"}]}`, ""},
		{"plan", `{"packages":[]}`, "none given"},
		{"plan", `{}`, "none given"},
		{"plan", `{"packages":[{"package":"-oAPT::X=1","version":"1"}]}`, "bad package name"},
		{"plan", `{"packages":[{"package":"libc6","version":"--force"}]}`, "packages[0]"},
		{"plan", `{"packages":[{"package":"libc6","arch":"amd 64","version":"1"}]}`, "bad architecture"},
		{"plan", `{"packages":[{"package":"libc6","version":"1"},{"package":"libc6","version":"2"}]}`, "given twice"},
		{"plan", `{"packages":[{"package":"libc6","version":"1","extra":true}]}`, "unknown field"},
		{"install", `{"packages":[{"package":"zlib1g","version":"1:1.2.13.dfsg-1"}],"allow_removals":true,"lock_timeout_seconds":60,"rollback_on_failure":true}`, ""},
		{"install", `{"packages":[{"package":"zlib1g","version":"1"}],"lock_timeout_seconds":-1}`, "lock_timeout_seconds"},
		{"install", `{"packages":[{"package":"zlib1g","version":"1"}],"lock_timeout_seconds":3601}`, "lock_timeout_seconds"},
		{"install", `{"packages":[{"package":"zlib1g","version":"1"}],"allow_downgrades":true}`, "unknown field"},
		{"install", `{"packages":[{"package":"zlib1g","version":"1"}]} {}`, "data after"},
		{"rollback", `{"install_job":"0f3a9c"}`, ""},
		{"rollback", `{"record":"20240102T030405Z-0a1b2c3d"}`, ""},
		{"rollback", `{}`, "exactly one"},
		{"rollback", `{"install_job":"a","record":"20240102T030405Z-0a1b2c3d"}`, "exactly one"},
		{"rollback", `{"install_job":"../etc"}`, "not a job ID"},
		{"rollback", `{"record":"../../x"}`, "not a record ID"},
		{"reboot", `{"if_required":true}`, ""},
		{"reboot", `{"command":"halt"}`, "unknown field"},
		{"restart-services", `{}`, ""},
		{"restart-services", `{"units":["nginx.service"]}`, ""},
		{"restart-services", `{"units":["nginx; reboot"]}`, "units[0]"},
		{"restart-services", `{"units":["--now.service"]}`, "units[0]"},
	} {
		p, err := ParseJobParams(tc.kind, []byte(tc.params))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s %s: %v, want %q", tc.kind, tc.params, err, tc.err)
		}
		if err == nil && p == nil {
			t.Errorf("%s %s: nil params", tc.kind, tc.params)
		}
	}
	p, err := ParseJobParams(JobInstall, []byte(`{"packages":[{"package":"zlib1g","version":"1"}],"lock_timeout_seconds":90}`))
	if err != nil {
		t.Fatal(err)
	}
	ip := p.(*InstallParams)
	if ip.LockTimeout() != 90*time.Second || ip.Packages[0].Package != "zlib1g" {
		t.Errorf("install params %+v, lock %v", ip, ip.LockTimeout())
	}
	if (&InstallParams{}).LockTimeout() != DefaultLockTimeout {
		t.Error("default lock timeout")
	}
	many := `{"packages":[` + strings.Repeat(`{"package":"a0","version":"1"},`, MaxJobPackages) + `{"package":"b0","version":"1"}]}`
	if _, err := ParseJobParams(JobPlan, []byte(many)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d packages: %v", MaxJobPackages+1, err)
	}
}
