"""Group chat (XEP-0045): what is written to a room's `send` reaches the
room exactly once (SPEC "Nothing is lost"; issue 7).

A room message leaves the outbox when the room reflects it back, not when
the server acknowledges the stanza: the server's acknowledgement says
nothing of whether we were in the room.  Until the room has us again (its
history and subject came after a join), what is written waits; a message
whose reflection was lost with the link, or with a crash, is looked for in
the room's history at the rejoin and sent again only when it is not there.

The other party is a slixmpp client in the room; what it receives is
what the room delivered."""

import errno
import os
import signal
import time

from xfstest import note, wait_until, events_reader, expect_errno

from test_rooms import (BNICK, J, ROOM, join, listed, mount, parse_records, peer,
                        peer_says, reconnect, rpath,
                        wait_in_room, wait_records)
from test_room_actions import configure

TAGS = ("dc", "dl", "dh", "dr", "dv", "dw", "dp")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)


def mount_d(stack, server, tmp, tag):
    """TAG-a in a mount of its own that logs the XML stream (-d), online."""
    return mount(stack, server, tmp, tag, f"{tag}-mount", args=["-d"])


def in_room(stack, server, tmp, tag):
    """The peer makes ROOM; alice joins it from a -d mount."""
    room, bnick = ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    m = mount_d(stack, server, tmp, tag)
    join(m, J(tag), room)
    wait_in_room(bob, room, f"{tag}-a")
    return m, bob, room, f"{tag}-a", bnick


def bodies_from(p, frm, since):
    return [x["body"] for x in p.messages_from(frm, since=since)]


def count(recs, nick, text):
    return sum(1 for r in recs if r[1:] == (nick, text))


def test_crash_between_reflection_and_journal(server, tmp, stack):
    """A crash leaves two room messages in the outbox: one the room already
    has (another client of the same account said it, with that id), one
    it never got.  At the remount the rejoin's history shows the first:
    only the second is sent, once, before what is written afterwards.  A
    third, for a room left since, is dropped (kept, it would hold every
    fsync behind it)."""
    tag = "dc"
    A = J(tag)
    m, bob, room, anick, bnick = in_room(stack, server, tmp, tag)
    m.close()
    now = int(time.time())
    had = f"xfs-{now}-{os.urandom(16).hex()}"
    lost = f"xfs-{now}-{os.urandom(16).hex()}"
    stray = f"xfs-{now}-{os.urandom(16).hex()}"
    phone = peer(stack, server, f"{tag}-a", "phone")
    phone.join_room(room, f"{tag}-phone")
    n = len(bob.messages)
    phone.send_raw(f"<message to='{room}' type='groupchat' id='{had}'>"
                   "<body>reached the room</body></message>")
    bob.wait_message(f"{room}/{tag}-phone", "reached the room", since=n)
    phone.disconnect()
    with open(m.data / A / "outbox", "ab") as f:
        for id_, to, body in ((had, room, b"reached the room"),
                              (lost, room, b"never reached it"),
                              (stray, ROOM("gone"), b"to a room left")):
            f.write(f"+ {id_} {to} groupchat {len(body)}\n".encode() + body + b"\n")
    n = len(bob.messages)
    m.remount()
    m.wait_state(A, "online", timeout=10)
    bob.wait_message(f"{room}/{anick}", "never reached it", since=n, timeout=15)
    m.write(f"{A}/rooms/{room}/send", "written after the mount\n")
    bob.wait_message(f"{room}/{anick}", "written after the mount", since=n)
    got = bodies_from(bob, f"{room}/{anick}", n)
    assert got == ["never reached it", "written after the mount"], got
    recs = wait_records(m, A, room, [(anick, "written after the mount")])
    assert count(recs, f"{tag}-phone", "reached the room") == 1, recs
    assert count(recs, anick, "never reached it") == 1, recs
    assert count(recs, anick, "reached the room") == 0, recs
    assert "sent already" in m.log_text(), m.log_tail()
    assert pending_ids(m, A) == set(), (m.data / A / "outbox").read_text()


