"""Nick (XEP-0172) and avatars (XEP-0084) in step with the account's other
clients and its contacts (issue 16, item 3): ACCOUNT/nick,
contacts/JID/nick, ACCOUNT/avatar.EXT (set with cp, taken back with rm)
and contacts/JID/avatar.EXT.  The other side is slixmpp speaking raw PEP:
alice's "phone" (a second client of her account) and bob, a contact with
a mutual subscription, who reads alice's PEP service as contacts do."""

import base64
import errno
import hashlib
import os
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib

from xfstest import Mount, Peer, el, wait_until

DOM = "localhost"
A = f"alice@{DOM}"
B = f"bob@{DOM}"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw"},
              mutual=[("alice", "bob")], direct_tls=False)

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_NICK = "http://jabber.org/protocol/nick"
NS_DATA = "urn:xmpp:avatar:data"
NS_META = "urn:xmpp:avatar:metadata"
PROFILE_AVATAR_MAX = 128 * 1024  # profile.h


def png(w, h, extra=b""):
    """A real PNG of w x h grey pixels (and @extra bytes in a private
    chunk, to make it as large as wanted)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    raw = b"".join(b"\0" + b"\x80" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + (chunk(b"prVt", extra) if extra else b"")
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def items(peer, owner, node, item_id=None):
    """The items of @owner's PEP @node as @peer may read them:
    [(id, element)], or None on an error."""
    ps = el(NS_PUBSUB, "pubsub")
    it = el(NS_PUBSUB, "items", node=node)
    if item_id:
        it.append(el(NS_PUBSUB, "item", id=item_id))
    ps.append(it)
    r = peer.iq(owner, "get", ps)
    if r is None or r.get("type") != "result":
        return None
    return [(i.get("id"), i) for i in r.iter(f"{{{NS_PUBSUB}}}item")]


def publish(peer, node, item_id, payload):
    ps = el(NS_PUBSUB, "pubsub")
    pub = el(NS_PUBSUB, "publish", node=node)
    item = el(NS_PUBSUB, "item", id=item_id)
    item.append(payload)
    pub.append(item)
    ps.append(pub)
    r = peer.iq(peer.bare, "set", ps)
    assert r is not None and r.get("type") == "result", \
        ET.tostring(r) if r is not None else "no answer"


def nick_of(peer, owner):
    got = items(peer, owner, NS_NICK)
    if not got:
        return None
    return got[-1][1].findtext(f"{{{NS_NICK}}}nick")


def publish_avatar(peer, data, mime):
    sha = hashlib.sha1(data).hexdigest()
    publish(peer, NS_DATA, sha, el(NS_DATA, "data", base64.b64encode(data).decode()))
    meta = el(NS_META, "metadata")
    meta.append(el(NS_META, "info", bytes=str(len(data)), id=sha, type=mime))
    publish(peer, NS_META, sha, meta)
    return sha


def avatar_of(peer, owner):
    """(bytes, type) of @owner's avatar as a contact fetches it."""
    meta = items(peer, owner, NS_META)
    if not meta:
        return None
    info = meta[-1][1].find(f"{{{NS_META}}}metadata/{{{NS_META}}}info")
    if info is None:
        return None
    data = items(peer, owner, NS_DATA, info.get("id"))
    if not data:
        return None
    raw = base64.b64decode(data[0][1].findtext(f"{{{NS_DATA}}}data"))
    assert hashlib.sha1(raw).hexdigest() == info.get("id")
    assert int(info.get("bytes")) == len(raw)
    return raw, info.get("type"), info.get("width"), info.get("height")


def rd(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def events(m):
    return [l.split("\t", 3) for l in rd(m.path(A, "log")).splitlines()]


def mount(stack, server, tmp, res):
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource=res)}))
    m.wait_state(A, "online", timeout=10)
    return m


