#!/usr/bin/python3
"""layers - the call graph between xmppfs's source files, from the object
files' symbols (nm): a definition in one file used by another is an arrow.

Fails when
  - a file of the account's core calls a feature: the core runs the
    features through their hooks (feature.h) and the stanza chain
    (dispatch.h), and names none of them (featureset.c does);
  - a file of the store or pure layers calls up into the core, a feature
    or the filesystem;
  - the files are in a call cycle that tests/unit/layers.allow does not
    list (a ratchet: the cycles there are known and are to go; a new one
    may not come).

    layers.py OBJDIR [OBJDIR...] ALLOWFILE
"""
import collections
import glob
import os
import subprocess
import sys

CORE = {"pool", "account", "conn", "resolve", "outgoing", "sm", "dispatch",
        "strophe012", "guard", "coro", "watchdog"}
FEATURES = {"chat", "contacts", "client", "iqfile", "block", "mam", "muc",
            "muc_out", "muc_private", "muc_archive"}
LOW = {"jid", "config", "text", "record", "util", "xmlcheck", "roomids",
       "history", "outbox", "roster", "rooms", "fdcache", "datalock",
       "errmap", "iqcall", "log", "stream"}
UP = CORE | FEATURES | {"fsops", "tree", "featureset", "main"}


def graph(dirs):
    defs, undefs = {}, {}
    for d in dirs:
        for o in glob.glob(os.path.join(d, "*.o")):
            name = os.path.basename(o)
            if not name.startswith("src_"):
                continue
            name = name[4:].replace(".c.o", "")
            out = subprocess.run(["nm", o], capture_output=True, text=True,
                                 check=True).stdout
            ds, us = set(), set()
            for line in out.splitlines():
                p = line.split()
                if len(p) == 3 and p[1] in "TDBRC":
                    ds.add(p[2])
                elif len(p) == 2 and p[0] == "U":
                    us.add(p[1])
            defs[name], undefs[name] = ds, us
    prov = {s: n for n, ds in defs.items() for s in ds}
    g = collections.defaultdict(dict)
    for n, us in undefs.items():
        for s in us:
            if s in prov and prov[s] != n:
                g[n].setdefault(prov[s], s)
    return defs, g


def cycles(nodes, g):
    idx, low, stack, on, out, c = {}, {}, [], set(), [], [0]

    def visit(v):
        idx[v] = low[v] = c[0]
        c[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in idx:
            visit(v)
    return out


def main():
    *dirs, allowfile = sys.argv[1:]
    defs, g = graph(dirs)
    if len(defs) < 10:
        print(f"not ok: only {len(defs)} object files in {dirs}")
        return 1
    bad = []
    for n in sorted(defs):
        for m, sym in sorted(g.get(n, {}).items()):
            if n in CORE and m in FEATURES:
                bad.append(f"the core calls a feature: {n}.c -> {m}.c ({sym})")
            if n in LOW and m in UP:
                bad.append(f"a lower layer calls up: {n}.c -> {m}.c ({sym})")
    allowed = set()
    with open(allowfile) as f:
        for line in f:
            line = line.split("#")[0].split()
            if line:
                allowed.add(frozenset(line))
    found = cycles(defs, g)
    for comp in found:
        if comp not in allowed:
            bad.append("a call cycle not in " + os.path.basename(allowfile)
                       + ": " + " ".join(sorted(comp)))
    for b in bad:
        print("not ok:", b)
    if bad:
        return 1
    print(f"ok: {len(defs)} files; the core names no feature; nothing calls "
          f"down-up; {len(found)} known cycle(s), no new one")
    for comp in found:
        print("  known cycle:", " ".join(sorted(comp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
