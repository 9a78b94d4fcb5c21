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

from xfstest import Peer, assert_stays, el, note, wait_until
from test_omemo import (A, B, C, DOM, NS_AX, NS_PUBSUB, NODE_DEVICES, devices,
                        events, expect_errno, items, mount, own_id, rd,
                        records, wait_listed)

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


def send_fsync(m, jid, text):
    """Write @text to @jid's send and fsync it (what went out, or why not)."""
    fd = os.open(m.path(A, "contacts", jid, "send"), os.O_WRONLY)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


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
    wait_listed(m, bob)
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


def pep_publish(peer, node, payload, access="open"):
    """@peer publishes @payload (an Element) as item "current" of @node."""
    ps = el(NS_PUBSUB, "pubsub")
    pub = el(NS_PUBSUB, "publish", node=node)
    item = el(NS_PUBSUB, "item", id="current")
    item.append(payload)
    pub.append(item)
    ps.append(pub)
    opts = el(NS_PUBSUB, "publish-options")
    x = el("jabber:x:data", "x", type="submit")
    for var, val in (("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
                     ("pubsub#access_model", access)):
        f = el("jabber:x:data", "field", var=var)
        if var == "FORM_TYPE":
            f.set("type", "hidden")
        f.append(el("jabber:x:data", "value", val))
        x.append(f)
    opts.append(x)
    ps.append(opts)
    r = peer.iq(None, "set", ps, timeout=20)
    assert r is not None and r.get("type") == "result", \
        ET.tostring(r) if r is not None else "no answer"


def device_list(ids):
    lst = el(NS_AX, "list")
    for i in ids:
        lst.append(el(NS_AX, "device", id=str(i)))
    return lst


def list_event(ids):
    """A PEP notification of a device list, as text."""
    devs = "".join(f"<device id='{i}'/>" for i in ids)
    return (f"<event xmlns='{NS_PUBSUB}#event'><items node='{NODE_DEVICES}'>"
            f"<item id='current'><list xmlns='{NS_AX}'>{devs}</list></item>"
            f"</items></event>")


def test_forged_device_lists_change_nothing(server, tmp, stack):
    """Only bob's own PEP service speaks for bob's devices.  A device
    list notification sent by bob's client (from his full JID) or by
    carol claiming to be bob, our server, or us, changes nothing of bob's
    devices nor of ours; what we send bob still reaches only his device."""
    bob = omemo_bob(stack, server, "t-fdl-b")
    m = mount(stack, server, tmp, "t-fdl")
    bob_known(m, bob)
    before_b, before_a = devices(m, B), devices(m, A)
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-fdl-c"))
    plain_bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-fdl-b2"))
    to_full = f"{A}/t-fdl"
    evil = [424242, 434343]
    for frm_peer in (carol, plain_bob):
        for to in (A, to_full):
            for frm in ("", f" from='{B}'", f" from='{A}'", f" from='{DOM}'",
                        f" from='{B}/t-fdl-b'"):
                frm_peer.send_raw(f"<message to='{to}'{frm} type='headline'>"
                                  f"{list_event(evil)}</message>")
    # carol's own notification arrives after all of these: then they
    # were all seen
    pep_publish(carol, NODE_DEVICES, device_list([515151]))
    wait_until(lambda: 515151 in devices(m, C), timeout=10,
               what=lambda: f"carol's own list; have {devices(m, C)}")
    assert devices(m, B) == before_b, (devices(m, B), before_b)
    assert devices(m, A) == before_a, (devices(m, A), before_a)
    assert not set(evil) & set(devices(m, C)), devices(m, C)
    m.write(f"{A}/contacts/{B}/send", "only for bob's device\n")
    r = bob.wait_decrypted(A, "only for bob's device")
    rids = {int(k.get("rid")) for k in r["xml"].iter(f"{{{NS_AX}}}key")}
    assert not set(evil) & rids, rids


def test_absurd_device_lists(server, tmp, stack):
    """carol publishes a device list of ids that are no ids, and one of
    10,000 devices.  The absurd ids are not kept; of the 10,000, a
    hundred (each costs a bundle fetch, and a line in the store's file);
    a new list of 10,000 other ids does not add to them.  xmppfs stays
    responsive: a write to carol fails (ENOKEY: no device of hers has
    keys) within seconds, and a write to bob is not held up."""
    bob = omemo_bob(stack, server, "t-abs-b")
    m = mount(stack, server, tmp, "t-abs")
    bob_known(m, bob)
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-abs-c"))
    weird = ["0", "-5", "2147483648", "4294967296", "abc", " 7", "+8", "0x10",
             "", "1e3", "9" * 40, "３"]
    lst = device_list([])
    for w in weird:
        lst.append(el(NS_AX, "device", id=w))
    lst.append(el(NS_AX, "device"))
    lst.append(el(NS_AX, "device", id="616161"))
    lst.append(el(NS_AX, "device", id="616161"))
    pep_publish(carol, NODE_DEVICES, lst)
    wait_until(lambda: 616161 in devices(m, C), timeout=10,
               what=lambda: f"carol's list; have {devices(m, C)}")
    assert set(devices(m, C)) == {616161}, devices(m, C)
    t0 = time.monotonic()
    pep_publish(carol, NODE_DEVICES, device_list(range(1, 10001)))
    wait_until(lambda: 1 in devices(m, C), timeout=15,
               what="carol's big list seen")
    m.write(f"{A}/contacts/{B}/send", "bob is not held up\n")
    bob.wait_decrypted(A, "bob is not held up", timeout=10)
    expect_errno(lambda: send_fsync(m, C, "to carol's ten thousand\n"),
                 errno.ENOKEY)
    took = time.monotonic() - t0
    note(f"10,000 devices: {len(devices(m, C))} kept, ENOKEY after {took:.1f}s")
    assert took < 12, took
    # a hundred at most are kept (a bundle fetch and a line on disk each)
    assert len(rd(m.path(A, "contacts", C, "devices")).splitlines()) <= 100
    # and a new list of new ids replaces them: what is known of none of
    # them is not kept for ever
    pep_publish(carol, NODE_DEVICES, device_list(range(20001, 30001)))
    wait_until(lambda: 20001 in devices(m, C), timeout=10)
    with open(m.data / A / "omemo" / "devices", encoding="utf-8") as f:
        kept = [l for l in f.read().splitlines() if l.startswith(C + "\t")]
    assert len(kept) <= 100, len(kept)
    # the files stay readable, and the mount answers
    rd(m.path(A, "omemo"))
    m.write(f"{A}/contacts/{B}/send", "and after\n")
    bob.wait_decrypted(A, "and after")


def test_our_list_without_our_device_is_published_again(server, tmp, stack):
    """Another client of ours (a phone) publishes our device list without
    this device: we publish it again with ours added and the phone's
    kept; a list that has ours is left alone (no publishing war)."""
    from omemo_peer import OmemoPeer
    m = mount(stack, server, tmp, "t-own")
    me = own_id(m)
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-own-c"))

    def published():
        got = items(carol, A, NODE_DEVICES)
        return [int(d.get("id")) for d in got[0].iter(f"{{{NS_AX}}}device")] \
            if got else []
    wait_until(lambda: me in published(), timeout=10, what="our device listed")
    phone = stack.enter_context(OmemoPeer(A, "alicepw", server,
                                          resource="t-own-phone", alone=True))
    wait_until(lambda: set(published()) >= {me, phone.device_id}, timeout=10,
               what=lambda: f"ours and the phone's; have {published()}")
    wait_until(lambda: phone.device_id in devices(m, A), timeout=10)
    # the phone drops us again, twice: we come back each time
    for _ in range(2):
        phone.publish_device_list([phone.device_id])
        wait_until(lambda: set(published()) >= {me, phone.device_id}, timeout=10,
                   what=lambda: f"ours back; have {published()}")
    # a list with ours: nothing published
    phone.publish_device_list([phone.device_id, me, 777])
    wait_until(lambda: 777 in devices(m, A), timeout=10)
    assert_stays(lambda: sorted(published()) == sorted([phone.device_id, me, 777]),
                 1.5, what=lambda: f"the phone's list left alone; have {published()}")


def test_a_device_id_reused_with_new_keys_is_undecided_until_trusted(server, tmp, stack):
    """bob's device X is replaced by another with new keys under the same
    id (a reinstall, or someone who took over bob's account): its
    message is read, but under tofu the new key is `undecided`, writes
    to bob fail with ENOKEY and nothing reaches X; `trust X` lets them
    through again."""
    from omemo_peer import OmemoPeer
    bob = omemo_bob(stack, server, "t-idc-b")
    x = bob.device_id
    m = mount(stack, server, tmp, "t-idc")
    bob_known(m, bob)
    old_fp = bob.fingerprint
    assert devices(m, B) == {x: (old_fp, "trusted")}, devices(m, B)
    m.write(f"{A}/contacts/{B}/send", "to the old X\n")
    bob.wait_decrypted(A, "to the old X")
    bob.disconnect()
    impostor = stack.enter_context(OmemoPeer(B, "bobpw", server,
                                             resource="t-idc-x", device_id=x,
                                             alone=True))
    assert impostor.fingerprint != old_fp
    wait_listed(m, impostor)
    impostor.send_encrypted(A, "same id, new key")
    wait_until(lambda: "same id, new key" in texts(m, B), timeout=10,
               what=lambda: f"the impostor's message; have {texts(m, B)}")
    wait_until(lambda: devices(m, B)[x] == (impostor.fingerprint, "undecided"),
               timeout=10, what=lambda: f"X undecided; have {devices(m, B)}")
    assert rd(m.path(A, "contacts", B, "encryption")) == "omemo\n"
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/send", "not for X\n"),
                 errno.ENOKEY)
    # a remount does not forget it
    m.close()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    assert devices(m, B)[x] == (impostor.fingerprint, "undecided")
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/send", "still not\n"),
                 errno.ENOKEY)
    m.write(f"{A}/contacts/{B}/devices", f"trust {x}\n")
    m.write(f"{A}/contacts/{B}/send", "now X may read\n")
    impostor.wait_decrypted(A, "now X may read")
    time.sleep(0.3)
    assert not any(r["body"] in ("not for X", "still not")
                   for r in impostor.decrypted), impostor.decrypted
    assert not any("not for X" in t or "still not" in t for t in texts(m, B))