def test_own_nick_and_a_contacts_nick(server, tmp, stack):
    """A write to ACCOUNT/nick publishes it, for contacts (bob reads it)
    and the phone; the phone's change reaches ACCOUNT/nick; bob's own nick
    is contacts/bob/nick."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-nick-b"))
    phone = stack.enter_context(Peer(A, "alicepw", server, resource="phone"))
    m = mount(stack, server, tmp, "t-nick")
    assert rd(m.path(A, "nick")) == ""
    m.write(f"{A}/nick", "Alice Ä\n")
    assert rd(m.path(A, "nick")) == "Alice Ä\n"
    assert nick_of(bob, A) == "Alice Ä"
    publish(phone, NS_NICK, "current", el(NS_NICK, "nick", "Alice (phone)"))
    wait_until(lambda: rd(m.path(A, "nick")) == "Alice (phone)\n", timeout=10,
               what=lambda: f"the phone's nick; have {rd(m.path(A, 'nick'))!r}")
    publish(bob, NS_NICK, "current", el(NS_NICK, "nick", "Bobby"))
    wait_until(lambda: rd(m.path(A, "contacts", B, "nick")) == "Bobby\n", timeout=10,
               what=lambda: f"bob's nick; have {rd(m.path(A, 'contacts', B, 'nick'))!r}")
    # bad input changes nothing
    for bad, err in (("two\nlines\n", errno.EINVAL), ("bell\a", errno.EILSEQ)):
        try:
            m.write(f"{A}/nick", bad)
            raise AssertionError(f"{bad!r} taken")
        except OSError as e:
            assert e.errno == err, e
    assert nick_of(bob, A) == "Alice (phone)"


def test_avatar_round_trip_with_cp(server, tmp, stack):
    """cp face.png ACCOUNT/avatar.png publishes it: bob fetches the same
    bytes, with type and size; it reads back; a JPEG replaces it under
    its own name; rm takes it back.  Bob's avatar appears as
    contacts/bob/avatar.png with his bytes, and goes when he takes it
    back."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-av-b"))
    m = mount(stack, server, tmp, "t-av")
    face = tmp / "face.png"
    img = png(48, 32)
    face.write_bytes(img)
    assert "avatar.png" not in os.listdir(m.path(A))
    subprocess.run(["cp", str(face), m.path(A, "avatar.png")], check=True)
    got = avatar_of(bob, A)
    assert got == (img, "image/png", "48", "32"), got and got[1:]
    assert rd(m.path(A, "avatar.png"), "rb") == img
    assert os.stat(m.path(A, "avatar.png")).st_size == len(img)
    # a JPEG under its own name replaces it
    jpeg = b"\xff\xd8\xff\xe0" + os.urandom(2000) + b"\xff\xd9"
    (tmp / "face.jpg").write_bytes(jpeg)
    shutil.copyfile(tmp / "face.jpg", m.path(A, "avatar.jpg"))
    assert avatar_of(bob, A)[:2] == (jpeg, "image/jpeg")
    names = [n for n in os.listdir(m.path(A)) if n.startswith("avatar.")]
    assert names == ["avatar.jpg"], names
    (tmp / "face.jpg").write_bytes(jpeg)
    # one near the limit: a stanza too large for one write goes out whole
    # at once (libstrophe 0.12 hid its last part from the pool: 20 s)
    big = png(8, 8, os.urandom(PROFILE_AVATAR_MAX - 200))
    (tmp / "big.png").write_bytes(big)
    t0 = time.monotonic()
    shutil.copyfile(tmp / "big.png", m.path(A, "avatar.png"))
    took = time.monotonic() - t0
    assert took < 10, f"cp of {len(big)} bytes took {took:.1f} s"
    assert avatar_of(bob, A)[:2] == (big, "image/png")
    os.unlink(m.path(A, "avatar.png"))
    assert avatar_of(bob, A) is None
    assert not [n for n in os.listdir(m.path(A)) if n.startswith("avatar.")]
    # bob's
    bimg = png(16, 16)
    publish_avatar(bob, bimg, "image/png")
    p = m.path(A, "contacts", B, "avatar.png")
    wait_until(lambda: os.path.exists(p) and rd(p, "rb") == bimg, timeout=10,
               what="bob's avatar in contacts/bob/")
    assert "avatar.png" in os.listdir(m.path(A, "contacts", B))
    assert ["avatar", B, "avatar.png, %d bytes" % len(bimg)] in [e[1:] for e in events(m)]
    publish(bob, NS_META, "current", el(NS_META, "metadata"))
    wait_until(lambda: not os.path.exists(p), timeout=10,
               what="bob's avatar gone")


