"""Catching up from the server's archive (XEP-0313; SPEC "Nothing is
lost"): a message that arrived while the mount was unmounted is in the
conversation's log after the next mount, also when another client of the
account took it (so the server kept no offline copy), and exactly once
when the server did keep one.

Every test has its users: TAG-a is the account (in the mount, and as a
second slixmpp client 'phone'), TAG-b the other party."""

import os
import time
import xml.etree.ElementTree as ET

from xfstest import (Mount, Peer, events_reader, note,
                     parse_event, wait_until)

DOM = "localhost"
TAGS = ("tk", "of", "fm", "ow", "cr", "ph", "ea", "iv", "cb", "oc", "ns", "lo")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)


def J(tag, who="a"):
    return f"{tag}-{who}@{DOM}"


def mount(stack, server, tmp, tag):
    a = J(tag)
    m = stack.enter_context(Mount(tmp, {a: server.account(f"{tag}-a",
                                                          resource=f"{tag}-mount")}))
    m.wait_state(a, "online", timeout=10)
    return m


def peer(server, user, res):
    return Peer(server.jid(user), server.password(user), server,
                resource=res).connect()


def records(m, acct, contact):
    path = m.path(acct, "contacts", contact, "log")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [tuple(l.split("\t", 2)) for l in text.split("\n")[:-1]]


def wait_record(m, acct, contact, sender, body, timeout=10.0):
    return wait_until(
        lambda: [r for r in records(m, acct, contact) if r[1:] == (sender, body)],
        timeout=timeout,
        what=lambda: f"({sender!r}, {body!r}) in contacts/{contact}/log; log: "
                     f"{records(m, acct, contact)!r}")


def count(recs, sender, body):
    return sum(1 for r in recs if r[1:] == (sender, body))


def stored(peer):
    """Return once the server has routed (and stored) what @peer sent so
    far: it handles one session's stanzas in order, so the answer to a
    ping comes after them."""
    assert peer.iq(DOM, "get", ET.Element("{urn:xmpp:ping}ping")) is not None


def events_on_disk(m, acct):
    """Every line of @acct's events log, over all its mounts (the events
    file shows only what comes after it is opened)."""
    try:
        with open(m.data / acct / "events" / "log", encoding="utf-8") as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def phone_takes(server, tag, bob, body):
    """With the mount down, the account's phone is online and takes
    @body from bob (so the server keeps no offline copy of it)."""
    phone = peer(server, f"{tag}-a", "phone")
    try:
        bob.send_message(J(tag), body)
        phone.wait_message(J(tag, "b"), body)
    finally:
        phone.disconnect()


def remount(m, acct):
    m.remount()
    m.wait_state(acct, "online", timeout=10)


def after_marker(m, bob, acct, contact):
    """bob sends a marker; once it is logged, every record: anything bob
    sent before it would be there too."""
    bob.send_message(acct, "marker")
    return wait_record(m, acct, contact, contact, "marker") and \
        records(m, acct, contact)


def live_first(stack, server, tmp, tag):
    """A mount that has logged one live message (so it knows an archive
    id), and the other party."""
    A, B = J(tag), J(tag, "b")
    bob = peer(server, f"{tag}-b", f"{tag}-peer")
    stack.callback(bob.disconnect)
    m = mount(stack, server, tmp, tag)
    bob.send_message(A, "live before")
    wait_record(m, A, B, B, "live before")
    return m, bob