def bundle_xml(ik=None, spk=None, sig=None, prekeys=None, spk_id="1",
               ns=NS_AX, drop=()):
    """A bundle element: random keys of the right sizes unless given."""
    b = el(ns, "bundle")
    parts = [("signedPreKeyPublic", spk if spk is not None else b"\x05" + rnd(32)),
             ("signedPreKeySignature", sig if sig is not None else rnd(64)),
             ("identityKey", ik if ik is not None else b"\x05" + rnd(32))]
    for name, data in parts:
        if name in drop:
            continue
        e = el(ns, name, b64(data))
        if name == "signedPreKeyPublic":
            e.set("signedPreKeyId", spk_id)
        b.append(e)
    pks = el(ns, "prekeys")
    for i, data in (prekeys if prekeys is not None
                    else [(str(n), b"\x05" + rnd(32)) for n in range(1, 6)]):
        pks.append(el(ns, "preKeyPublic", b64(data), preKeyId=i))
    b.append(pks)
    return b


def test_hostile_bundles_fail_cleanly_and_never_in_the_clear(server, tmp, stack):
    """carol's devices have bundles that cannot be used: a signature
    that does not verify, no pre-keys, keys of the wrong length, a part
    missing, pre-keys that are garbage, the wrong namespace, none at
    all.  A write to her is accepted (no key known yet, tofu), then
    fails: fsync says ENOKEY, an error event names the message, and
    carol receives nothing, not even a fallback body."""
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-hb-c"))
    ids = list(range(9101, 9109))
    bundles = {
        9101: bundle_xml(),                                   # bad signature
        9102: bundle_xml(prekeys=[]),                         # no pre-keys
        9103: bundle_xml(ik=b"\x05" + rnd(9)),                # short identity
        9104: bundle_xml(spk=rnd(100)),                       # long spk
        9105: bundle_xml(drop=("signedPreKeySignature",)),    # no signature
        9106: bundle_xml(prekeys=[("0", rnd(33)), ("x", b"\x05"), ("7", b"")]),
        9107: bundle_xml(ns="urn:xmpp:omemo:2"),              # wrong ns
        # 9108: no bundle at all
    }
    for i, b in bundles.items():
        pep_publish(carol, f"{NS_AX}.bundles:{i}", b)
    pep_publish(carol, NODE_DEVICES, device_list(ids))
    m = mount(stack, server, tmp, "t-hb")
    wait_until(lambda: set(devices(m, C)) == set(ids), timeout=10,
               what=lambda: f"carol's devices; have {devices(m, C)}")
    assert rd(m.path(A, "contacts", C, "encryption")) == "omemo\n"
    expect_errno(lambda: send_fsync(m, C, "secret for carol\n"), errno.ENOKEY)
    wait_until(lambda: any(e[1] == "error" and e[2] == C and "secret for carol" in e[3]
                           for e in events(m)), timeout=5,
               what="the error event")
    # none has a key: still `-`, no session was made
    assert all(fp == "-" for fp, _ in devices(m, C).values()), devices(m, C)
    # and the next one too, at once
    expect_errno(lambda: send_fsync(m, C, "again\n"), errno.ENOKEY)
    time.sleep(0.5)
    got = [r for r in carol.messages if r.get("from", "").startswith(A)]
    assert not got, got


