"""omemo_cost.py - what OMEMO costs a conversation (issue 17).

Run through scripts/bench (step 7; --omemo: only that).  A private
Prosody, bob as an OMEMO 0.3 client (tests/integration/omemo_peer.py,
python3-oldmemo) and one xmppfs for alice with omemo = true.  Each round,
in alternating order, the same conversation with `encryption` set to
omemo and to plain:

  send   N lines written to contacts/bob/send in one write, then fsync:
         until the server acknowledged all N (each encrypted to bob's
         device and alice's others, when omemo)
  recv   N messages bob made beforehand (encrypted, or plain), sent in one
         burst: until all N are records of alice's log (decrypted, when
         omemo)

Prints medians per message (ms) and the ratio omemo/plain, the plain
figure measured in the same run as its baseline; never fails on a time.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from xfstest import Mount, Server, wait_until  # noqa: E402
from bench import print_table  # noqa: E402

A, B = "alice@localhost", "bob@localhost"


def log_lines(m):
    with open(m.path(A, "contacts", B, "log"), "rb") as f:
        return f.read().count(b"\n")


def burst(bob, texts, encrypted):
    """Make one stanza per text first, then send them all."""
    async def go():
        out = []
        for t in texts:
            m = bob.xmpp.make_message(mto=A, mtype="chat", mbody=t)
            if encrypted:
                m["body"] = "fallback"
                m.append(await bob._encrypt(t, [(A, d) for d in bob.lists[A]]))
            out.append(m)
        return out
    stanzas = bob._call(go, timeout=120)
    t0 = time.monotonic()
    bob._call(lambda: [s.send() for s in stanzas], timeout=60)
    return t0


def main():
    from omemo_peer import OmemoPeer
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args, _ = ap.parse_known_args()
    os.environ.setdefault("XMPPFS", str(ROOT / args.build / "xmppfs"))
    reps, n = (3, 50) if args.quick else (5, 200)
    tmp = Path(tempfile.mkdtemp(prefix="xmppfs-bench-omemo-"))
    res = {k: [] for k in ("send omemo", "send plain", "recv omemo",
                           "recv plain")}
    server = Server(tmp, users={"alice": "alicepw", "bob": "bobpw"},
                    mutual=[("alice", "bob")])
    server.start()
    try:
        bob = OmemoPeer(B, "bobpw", server, resource="bench-omemo", alone=True)
        bob.connect()
        m = Mount(tmp, {A: server.account("alice", resource="bench",
                                          omemo="true")})
        m.start()
        m.wait_state(A, "online", timeout=15)
        enc = m.path(A, "contacts", B, "encryption")
        wait_until(lambda: open(enc).read() == "omemo\n", timeout=15)
        # sessions both ways before the clock runs
        m.write(f"{A}/contacts/{B}/send", "warm up\n")
        bob.wait_decrypted(A, "warm up")
        bob.devices_of(A)
        for i in range(reps):
            order = ["omemo", "plain"] if i % 2 == 0 else ["plain", "omemo"]
            for mode in order:
                m.write(f"{A}/contacts/{B}/encryption", mode + "\n")
                text = "".join(f"{mode} {i} {k}\n" for k in range(n))
                t0 = time.monotonic()
                fd = os.open(m.path(A, "contacts", B, "send"), os.O_WRONLY)
                os.write(fd, text.encode())
                os.fsync(fd)
                os.close(fd)
                res[f"send {mode}"].append((time.monotonic() - t0) / n)
                have = log_lines(m)
                t0 = burst(bob, [f"in {mode} {i} {k}" for k in range(n)],
                           mode == "omemo")
                wait_until(lambda: log_lines(m) >= have + n, timeout=120,
                           interval=0.002, what=f"{n} {mode} messages logged")
                res[f"recv {mode}"].append((time.monotonic() - t0) / n)
        m.write(f"{A}/contacts/{B}/encryption", "default\n")
        m.close()
        bob.disconnect()
    finally:
        server.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(tmp)])
    ms = {k: statistics.median(v) * 1000 for k, v in res.items()}
    print_table(f"OMEMO ({n} messages a round, median of {reps}, ms per "
                "message)",
                ("figure", "omemo", "plain", "ratio"),
                [("send: written, fsync (all acknowledged)",
                  f"{ms['send omemo']:.3f}", f"{ms['send plain']:.3f}",
                  f"{ms['send omemo'] / ms['send plain']:.2f}"),
                 ("receive: a burst, until all are in the log",
                  f"{ms['recv omemo']:.3f}", f"{ms['recv plain']:.3f}",
                  f"{ms['recv omemo'] / ms['recv plain']:.2f}")])


if __name__ == "__main__":
    main()
