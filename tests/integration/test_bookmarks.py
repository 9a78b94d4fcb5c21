"""Bookmarks (XEP-0402 in PEP, XEP-0048 in private storage through the
server's compatibility): rooms/ stays in step with the account's other
clients (issue 16, item 1).  The "phone" is a second client of the same
account (slixmpp, raw stanzas: its Debian version has no XEP-0402); bob is
another user in the room, who sees alice come and go.  The test bed's
Prosody has `pep`, `private` and `bookmarks` (the two forms kept in step)."""

import os
import time
import xml.etree.ElementTree as ET

from xfstest import Mount, Peer, el, wait_until

DOM = "localhost"
MUC = "conference.localhost"
# each test has an account of its own (its bookmarks stay its own)
TAGS = ("mk", "else", "legacy", "away", "quick", "refused")
OLD = "old@nopep.localhost"  # on a host without PEP
SERVER = dict(users={**{f"{t}-a": f"{t}-a-pw" for t in TAGS}, "bob": "bobpw",
                     OLD: "old-pw"},
              direct_tls=False)
B = f"bob@{DOM}"

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_BM = "urn:xmpp:bookmarks:1"
NS_PRIVATE = "jabber:iq:private"
NS_LEGACY = "storage:bookmarks"


def bookmarks(phone):
    a = phone.bare
    """{room: {"autojoin", "nick", "password", "name"}} of the account's
    XEP-0402 node, fetched now."""
    ps = el(NS_PUBSUB, "pubsub")
    ps.append(el(NS_PUBSUB, "items", node=NS_BM))
    r = phone.iq(a, "get", ps)
    out = {}
    if r is None or r.get("type") != "result":
        return out
    for it in r.iter(f"{{{NS_PUBSUB}}}item"):
        c = it.find(f"{{{NS_BM}}}conference")
        if c is None:
            continue
        out[it.get("id")] = {
            "autojoin": c.get("autojoin") in ("true", "1"),
            "name": c.get("name"),
            "nick": c.findtext(f"{{{NS_BM}}}nick"),
            "password": c.findtext(f"{{{NS_BM}}}password")}
    return out