def test_bad_writes_to_the_omemo_files_change_nothing(server, tmp, stack):
    """A careless user or script: `devices` with garbage, ids that are no
    ids, a huge line, NUL bytes, our own device; `encryption` with NUL
    bytes, two words, another case.  Each fails with its errno and
    changes nothing; good lines still work afterwards."""
    bob = omemo_bob(stack, server, "t-bw-b")
    m = mount(stack, server, tmp, "t-bw", omemo_trust="manual")
    bob_known(m, bob)
    me, x = own_id(m), bob.device_id
    dev = f"{A}/contacts/{B}/devices"
    before = devices(m, B)
    assert before[x][1] == "undecided"
    for bad in ("trust\n", "trust abc\n", f"trust {x} {x}\n", "trust 0\n",
                "trust -1\n", "trust 4294967296\n", f"trust +{x}\n",
                f"trust 0x{x:x}\n", f"TRUST {x}\n", f"trust{x}\n",
                f"trusted {x}\n", "\n", "trust ３\n"):
        expect_errno(lambda: m.write(dev, bad), errno.EINVAL)
    expect_errno(lambda: m.write(dev, "trust 12345\n"), errno.ENOENT)
    expect_errno(lambda: m.write(dev, f"trust {x}" + " " * 70000 + "\n"),
                 errno.EFBIG)
    expect_errno(lambda: m.write(dev, f"trust {x}\0\n"), errno.EILSEQ)
    # our own device is no contact's, and not to be trusted or distrusted
    expect_errno(lambda: m.write(dev, f"trust {me}\n"), errno.ENOENT)
    expect_errno(lambda: m.write(f"{A}/omemo", f"distrust {me}\n"), errno.ENOENT)
    assert devices(m, B) == before, devices(m, B)
    assert devices(m, A)[me][1] == "own"
    # a line that fails leaves the lines before it done, none after
    expect_errno(lambda: m.write(dev, f"trust {x}\nfrob {x}\ndistrust {x}\n"),
                 errno.EINVAL)
    assert devices(m, B)[x][1] == "trusted", devices(m, B)
    enc = f"{A}/contacts/{B}/encryption"
    for bad, e in (("omemo\nplain\n", errno.EINVAL), ("OMEMO\n", errno.EINVAL),
                   ("omemo\0\n", errno.EILSEQ), ("plain\0omemo", errno.EILSEQ),
                   ("pl ain\n", errno.EINVAL), ("x" * 70000, errno.EFBIG)):
        expect_errno(lambda: m.write(enc, bad), e)
        assert rd(m.path(A, "contacts", B, "encryption")) == "omemo\n"
    assert not os.path.exists(m.data / A / "encryption")
    m.write(f"{A}/contacts/{B}/send", "after the bad writes\n")
    bob.wait_decrypted(A, "after the bad writes")


