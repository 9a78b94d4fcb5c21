"""OMEMO 0.3 end-to-end encryption (issue 17): xmppfs against an
independent implementation, python3-omemo with python3-oldmemo on
slixmpp (omemo_peer.py), through the real Prosody.  Scripts write to
`send` and read `log`/`stream`; keys and trust are the files
ACCOUNT/omemo, contacts/JID/devices and contacts/JID/encryption."""

import errno
import os
import re
import time
import xml.etree.ElementTree as ET

from xfstest import Mount, Peer, el, wait_until

DOM = "localhost"
A = f"alice@{DOM}"
B = f"bob@{DOM}"
C = f"carol@{DOM}"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"},
              mutual=[("alice", "bob"), ("alice", "carol")],
              direct_tls=False)

NS_AX = "eu.siacs.conversations.axolotl"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NODE_DEVICES = NS_AX + ".devicelist"
FP = re.compile(r"^[0-9a-f]{8}( [0-9a-f]{8}){7}$")


def rd(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def events(m, acct=A):
    return [l.split("\t", 3) for l in rd(m.path(acct, "log")).splitlines()]


def devices(m, jid):
    """{id: (fingerprint, trust)} of a devices file (or ACCOUNT/omemo)."""
    path = m.path(A, "omemo") if jid == A else m.path(A, "contacts", jid, "devices")
    out = {}
    for line in rd(path).splitlines():
        f = line.split("\t")
        assert len(f) == 3, line
        out[int(f[0])] = (f[1], f[2])
    return out


def records(m, jid):
    """[(ids fields, record text)] of a conversation."""
    for _ in range(50):
        log = rd(m.path(A, "contacts", jid, "log")).splitlines()
        ids = rd(m.path(A, "contacts", jid, "log.ids")).splitlines()
        if len(log) == len(ids):
            break
        time.sleep(0.02)  # (a record came between the two reads)
    assert len(log) == len(ids), (log, ids)
    return [(i.split("\t"), l.split("\t", 2)[2]) for i, l in zip(ids, log)]


def mount(stack, server, tmp, res, data=None, **keys):
    keys.setdefault("omemo", "true")
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource=res,
                                                           **keys)},
                                  data=data))
    m.wait_state(A, "online", timeout=10)
    return m


def items(peer, owner, node):
    ps = el(NS_PUBSUB, "pubsub")
    ps.append(el(NS_PUBSUB, "items", node=node))
    r = peer.iq(owner, "get", ps)
    if r is None or r.get("type") != "result":
        return None
    return [i for i in r.iter(f"{{{NS_PUBSUB}}}item")]


def wait_listed(m, peer):
    """Until @peer sees this mount's device in our published device list
    (published at connect, maybe after the contact's list came): what
    @peer encrypts to us before that is not for this device."""
    me = own_id(m)
    wait_until(lambda: me in peer.devices_of(A), timeout=10,
               what="our device in our published list")


def expect_errno(fn, want):
    try:
        fn()
    except OSError as e:
        assert e.errno == want, f"errno {e.errno}, want {want}"
        return
    raise AssertionError(f"no error, want errno {want}")


def test_own_device_published_and_shown(server, tmp, stack):
    """With omemo = true the account gets a device: ACCOUNT/omemo shows its
    id and fingerprint; a stranger (carol, no subscription needed: open
    access) reads our device list and our bundle; the keys survive a
    remount unchanged, in files of mode 0600."""
    m = mount(stack, server, tmp, "t-own")
    wait_until(lambda: os.path.exists(m.path(A, "omemo")) and rd(m.path(A, "omemo")),
               timeout=10, what="ACCOUNT/omemo")
    own = rd(m.path(A, "omemo")).splitlines()[0].split("\t")
    dev, fp, mark = int(own[0]), own[1], own[2]
    assert mark == "own" and FP.match(fp), own
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-own-c"))

    def listed():
        got = items(carol, A, NODE_DEVICES)
        if not got:
            return False
        return any(int(d.get("id")) == dev
                   for d in got[0].iter(f"{{{NS_AX}}}device"))
    wait_until(listed, timeout=10, what="our device in our published list")
    bundle = items(carol, A, f"{NS_AX}.bundles:{dev}")
    assert bundle, "no bundle"
    b = bundle[0].find(f"{{{NS_AX}}}bundle")
    assert b is not None
    assert len(list(b.iter(f"{{{NS_AX}}}preKeyPublic"))) == 100
    ik = b.findtext(f"{{{NS_AX}}}identityKey")
    import base64
    assert base64.b64decode(ik)[1:].hex() == fp.replace(" ", "")
    # kept, private
    sdir = m.data / A / "omemo"
    assert (os.stat(sdir).st_mode & 0o777) == 0o700
    for f in sdir.rglob("*"):
        if f.is_file():
            assert (os.stat(f).st_mode & 0o777) == 0o600, f
    m.remount()
    m.wait_state(A, "online", timeout=10)
    again = rd(m.path(A, "omemo")).splitlines()[0].split("\t")
    assert again == own, (again, own)


