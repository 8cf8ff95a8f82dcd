#!/usr/bin/env python3
"""Independent oracle for rpmassess.Findings.

usage: oracle.py ECOSYSTEM OSV_DIR < installed

installed: lines "NAME EPOCHNUM:VERSION-RELEASE ARCH SOURCERPM" (rpm -qa --qf
'%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM}\\n').
Prints one line per finding, sorted:
  NAME ARCH INSTALLED CANDIDATE CLASSIFICATION RELEASED ADVISORIES CVES
(RELEASED as YYYY-MM-DD or "-", lists comma-separated or "-").

It walks the OSV records itself (the schema's IsVulnerable: events sorted,
introduced "0" first, fixed exclusive, last_affected inclusive) and orders
versions with python3-rpm's rpm.labelCompare, sharing no code with Go. The
rules it applies are those documented in internal/rpmassess:
  - a range applies only when its fixed version is a module build
    (".module_" in it) exactly when the installed one is;
  - the fix of one record is the highest of the fixed events ending the
    applying ranges that hold the installed version (repeated until none
    holds it);
  - candidate: the highest fix among security advisories (xxSA-) when there
    is one, else among all; advisories listed: those whose fix <= candidate,
    ordered by published date then ID; classification security > bugfix
    (xxBA-) > other; released: the earliest published advisory whose fix
    equals the candidate.
"""
import glob
import json
import os
import re
import sys

import rpm

CVE = re.compile(r"CVE-\d{4}-\d{4,19}")


def evr(s):
    e, sep, rest = s.partition(":")
    if not sep or not e.isdigit():
        e, rest = "0", s
    v, sep, r = rest.rpartition("-")
    if not sep:
        v, r = rest, None
    return (e or "0", v, r)


def cmp(a, b):
    return rpm.labelCompare(evr(a), evr(b))


def sort_key_events(events):
    # introduced "0" first, then by version (stable)
    zero = [e for e in events if e[0] == "introduced" and e[1] == "0"]
    rest = [e for e in events if not (e[0] == "introduced" and e[1] == "0")]
    import functools
    rest = sorted(rest, key=functools.cmp_to_key(lambda x, y: cmp(x[1], y[1])))
    return zero + rest


def includes(events, v):
    vulnerable = False
    for kind, ver in sort_key_events(events):
        if kind == "introduced" and (ver == "0" or cmp(v, ver) >= 0):
            vulnerable = True
        elif kind == "fixed" and cmp(v, ver) >= 0:
            vulnerable = False
        elif kind == "last_affected" and cmp(v, ver) > 0:
            vulnerable = False
    return vulnerable


def next_fixed(events, v):
    for kind, ver in sort_key_events(events):
        if kind == "fixed" and cmp(v, ver) < 0:
            return ver
        if kind == "last_affected" and cmp(v, ver) <= 0:
            return None
    return None


def modular(s):
    return ".module_" in s


def applies(events, mod):
    for kind, ver in events:
        if not (kind == "introduced" and ver == "0"):
            return modular(ver) == mod
    return True


def cves_of(rec):
    out = []
    for x in [rec["id"]] + rec.get("aliases", []) + rec.get("upstream", []) + rec.get("related", []):
        m = None
        if CVE.fullmatch(x):
            m = x
        elif "-CVE-" in x and CVE.fullmatch(x[x.index("-CVE-") + 1:]):
            m = x[x.index("-CVE-") + 1:]
        if m and m not in out:
            out.append(m)
    return out


def kind(rec):
    p = rec["id"].split("-", 1)[0]
    if len(p) == 4 and p[2:] in ("SA", "BA", "EA"):
        return {"SA": "security", "BA": "bugfix", "EA": "other"}[p[2:]]
    return "security" if cves_of(rec) else "other"


def main():
    eco, osv_dir = sys.argv[1], sys.argv[2]
    by_pkg = {}
    seen = set()
    for path in sorted(glob.glob(os.path.join(osv_dir, "**", "*.json"), recursive=True)):
        with open(path) as f:
            rec = json.load(f)
        if rec.get("withdrawn") or rec["id"] in seen:
            continue
        seen.add(rec["id"])
        for a in rec.get("affected", []):
            if a["package"]["ecosystem"] != eco:
                continue
            ranges = [
                [(k, ver) for ev in rg["events"] for k, ver in ev.items()]
                for rg in a.get("ranges", []) if rg["type"] == "ECOSYSTEM"
            ]
            lst = by_pkg.setdefault(a["package"]["name"], {})
            r = lst.setdefault(rec["id"], {"rec": rec, "ranges": [], "versions": []})
            r["ranges"] += ranges
            r["versions"] += a.get("versions", [])

    out = []
    for line in sys.stdin:
        if not line.strip():
            continue
        name, full, arch, _src = line.split()
        e, _, vr = full.partition(":")
        installed = vr if e == "0" else full
        arch = "" if arch == "(none)" else arch
        hits = []
        for rid, r in by_pkg.get(name, {}).items():
            affected = installed in r["versions"] or any(includes(rg, installed) for rg in r["ranges"])
            if not affected:
                continue
            mod = modular(installed)
            c, fix = installed, None
            while True:
                holding = [rg for rg in r["ranges"] if applies(rg, mod) and includes(rg, c)]
                if not holding:
                    fix = c if c != installed else None
                    break
                fixes = [next_fixed(rg, c) for rg in holding]
                if None in fixes:
                    break
                best = fixes[0]
                for x in fixes[1:]:
                    if cmp(x, best) > 0:
                        best = x
                c = best
            if fix is not None:
                hits.append((r["rec"], fix, kind(r["rec"])))
        if not hits:
            continue
        security = any(k == "security" for _, _, k in hits)
        cand = None
        for rec, fix, k in hits:
            if (not security or k == "security") and (cand is None or cmp(fix, cand) > 0):
                cand = fix
        hits = [h for h in hits if cmp(h[1], cand) <= 0]
        hits.sort(key=lambda h: (h[0].get("published", ""), h[0]["id"]))
        cls = "security" if security else ("bugfix" if any(k == "bugfix" for _, _, k in hits) else "other")
        released = next((h[0].get("published", "")[:10] for h in hits if cmp(h[1], cand) == 0), "") or "-"
        cves = []
        for rec, _, _ in hits:
            for c in cves_of(rec):
                if c not in cves:
                    cves.append(c)
        out.append(" ".join([name, arch or "-", installed, cand, cls, released,
                             ",".join(h[0]["id"] for h in hits) or "-", ",".join(cves) or "-"]))
    for line in sorted(out):
        print(line)


if __name__ == "__main__":
    main()
