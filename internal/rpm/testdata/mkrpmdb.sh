#!/usr/bin/env bash
# mkrpmdb.sh ROOT: build tiny empty RPMs named and versioned after real
# AlmaLinux 9 packages (EVRs that the AlmaLinux OSV feed lists as fixed in
# one advisory and superseded by a later one), and register them with the
# real rpm in ROOT/var/lib/rpm (rpm --justdb: headers only, no files).
# Then print what rpm itself lists, in the format the Go test compares:
#   NAME EPOCHNUM:VERSION-RELEASE ARCH SOURCERPM
#
# Needs rpm and rpmbuild (Debian: apt-get install rpm); gpg, if present,
# adds one gpg-pubkey entry as `rpm --import` does on every RHEL system.
# Used by rpmdb_test.go at test time and to make testdata/rpmdb-alma9/.
set -euo pipefail
root=${1:?usage: mkrpmdb.sh ROOT}
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
	local f=$work/$src-$ver-$arch.spec
	{
		echo "Name: $src"
		[ "$epoch" = - ] || echo "Epoch: $epoch"
		echo "Version: $ver"
		echo "Release: $rel"
		echo "Summary: patchloop test fixture named after AlmaLinux 9 $src"
		echo "License: MIT"
		[ "$arch" = noarch ] && echo "BuildArch: noarch"
		echo "%description"
		echo "Empty package for patchloop's rpmdb reader tests."
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

spec openssl 1 3.0.7 27.el9 x86_64 openssl-libs
spec bash - 5.1.8 6.el9_1 x86_64 +
spec curl - 7.76.1 26.el9_3.2 x86_64 + libcurl
spec vim 2 8.2.2637 20.el9_1 x86_64 vim-minimal
spec kernel - 5.14.0 427.13.1.el9_4 x86_64 kernel-core
spec kernel - 5.14.0 503.14.1.el9_5 x86_64 kernel-core
spec glibc - 2.34 100.el9_4.2 x86_64 +
spec glibc - 2.34 100.el9_4.2 i686 +
spec sudo - 1.9.5p2 10.el9_3 x86_64 +
spec openssh - 8.7p1 38.el9_4.1 x86_64 + openssh-clients
spec python-setuptools - 53.0.0 10.el9_1.1 noarch python3-setuptools

rpm "${rpmopts[@]}" --initdb
rpm "${rpmopts[@]}" -i --justdb --nodeps --noscripts --notriggers --ignorearch --ignoreos \
	"$work"/build/RPMS/*/*.rpm
if command -v gpg > /dev/null && [ -r /usr/share/keyrings/debian-archive-keyring.gpg ]; then
	# Debian 11's archive key (RSA 4096), as a stand-in for RPM-GPG-KEY-AlmaLinux-9.
	gpg --homedir "$work/gnupg" --no-default-keyring \
		--keyring /usr/share/keyrings/debian-archive-keyring.gpg \
		--export --armor 73A4F27B8DD47936 > "$work/key.asc" 2> /dev/null
	rpm "${rpmopts[@]}" --import "$work/key.asc"
fi
rpm "${rpmopts[@]}" -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\n' | LC_ALL=C sort
