#!/usr/bin/python3
"""layers - the layers of xmppfs's source, checked from its object files
and its #include lines.

src/ has one folder per layer, lowest first (README: Architecture):
  base      pure: jid, text, record, config...; nothing of ours above it
  store     what is kept: history, outbox, roster and room lists
  xmpp      the account's core, the pool, stream management, the stanza
            chain; the only place, with features, that calls libstrophe
  features  one file (or muc*) per XEP family; featureset.c adds them
  fs        the FUSE side: file operations, the tree, parked reads
  main.c    puts them together

Fails when
  - a file calls a function of a layer above its own (the call graph comes
    from the object files' symbols, nm: a definition in one file used by
    another is an arrow), so the core never calls a feature;
  - a file includes a header of a layer above its own;
  - a file of base/, store/ or fs/ includes <strophe.h>, or one below fs/
    <fuse*.h>, even through our headers;
  - the files are in a call cycle, or headers in an include cycle, that
    tests/unit/layers.allow does not list (a ratchet: the cycles there are
    known and are to go; a new one may not come), or that file lists one
    that is gone.

    layers.py SRCDIR OBJDIR [OBJDIR...] ALLOWFILE
"""
import collections
import glob
import os
import re
import subprocess
import sys

ORDER = ["base", "store", "xmpp", "features", "fs", "main"]
RANK = {name: i for i, name in enumerate(ORDER)}


def layer_of(name):
    """Layer of a module named as in an object file ("xmpp_pool") or as
    a path under src/ ("xmpp/pool", "xmpp/pool.h")."""
    for layer in ORDER[:-1]:
        if name.startswith((layer + "_", layer + "/")):
            return layer
    return "main"


def graph(dirs):
    defs, undefs = {}, {}
    for d in dirs:
        for o in glob.glob(os.path.join(d, "*.o")):
            name = os.path.basename(o)
            if not name.startswith("src_"):
                continue
            name = name[4:].replace(".c.o", "")
            layer = layer_of(name)
            if layer != "main":  # "xmpp_pool" -> "xmpp/pool"
                name = layer + "/" + name[len(layer) + 1:]
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


INCLUDE = re.compile(r'^#include\s+([<"])([^>"]+)[>"]', re.M)


def includes(srcdir):
    """{"xmpp/pool.c": (["base/log.h", ...], ["strophe.h", ...])}"""
    out = {}
    for path in glob.glob(os.path.join(srcdir, "**", "*.[ch]"),
                          recursive=True):
        rel = os.path.relpath(path, srcdir)
        ours, system = [], []
        with open(path) as f:
            for kind, name in INCLUDE.findall(f.read()):
                (ours if kind == '"' else system).append(name)
        out[rel] = (ours, system)
    return out


def reaches(inc, rel, test, seen=None):
    """The chain of our headers by which @rel includes a system header
    that passes @test, or None."""
    seen = set() if seen is None else seen
    ours, system = inc.get(rel, ([], []))
    for s in system:
        if test(s):
            return [rel, "<" + s + ">"]
    for h in ours:
        if h not in seen:
            seen.add(h)
            chain = reaches(inc, h, test, seen)
            if chain:
                return [rel] + chain
    return None


def check_includes(inc):
    bad = []
    for rel in sorted(inc):
        me = layer_of(rel)
        for h in inc[rel][0]:
            if h not in inc:
                bad.append(f"{rel} includes {h}, which is no file of src/")
            elif RANK[layer_of(h)] > RANK[me]:
                bad.append(f"{rel} ({me}) includes {h}, a layer above")
        if me in ("base", "store", "fs"):
            chain = reaches(inc, rel, lambda s: s == "strophe.h")
            if chain:
                bad.append(f"{me}/ includes libstrophe: "
                           + " -> ".join(chain))
        elif RANK[me] < RANK["fs"]:
            chain = reaches(inc, rel, lambda s: s.startswith("fuse"))
            if chain:
                bad.append(f"{me}/ includes FUSE: " + " -> ".join(chain))
    return bad


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
    srcdir, *dirs, allowfile = sys.argv[1:]
    defs, g = graph(dirs)
    if len(defs) < 10:
        print(f"not ok: only {len(defs)} object files in {dirs}")
        return 1
    bad = []
    for n in sorted(defs):
        for m, sym in sorted(g.get(n, {}).items()):
            if RANK[layer_of(m)] > RANK[layer_of(n)]:
                bad.append(f"{layer_of(n)} calls up into {layer_of(m)}: "
                           f"{n} -> {m} ({sym})")
    inc = includes(srcdir)
    bad += check_includes(inc)
    allowed = set()
    with open(allowfile) as f:
        for line in f:
            line = line.split("#")[0].split()
            if line:
                allowed.add(frozenset(line))
    found = cycles(defs, g)
    hg = {rel: {h: h for h in inc[rel][0] if h in inc} for rel in inc}
    found += cycles(inc, hg)
    for comp in found:
        if comp not in allowed:
            bad.append("a cycle not in " + os.path.basename(allowfile)
                       + ": " + " ".join(sorted(comp)))
    for comp in allowed - set(found):
        bad.append("gone, so to be deleted from "
                   + os.path.basename(allowfile) + ": "
                   + " ".join(sorted(comp)))
    for b in bad:
        print("not ok:", b)
    if bad:
        return 1
    print(f"ok: {len(defs)} files in {len(ORDER)} layers; nothing calls or "
          f"includes up; {len(found)} known cycle(s), no new one")
    for comp in found:
        print("  known cycle:", " ".join(sorted(comp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