def test_off_by_default_and_refusals(server, tmp, stack):
    """Without omemo = true: no omemo or devices files, encryption reads
    plain and cannot be set to omemo (EOPNOTSUPP); with it, an
    encryption word that is none is EINVAL, and insisting on omemo for a
    contact without devices makes `send` fail with ENOKEY, nothing sent."""
    m = mount(stack, server, tmp, "t-off", omemo=None)
    assert not os.path.exists(m.path(A, "omemo"))
    assert not os.path.exists(m.path(A, "contacts", B, "devices"))
    assert rd(m.path(A, "contacts", B, "encryption")) == "plain\n"
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/encryption", "omemo\n"),
                 errno.EOPNOTSUPP)


def test_insisting_without_devices_sends_nothing(server, tmp, stack):
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-ins-b"))
    m = mount(stack, server, tmp, "t-ins")
    enc = m.path(A, "contacts", B, "encryption")
    assert rd(enc) == "plain\n"  # bob has no device
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/encryption", "secret\n"),
                 errno.EINVAL)
    m.write(f"{A}/contacts/{B}/encryption", "omemo\n")
    assert rd(enc) == "omemo\n"
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/send", "hush\n"),
                 errno.ENOKEY)
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/devices", "trust abc\n"),
                 errno.EINVAL)
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/devices", "trust 12345\n"),
                 errno.ENOENT)
    m.write(f"{A}/contacts/{B}/encryption", "default\n")
    m.write(f"{A}/contacts/{B}/send", "in the clear, as asked\n")
    bob.wait_message(A, body="in the clear, as asked")
    assert not any(r["body"] == "hush" for r in bob.messages)


def bundle_prekeys(peer, dev):
    """The pre-key ids in alice's bundle for device @dev, as @peer reads it."""
    got = items(peer, A, f"{NS_AX}.bundles:{dev}")
    return {int(p.get("preKeyId")) for p in got[0].iter(f"{{{NS_AX}}}preKeyPublic")}


def own_id(m):
    return int(rd(m.path(A, "omemo")).splitlines()[0].split("\t")[0])


def test_both_directions(server, tmp, stack):
    """A script writes to bob, who uses an axolotl client: it arrives
    encrypted (the server and the stanza carry only the fallback body) and
    bob reads it; bob's encrypted answer is plain text in `log` and
    `stream`, its log.ids line marked omemo; bob's devices file shows his
    device with the fingerprint his client shows, trusted on first use."""
    from omemo_peer import OmemoPeer
    bob = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-bd-b",
                                        alone=True))
    m = mount(stack, server, tmp, "t-bd")
    wait_until(lambda: rd(m.path(A, "contacts", B, "encryption")) == "omemo\n",
               timeout=10, what="bob's devices known")
    m.write(f"{A}/contacts/{B}/send", "hi bob, secretly\n")
    r = bob.wait_decrypted(A, "hi bob, secretly")
    assert r["error"] is None and r["prekey"]
    assert "secretly" not in ET.tostring(r["xml"], encoding="unicode")
    # our record: sent encrypted
    recs = records(m, B)
    assert recs[-1][1] == "hi bob, secretly" and recs[-1][0][4] == "omemo", recs
    # bob's device, as his client shows it
    d = devices(m, B)
    assert d == {bob.device_id: (bob.fingerprint, "trusted")}, (d, bob.fingerprint)
    # the answer
    stream = stack.enter_context(open(m.path(A, "contacts", B, "stream"), "rb"))
    wait_listed(m, bob)
    bob.send_encrypted(A, "hello alice, secretly too")
    wait_until(lambda: any(t == "hello alice, secretly too" for _, t in records(m, B)),
               timeout=10, what="bob's answer in the log")
    (ids, text), = [r for r in records(m, B) if r[1] == "hello alice, secretly too"]
    assert ids[1] == "message" and ids[4] == "omemo", ids
    from xfstest import read_with_deadline
    got = read_with_deadline(stream.fileno(), timeout=5.0)
    assert b"hello alice, secretly too" in got["data"], got
    assert not any("OMEMO encrypted message" in t for _, t in records(m, B))
    # a second message each way: no pre-key message any more
    m.write(f"{A}/contacts/{B}/send", "and again\n")
    r = bob.wait_decrypted(A, "and again")
    assert not r["prekey"], r
    bob.send_encrypted(A, "again from bob")
    wait_until(lambda: any(t == "again from bob" for _, t in records(m, B)),
               timeout=10, what="bob's second answer")