def pending_ids(m, acct):
    """The ids the outbox journal still holds."""
    lines = (m.data / acct / "outbox").read_text(errors="replace").splitlines()
    return {l.split()[1] for l in lines if l.startswith("+ ")} - \
        {l.split()[1] for l in lines if l.startswith("- ")}


def test_reflection_lost_with_the_link_is_not_sent_again(server, tmp, stack):
    """The server sleeps (SIGSTOP) while alice writes: the message leaves
    xmppfs but no reflection and no acknowledgement can come back.  The
    link is dropped, the server wakes and delivers the message, and at the
    rejoin its history shows it: it is not sent again, and logged once."""
    tag = "dl"
    A = J(tag)
    m, bob, room, anick, bnick = in_room(stack, server, tmp, tag)
    peer_says(bob, room, bnick, "before the sleep")
    wait_records(m, A, room, [(bnick, "before the sleep")])
    n = len(bob.messages)
    body = f"said while the server slept {os.urandom(3).hex()}"
    pid = int((server.dir / "testbed.pid").read_text())
    assert str(server.dir).encode() in open(f"/proc/{pid}/cmdline", "rb").read()
    os.kill(pid, signal.SIGSTOP)
    try:
        m.write(f"{A}/rooms/{room}/send", body + "\n")
        wait_until(lambda: f"SENT: <message" in m.log_text() and
                   f"{body}</body>" in m.log_text(), timeout=10,
                   what="xmppfs to send the message")
        m.write(f"{A}/status", "reconnect\n")
        wait_until(lambda: m.connection(A).get("state") != "online", timeout=15,
                   what="the old link to be dropped")
    finally:
        os.kill(pid, signal.SIGCONT)
    m.wait_state(A, "online", timeout=30)
    bob.wait_message(f"{room}/{anick}", body, since=n, timeout=15)
    m.write(f"{A}/rooms/{room}/send", "after the rejoin\n")
    bob.wait_message(f"{room}/{anick}", "after the rejoin", since=n, timeout=15)
    got = bodies_from(bob, f"{room}/{anick}", n)
    assert got == [body, "after the rejoin"], got
    recs = wait_records(m, A, room, [(anick, "after the rejoin")])
    assert count(recs, anick, body) == 1, recs


def test_written_before_the_room_has_us_again_waits(server, tmp, stack):
    """Offline, alice writes to the room; while she was away someone took
    her nick, so the rejoin fails for now.  The message waits (sent now, the
    room would refuse it from a non-occupant and it would be lost) until the
    retry gets her in, and then reaches the room once.  Her own words are
    records, not `groupchat` events."""
    tag = "dh"
    A = J(tag)
    m, bob, room, anick, bnick = in_room(stack, server, tmp, tag)
    n = len(bob.messages)
    ev, thief = nick_taken_while_away(
        stack, server, m, bob, tag, room, anick,
        offline=lambda: m.write(f"{A}/rooms/{room}/send", "written while offline\n"))
    # the room did not get it from a non-occupant (nor from the thief)
    assert "written while offline" not in [x["body"] for x in bob.messages[n:]], \
        bob.messages[n:]
    # out of the room, nobody can answer a nick change
    problem = expect_errno(lambda: m.write(f"{A}/rooms/{room}/nick", "other\n"),
                           errno.ENOTCONN, "a nick change while out of the room")
    assert problem is None, problem
    thief.disconnect()
    t0 = time.monotonic()
    bob.wait_message(f"{room}/{anick}", "written while offline", since=n, timeout=30)
    note(f"nick free to the message in the room: {time.monotonic() - t0:.1f}s")
    peer_says(bob, room, bnick, "marker")
    recs = wait_records(m, A, room, [(bnick, "marker")])
    assert bodies_from(bob, f"{room}/{anick}", n) == ["written while offline"], \
        bodies_from(bob, f"{room}/{anick}", n)
    assert count(recs, anick, "written while offline") == 1, recs
    # the reader of events may trail the log: wait for bob's marker there,
    # then nothing of alice's own may be before it
    wait_until(lambda: any(l.split("\t")[1:] == ["groupchat", room, bnick, "marker"]
                           for l in ev.snapshot()),
               timeout=10, what=lambda: f"bob's marker in events: {ev.snapshot()!r}")
    own = [l for l in ev.snapshot()
           if l.split("\t")[1:4] == ["groupchat", room, anick]]
    assert not own, own


