"""OMEMO 0.3 under attack: what a hostile contact, a hostile or broken
server, or a careless user can do to xmppfs's end-to-end encryption.
Malformed <encrypted/> elements, replays, forged and absurd device
lists, changed identity keys, hostile bundles, bad writes to the OMEMO
files, a store that cannot be written.  The rule each test checks: no
crash, no hang, nothing in the clear that was meant to be encrypted, at
most one record per message, and the mount still reads and writes
encrypted messages afterwards."""

import base64
import errno
import os
import random
import time
import xml.etree.ElementTree as ET

from xfstest import Peer, assert_stays, el, wait_until
from test_omemo import (A, B, C, DOM, NS_AX, NS_PUBSUB, NODE_DEVICES, devices,
                        events, expect_errno, items, mount, own_id, rd,
                        records)

D = f"dan@{DOM}"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "carol": "carolpw",
                     "dan": "danpw"},
              mutual=[("alice", "bob"), ("alice", "carol"), ("alice", "dan")],
              direct_tls=False)
FALLBACK = "I sent you an OMEMO encrypted message"


def b64(data):
    return base64.b64encode(data).decode()


def rnd(n):
    return os.urandom(n)


def forged(to, enc, body="FALLBACK", mid=None):
    """A chat message carrying the <encrypted/> text @enc."""
    mid = mid or f"forged-{random.getrandbits(48):x}"
    return (f"<message to='{to}' type='chat' id='{mid}'>{enc}"
            f"<body>{body}</body></message>")


def envelope(sid, keys=(), iv=b64(rnd(12)), payload=None, header=True):
    """<encrypted/> as text: @keys (rid, base64, prekey) for the header."""
    ks = "".join(f"<key rid='{r}'{' prekey=' + repr(p) if p else ''}>{d}</key>"
                 for r, d, p in keys)
    ivx = "" if iv is None else f"<iv>{iv}</iv>"
    sidx = "" if sid is None else f" sid='{sid}'"
    hx = f"<header{sidx}>{ks}{ivx}</header>" if header else ""
    px = "" if payload is None else f"<payload>{payload}</payload>"
    return f"<encrypted xmlns='{NS_AX}'>{hx}{px}</encrypted>"


def texts(m, jid):
    return [t for _, t in records(m, jid)]


def omemo_bob(stack, server, res, **kw):
    from omemo_peer import OmemoPeer
    return stack.enter_context(OmemoPeer(B, "bobpw", server, resource=res,
                                         alone=True, **kw))


def bob_known(m, bob):
    wait_until(lambda: bob.device_id in devices(m, B)
               and devices(m, B)[bob.device_id][0] != "-", timeout=10,
               what=lambda: f"bob's device and key known; have {devices(m, B)}")