def test_decrypted_text_is_no_more_than_a_plain_body_may_be(server, tmp, stack):
    """A plain <body/> cannot hold control characters (XML forbids them),
    but an encrypted payload can hold any bytes.  Terminal escapes (a
    contact retitling your terminal, or worse, when you `cat log`), NUL
    bytes, invalid UTF-8: none reaches `log`, `stream` or `events` as it
    came.  The message is still recorded, once; lines stay lines."""
    bob = omemo_bob(stack, server, "t-ctl-b")
    m = mount(stack, server, tmp, "t-ctl")
    bob_known(m, bob)
    wait_listed(m, bob)
    evil = ["title\x1b]0;pwned\x07 here", "bell\x07\x08\x0b\x0c\x7f done",
            "two\nlines\rand\ttab", "nul\x00hidden"]
    for t in evil:
        bob.send_encrypted(A, t)
    bob.send_encrypted(A, "the last one")
    wait_until(lambda: "the last one" in texts(m, B), timeout=10,
               what=lambda: f"the last message; have {texts(m, B)}")
    raw = (rd(m.path(A, "contacts", B, "log")) +
           rd(m.data / A / "events" / "log"))
    bad = [c for c in raw if ord(c) < 0x20 and c not in "\t\n"]
    assert not bad, (bad, raw)
    got = texts(m, B)
    assert got == ["title\ufffd]0;pwned\ufffd here",
                   "bell\ufffd\ufffd\ufffd\ufffd\x7f done",
                   "two", "lines and\ttab",
                   "[undecryptable: not text]",  # not cut at the NUL
                   "the last one"], got