def publish(phone, room, autojoin=True, nick=None, name=None):
    a = phone.bare
    ps = el(NS_PUBSUB, "pubsub")
    pub = el(NS_PUBSUB, "publish", node=NS_BM)
    item = el(NS_PUBSUB, "item", id=room)
    c = el(NS_BM, "conference", autojoin="true" if autojoin else "false")
    if name:
        c.set("name", name)
    if nick:
        c.append(el(NS_BM, "nick", nick))
    item.append(c)
    pub.append(item)
    ps.append(pub)
    opts = el(NS_PUBSUB, "publish-options")
    x = el("jabber:x:data", "x", type="submit")
    for var, val in (("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
                     ("pubsub#persist_items", "true"),
                     ("pubsub#max_items", "max"),
                     ("pubsub#access_model", "whitelist")):
        f = el("jabber:x:data", "field", var=var)
        if var == "FORM_TYPE":
            f.set("type", "hidden")
        f.append(el("jabber:x:data", "value", val))
        x.append(f)
    opts.append(x)
    ps.append(opts)
    r = phone.iq(a, "set", ps)
    assert r is not None and r.get("type") == "result", \
        ET.tostring(r) if r is not None else "no answer"


def retract(phone, room):
    a = phone.bare
    ps = el(NS_PUBSUB, "pubsub")
    rt = el(NS_PUBSUB, "retract", node=NS_BM, notify="true")
    rt.append(el(NS_PUBSUB, "item", id=room))
    ps.append(rt)
    r = phone.iq(a, "set", ps)
    assert r is not None and r.get("type") == "result", \
        ET.tostring(r) if r is not None else "no answer"


def acct(m):
    return next(iter(m.accounts))


def rooms(m):
    return sorted(os.listdir(m.path(acct(m), "rooms")))


def events(m):
    with open(m.path(acct(m), "log"), encoding="utf-8") as f:
        return [l.split("\t", 3) for l in f.read().splitlines()]


def bookmark_events(m, room):
    return [e[3] for e in events(m) if e[1] == "bookmark" and e[2] == room]


def in_room(p, room, nick, since=0):
    """Whether @p's last presence from ROOM/NICK (since @since) is
    available."""
    with p.cond:
        ps = [x["type"] for x in p.presences[since:]
              if x["from"] == f"{room}/{nick}"]
    return ps[-1] == "available" if ps else None


def mount(stack, server, tmp, tag):
    """TAG-a mounted, online."""
    a = f"{tag}-a@{DOM}"
    m = stack.enter_context(Mount(tmp, {a: server.account(f"{tag}-a",
                                                          resource=f"t-bm-{tag}")}))
    m.accounts = [a]
    m.wait_state(a, "online", timeout=10)
    return m


def phone_of(stack, server, tag):
    """Another client of TAG-a's account."""
    return stack.enter_context(Peer(f"{tag}-a@{DOM}", f"{tag}-a-pw", server,
                                    resource="phone"))


def test_mkdir_publishes_a_bookmark_and_rmdir_retracts_it(server, tmp, stack):
    """A room joined with mkdir is an autojoin bookmark with our nick, so
    the phone joins it too; rmdir takes it back."""
    room = f"bm-mk@{MUC}"
    phone = phone_of(stack, server, "mk")
    m = mount(stack, server, tmp, "mk")
    A = acct(m)
    os.mkdir(m.path(A, "rooms", room))
    wait_until(lambda: bookmarks(phone).get(room, {}).get("autojoin"), timeout=10,
               what=lambda: f"an autojoin bookmark of {room}; have {bookmarks(phone)}")
    assert bookmarks(phone)[room]["nick"] == "mk-a", bookmarks(phone)
    os.rmdir(m.path(A, "rooms", room))
    wait_until(lambda: room not in bookmarks(phone), timeout=10,
               what=lambda: f"the bookmark of {room} gone; have {bookmarks(phone)}")
    # our own changes are no `bookmark` events
    assert bookmark_events(m, room) == [], bookmark_events(m, room)


def test_a_bookmark_made_elsewhere_is_joined_and_its_retraction_left(server, tmp, stack):
    """The phone bookmarks a room with autojoin and a nick: the room
    appears in rooms/ and bob sees alice join under that nick; the phone
    turns autojoin off, then on, then retracts it: alice leaves, comes
    back, leaves; each is an event."""
    room = f"bm-else@{MUC}"
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-bm-b"))
    bob.join_room(room, "bob")
    phone = phone_of(stack, server, "else")
    m = mount(stack, server, tmp, "else")
    A = acct(m)
    since = len(bob.presences)
    publish(phone, room, nick="alice-bm", name="From the phone")
    wait_until(lambda: room in rooms(m), timeout=10,
               what=lambda: f"{room} in rooms/; have {rooms(m)}")
    wait_until(lambda: in_room(bob, room, "alice-bm", since), timeout=10,
               what="bob to see alice-bm join")
    assert bookmark_events(m, room) == ["added by another client: joining"], \
        bookmark_events(m, room)
    m.write(f"{A}/rooms/{room}/send", "joined from a bookmark\n")
    bob.wait_message(f"{room}/alice-bm", "joined from a bookmark")
    # autojoin off: left
    publish(phone, room, autojoin=False, nick="alice-bm")
    wait_until(lambda: room not in rooms(m), timeout=10,
               what=lambda: f"{room} gone from rooms/; have {rooms(m)}")
    wait_until(lambda: in_room(bob, room, "alice-bm", since) is False, timeout=10,
               what="bob to see alice-bm leave")
    # on again, then retracted
    publish(phone, room, nick="alice-bm")
    wait_until(lambda: room in rooms(m), timeout=10, what=f"{room} back")
    retract(phone, room)
    wait_until(lambda: room not in rooms(m), timeout=10,
               what=lambda: f"{room} gone after the retraction; have {rooms(m)}")
    assert bookmark_events(m, room) == [
        "added by another client: joining",
        "autojoin turned off by another client: leaving",
        "added by another client: joining",
        "removed by another client: leaving"], bookmark_events(m, room)
    # and a mkdir here makes it ours again, keeping the phone's name
    os.mkdir(m.path(A, "rooms", room))
    wait_until(lambda: bookmarks(phone).get(room, {}).get("autojoin"), timeout=10,
               what=lambda: f"the bookmark again; have {bookmarks(phone)}")


def test_legacy_private_storage_bookmark_is_joined(server, tmp, stack):
    """A client of the old kind stores XEP-0048 bookmarks in private
    storage (XEP-0049); the server keeps its XEP-0402 node in step, so the
    room is joined here."""
    room = f"bm-legacy@{MUC}"
    phone = phone_of(stack, server, "legacy")
    m = mount(stack, server, tmp, "legacy")
    A = a = acct(m)
    q = el(NS_PRIVATE, "query")
    st = el(NS_LEGACY, "storage")
    c = el(NS_LEGACY, "conference", jid=room, autojoin="true", name="Old")
    c.append(el(NS_LEGACY, "nick", "alice-old"))
    st.append(c)
    q.append(st)
    r = phone.iq(a, "set", q)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    wait_until(lambda: room in rooms(m), timeout=10,
               what=lambda: f"{room} in rooms/; have {rooms(m)}")
    with open(m.path(A, "rooms", room, "nick"), encoding="utf-8") as f:
        assert f.read() == "alice-old\n"
    # and what mkdir adds here is in the old list too
    room2 = f"bm-legacy2@{MUC}"
    os.mkdir(m.path(A, "rooms", room2))

    def legacy_rooms():
        q = el(NS_PRIVATE, "query")
        q.append(el(NS_LEGACY, "storage"))
        r = phone.iq(a, "get", q)
        return {c.get("jid") for c in r.iter(f"{{{NS_LEGACY}}}conference")
                if c.get("autojoin") in ("true", "1")} if r is not None else set()
    wait_until(lambda: room2 in legacy_rooms(), timeout=10,
               what=lambda: f"{room2} in private storage; have {legacy_rooms()}")


def test_connect_publishes_old_rooms_and_follows_changes_made_while_away(server, tmp, stack):
    """A room joined before bookmarks existed (none, and none known) is
    published at the next connect; one whose bookmark was retracted while
    unmounted is left then; one bookmarked elsewhere meanwhile is joined."""
    r1, r2, r3 = (f"bm-away{i}@{MUC}" for i in (1, 2, 3))
    phone = phone_of(stack, server, "away")
    m = mount(stack, server, tmp, "away")
    A = acct(m)
    for r in (r1, r2):
        os.mkdir(m.path(A, "rooms", r))
    wait_until(lambda: {r1, r2} <= set(bookmarks(phone)), timeout=10,
               what=lambda: f"both bookmarked; have {bookmarks(phone)}")
    m.close()  # (and the process gone: nothing it hears of later)
    # as before this feature: no bookmark, nothing known of one
    retract(phone, r1)
    os.unlink(m.data / A / "bookmarks.known")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: r1 in bookmarks(phone), timeout=10,
               what=lambda: f"{r1} published again at the connect; have {bookmarks(phone)}")
    assert rooms(m) == sorted([r1, r2]), rooms(m)
    m.close()  # (and the process gone: nothing it hears of later)
    # while away: r2's bookmark goes, r3's comes
    retract(phone, r2)
    publish(phone, r3)
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: rooms(m) == sorted([r1, r3]), timeout=15,
               what=lambda: f"rooms/ as the bookmarks say; have {rooms(m)}")
    assert bookmark_events(m, r2) == ["removed by another client: leaving"]
    assert bookmark_events(m, r3) == ["added by another client: joining"]
    # and it stays so: nothing publishes r2 again
    time.sleep(2)
    assert r2 not in bookmarks(phone) and rooms(m) == sorted([r1, r3]), \
        (bookmarks(phone), rooms(m))


