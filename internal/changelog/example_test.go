package changelog_test

import (
	"fmt"
	"strings"

	"github.com/patchloop/patchloop/internal/changelog"
)

func ExampleLog_Newer() {
	text := `jq (1.6-2.1+deb12u2) bookworm-security; urgency=high

  * CVE-2026-33947
  * CVE-2026-32316 (Closes: #1133921)

 -- Andreas Henriksson <andreas@fatal.se>  Wed, 01 Jul 2026 10:47:59 +0200

jq (1.6-2.1+deb12u1) bookworm; urgency=medium

  * Fix CVE-2025-48060.

 -- ChangZhuo Chen <czchen@debian.org>  Wed, 09 Jul 2025 22:23:15 +0800
`
	log, err := changelog.Parse(strings.NewReader(text), "changelog.Debian.gz")
	if err != nil {
		panic(err)
	}
	for _, installed := range []string{"1.6-2.1+deb12u1", "1.6-2.1"} {
		c, _ := log.Newer(installed)
		fmt.Println(installed, c.Urgency, c.CVEs, "complete:", c.Complete)
	}
	// Output:
	// 1.6-2.1+deb12u1 high [CVE-2026-32316 CVE-2026-33947] complete: true
	// 1.6-2.1 high [CVE-2025-48060 CVE-2026-32316 CVE-2026-33947] complete: false
}