def nick_taken_while_away(stack, server, m, bob, tag, room, anick,
                          offline=lambda: None):
    """Alice goes offline, a thief takes her nick, alice (having done
    @offline) comes back: the rejoin fails for now.  Returns the events
    reader and the thief."""
    A = J(tag)
    ev = events_reader(stack, m, A)
    since = len(bob.presences)
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=10)
    wait_until(lambda: any(p["from"] == f"{room}/{anick}" and p["type"] == "unavailable"
                           for p in bob.presences[since:]),
               timeout=10, what="alice to leave the room")
    thief = peer(stack, server, f"{tag}-b", "thief")
    thief.join_room(room, anick)
    offline()
    m.write(f"{A}/status", "available\n")
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: any("\terror\t" + room + "\t" in l and "rejoin failed" in l
                           for l in ev.snapshot()),
               timeout=15, what=lambda: f"the failed rejoin in events: {ev.snapshot()!r}")
    return ev, thief


def test_rmdir_while_out_of_the_room(server, tmp, stack):
    """A room whose rejoin failed for now has nobody to say goodbye to:
    rmdir takes it out at once, drops what waited for it with an event,
    and no retry joins it again."""
    tag = "dr"
    A = J(tag)
    m, bob, room, anick, bnick = in_room(stack, server, tmp, tag)
    ev, thief = nick_taken_while_away(stack, server, m, bob, tag, room, anick)
    m.write(f"{A}/rooms/{room}/send", "never to be sent\n")
    t0 = time.monotonic()
    os.rmdir(rpath(m, A, room))
    took = time.monotonic() - t0
    note(f"rmdir while out of the room: {took:.3f}s")
    assert took < 2.5, f"rmdir waited {took:.1f}s for a room that does not have us"
    assert listed(m, A) == [], listed(m, A)
    wait_until(lambda: any(l.split("\t")[1:3] == ["error", room] and
                           "not sent" in l and "never to be sent" in l
                           for l in ev.snapshot()),
               timeout=5, what=lambda: f"the dropped message in events: {ev.snapshot()!r}")
    # the nick is free again, and a reconnect rejoins every room kept:
    # not this one
    thief.disconnect()
    since = len(bob.presences)
    reconnect(m, server, A, f"{A}/{tag}-mount")
    # alice's rejoin would be sent at the connect, before she can get
    # bob's message; the room handles it before bob's marker after that
    bob.send_message(A, "sync")
    wait_until(lambda: "\tsync" in m.read(f"{A}/contacts/{J(tag, 'b')}/log"),
               timeout=10, what="bob's message in alice's log")
    peer_says(bob, room, bnick, "after the rmdir")
    assert not [p for p in bob.presences[since:]
                if p["from"] == f"{room}/{anick}" and p["type"] == "available"], \
        bob.presences[since:]
    assert listed(m, A) == [], listed(m, A)


def as_visitor(stack, server, tmp, tag):
    """bob's moderated room, which alice's mount joins as a visitor (who
    may not speak): (mount, alice, the room, bob, bob's nick, alice's
    events)."""
    A = J(tag)
    room, bnick = ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    configure(bob, room, moderatedroom="1")
    m = mount_d(stack, server, tmp, tag)
    ev = events_reader(stack, m, A)
    join(m, A, room)
    wait_in_room(bob, room, f"{tag}-a")
    return m, A, room, bob, bnick, ev