def test_message_another_client_took_while_unmounted(server, tmp, stack):
    tag = "tk"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    phone_takes(server, tag, bob, "while you were out")   # no offline copy
    sent_at = time.time()
    remount(m, A)
    t0 = time.monotonic()
    got = wait_record(m, A, B, B, "while you were out")
    note(f"online to the archived message in the log: {time.monotonic() - t0:.3f}s")
    stamp = time.mktime(time.strptime(got[0][0], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(stamp - sent_at) < 5, (got, sent_at)
    # a message after it, live; then nothing is there twice
    bob.send_message(A, "live after")
    recs = wait_record(m, A, B, B, "live after") and records(m, A, B)
    for body in ("live before", "while you were out", "live after"):
        assert count(recs, B, body) == 1, (body, recs)
    # and a remount with nothing new fetches nothing again
    m.close()
    remount(m, A)
    recs = after_marker(m, bob, A, B)
    for body in ("live before", "while you were out", "live after", "marker"):
        assert count(recs, B, body) == 1, (body, recs)


def test_offline_message_logged_once(server, tmp, stack):
    """Nobody of the account online: the server keeps an offline copy and
    archives it too; the log has it once."""
    tag = "of"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    bob.send_message(A, "offline one")
    bob.send_message(A, "offline two")
    stored(bob)   # offline copies, not live ones, at the login
    remount(m, A)
    wait_record(m, A, B, B, "offline two")
    recs = after_marker(m, bob, A, B)
    for body in ("live before", "offline one", "offline two", "marker"):
        assert count(recs, B, body) == 1, (body, recs)
    bodies = [r[2] for r in recs]
    assert bodies.index("offline one") < bodies.index("offline two"), bodies


def test_first_mount_fetches_no_old_history(server, tmp, stack):
    """The archive may hold years; a first mount starts from now."""
    tag = "fm"
    A, B = J(tag), J(tag, "b")
    bob = peer(server, f"{tag}-b", f"{tag}-peer")
    stack.callback(bob.disconnect)
    phone_takes(server, tag, bob, "old history")
    m = mount(stack, server, tmp, tag)
    bob.send_message(A, "first live")
    recs = wait_record(m, A, B, B, "first live") and records(m, A, B)
    assert count(recs, B, "old history") == 0, recs
    # it knows where the archive ends now: what comes while unmounted is fetched
    m.close()
    phone_takes(server, tag, bob, "taken by the phone")
    remount(m, A)
    wait_record(m, A, B, B, "taken by the phone")


def test_own_words_from_another_client(server, tmp, stack):
    """What the account said from another client while unmounted is part
    of the conversation: a record with our own JID, and no event (a bot
    must not answer itself)."""
    tag = "ow"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    phone = peer(server, f"{tag}-a", "phone")
    n = len(bob.messages)
    phone.send_message(B, "sent from my phone")
    bob.wait_message(A, "sent from my phone", since=n)
    phone.disconnect()
    remount(m, A)
    wait_record(m, A, B, A, "sent from my phone")
    recs = after_marker(m, bob, A, B)
    assert count(recs, A, "sent from my phone") == 1, recs
    # the catch-up ran before any reader could open events: its log on
    # disk has the marker's event and none for our own words
    evs = wait_until(lambda: (lambda es: es if any("\tmarker" in l for l in es)
                              else None)(events_on_disk(m, A)),
                     timeout=10, what="the marker's event on disk")
    assert not [l for l in evs if "sent from my phone" in l], evs


def test_outbox_after_a_crash_is_not_sent_twice(server, tmp, stack):
    """A crash between sending a message and the server's acknowledgement
    leaves it in the outbox, though the server has it.  At the next mount
    the archive is asked first: what is there is not sent again, the rest
    is, in order.  (The crash is staged: the journal gets two entries, one
    of them a message the server already has with that id.)"""
    tag = "cr"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    now = int(time.time())
    sent = f"xfs-{now}-{os.urandom(16).hex()}"
    lost = f"xfs-{now}-{os.urandom(16).hex()}"
    phone = peer(server, f"{tag}-a", "phone")
    try:
        n = len(bob.messages)
        phone.send_raw(f"<message to='{B}' type='chat' id='{sent}'>"
                       f"<body>reached the server</body></message>")
        bob.wait_message(A, "reached the server", since=n)
    finally:
        phone.disconnect()
    journal = m.data / A / "outbox"
    with open(journal, "ab") as f:
        for id_, body in ((sent, b"reached the server"), (lost, b"never reached it")):
            f.write(f"+ {id_} {B} chat {len(body)}\n".encode() + body + b"\n")
    n = len(bob.messages)
    remount(m, A)
    bob.wait_message(A, "never reached it", since=n)
    m.write(f"{A}/contacts/{B}/send", "written after the mount\n")
    bob.wait_message(A, "written after the mount", since=n)
    bodies = [x["body"] for x in bob.messages_from(A, since=n)]
    assert bodies == ["never reached it", "written after the mount"], bodies
    assert "not sent again" in m.log_text(), m.log_tail()


def test_what_only_the_phone_got_while_mounted(server, tmp, stack):
    """A message to the phone's full JID, and what the phone sends, reach
    the mount as carbons; the catch-up at the reconnect, which the archive
    answers with the same messages, must not log them again, nor skip
    them for the live messages after them."""
    tag = "ph"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    phone = peer(server, f"{tag}-a", "phone")
    stack.callback(phone.disconnect)
    bob.send_message(f"{A}/phone", "to the phone only")
    phone.wait_message(B, "to the phone only")
    n = len(bob.messages)
    phone.send_message(f"{B}/{tag}-peer", "from the phone, to bob's full JID")
    bob.wait_message(A, "from the phone, to bob's full JID", since=n)
    bob.send_message(A, "live after")
    wait_record(m, A, B, B, "live after")
    m.write(f"{A}/status", "reconnect\n")
    wait_record(m, A, B, B, "to the phone only")
    wait_record(m, A, B, A, "from the phone, to bob's full JID")
    recs = after_marker(m, bob, A, B)
    for sender, body in ((B, "live before"), (B, "to the phone only"),
                         (A, "from the phone, to bob's full JID"),
                         (B, "live after"), (B, "marker")):
        assert count(recs, sender, body) == 1, (body, recs)


def test_empty_archive_at_the_first_mount(server, tmp, stack):
    """The first mount found nothing in the archive: the next one still
    fetches what came since."""
    tag = "ea"
    A, B = J(tag), J(tag, "b")
    bob = peer(server, f"{tag}-b", f"{tag}-peer")
    stack.callback(bob.disconnect)
    m = mount(stack, server, tmp, tag)
    wait_until(lambda: (m.data / A / "mam").exists(), timeout=10,
               what="the archive state to be written")
    m.close()
    phone_takes(server, tag, bob, "the first message ever")
    remount(m, A)
    wait_record(m, A, B, B, "the first message ever")


def test_invitation_while_unmounted(server, tmp, stack):
    """The catch-up replaces the offline delivery, which brought
    invitations: they come from the archive as events, not as a
    conversation with the room."""
    tag = "iv"
    A = J(tag)
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    room = f"{tag}-room@conference.localhost"
    bob.send_raw(f"<message to='{A}'><x xmlns='jabber:x:conference' "
                 f"jid='{room}' reason='join us'/><body>join us</body></message>")
    stored(bob)
    remount(m, A)
    wait_until(lambda: [l for l in events_on_disk(m, A)
                        if "\tinvite\t" in l and room in l],
               timeout=10, what="the invitation in events")
    assert room not in os.listdir(m.path(A, "contacts")), os.listdir(m.path(A, "contacts"))


def test_carbons_bring_what_the_phone_gets_live(server, tmp, stack):
    """With the mount online, what the phone gets is logged at once, with
    an event; what the phone sends is logged as ours, with none.  A
    "carbon" from anyone but our own account is a forgery and changes
    nothing."""
    tag = "cb"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    ev = events_reader(stack, m, A)
    phone = peer(server, f"{tag}-a", "phone")
    stack.callback(phone.disconnect)
    t0 = time.monotonic()
    bob.send_message(f"{A}/phone", "to the phone only")
    wait_record(m, A, B, B, "to the phone only")
    note(f"message to the phone's full JID in the mount's log after "
         f"{time.monotonic() - t0:.3f}s")
    phone.send_message(f"{B}/{tag}-peer", "from the phone")
    wait_record(m, A, B, A, "from the phone")
    # a forged copy: bob claims alice's phone got a message from carol
    bob.send_raw(f"<message to='{A}' type='chat'>"
                 "<received xmlns='urn:xmpp:carbons:2'>"
                 "<forwarded xmlns='urn:xmpp:forward:0'>"
                 f"<message xmlns='jabber:client' type='chat' to='{A}/phone' "
                 f"from='carol@{DOM}/x'><body>forged</body></message>"
                 "</forwarded></received></message>")
    bob.send_message(A, "after the forgery")
    wait_record(m, A, B, B, "after the forgery")
    # (a lookup of any JID succeeds: the listing and the disk tell)
    assert f"carol@{DOM}" not in os.listdir(m.path(A, "contacts")), \
        "a forged carbon made a conversation"
    assert not (m.data / A / "contacts" / f"carol@{DOM}").exists()
    assert count(records(m, A, B), B, "forged") == 0, records(m, A, B)
    msgs = wait_until(
        lambda: (lambda es: es if any(e[3] == "after the forgery" for e in es)
                 else None)([parse_event(l) for l in ev.snapshot()]),
        timeout=10, what=lambda: f"the marker's event: {ev.snapshot()!r}")
    got = [(k, j, t) for _, k, j, t in msgs if k == "message"]
    assert got == [("message", B, "to the phone only"),
                   ("message", B, "after the forgery")], got


def test_offline_store_is_consumed(server, tmp, stack):
    """The server's offline copies go to the mount, which takes them:
    the phone that logs in later gets none of them again (a client that
    asked the archive before its presence would leave them on the server,
    where the store grows for ever and floods the phone)."""
    tag = "oc"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    bob.send_message(A, "kept for you offline")
    stored(bob)
    remount(m, A)
    recs = after_marker(m, bob, A, B)
    assert count(recs, B, "kept for you offline") == 1, recs
    phone = peer(server, f"{tag}-a", "phone")
    stack.callback(phone.disconnect)
    stored(phone)   # offline copies come at its presence, before this
    got = [x for x in phone.messages if x.get("body") == "kept for you offline"]
    assert not got, f"the phone got the offline copy again: {got!r}"


def test_message_the_archive_did_not_keep(server, tmp, stack):
    """A message with a no-store hint is not archived but kept offline:
    the mount must still get it."""
    tag = "ns"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    bob.send_raw(f"<message to='{A}' type='chat'><body>off the record</body>"
                 "<no-store xmlns='urn:xmpp:hints'/></message>")
    stored(bob)
    remount(m, A)
    wait_record(m, A, B, B, "off the record")
    recs = after_marker(m, bob, A, B)
    assert count(recs, B, "off the record") == 1, recs


def test_log_keeps_the_archive_order(server, tmp, stack):
    """The phone took one message, the next waited offline: the offline
    copy comes before the archive's answer, yet the log has them in the
    order they arrived."""
    tag = "lo"
    A, B = J(tag), J(tag, "b")
    m, bob = live_first(stack, server, tmp, tag)
    m.close()
    phone_takes(server, tag, bob, "taken by the phone")
    bob.send_message(A, "kept offline")
    stored(bob)
    remount(m, A)
    recs = after_marker(m, bob, A, B)
    assert [r[2] for r in recs] == ["live before", "taken by the phone",
                                    "kept offline", "marker"], recs