def legacy_rooms(phone):
    """The rooms with autojoin in the account's XEP-0048 private storage."""
    q = el(NS_PRIVATE, "query")
    q.append(el(NS_LEGACY, "storage"))
    r = phone.iq(phone.bare, "get", q)
    if r is None or r.get("type") != "result":
        return None
    return {c.get("jid"): c for c in r.iter(f"{{{NS_LEGACY}}}conference")
            if c.get("autojoin") in ("true", "1")}


def test_server_without_pep_keeps_bookmarks_in_private_storage(server, tmp, stack):
    """Where the server has no PEP (nopep.localhost), mkdir and rmdir
    change the XEP-0048 list in private storage, keeping what else is in
    it (a URL bookmark); a room another client adds there is joined at the
    next connect (private storage has no notifications)."""
    room, room2 = f"bm-old1@{MUC}", f"bm-old2@{MUC}"
    phone = stack.enter_context(Peer(OLD, "old-pw", server, resource="phone"))
    q = el(NS_PRIVATE, "query")
    st = el(NS_LEGACY, "storage")
    st.append(el(NS_LEGACY, "url", name="Docs", url="https://example.org/"))
    q.append(st)
    r = phone.iq(OLD, "set", q)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    m = stack.enter_context(Mount(tmp, {OLD: server.account(OLD, resource="t-bm-old")}))
    m.accounts = [OLD]
    m.wait_state(OLD, "online", timeout=10)
    os.mkdir(m.path(OLD, "rooms", room))
    wait_until(lambda: room in (legacy_rooms(phone) or {}), timeout=10,
               what=lambda: f"{room} in private storage; have {legacy_rooms(phone)}")
    c = legacy_rooms(phone)[room]
    assert c.findtext(f"{{{NS_LEGACY}}}nick") == "old", ET.tostring(c)
    # the URL bookmark is kept
    q = el(NS_PRIVATE, "query")
    q.append(el(NS_LEGACY, "storage"))
    r = phone.iq(OLD, "get", q)
    assert [u.get("url") for u in r.iter(f"{{{NS_LEGACY}}}url")] == \
        ["https://example.org/"], ET.tostring(r)
    # another client adds room2 while we are away
    m.close()
    r = phone.iq(OLD, "get", q)
    st = r.find(f"{{{NS_PRIVATE}}}query/{{{NS_LEGACY}}}storage")
    st.append(el(NS_LEGACY, "conference", jid=room2, autojoin="true"))
    q2 = el(NS_PRIVATE, "query")
    q2.append(st)
    r = phone.iq(OLD, "set", q2)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    m.remount()
    m.wait_state(OLD, "online", timeout=10)
    wait_until(lambda: rooms(m) == sorted([room, room2]), timeout=10,
               what=lambda: f"both rooms; have {rooms(m)}")
    os.rmdir(m.path(OLD, "rooms", room))
    wait_until(lambda: set(legacy_rooms(phone) or {}) == {room2}, timeout=10,
               what=lambda: f"only {room2} left; have {legacy_rooms(phone)}")