def test_two_devices_and_a_new_one_mid_conversation(server, tmp, stack):
    """Bob has two devices: both read what the script sends.  A third
    appears mid-conversation (a new device list by PEP notification):
    the next message reaches it too, and it shows in `devices`.  A
    message bob's new device starts (pre-key message) is read, and
    answered with a heartbeat (an empty message) that moves the session
    on."""
    from omemo_peer import OmemoPeer
    b1 = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-2d-b1",
                                       alone=True))
    b2 = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-2d-b2"))
    m = mount(stack, server, tmp, "t-2d")
    wait_until(lambda: set(devices(m, B)) == {b1.device_id, b2.device_id},
               timeout=10, what="both of bob's devices")
    m.write(f"{A}/contacts/{B}/send", "to both\n")
    b1.wait_decrypted(A, "to both")
    b2.wait_decrypted(A, "to both")
    b3 = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-2d-b3"))
    wait_until(lambda: b3.device_id in devices(m, B), timeout=10,
               what="bob's new device in `devices`")
    wait_until(lambda: devices(m, B)[b3.device_id][0] == b3.fingerprint,
               timeout=10, what="its key (fetched with its bundle)")
    m.write(f"{A}/contacts/{B}/send", "to all three\n")
    for b in (b1, b2, b3):
        b.wait_decrypted(A, "to all three")
    # a device that writes to us first: a pre-key message, read, and
    # answered with an empty message; the pre-key it used is replaced in
    # our bundle
    dev = own_id(m)
    before = bundle_prekeys(b1, dev)
    b4 = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-2d-b4"))
    wait_listed(m, b4)
    b4.send_encrypted(A, "hi from the new phone")
    wait_until(lambda: any(t == "hi from the new phone" for _, t in records(m, B)),
               timeout=10, what="b4's message in the log")
    hb = b4.wait_decrypted(A, None)
    assert hb["body"] is None and hb["error"] is None, hb
    b4.send_encrypted(A, "second from the new phone")
    wait_until(lambda: any(t == "second from the new phone" for _, t in records(m, B)),
               timeout=10, what="b4's second message")
    recs = [t for _, t in records(m, B)]
    assert recs.count("hi from the new phone") == 1, recs
    after = wait_until(lambda: (lambda p: p if p != before else None)(bundle_prekeys(b1, dev)),
                       timeout=10, what="our bundle published again")
    assert len(after) == 100 and len(before - after) == 1, (len(after), before - after)


def test_trust_refuses_and_allows(server, tmp, stack):
    """omemo_trust = manual: bob's device is undecided, a write fails with
    ENOKEY and nothing reaches him; `trust ID` lets the next one through;
    with a second device distrusted, only the trusted one can read; the
    decisions survive a remount."""
    from omemo_peer import OmemoPeer
    b1 = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-tr-b1",
                                       alone=True))
    b2 = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-tr-b2"))
    m = mount(stack, server, tmp, "t-tr", omemo_trust="manual")
    wait_until(lambda: all(d[0] != "-" for d in devices(m, B).values())
               and len(devices(m, B)) == 2,
               timeout=10, what="bob's two devices with their keys")
    assert {t for _, t in devices(m, B).values()} == {"undecided"}
    assert rd(m.path(A, "contacts", B, "encryption")) == "omemo\n"
    expect_errno(lambda: m.write(f"{A}/contacts/{B}/send", "nobody may read\n"),
                 errno.ENOKEY)
    m.write(f"{A}/contacts/{B}/devices", f"trust {b1.device_id}\ndistrust {b2.device_id}\n")
    d = devices(m, B)
    assert d[b1.device_id][1] == "trusted" and d[b2.device_id][1] == "untrusted", d
    m.write(f"{A}/contacts/{B}/send", "for b1 only\n")
    b1.wait_decrypted(A, "for b1 only")
    r = b2.wait_decrypted(A, None)
    assert r["body"] is None and "not encrypted for this device" in r["error"], r
    time.sleep(0.5)
    assert not any(x["body"] == "nobody may read" for x in b1.decrypted + b2.decrypted)
    m.remount()
    m.wait_state(A, "online", timeout=10)
    d = devices(m, B)
    assert d[b1.device_id][1] == "trusted" and d[b2.device_id][1] == "untrusted", d