def test_message_the_room_refuses(server, tmp, stack):
    """In a moderated room a visitor may not speak: the room's refusal is
    the message's end (an error event with its text), not a resend, and an
    fsync on the descriptor fails with the refusal's error (forbidden:
    EACCES) once the room has answered: it returns 0 only for messages
    that got where they were going."""
    tag = "dv"
    m, A, room, bob, bnick, ev = as_visitor(stack, server, tmp, tag)
    n = len(bob.messages)
    fd = os.open(m.path(A, "rooms", room, "send"), os.O_WRONLY)
    try:
        os.write(fd, b"a visitor speaks\n")
        try:
            os.fsync(fd)
            raise AssertionError("fsync returned 0 for a refused message")
        except PermissionError:
            pass
    finally:
        os.close(fd)
    text = wait_until(lambda: next((l for l in ev.snapshot()
                                    if l.split("\t")[1:3] == ["error", room]
                                    and "a visitor speaks" in l), None),
                      timeout=10, what=lambda: f"the refusal in events: {ev.snapshot()!r}")
    note(f"the refusal in events: {text}")
    assert "forbidden" in text, text
    peer_says(bob, room, bnick, "marker")
    assert "a visitor speaks" not in [x["body"] for x in bob.messages[n:]], bob.messages[n:]
    assert pending_ids(m, A) == set(), (m.data / A / "outbox").read_text()


def test_fsync_after_the_refusal_came_still_fails(server, tmp, stack):
    """The room's refusal may come before the fsync does (a busy machine,
    or a script that fsyncs later): the fsync still fails with it, once;
    a later fsync on the same descriptor answers only for what was
    written after, and another descriptor never heard of it."""
    tag = "dw"
    m, A, room, bob, bnick, ev = as_visitor(stack, server, tmp, tag)
    fd = os.open(m.path(A, "rooms", room, "send"), os.O_WRONLY)
    other = os.open(m.path(A, "rooms", room, "send"), os.O_WRONLY)
    try:
        os.write(fd, b"refused before the fsync\n")
        wait_until(lambda: any("refused before the fsync" in l
                               for l in ev.snapshot()),
                   timeout=10, what=lambda: f"the refusal in events: {ev.snapshot()!r}")
        assert pending_ids(m, A) == set(), (m.data / A / "outbox").read_text()
        try:
            os.fsync(fd)
            raise AssertionError("fsync returned 0 after the refusal came")
        except PermissionError:
            pass
        # told once: nothing written since, nothing to fail
        os.fsync(fd)
        os.fsync(other)
    finally:
        os.close(fd)
        os.close(other)


def test_private_messages_from_the_archive_once(server, tmp, stack):
    """The server archives private messages as it does chats.  One that
    went to another client of the account (its phone, in the room under
    another nick) reaches the private conversation through the catch-up at
    the next connect; one that came live is not logged again by it."""
    tag = "dp"
    A = J(tag)
    m, bob, room, anick, bnick = in_room(stack, server, tmp, tag)
    plog = rpath(m, A, room, "private", bnick, "log")

    def private():
        try:
            with open(plog, encoding="utf-8") as f:
                return [r[1:] for r in parse_records(f.read())]
        except FileNotFoundError:
            return []
    bob.send_message(f"{room}/{anick}", "live, to the mount")
    wait_until(lambda: (bnick, "live, to the mount") in private(), timeout=10,
               what=lambda: f"the live message in private/{bnick}/log: {private()!r}")
    phone = peer(stack, server, f"{tag}-a", "phone")
    phone.join_room(room, f"{tag}-phone")
    bob.send_message(f"{room}/{tag}-phone", "to the phone")
    phone.wait_message(f"{room}/{bnick}", "to the phone")
    reconnect(m, server, A, f"{A}/{tag}-mount")
    wait_until(lambda: (bnick, "to the phone") in private(), timeout=10,
               what=lambda: f"the phone's message in private/{bnick}/log: {private()!r}")
    # the catch-up is done once the phone's message is logged: it brought
    # the live one too, which is there once
    bob.send_message(f"{room}/{anick}", "after the catch-up")
    wait_until(lambda: (bnick, "after the catch-up") in private(), timeout=10,
               what=lambda: f"the last message in private/{bnick}/log: {private()!r}")
    assert private() == [(bnick, "live, to the mount"), (bnick, "to the phone"),
                         (bnick, "after the catch-up")], private()