def test_malformed_envelopes_make_one_record_each_and_nothing_else(server, tmp, stack):
    """Bob's client sends <encrypted/> elements that are wrong in every
    way it can think of.  Each makes at most one `[undecryptable: ...]`
    record (or nothing, for what is no message to us), never the fallback
    body; xmppfs stays up, and bob's next genuine message decrypts."""
    bob = omemo_bob(stack, server, "t-mal-b")
    m = mount(stack, server, tmp, "t-mal")
    bob_known(m, bob)
    me, sid = own_id(m), bob.device_id
    junk = b64(rnd(40))
    cases = [
        # (envelope, a record expected)
        (envelope(sid, header=False, payload=junk), True),
        (envelope("0", [(me, junk, None)], payload=junk), True),
        (envelope("-1", [(me, junk, None)], payload=junk), True),
        (envelope("99999999999", [(me, junk, None)], payload=junk), True),
        (envelope("4294967295", [(me, junk, None)], payload=junk), True),
        (envelope(" 12", [(me, junk, None)], payload=junk), True),
        (envelope(None, [(me, junk, None)], payload=junk), True),
        (envelope(sid, [(me, junk, None)], iv=None, payload=junk), True),
        (envelope(sid, [(me, junk, None)], iv="!!!!", payload=junk), True),
        (envelope(sid, [(me, junk, None)], iv=b64(rnd(1)), payload=junk), True),
        (envelope(sid, [(me, junk, None)], iv=b64(rnd(1000)), payload=junk), True),
        (envelope(sid, [(me, junk, None)], payload=junk), True),
        (envelope(sid, [(me, junk, "true")], payload=junk), True),
        (envelope(sid, [(me, junk, "1")], payload=None), True),
        (envelope(sid, [(me, b64(b"\x33"), "true")], payload=junk), True),
        (envelope(sid, [(me, b64(b"\x08"), None)], payload=junk), True),
        (envelope(sid, [(me, "", None)], payload=junk), True),
        (envelope(sid, [(me, junk, None)], payload=""), True),
        (envelope(sid, [(me, junk, None)], payload=b64(rnd(150 * 1024))), True),
        (envelope(sid, [(me, b64(rnd(100 * 1024)), None)], payload=junk), True),
        (envelope(sid, [(me, junk, None), (me, junk, "true"),
                        (me, b64(rnd(200)), None)], payload=junk), True),
        (envelope(sid, [(i, junk, None) for i in range(1, 501)],
                  payload=junk), True),
        # key transport to other devices: no message to us, no record
        (envelope(sid, [(me + 1, junk, None)]), False),
        (envelope(sid, [("x", junk, None), ("-3", junk, None)]), False),
    ]
    for i, (enc, _) in enumerate(cases):
        bob.send_raw(forged(A, enc, body=f"{FALLBACK} #{i}"))
    bob.send_encrypted(A, "genuine after the junk")
    wait_until(lambda: "genuine after the junk" in texts(m, B), timeout=15,
               what=lambda: f"the genuine message; have {texts(m, B)}")
    recs = records(m, B)
    got = [t for _, t in recs]
    assert not any("FALLBACK" in t or FALLBACK in t for t in got), got
    bad = [t for t in got if t.startswith("[undecryptable:")]
    want = sum(1 for _, r in cases if r)
    assert len(bad) == want, (len(bad), want, got)
    assert all(i[1] == "undecryptable" and i[4] == "omemo"
               for i, t in recs if t.startswith("[undecryptable:")), recs
    assert sum(1 for e in events(m) if e[1] == "undecryptable") == want
    # still reads and writes
    m.write(f"{A}/contacts/{B}/send", "still here\n")
    bob.wait_decrypted(A, "still here")


def test_a_replayed_message_is_logged_once(server, tmp, stack):
    """The same encrypted stanza twice (a server or an attacker replays
    it; same id, same envelope): one record.  Sent again under another
    id: still one record.  The conversation goes on."""
    bob = omemo_bob(stack, server, "t-rep-b")
    m = mount(stack, server, tmp, "t-rep")
    bob_known(m, bob)
    me = own_id(m)
    for n, text in enumerate(("first, a pre-key message", "second, ordinary")):
        enc = bob._call(bob._encrypt, text, [(A, me)], timeout=20)
        x = ET.tostring(enc, encoding="unicode")
        mid = f"replay-{n}-{random.getrandbits(32):x}"
        bob.send_raw(forged(A, x, body=FALLBACK, mid=mid))
        wait_until(lambda: text in texts(m, B), timeout=10,
                   what=lambda: f"{text!r} logged; have {texts(m, B)}")
        bob.send_raw(forged(A, x, body=FALLBACK, mid=mid))
        bob.send_raw(forged(A, x, body=FALLBACK))
    bob.send_encrypted(A, "after the replays")
    wait_until(lambda: "after the replays" in texts(m, B), timeout=10)
    got = texts(m, B)
    for text in ("first, a pre-key message", "second, ordinary"):
        assert got.count(text) == 1, (text, got)
    assert not any(FALLBACK in t for t in got), got
