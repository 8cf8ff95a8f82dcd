#!/usr/bin/env bash
# mkbdb.sh RPMDB.SQLITE OUT PAGESIZE LORDER: copy the package headers of
# an rpm SQLite database into a Berkeley DB hash file OUT, laid out as
# rpm before 4.16 wrote /var/lib/rpm/Packages (RHEL 7 and 8): key = the
# 4-byte header number in the file's byte order, value = the header blob,
# plus key 0 holding the highest header number. The file is written by
# Berkeley DB 5.3 itself (db5.3_load, the libdb of RHEL 7 and 8) with the
# given page size and byte order (1234 little-endian, 4321 big-endian as
# on s390x). Needs sqlite3 and db5.3-util (Debian packages).
set -euo pipefail
src=${1:?usage: mkbdb.sh RPMDB.SQLITE OUT PAGESIZE LORDER} out=${2:?} pagesize=${3:?} lorder=${4:?}
db="file:$(realpath "$src")?mode=ro&immutable=1"
u32() {
	if [ "$lorder" = 1234 ]; then
		printf '%08x' "$1" | sed -E 's/(..)(..)(..)(..)/\4\3\2\1/'
	else
		printf '%08x' "$1"
	fi
}
rm -f "$out"
{
	printf 'VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=%s\ndb_lorder=%s\nHEADER=END\n' "$pagesize" "$lorder"
	printf ' %s\n %s\n' "$(u32 0)" "$(u32 "$(sqlite3 "$db" 'SELECT max(hnum) FROM Packages')")"
	sqlite3 -separator ' ' "$db" 'SELECT hnum, lower(hex(blob)) FROM Packages ORDER BY hnum' |
		while read -r n hex; do printf ' %s\n %s\n' "$(u32 "$n")" "$hex"; done
	echo DATA=END
} | db5.3_load "$out"