def test_tampered_is_recorded_once_as_undecryptable(server, tmp, stack):
    """A message whose payload was altered does not authenticate: one
    record `[undecryptable: ...]` of KIND undecryptable and an event,
    never the fallback body, never the altered text; a message not
    encrypted for our device says so."""
    from omemo_peer import OmemoPeer
    bob = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-tm-b",
                                        alone=True))
    m = mount(stack, server, tmp, "t-tm")
    wait_until(lambda: rd(m.path(A, "contacts", B, "encryption")) == "omemo\n",
               timeout=10, what="bob's devices known")
    wait_listed(m, bob)
    bob.send_encrypted(A, "genuine")
    wait_until(lambda: any(t == "genuine" for _, t in records(m, B)), timeout=10)
    bob.send_encrypted(A, "evil twin", tamper=True)
    wait_until(lambda: any(t.startswith("[undecryptable") for _, t in records(m, B)),
               timeout=10, what="the undecryptable record")
    bob.send_encrypted(A, "after it")
    wait_until(lambda: any(t == "after it" for _, t in records(m, B)), timeout=10)
    recs = records(m, B)
    bad = [(i, t) for i, t in recs if t.startswith("[undecryptable")]
    assert len(bad) == 1, recs
    assert bad[0][0][1] == "undecryptable" and bad[0][0][4] == "omemo", bad
    assert "altered or corrupt" in bad[0][1], bad
    assert not any("evil twin" in t or "OMEMO encrypted" in t for _, t in recs)
    assert any(e[1] == "undecryptable" and e[2] == B for e in events(m))
    # one for our device is missing: said so
    bob.send_encrypted(A, "not for you", only_devices=[])
    wait_until(lambda: any("not encrypted for this device" in t
                           for _, t in records(m, B)), timeout=10)


def test_catch_up_and_carbons_decrypted_once(server, tmp, stack):
    """What bob sent encrypted while the mount was down comes from the
    archive at the next mount, decrypted, each once (a remount does not
    log them twice); what alice's phone (another OMEMO client of hers)
    sends bob reaches the mount as a carbon, decrypted, as alice's; a
    message accepted for encryption while offline goes out encrypted."""
    from omemo_peer import OmemoPeer
    bob = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-cu-b",
                                        alone=True))
    m = mount(stack, server, tmp, "t-cu")
    wait_until(lambda: rd(m.path(A, "contacts", B, "encryption")) == "omemo\n",
               timeout=10, what="bob's devices known")
    m.write(f"{A}/contacts/{B}/send", "before the break\n")
    bob.wait_decrypted(A, "before the break")
    m.close()
    for i in range(3):
        bob.send_encrypted(A, f"while you were away {i}")
    time.sleep(0.5)
    m.remount()
    m.wait_state(A, "online", timeout=10)
    want = [f"while you were away {i}" for i in range(3)]
    wait_until(lambda: [t for _, t in records(m, B) if t in want] == want,
               timeout=15, what="the catch-up's messages, decrypted, in order")
    assert all(i[4] == "omemo" for i, t in records(m, B) if t in want)
    # alice's phone talks to bob: its carbon is decrypted here
    phone = stack.enter_context(OmemoPeer(A, "alicepw", server, resource="t-cu-phone"))
    wait_until(lambda: phone.device_id in devices(m, A), timeout=10,
               what="the phone in ACCOUNT/omemo")
    phone.send_encrypted(B, "from my phone")
    bob.wait_decrypted(A, "from my phone")
    wait_until(lambda: any(t == "from my phone" for _, t in records(m, B)),
               timeout=10, what="the phone's carbon, decrypted")
    (ids, _), = [r for r in records(m, B) if r[1] == "from my phone"]
    assert ids[4] == "omemo"
    assert rd(m.path(A, "contacts", B, "log")).count(f"\t{A}\tfrom my phone") == 1
    # what we send now is encrypted for the phone too
    m.write(f"{A}/contacts/{B}/send", "seen from both\n")
    bob.wait_decrypted(A, "seen from both")
    wait_until(lambda: any(r["body"] == "seen from both" and r["carbon"]
                           for r in phone.decrypted),
               timeout=10, what="the phone reads our carbon")
    # a remount logs nothing twice
    m.close()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    time.sleep(1.0)
    texts = [t for _, t in records(m, B)]
    for t in want + ["from my phone", "seen from both"]:
        assert texts.count(t) == 1, (t, texts)