def test_bad_avatars_are_refused_and_change_nothing(server, tmp, stack):
    """Not an image, an image of another type than the name says, too
    large: a clear error from cp, and what bob sees stays."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-avbad-b"))
    m = mount(stack, server, tmp, "t-avbad")
    img = png(8, 8)
    (tmp / "ok.png").write_bytes(img)
    shutil.copyfile(tmp / "ok.png", m.path(A, "avatar.png"))
    cases = [("text.png", b"not an image at all\n", "avatar.png", errno.EINVAL),
             ("png-as.gif", img, "avatar.gif", errno.EINVAL),
             ("huge.png", png(8, 8, os.urandom(200 * 1024)), "avatar.png", errno.EFBIG)]
    for name, data, target, err in cases:
        (tmp / name).write_bytes(data)
        try:
            shutil.copyfile(tmp / name, m.path(A, target))
            raise AssertionError(f"{name} taken as {target}")
        except OSError as e:
            assert e.errno == err, (name, e)
    assert avatar_of(bob, A)[:2] == (img, "image/png")
    assert rd(m.path(A, "avatar.png"), "rb") == img


def test_avatar_set_elsewhere_reaches_the_mount(server, tmp, stack):
    """The phone sets the account's avatar: ACCOUNT/avatar.EXT follows,
    live and at the next connect."""
    phone = stack.enter_context(Peer(A, "alicepw", server, resource="phone"))
    m = mount(stack, server, tmp, "t-avph")
    img = png(20, 10)
    publish_avatar(phone, img, "image/png")
    p = m.path(A, "avatar.png")
    wait_until(lambda: os.path.exists(p) and rd(p, "rb") == img, timeout=10,
               what="the phone's avatar in the mount")
    m.close()
    gif = b"GIF89a" + os.urandom(500)
    publish_avatar(phone, gif, "image/gif")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    p = m.path(A, "avatar.gif")
    wait_until(lambda: os.path.exists(p) and rd(p, "rb") == gif, timeout=10,
               what="the avatar set while unmounted")
    assert not os.path.exists(m.path(A, "avatar.png"))


NS_VC4 = "urn:ietf:params:xml:ns:vcard-4.0"


def vcard4(**props):
    vc = el(NS_VC4, "vcard")
    for name, (kind, value) in props.items():
        e = el(NS_VC4, name)
        e.append(el(NS_VC4, kind, value))
        vc.append(e)
    return vc


def test_vcards_both_ways(server, tmp, stack):
    """ACCOUNT/vcard: a vCard written as text is published (XEP-0292),
    bob reads it as vCard4; the phone's change reaches the file; bob's own
    is contacts/bob/vcard; what is no vCard is EINVAL and changes
    nothing."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-vc-b"))
    phone = stack.enter_context(Peer(A, "alicepw", server, resource="phone"))
    m = mount(stack, server, tmp, "t-vc")
    card = ("BEGIN:VCARD\nVERSION:4.0\nFN:Alice Liddell\nEMAIL:alice@example.org\n"
            "TEL;TYPE=cell:+1 555 0100\nNOTE:two\\nlines\\, escaped\nEND:VCARD\n")
    m.write(f"{A}/vcard", card)
    want = ("BEGIN:VCARD\nVERSION:4.0\nFN:Alice Liddell\nEMAIL:alice@example.org\n"
            "TEL:+1 555 0100\nNOTE:two\\nlines\\, escaped\nEND:VCARD\n")
    assert rd(m.path(A, "vcard")) == want, rd(m.path(A, "vcard"))
    got = items(bob, A, "urn:xmpp:vcard4")
    assert got, "bob reads no vCard of alice"
    vc = got[-1][1].find(f"{{{NS_VC4}}}vcard")
    assert vc.findtext(f"{{{NS_VC4}}}fn/{{{NS_VC4}}}text") == "Alice Liddell"
    assert vc.findtext(f"{{{NS_VC4}}}tel/{{{NS_VC4}}}uri") == "tel:+1 555 0100"
    assert vc.findtext(f"{{{NS_VC4}}}note/{{{NS_VC4}}}text") == "two\nlines, escaped"
    # the phone changes it
    publish(phone, "urn:xmpp:vcard4", "current",
            vcard4(fn=("text", "Alice (phone)"), url=("uri", "https://example.org/")))
    wait_until(lambda: "FN:Alice (phone)\n" in rd(m.path(A, "vcard")), timeout=10,
               what=lambda: f"the phone's vCard; have {rd(m.path(A, 'vcard'))!r}")
    assert "URL:https://example.org/\n" in rd(m.path(A, "vcard"))
    # bob's
    publish(bob, "urn:xmpp:vcard4", "current",
            vcard4(fn=("text", "Bob Builder"), nickname=("text", "bobby")))
    text = rd(m.path(A, "contacts", B, "vcard"))
    assert text == ("BEGIN:VCARD\nVERSION:4.0\nFN:Bob Builder\nNICKNAME:bobby\n"
                    "END:VCARD\n"), text
    # none: empty
    assert rd(m.path(A, "contacts", "nobody@localhost", "vcard")) == ""
    # bad input
    before = rd(m.path(A, "vcard"))
    for bad in ("FOO:bar\n", "no colon here\n"):
        try:
            m.write(f"{A}/vcard", bad)
            raise AssertionError(f"{bad!r} taken")
        except OSError as e:
            assert e.errno == errno.EINVAL, e
    assert rd(m.path(A, "vcard")) == before


def test_older_avatars_named_in_presence(server, tmp, stack):
    """A client of the older kind (XEP-0153) keeps its avatar in its
    vcard-temp and names it by hash in its presence: the mount fetches it
    into contacts/bob/avatar.EXT once; a photo whose hash is not the
    presence's is not kept."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-av153-b"))
    m = mount(stack, server, tmp, "t-av153")
    img = png(12, 12)
    vc = el("vcard-temp", "vCard")
    photo = el("vcard-temp", "PHOTO")
    photo.append(el("vcard-temp", "TYPE", "image/png"))
    photo.append(el("vcard-temp", "BINVAL", base64.encodebytes(img).decode()))
    vc.append(photo)
    r = bob.iq(B, "set", vc)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    bob.send_raw(presence_with(hashlib.sha1(img).hexdigest()))
    p = m.path(A, "contacts", B, "avatar.png")
    wait_until(lambda: os.path.exists(p) and rd(p, "rb") == img, timeout=10,
               what="bob's vcard-temp avatar in the mount")
    # a presence naming another hash than the photo has: nothing new
    bob.send_raw(presence_with("0" * 40))
    time.sleep(1)
    assert rd(p, "rb") == img
    n = [e for e in events(m) if e[1] == "avatar" and e[2] == B]
    assert len(n) == 1, n


def presence_with(photo):
    return ("<presence><x xmlns='vcard-temp:x:update'><photo>"
            f"{photo}</photo></x></presence>")
