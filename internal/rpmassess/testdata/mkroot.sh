#!/usr/bin/env bash
# mkroot.sh ROOT: make ROOT an AlmaLinux 9 system as far as assessment can
# tell: etc/os-release of AlmaLinux 9.8 and an rpm database (SQLite, as on
# AlmaLinux 9) written by the real rpm, holding tiny empty RPMs built with
# rpmbuild, named and versioned after real AlmaLinux 9 packages whose
# errata are in the AlmaLinux OSV feed:
#   openssl-libs 1:3.5.1-4.el9_7       epoch; ALSA-2026:1473 and three later ALSA
#   vim-minimal 2:8.2.2637-26.el9_8.13 epoch; the feed's latest fix: not affected
#   sudo 1.9.5p2-10.el9_3              ALSA-2025:9978, ALSA-2026:12310, ALSA-2026:19220
#   python3-setuptools 53.0.0-12.el9_4.1  noarch; ALSA-2025:10407
#   less 590-4.el9_4                   the latest fix (ALSA-2024:3513): not affected
#   open-vm-tools 12.5.0-1.el9_6.2     only a bug-fix erratum (ALBA-2025:20841)
#   open-vm-tools-desktop 12.5.0-1.el9.alma.1  ALSA-2025:17428; the ALBA above it left out
#   kernel-core 5.14.0-687.25.1.el9_8  ALBA-2026:39332 below the security candidate
#   postgresql 13.23-2.el9_7           not modular: the module streams' errata do not apply
#   patchloop-probe 1.0-1.el9          in no erratum
# then print what rpm itself lists, one line per package:
#   NAME EPOCHNUM:VERSION-RELEASE ARCH SOURCERPM
#
# Needs rpm and rpmbuild (Debian: apt-get install rpm). Used by
# rpmassess_test.go (TestDetectBuiltRoot) at test time.
set -euo pipefail
root=${1:?usage: mkroot.sh ROOT}
mkdir -p "$root"
root=$(cd "$root" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian's rpm keeps its own database in ~/.rpmdb; name everything.
rpmopts=(--root "$root" --dbpath /var/lib/rpm --define '_db_backend sqlite')
buildopts=(--define "_topdir $work/build" --define '_build_id_links none'
	--define '__os_install_post %{nil}' --define 'source_date_epoch_from_changelog 0'
	--define 'use_source_date_epoch_as_buildtime 1' --define 'clamp_mtime_to_source_date_epoch 1'
	--define '_buildhost patchloop-test' --define 'optflags -O2')
export SOURCE_DATE_EPOCH=1700000000

# spec SOURCE EPOCH VERSION RELEASE ARCH SUBPACKAGE... writes and builds one
# source package; "-" as EPOCH means none, "+" as a subpackage means the main
# package (named SOURCE), anything else is %package -n NAME.
spec() {
	local src=$1 epoch=$2 ver=$3 rel=$4 arch=$5
	shift 5
	local f=$work/$src-$ver-$rel-$arch.spec
	{
		echo "Name: $src"
		[ "$epoch" = - ] || echo "Epoch: $epoch"
		echo "Version: $ver"
		echo "Release: $rel"
		echo "Summary: patchloop test fixture named after AlmaLinux 9 $src"
		echo "License: MIT"
		[ "$arch" = noarch ] && echo "BuildArch: noarch"
		echo "%description"
		echo "Empty package for patchloop's rpmassess tests."
		for p in "$@"; do
			if [ "$p" = + ]; then
				echo "%files"
			else
				printf '%%package -n %s\nSummary: %s\n%%description -n %s\n%s\n%%files -n %s\n' "$p" "$p" "$p" "$p" "$p"
			fi
		done
	} > "$f"
	local target=()
	[ "$arch" = noarch ] || target=(--target "$arch")
	rpmbuild "${buildopts[@]}" "${target[@]}" -bb "$f" > "$work/build.log" 2>&1 ||
		{ cat "$work/build.log" >&2; exit 1; }
}

spec openssl 1 3.5.1 4.el9_7 x86_64 openssl-libs
spec vim 2 8.2.2637 26.el9_8.13 x86_64 vim-minimal
spec sudo - 1.9.5p2 10.el9_3 x86_64 +
spec python-setuptools - 53.0.0 12.el9_4.1 noarch python3-setuptools
spec less - 590 4.el9_4 x86_64 +
spec open-vm-tools - 12.5.0 1.el9_6.2 x86_64 +
spec open-vm-tools - 12.5.0 1.el9.alma.1 x86_64 open-vm-tools-desktop
spec kernel - 5.14.0 687.25.1.el9_8 x86_64 kernel-core
spec postgresql - 13.23 2.el9_7 x86_64 +
spec patchloop-probe - 1.0 1.el9 x86_64 +

mkdir -p "$root/etc"
printf '%s\n' 'NAME="AlmaLinux"' 'VERSION="9.8"' 'ID="almalinux"' \
	'ID_LIKE="rhel centos fedora"' 'VERSION_ID="9.8"' 'PLATFORM_ID="platform:el9"' \
	'PRETTY_NAME="AlmaLinux 9.8"' 'ANSI_COLOR="0;34"' \
	'CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"' > "$root/etc/os-release"

rpm "${rpmopts[@]}" --initdb
rpm "${rpmopts[@]}" -i --justdb --nodeps --noscripts --notriggers --ignorearch --ignoreos \
	"$work"/build/RPMS/*/*.rpm
rpm "${rpmopts[@]}" -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n' | LC_ALL=C sort