def test_accepted_offline_goes_out_encrypted(server, tmp, stack):
    """A message accepted for encryption while the account cannot log in
    (queue_when_failed) waits in the outbox with its choice, across a
    remount, and goes out encrypted once the login works: never in the
    clear, although nothing about the conversation is known then but what
    the data directory kept."""
    from omemo_peer import OmemoPeer
    bob = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-off-b",
                                        alone=True))
    # (carol keeps the mount up while alice's login is refused)
    m = stack.enter_context(Mount(tmp, {
        A: server.account("alice", resource="t-off", omemo="true",
                          queue_when_failed="true"),
        C: server.account("carol", resource="t-off-c")}))
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: rd(m.path(A, "contacts", B, "encryption")) == "omemo\n",
               timeout=10, what="bob's devices known")
    m.close()
    good = m.cfg.read_text()
    m.cfg.write_text(good.replace("alicepw", "wrong-password"))
    m.remount()
    wait_until(lambda: "authentication failed" in m.log_text(), timeout=10)
    m.write(f"{A}/contacts/{B}/send", "queued while refused\n")
    out = (m.data / A / "outbox").read_text()
    assert "queued while refused" in out and ";omemo" in out, out
    m.close()
    m.cfg.write_text(good)
    m.remount()
    m.wait_state(A, "online", timeout=10)
    r = bob.wait_decrypted(A, "queued while refused", timeout=15)
    assert "queued while refused" not in ET.tostring(r["xml"], encoding="unicode")
    assert not any(x["body"] == "queued while refused" for x in bob.messages)


def test_a_python_omemo_client_both_ways(server, tmp, stack):
    """Against a client built on python-omemo's SessionManager (as
    applications of that library behave: it checks our device list and
    bundle strictly, answers our pre-key message with an empty message,
    and repeats its key exchange until it has read from us): a
    conversation each way, started by either side, nothing undecryptable
    on either side, and our heartbeat read by it."""
    from omemo_client import OmemoClient
    bob = stack.enter_context(OmemoClient(B, "bobpw", server, resource="t-sm-b",
                                          reset_device_list=True))
    m = mount(stack, server, tmp, "t-sm")
    wait_until(lambda: rd(m.path(A, "contacts", B, "encryption")) == "omemo\n",
               timeout=10, what="bob's devices known")
    m.write(f"{A}/contacts/{B}/send", "hi session manager\n")
    r = bob.wait_decrypted(A, "hi session manager")
    assert r["error"] is None and r["prekey"], r
    bob.send_encrypted(A, "hello from python-omemo")
    wait_until(lambda: any(t == "hello from python-omemo" for _, t in records(m, B)),
               timeout=10, what="its answer")
    m.write(f"{A}/contacts/{B}/send", "second\n")
    assert not bob.wait_decrypted(A, "second")["prekey"]
    # bob's second device starts a conversation of its own with us
    b2 = stack.enter_context(OmemoClient(B, "bobpw", server, resource="t-sm-b2"))
    wait_until(lambda: own_id(m) in (b2.fetch_device_list(A) or []),
               timeout=10, what="our device in the list the laptop reads")
    b2.send_encrypted(A, "the laptop starts")
    b2.send_encrypted(A, "the laptop again")
    wait_until(lambda: any(t == "the laptop again" for _, t in records(m, B)),
               timeout=10, what="the laptop's messages")
    hb = b2.wait_record(lambda x: x["from_bare"] == A and x["key_transport"])
    assert hb["error"] is None, hb
    m.write(f"{A}/contacts/{B}/send", "to both of you\n")
    for b in (bob, b2):
        assert b.wait_decrypted(A, "to both of you")["error"] is None
    time.sleep(0.5)
    recs = records(m, B)
    assert not any(t.startswith("[undecryptable") for _, t in recs), recs
    assert [t for _, t in recs].count("the laptop starts") == 1
    # (our heartbeat to the laptop goes to bob's bare JID: the phone
    # sees it, not for it)
    assert not [x for x in bob.decrypted + b2.decrypted
                if x["from_bare"] == A and x["error"]
                and not (x["key_transport"] or "NotForUs" in x["error"])], \
        bob.decrypted + b2.decrypted