def test_a_store_that_cannot_be_written_loses_no_message(server, tmp, stack):
    """The store's sessions/ cannot be written (here: it is replaced by a
    file, which stops root as well as anyone).  A message bob sends then
    is not thrown away as undecryptable: its key is not used up (the
    session's new state was not kept), so once the store mends, the
    archive gives it again and it is decrypted, once.  What we write
    meanwhile fails with an error event and never goes out in the clear;
    after the repair both directions work."""
    bob = omemo_bob(stack, server, "t-ro-b")
    m = mount(stack, server, tmp, "t-ro")
    bob_known(m, bob)
    wait_listed(m, bob)
    m.write(f"{A}/contacts/{B}/send", "one\n")
    bob.wait_decrypted(A, "one")
    bob.send_encrypted(A, "two")
    wait_until(lambda: "two" in texts(m, B), timeout=10)
    sessions = m.data / A / "omemo" / "sessions"
    away = m.data / A / "omemo" / "sessions.away"
    os.rename(sessions, away)
    sessions.write_text("not a directory\n")
    try:
        bob.send_encrypted(A, "while the store is broken")
        n = len(bob.decrypted)
        expect_errno(lambda: send_fsync(m, B, "out while broken\n"), errno.ENOTDIR)
        wait_until(lambda: any(e[1] == "error" and "out while broken" in e[3]
                               for e in events(m)), timeout=5, what="the error event")
        time.sleep(0.5)
    finally:
        sessions.unlink()
        os.rename(away, sessions)
    assert not any(r["body"] == "out while broken" for r in bob.decrypted[n:])
    assert not any(r["body"] == "out while broken" for r in bob.messages)
    bob.send_encrypted(A, "after the repair")
    wait_until(lambda: "after the repair" in texts(m, B), timeout=10)
    wait_until(lambda: "while the store is broken" in texts(m, B), timeout=15,
               what=lambda: f"the message of the broken time; have {texts(m, B)}")
    got = texts(m, B)
    assert got.count("while the store is broken") == 1, got
    # (the retry of a fresh account asks the archive by time, from a
    # minute before: it may bring what earlier tests sent other devices)
    assert not any("directory" in t for t in got), got
    m.write(f"{A}/contacts/{B}/send", "and out again\n")
    bob.wait_decrypted(A, "and out again")