def test_own_changes_in_quick_succession_are_no_news(server, tmp, stack):
    """mkdir, rmdir and mkdir again at once: the notifications of our own
    publish and retraction come back after the next change, and must not
    undo it (a retraction's echo leaving the room just joined again)."""
    room = f"bm-quick@{MUC}"
    phone = phone_of(stack, server, "quick")
    m = mount(stack, server, tmp, "quick")
    A = acct(m)
    for _ in range(3):
        os.mkdir(m.path(A, "rooms", room))
        os.rmdir(m.path(A, "rooms", room))
    os.mkdir(m.path(A, "rooms", room))
    wait_until(lambda: bookmarks(phone).get(room, {}).get("autojoin"), timeout=10,
               what=lambda: f"the bookmark; have {bookmarks(phone)}")
    time.sleep(2)
    assert rooms(m) == [room], rooms(m)
    assert room in bookmarks(phone)
    assert bookmark_events(m, room) == [], bookmark_events(m, room)


def test_a_refused_mkdir_leaves_no_bookmark(server, tmp, stack):
    """A mkdir right after the connect, of a room that refuses us, while
    the connect's bookmarks are still being compared: no bookmark is
    left behind (it would join the room at every connect, and the
    phone too)."""
    import errno
    phone = phone_of(stack, server, "refused")
    for i in range(5):
        m = mount(stack, server, tmp, "refused")
        A = acct(m)
        room = f"nope{i}@closed.localhost"
        try:
            os.mkdir(m.path(A, "rooms", room))
            raise AssertionError(f"{room} joined")
        except OSError as e:
            assert e.errno == errno.ENOENT, e
        time.sleep(0.5)
        assert room not in bookmarks(phone), bookmarks(phone)
        m.close()