NS_UPLOAD = "urn:xmpp:http:upload:0"


def upload(server, peer, name, data):
    """A slot from upload.localhost and the PUT of @data: the GET URL."""
    import ssl
    import urllib.request
    req = ET.Element(f"{{{NS_UPLOAD}}}request", filename=name, size=str(len(data)),
                     **{"content-type": "application/octet-stream"})
    r = peer.iq("upload.localhost", "get", req)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    slot = r.find(f"{{{NS_UPLOAD}}}slot")
    put = slot.find(f"{{{NS_UPLOAD}}}put")
    hdrs = {h.get("name"): h.text for h in put.findall(f"{{{NS_UPLOAD}}}header")}
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    rq = urllib.request.Request(put.get("url"), data=data, method="PUT", headers={
        **hdrs, "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(rq, context=ctx, timeout=10) as resp:
        assert resp.status in (200, 201), resp.status
    return slot.find(f"{{{NS_UPLOAD}}}get").get("url")


def fetch(server, url):
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return r.read()


def test_files_shared_encrypted(server, tmp, stack):
    """In an encrypted conversation `cp` encrypts the file (XEP-0454,
    AES-256-GCM): the server keeps only ciphertext, and bob gets an
    aesgcm:// link inside an encrypted message, with which he reads the
    very bytes.  A file bob shares so is fetched into files/ decrypted;
    one whose key does not fit is not kept, and the event says why,
    without the key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from omemo_peer import OmemoPeer
    bob = stack.enter_context(OmemoPeer(B, "bobpw", server, resource="t-fe-b",
                                        alone=True))
    m = mount(stack, server, tmp, "t-fe", downloads="true")
    wait_until(lambda: rd(m.path(A, "contacts", B, "encryption")) == "omemo\n",
               timeout=10, what="bob's devices known")
    time.sleep(0.5)  # (the upload service found)
    data = os.urandom(5000) + "é".encode()
    src = m.dir / "report.bin"
    src.write_bytes(data)
    import shutil
    shutil.copyfile(src, m.path(A, "contacts", B, "report.bin"))
    r = bob.wait_decrypted(A, None)
    link = r["body"]
    assert link and link.startswith("aesgcm://") and "#" in link, r
    rest, frag = link[len("aesgcm://"):].split("#")
    iv, key = bytes.fromhex(frag[:24]), bytes.fromhex(frag[24:])
    assert len(frag) == 88
    blob = fetch(server, "https://" + rest)
    assert len(blob) == len(data) + 16 and data[:64] not in blob
    assert AESGCM(key).decrypt(iv, blob, None) == data
    assert "aesgcm" not in ET.tostring(r["xml"], encoding="unicode")
    ev = [e for e in events(m) if e[1] == "upload"]
    assert ev and not any(frag in e[3] for e in ev), ev
    # bob shares one
    mine = os.urandom(3000)
    k2, iv2 = AESGCM.generate_key(256), os.urandom(12)
    get = upload(server, bob, "photo.jpg", AESGCM(k2).encrypt(iv2, mine, None))
    bob.send_encrypted(A, "aesgcm://" + get[len("https://"):] + "#" +
                       iv2.hex() + k2.hex())
    got = m.path(A, "contacts", B, "files", "photo.jpg")
    wait_until(lambda: os.path.exists(got), timeout=10, what="photo.jpg fetched")
    with open(got, "rb") as f:
        assert f.read() == mine
    # a key that does not fit: not kept
    get = upload(server, bob, "forged.jpg", AESGCM(k2).encrypt(iv2, mine, None))
    bad = AESGCM.generate_key(256)
    bob.send_encrypted(A, "aesgcm://" + get[len("https://"):] + "#" +
                       iv2.hex() + bad.hex())
    wait_until(lambda: any(e[1] == "download" and "forged.jpg" in e[3]
                           and "not downloaded" in e[3] for e in events(m)),
               timeout=10, what="the forged file refused")
    assert not os.path.exists(m.path(A, "contacts", B, "files", "forged.jpg"))
    # (the message itself, link and key, is the conversation's record and
    # its event; the download's event names the https:// link only)
    assert not any(bad.hex() in e[3] for e in events(m) if e[1] == "download")
