"""files.py - files with cp, and files fetched, against curl (issue 16).

Run through scripts/bench (step 6; --files: only that).  A private
Prosody (scripts/testbed, with its upload service on HTTPS, files up to
1 MiB) and one xmppfs for alice, with downloads = true.  Each round, in
alternating order:

  cp          `cp FILE contacts/bob/` of a 1,000,000-byte file: the slot,
              the PUT and the message; against
  curl PUT    the same PUT by curl to a slot asked for beforehand (the
              slot's round trip not counted: the baseline is the transfer)
  fetched     from bob's message with a link to the file in alice's
              files/; against
  curl GET    the same URL fetched by curl

Prints medians (ms) and the ratio xmppfs/baseline; never fails on a time.
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
import xfstest  # noqa: E402
from xfstest import Mount, Peer, Server, wait_until  # noqa: E402
from bench import print_table  # noqa: E402

A, B = "alice@localhost", "bob@localhost"
SIZE = 1_000_000


def slot(peer, name, size):
    import xml.etree.ElementTree as ET
    ns = "urn:xmpp:http:upload:0"
    req = ET.Element(f"{{{ns}}}request", filename=name, size=str(size),
                     **{"content-type": "application/octet-stream"})
    r = peer.iq("upload.localhost", "get", req)
    s = r.find(f"{{{ns}}}slot")
    put = s.find(f"{{{ns}}}put")
    return (put.get("url"), s.find(f"{{{ns}}}get").get("url"),
            {h.get("name"): h.text for h in put.findall(f"{{{ns}}}header")})


def curl(server, args):
    t0 = time.monotonic()
    subprocess.run(["curl", "-sS", "-f", "--cacert", str(server.ca_file),
                    "--connect-to", f"localhost:{server.https_port}:127.0.0.1:"
                    f"{server.https_port}"] + args, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args, _ = ap.parse_known_args()
    os.environ.setdefault("XMPPFS", str(ROOT / args.build / "xmppfs"))
    reps = 3 if args.quick else 7
    tmp = Path(tempfile.mkdtemp(prefix="xmppfs-bench-files-"))
    src = tmp / "payload.bin"
    src.write_bytes(os.urandom(SIZE))
    res = {"cp": [], "curl PUT": [], "fetched": [], "curl GET": []}
    server = Server(tmp, users={"alice": "alicepw", "bob": "bobpw"},
                    mutual=[("alice", "bob")])
    server.start()
    try:
        bob = Peer(B, "bobpw", server, resource="bench-files")
        bob.connect()
        m = Mount(tmp, {A: server.account("alice", resource="bench",
                                          downloads="true",
                                          download_max=str(2 * SIZE))})
        m.start()
        m.wait_state(A, "online", timeout=15)
        time.sleep(1)  # (the upload service found)
        for i in range(reps):
            order = ["xmppfs", "base"] if i % 2 == 0 else ["base", "xmppfs"]
            for who in order:
                if who == "xmppfs":
                    dst = m.path(A, "contacts", B, f"up{i}.bin")
                    t0 = time.monotonic()
                    subprocess.run(["cp", str(src), str(dst)], check=True)
                    res["cp"].append(time.monotonic() - t0)
                else:
                    put, _, hdrs = slot(bob, f"base{i}.bin", SIZE)
                    h = sum((["-H", f"{k}: {v}"] for k, v in hdrs.items()), [])
                    # (no Expect: 100-continue, which Prosody does not
                    # answer: curl would wait a second for it)
                    res["curl PUT"].append(curl(server, h + [
                        "-H", "Expect:",
                        "-H", "Content-Type: application/octet-stream",
                        "-T", str(src), put]))
            # a file bob sends, fetched by alice; and by curl
            put, get, hdrs = slot(bob, f"down{i}.bin", SIZE)
            h = sum((["-H", f"{k}: {v}"] for k, v in hdrs.items()), [])
            curl(server, h + ["-H", "Content-Type: application/octet-stream",
                              "-T", str(src), put])
            res["curl GET"].append(curl(server, ["-o", "/dev/null", get]))
            import xml.etree.ElementTree as ET
            x = ET.Element("{jabber:x:oob}x")
            ET.SubElement(x, "{jabber:x:oob}url").text = get
            p = m.path(A, "contacts", B, "files", f"down{i}.bin")
            t0 = time.monotonic()
            bob.send_message_with(A, get, [x])
            wait_until(lambda: os.path.exists(p), timeout=30, interval=0.002,
                       what=f"down{i}.bin fetched")
            res["fetched"].append(time.monotonic() - t0)
        m.close()
        bob.disconnect()
    finally:
        server.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(tmp)])
    ms = {k: statistics.median(v) * 1000 for k, v in res.items()}
    print_table(f"Files ({SIZE:,} bytes, median of {reps})",
                ("figure", "xmppfs (ms)", "curl (ms)", "ratio"),
                [("cp into contacts/JID/ (slot, PUT, message) vs curl PUT",
                  f"{ms['cp']:.1f}", f"{ms['curl PUT']:.1f}",
                  f"{ms['cp'] / ms['curl PUT']:.2f}"),
                 ("a link received to the file in files/ vs curl GET",
                  f"{ms['fetched']:.1f}", f"{ms['curl GET']:.1f}",
                  f"{ms['fetched'] / ms['curl GET']:.2f}")])


if __name__ == "__main__":
    main()
