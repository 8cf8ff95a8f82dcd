package policy_test

import (
	"fmt"
	"time"

	"github.com/patchloop/patchloop/internal/assess"
	"github.com/patchloop/patchloop/internal/policy"
)

func Example() {
	b, err := policy.Parse("web.yaml", []byte(`name: web
hosts: {match_labels: {role: web}}
exclude:
  - {package: "linux-image-*", reason: kernels follow the reboot calendar}
rules:
  - {name: known-exploited, kev: true}
  - {name: security, classification: [security], approve_after_days: 7}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2025, 10, 1, 9, 0, 0, 0, time.UTC)
	web := map[string]string{"role": "web"}
	for _, f := range []assess.Finding{
		{Package: "linux-image-amd64", Classification: assess.Security},
		{Package: "libssl3", Classification: assess.Security, Released: time.Date(2025, 9, 28, 0, 0, 0, 0, time.UTC)},
		{Package: "libxml2", Classification: assess.Bugfix, CVEs: []assess.CVE{{ID: "CVE-2025-1001", KEV: &assess.KEV{}}}},
		{Package: "tzdata", Classification: assess.Other},
	} {
		fmt.Println(f.Package+":", b.Decide(&f, web, now))
	}
	_, err = policy.Parse("bad.yaml", []byte("name: web\nhosts: {}\nrules:\n  - {name: s, approve_after_days: -1}\n"))
	fmt.Println(err)
	// Output:
	// linux-image-amd64: declined by exclude[0] (web.yaml:4): package "linux-image-*" is excluded (kernels follow the reboot calendar)
	// libssl3: pending by rules[1] security (web.yaml:7): rule security: security update; released 2025-09-28, approved 7 days later, on 2025-10-05
	// libxml2: approved by rules[0] known-exploited (web.yaml:6): rule known-exploited: known exploited (KEV)
	// tzdata: pending by default (web.yaml): no rule matched
	// bad.yaml:2: hosts: empty selector; give match_labels, match_expressions, or all: true
	// bad.yaml:4: rules[0].approve_after_days must be 0 or more, not -1
}
