// Package apply changes a Debian or Ubuntu machine: it installs exact
// package versions with apt and dpkg and can put the previous versions
// back. It is the library under the agent's install and rollback jobs;
// deciding what to install where and when (rings, waves, windows) is the
// rollout engine's business, not this package's.
//
//   - Plan simulates an install of exact (package, arch, version) pins
//     with `apt-get -s install` and parses apt's Inst/Conf/Remv lines into
//     the changes apt would make: upgrades and downgrades with both
//     versions, new packages pulled in, removals (flagged), held packages
//     (left out of the set and reported).
//   - Install repairs an interrupted dpkg first (`dpkg --configure -a`),
//     keeps a reinstallable .deb of every version it will replace (from
//     apt's archive cache, else downloaded from the configured sources,
//     else rebuilt from the installed files), writes a Record, installs the
//     exact versions noninteractively keeping changed conffiles, waits for
//     the dpkg lock, and reports what dpkg-query shows afterwards.
//   - Rollback reinstalls exactly the recorded previous versions from the
//     kept .debs and removes what the install added, if nothing else
//     needs it.
//   - RebootRequired and RestartNeeded say whether the change needs a
//     reboot (reboot-required flag, newer kernel than the running one) and
//     which processes and services still map deleted libraries.
//
// Every command runs chrooted into root unless root is "/". See
// docs/deploy.md.
package apply
