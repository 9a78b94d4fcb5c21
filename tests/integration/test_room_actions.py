"""Group chat (XEP-0045), what a user does in a room beyond chatting:
writing `nick` and `subject`, private messages with occupants
(rooms/ROOM/private/NICK/), password-protected and members-only rooms,
invitations, kicks, bans and destruction in `events`, and rejoining after
a server restart (SPEC "The tree"; issue 7).

As in test_rooms.py, every test has users and a room of its own: TAG-a is
the account in the mount, TAG-b a slixmpp client.  Whoever joins an empty
room first is its owner and moderator, which decides who may set the
subject, kick and ban."""

import errno
import os
import time
import xml.etree.ElementTree as ET

from xfstest import (LineReader, Mount, Server, TestFailure, config_text, note,
                     wait_until, write_chunks, expect_errno, events_reader)

from test_rooms import (BNICK, J, MUC, ROOM, _rd_or_err, join, listed,
                        marker_in_log, mount, nicks, occupants, parse_records, peer,
                        peer_says, rd, records, room_presences, rpath, wait_gone,
                        wait_in_room, wait_occupants, wait_records)

TAGS = ("nk", "sj", "sr", "pm", "pw", "mo", "kb", "ds", "iv", "rs", "st", "rb", "lk", "hn",
        "rt", "si", "mk")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)

NS_OWNER = "http://jabber.org/protocol/muc#owner"
NS_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_USER = "http://jabber.org/protocol/muc#user"
NS_DATA = "jabber:x:data"


# --------------------------------------------------------------------------
# helpers

def admin(p, room, ns, child):
    """An owner or admin request of @p to @room; fails the test unless the
    room says yes."""
    q = ET.Element(f"{{{ns}}}query")
    q.append(child)
    r = p.iq(room, "set", q)
    if r is None or r.get("type") != "result":
        raise TestFailure(f"{p.bare}: {ns} request to {room} failed: "
                          f"{ET.tostring(r).decode() if r is not None else 'no answer'}")


def configure(p, room, **fields):
    """Submit a room configuration form with just @fields
    (muc#roomconfig_NAME=value)."""
    x = ET.Element(f"{{{NS_DATA}}}x", {"type": "submit"})
    for var, val in [("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig")] + \
            [(f"muc#roomconfig_{k}", v) for k, v in fields.items()]:
        f = ET.SubElement(x, f"{{{NS_DATA}}}field", {"var": var})
        ET.SubElement(f, f"{{{NS_DATA}}}value").text = val
    admin(p, room, NS_OWNER, x)


def item(reason=None, **attrs):
    it = ET.Element(f"{{{NS_ADMIN}}}item", attrs)
    if reason:
        ET.SubElement(it, f"{{{NS_ADMIN}}}reason").text = reason
    return it


def wait_event(r, kind, jid, timeout=10.0):
    """Wait for an event line KIND<TAB>JID; returns its text."""
    def check():
        for line in r.snapshot():
            f = line.split("\t", 3)
            if len(f) == 4 and f[1] == kind and f[2] == jid:
                return (f[3],)
        return None
    return wait_until(check, timeout=timeout,
                      what=lambda: f"a {kind} event for {jid}; events: "
                                   f"{r.snapshot()[-10:]!r}")[0]


def write_value(path, text):
    """open(O_WRONLY|O_TRUNC), one write, close, as `echo > file` does."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def alice_first(stack, server, tmp, tag, **keys):
    """Alice creates ROOM (so she is its owner), then the peer joins."""
    A, room, bnick = J(tag), ROOM(tag), BNICK(tag)
    m = mount(stack, server, tmp, tag, f"{tag}-mount", **keys)
    join(m, A, room)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    wait_occupants(m, A, room, lambda o: bnick in [x[0] for x in o],
                   f"to list {bnick}")
    return m, bob, room, f"{tag}-a", bnick


def bob_first(stack, server, tmp, tag, **keys):
    """The peer creates ROOM (owner), then alice joins with mkdir."""
    A, room, bnick = J(tag), ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    m = mount(stack, server, tmp, tag, f"{tag}-mount", **keys)
    join(m, A, room)
    anick = keys.get("nick", f"{tag}-a")
    wait_in_room(bob, room, anick)
    return m, bob, room, anick, bnick


# --------------------------------------------------------------------------
# nick

def test_nick_change(server, tmp, stack):
    tag = "nk"
    A = J(tag)
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    new = "Alice ∕ Neu"
    since = len(bob.presences)
    t0 = time.monotonic()
    write_value(rpath(m, A, room, "nick"), new + "\n")
    note(f"nick change: {time.monotonic() - t0:.3f}s")
    # the write returned once the room took it: the peer sees both halves
    wait_in_room(bob, room, new, since)
    old = room_presences(bob, room, anick, since)
    assert ("unavailable", ["303"]) in [(t, c) for t, c in old], old
    assert rd(m, A, room, "nick") == new + "\n", rd(m, A, room, "nick")
    occ = wait_occupants(m, A, room, lambda o: new in [x[0] for x in o] and
                         anick not in [x[0] for x in o], "to follow the change")
    assert sorted(x[0] for x in occ) == sorted([new, bnick]), occ
    n = len(bob.messages)
    write_chunks(rpath(m, A, room, "send"), "under my new name\n")
    bob.wait_message(f"{room}/{new}", "under my new name", since=n)
    wait_records(m, A, room, [(new, "under my new name")])

    # someone else's nick: EEXIST, and nothing changes
    problems = [expect_errno(lambda: write_value(rpath(m, A, room, "nick"), bnick),
                             errno.EEXIST, "taking the peer's nick")]
    for bad in ("\n", "two\nlines", "bad\x07bell"):
        problems.append(expect_errno(lambda: write_value(rpath(m, A, room, "nick"), bad),
                                     errno.EILSEQ if "\x07" in bad else errno.EINVAL,
                                     f"nick {bad!r}"))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    assert rd(m, A, room, "nick") == new + "\n", rd(m, A, room, "nick")

    # a status write reaches the room too
    m.write(f"{A}/status", "away lunch\n")
    wait_until(lambda: [p for p in bob.latest_presences(f"{room}/{new}").values()
                        if p["show"] == "away" and p["status"] == "lunch"],
               timeout=10, what=lambda: f"the peer to see alice away in the room; "
                                        f"{bob.latest_presences(f'{room}/{new}')!r}")

    # the new nick is the one we rejoin with
    since = len(bob.presences)
    m.write(f"{A}/status", "reconnect\n")
    def back():
        types = [t for t, _ in room_presences(bob, room, new, since)]
        return "unavailable" in types and \
            "available" in types[types.index("unavailable"):]
    wait_until(back, timeout=15,
               what=lambda: f"alice to come back as {new!r}: "
                            f"{room_presences(bob, room, new, since)!r}")
    assert not room_presences(bob, room, anick, since), \
        room_presences(bob, room, anick, since)


# --------------------------------------------------------------------------
# subject

def test_subject_change(server, tmp, stack):
    tag = "sj"
    A = J(tag)
    m, bob, room, anick, bnick = alice_first(stack, server, tmp, tag)
    since = len(bob.subjects)
    t0 = time.monotonic()
    write_value(rpath(m, A, room, "subject"), "Plans & dates\n")
    note(f"subject change: {time.monotonic() - t0:.3f}s")
    assert rd(m, A, room, "subject") == "Plans & dates\n", rd(m, A, room, "subject")
    bob.wait_subject(f"{room}/{anick}", "Plans & dates", since)
    # the same subject again changes nothing and returns at once
    write_value(rpath(m, A, room, "subject"), "Plans & dates\n")
    # clearing it
    write_value(rpath(m, A, room, "subject"), "\n")
    assert rd(m, A, room, "subject") == "", rd(m, A, room, "subject")
    bob.wait_subject(f"{room}/{anick}", "", since)
    # one line only
    problem = expect_errno(lambda: write_value(rpath(m, A, room, "subject"), "a\nb\n"),
                           errno.EINVAL, "a subject of two lines")
    assert problem is None, problem
    # not a record of the log
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    assert not [r for r in recs if "Plans" in r[2]], recs


def test_subject_refused_is_eacces(server, tmp, stack):
    tag = "sr"
    A = J(tag)
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    bob.send_raw(f"<message to='{room}' type='groupchat'>"
                 f"<subject>Owner's topic</subject></message>")
    wait_until(lambda: rd(m, A, room, "subject") == "Owner's topic\n", timeout=5,
               what=lambda: f"the owner's subject; now {_rd_or_err(m, A, room, 'subject')!r}")
    bob.wait_subject(f"{room}/{bnick}", "Owner's topic")   # its own, back
    since = len(bob.subjects)
    problem = expect_errno(lambda: write_value(rpath(m, A, room, "subject"), "mine\n"),
                           errno.EACCES, "a participant setting the subject")
    assert problem is None, problem
    assert rd(m, A, room, "subject") == "Owner's topic\n", rd(m, A, room, "subject")
    # the room changed nothing: a marker after the attempt comes with no
    # subject before it
    peer_says(bob, room, bnick, "after the attempt")
    assert not bob.subjects[since:], bob.subjects[since:]


# --------------------------------------------------------------------------
# private messages

def test_private_messages(server, tmp, stack):
    tag = "pm"
    A = J(tag)
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    pdir = rpath(m, A, room, "private")
    # occupants are listed, we are not
    wait_until(lambda: os.listdir(pdir) == [bnick], timeout=5,
               what=lambda: f"private/ to list {bnick}: {os.listdir(pdir)!r}")
    ev = events_reader(stack, m, A)
    stream = stack.enter_context(LineReader(os.path.join(pdir, bnick, "stream")))
    stream.wait_open()
    bob.send_message(f"{room}/{anick}", "psst, only for you")
    lines = stream.wait_lines(1)
    f = lines[0].split("\t", 2)
    assert f[1:] == [bnick, "psst, only for you"], lines
    assert wait_event(ev, "private", f"{room}/{bnick}") == "psst, only for you"
    # not in the room's log
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    assert not [r for r in recs if "psst" in r[2]], recs

    n = len(bob.messages)
    write_chunks(os.path.join(pdir, bnick, "send"), "hello back\n")
    got = bob.wait_message(f"{room}/{anick}", "hello back", since=n)
    assert got["type"] == "chat", got
    write_chunks(os.path.join(pdir, bnick, "post"), "two\nlines")
    bob.wait_message(f"{room}/{anick}", "two\nlines", since=n)
    with open(os.path.join(pdir, bnick, "log"), encoding="utf-8") as fh:
        log = parse_records(fh.read())
    assert [r[1:] for r in log] == [(bnick, "psst, only for you"),
                                    (anick, "hello back"), (anick, "two"),
                                    (anick, "lines")], log
    # kept on disk under the room
    on_disk = m.data / A / "rooms" / room / "private" / bnick / "log"
    assert on_disk.exists(), list((m.data / A / "rooms" / room).rglob("*"))
    # a nick that is not there: the room bounces it, into that log
    ghost = "Nobody Here"
    write_chunks(os.path.join(pdir, ghost, "send"), "anyone?\n")
    wait_until(lambda: "[error: " in open(os.path.join(pdir, ghost, "log"),
                                          encoding="utf-8").read(),
               timeout=10, ignore=(OSError,),
               what=lambda: f"the bounce in private/{ghost}/log")
    # a nick with a slash: a file name with U+2215 in its place, and a
    # reply through it reaches the nick with the slash
    carol = peer(stack, server, f"{tag}-b", f"{tag}-peer2")
    cnick = "Car/ol"
    carol.join_room(room, cnick)
    carol.send_message(f"{room}/{anick}", "from a slashed nick")
    cfile = "Car\u2215ol"
    wait_until(lambda: cfile in os.listdir(pdir), timeout=5,
               what=lambda: f"private/ to list {cfile!r}: {os.listdir(pdir)!r}")
    wait_until(lambda: "from a slashed nick" in open(os.path.join(pdir, cfile, "log"),
                                                     encoding="utf-8").read(),
               timeout=5, ignore=(OSError,), what=f"the message in private/{cfile}/log")
    n = len(carol.messages)
    write_chunks(os.path.join(pdir, cfile, "send"), "slash back\n")
    carol.wait_message(f"{room}/{anick}", "slash back", since=n)
    # in the room's log the sender field keeps the slash (it is no file name)
    peer_says(carol, room, cnick, "said in the room")
    wait_records(m, A, room, [(cnick, "said in the room")])
    # names that are not a nick's file name are no file
    problem = expect_errno(lambda: os.stat(os.path.join(pdir, "a/b")), errno.ENOENT,
                           "private/a/b")
    assert problem is None, problem


# --------------------------------------------------------------------------
# joining rooms that are not open to all

def test_password_room(server, tmp, stack):
    tag = "pw"
    A, room, bnick = J(tag), ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    configure(bob, room, passwordprotectedroom="1", roomsecret="s3cret w0rd")
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    problem = expect_errno(lambda: join(m, A, room), errno.EACCES,
                           "mkdir of a password room without the password")
    assert problem is None, problem
    assert listed(m, A) == [], listed(m, A)
    m.close()
    # with the password in a [room ROOM] group
    cfg = config_text({A: server.account(f"{tag}-a", resource=f"{tag}-mount2")}) + \
        f"\n[room {room}]\npassword=s3cret w0rd\nnick=Pass Holder\n"
    m2 = stack.enter_context(Mount(tmp, config=cfg, args=["-d"]))
    m2.wait_state(A, "online", timeout=10)
    join(m2, A, room)
    wait_in_room(bob, room, "Pass Holder")
    assert rd(m2, A, room, "nick") == "Pass Holder\n", rd(m2, A, room, "nick")
    peer_says(bob, room, bnick, "for those who know")
    wait_records(m2, A, room, [(bnick, "for those who know")])
    # an invitation carries the password
    n = len(bob.messages)
    m2.write(f"{A}/rooms/{room}/invite", f"{J(tag, 'b')}\n")
    # (an Element without children is false: wait for a list of them)
    x, = wait_until(lambda: [m["xml"].find("{jabber:x:conference}x")
                             for m in bob.messages[n:]
                             if m["xml"].find("{jabber:x:conference}x")
                             is not None],
                    timeout=10, what="the invitation at bob")
    assert x.get("jid") == room and x.get("password") == "s3cret w0rd", x.attrib
    # -d logs the XML stream, but not the room's password
    log = m2.log_text()
    assert "for those who know" in log, "-d logged no stanzas"
    assert "s3cret" not in log, "the room password is in the -d log"
    assert "room password, not shown" in log, log[-2000:]


def test_members_only_is_eacces(server, tmp, stack):
    tag = "mo"
    A, room, bnick = J(tag), ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    configure(bob, room, membersonly="1")
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    t0 = time.monotonic()
    problem = expect_errno(lambda: join(m, A, room), errno.EACCES,
                           "mkdir of a members-only room")
    assert problem is None, problem
    note(f"refused in {time.monotonic() - t0:.3f}s")
    assert listed(m, A) == [], listed(m, A)
    # made a member, alice gets in
    admin(bob, room, NS_ADMIN, item(jid=A, affiliation="member"))
    join(m, A, room)
    wait_in_room(bob, room, f"{tag}-a")
    assert listed(m, A) == [room], listed(m, A)


# --------------------------------------------------------------------------
# put out of a room

def test_kick_and_ban(server, tmp, stack):
    tag = "kb"
    A = J(tag)
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    ev = events_reader(stack, m, A)
    peer_says(bob, room, bnick, "before the kick")
    wait_records(m, A, room, [(bnick, "before the kick")])
    held = os.open(rpath(m, A, room, "send"), os.O_WRONLY)
    stack.callback(os.close, held)
    admin(bob, room, NS_ADMIN, item(reason="too\nloud", nick=anick, role="none"))
    text = wait_event(ev, "kicked", room)
    assert text == f"by {bnick}: too loud" or text == "too loud", repr(text)
    wait_until(lambda: listed(m, A) == [], timeout=5,
               what=lambda: f"rooms/ to forget {room}: {listed(m, A)}")
    problem = expect_errno(lambda: os.stat(rpath(m, A, room)), errno.ENOENT,
                           "the room's directory after the kick")
    assert problem is None, problem
    # a descriptor opened before cannot speak in a room we are out of
    problem = expect_errno(lambda: os.write(held, b"still here?\n"), errno.ENOTCONN,
                           "writing to send of a room we were kicked from")
    assert problem is None, problem
    # the log stays, and a mkdir joins again
    join(m, A, room)
    # the history the rejoin asked for comes after the join's answer: a
    # marker after it shows whether it repeated anything
    recs = marker_in_log(m, A, room, bob, bnick, "kick")
    assert count_recs(recs, bnick, "before the kick") == 1, recs
    # banned: out, and no way back in
    admin(bob, room, NS_ADMIN, item(reason="enough", jid=A, affiliation="outcast"))
    text = wait_event(ev, "banned", room)
    assert "enough" in text, text
    wait_until(lambda: listed(m, A) == [], timeout=5,
               what=lambda: f"rooms/ to forget {room}: {listed(m, A)}")
    problem = expect_errno(lambda: join(m, A, room), errno.EACCES,
                           "mkdir of a room we are banned from")
    assert problem is None, problem
    with open(m.data / A / "rooms.list") as f:
        assert room not in f.read()


def in_room_then_offline(stack, server, tmp, tag):
    """bob_first, an events reader, then alice's status set to offline
    and her leaving seen by bob."""
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    A = J(tag)
    ev = events_reader(stack, m, A)
    since = len(bob.presences)
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    wait_gone(bob, room, anick, since)
    return m, bob, room, anick, bnick, ev


def test_rejoin_refused_after_a_ban_while_offline(server, tmp, stack):
    tag = "rb"
    A = J(tag)
    m, bob, room, anick, bnick, ev = in_room_then_offline(stack, server, tmp, tag)
    admin(bob, room, NS_ADMIN, item(jid=A, affiliation="outcast"))
    assert listed(m, A) == [room], listed(m, A)   # still ours while offline
    m.write(f"{A}/status", "available\n")
    m.wait_state(A, "online", timeout=10)
    text = wait_event(ev, "removed", room)
    assert text.startswith("rejoin refused: "), text
    wait_until(lambda: listed(m, A) == [], timeout=5,
               what=lambda: f"rooms/ to forget {room}: {listed(m, A)}")
    with open(m.data / A / "rooms.list") as f:
        assert room not in f.read()


def test_rejoin_tried_again_while_online(server, tmp, stack):
    """A rejoin that fails for now (someone else holds our nick) keeps the
    room, and xmppfs tries again on its own while online: the room is not
    lost until the next connect, which may be days away."""
    tag = "rt"
    A = J(tag)
    m, bob, room, anick, bnick, ev = in_room_then_offline(stack, server, tmp, tag)
    # bob's second client takes alice's nick while she is away
    squatter = peer(stack, server, f"{tag}-b", f"{tag}-squatter")
    squatter.join_room(room, anick)
    m.write(f"{A}/status", "available\n")
    m.wait_state(A, "online", timeout=10)
    text = wait_event(ev, "error", room)
    assert text.startswith("rejoin failed: ") and "trying again in 5 s" in text, text
    assert listed(m, A) == [room], listed(m, A)
    since = len(bob.presences)
    t0 = time.monotonic()
    squatter.send_presence(ptype="unavailable", to=f"{room}/{anick}")
    wait_gone(bob, room, anick, since)
    since = len(bob.presences)
    wait_in_room(bob, room, anick, since, timeout=20)
    note(f"the nick free to alice back in the room: {time.monotonic() - t0:.1f} s")
    assert listed(m, A) == [room], listed(m, A)
    marker_in_log(m, A, room, bob, bnick, tag)
    n = len(bob.messages)
    m.write(f"{A}/rooms/{room}/send", "back without a reconnect\n")
    bob.wait_message(f"{room}/{anick}", "back without a reconnect", since=n)


def count_recs(recs, nick, text):
    return sum(1 for r in recs if r[1:] == (nick, text))


def test_room_destroyed(server, tmp, stack):
    tag = "ds"
    A = J(tag)
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    ev = events_reader(stack, m, A)
    d = ET.Element(f"{{{NS_OWNER}}}destroy", {"jid": f"elsewhere@{MUC}"})
    ET.SubElement(d, f"{{{NS_OWNER}}}reason").text = "moving house"
    admin(bob, room, NS_OWNER, d)
    text = wait_event(ev, "destroyed", room)
    assert text == f"moving house; moved to elsewhere@{MUC}", text
    wait_until(lambda: listed(m, A) == [], timeout=5,
               what=lambda: f"rooms/ to forget {room}: {listed(m, A)}")


# --------------------------------------------------------------------------
# rooms xmppfs makes, and room names

def test_new_room_on_a_locking_service_is_open_to_others(server, tmp, stack):
    """Prosody (like most servers) locks a room it creates until its owner
    configures it; mkdir made the room, so xmppfs accepts the default
    configuration and the others can come in."""
    tag = "lk"
    A, bnick = J(tag), BNICK(tag)
    room = f"{tag}-room@locked.localhost"
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    join(m, A, room)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)      # fails with item-not-found while locked
    wait_occupants(m, A, room, lambda o: bnick in [x[0] for x in o],
                   f"to list {bnick}")


def test_room_names_a_key_file_cannot_hold_survive_a_remount(server, tmp, stack):
    """IRC gateways name rooms '#chan%irc.example.org@...'; a room list
    kept as a GLib key file lost those (a line starting with '#' is a
    comment there) and could not store '=' or '[' at all."""
    tag = "hn"
    A = J(tag)
    rooms = [f"#{tag}%irc.example.org@{MUC}", f"{tag}=a[b]@{MUC}"]
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    for r in rooms:
        join(m, A, r)
    assert listed(m, A) == sorted(rooms), listed(m, A)
    m.close()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    assert listed(m, A) == sorted(rooms), listed(m, A)
    for r in rooms:
        wait_until(lambda: rd(m, A, r, "nick") == f"{tag}-a\n" and
                   [o for o in occupants(m, A, r) if o[0] == f"{tag}-a"],
                   timeout=10, what=lambda: f"to be back in {r}")


# --------------------------------------------------------------------------
# invitations

def test_invitations(server, tmp, stack):
    tag = "iv"
    A, bnick = J(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    ev = events_reader(stack, m, A)
    # XEP-0249, from the user
    direct = f"direct-{tag}@{MUC}"
    bob.send_raw(f"<message to='{A}'><x xmlns='jabber:x:conference' "
                 f"jid='{direct}' reason='come and see'/></message>")
    text = wait_event(ev, "invite", direct)
    assert text == f"from {bob.jid}: come and see" or \
        text == f"from {bob.bare}: come and see", text
    # what the inviter wrote stays on one line of events: newline, TAB and
    # a C1 control (NEL) become spaces
    odd = f"odd-{tag}@{MUC}"
    bob.send_raw(f"<message to='{A}'><x xmlns='jabber:x:conference' jid='{odd}' "
                 f"reason='line one&#10;line two&#9;tab&#x85;nel'/></message>")
    text = wait_event(ev, "invite", odd)
    assert text.endswith(": line one line two tab nel"), repr(text)
    lines = [l for l in ev.snapshot() if odd in l]
    assert len(lines) == 1 and lines[0].count("\t") == 3, lines
    # an invitation to something that is no room is no event
    bob.send_raw(f"<message to='{A}'><x xmlns='jabber:x:conference' "
                 f"jid='not a jid'/></message>")
    # mediated, through a password room: the password comes with it
    room = ROOM(tag)
    bob.join_room(room, bnick)
    configure(bob, room, passwordprotectedroom="1", roomsecret="open sesame")
    bob.send_raw(f"<message to='{room}'><x xmlns='{NS_USER}'>"
                 f"<invite to='{A}'><reason>join us</reason></invite></x></message>")
    text = wait_event(ev, "invite", room)
    assert text.startswith("from ") and text.endswith(": join us"), text
    assert "open sesame" not in text, text
    assert not [l for l in ev.snapshot() if "not a jid" in l], ev.snapshot()
    # nothing of it in contacts/
    assert room not in os.listdir(m.path(A, "contacts")), os.listdir(m.path(A, "contacts"))
    join(m, A, room)
    wait_in_room(bob, room, f"{tag}-a")


# --------------------------------------------------------------------------
# the server restarts

def test_sending_invitations(server, tmp, stack):
    """A line "JID[ REASON]" written to rooms/ROOM/invite sends a direct
    invitation (XEP-0249), with the room's password; bad lines change
    nothing."""
    tag = "si"
    A, B = J(tag), J(tag, "b")
    m, bob, room, anick, bnick = bob_first(stack, server, tmp, tag)
    inv = f"{A}/rooms/{room}/invite"
    NS_CONF = "{jabber:x:conference}x"

    def invitations(since):
        with bob.cond:
            return [(x["from"], x["xml"].find(NS_CONF), x["body"])
                    for x in bob.messages[since:]
                    if x["xml"].find(NS_CONF) is not None]
    n = len(bob.messages)
    # two lines, two invitations; the second without its newline
    write_chunks(m.path(inv), f"{B} come and see\n{B}/{tag}-peer".encode())
    got = wait_until(lambda: (lambda v: v if len(v) >= 2 else None)(
        invitations(n)), timeout=10,
        what=lambda: f"two invitations at bob: {bob.messages[n:]!r}")
    (f1, x1, b1), (f2, x2, b2) = got
    assert f1.startswith(f"{A}/") and f2.startswith(f"{A}/"), (f1, f2)
    assert x1.get("jid") == room and x1.get("reason") == "come and see", x1.attrib
    assert x2.get("jid") == room and x2.get("reason") is None, x2.attrib
    assert x1.get("password") is None, x1.attrib
    assert room in b1 and "come and see" in b1, b1   # for clients without XEP-0249
    # bad lines: EINVAL or EILSEQ, and nothing is sent
    n = len(bob.messages)
    for line, want in (("@no@jid why\n", errno.EINVAL), ("\n", errno.EINVAL),
                       (f"{B} bell\x07here\n", errno.EILSEQ)):
        problem = expect_errno(lambda: m.write(inv, line), want,
                               f"writing {line!r} to invite")
        assert problem is None, problem
    # it reads as empty (so that cp -r and tar copy it)
    assert m.read(inv) == "", m.read(inv)
    # a line cut by a failed one: its rest makes no line of its own
    fd = os.open(m.path(inv), os.O_WRONLY)
    try:
        problem = expect_errno(lambda: os.write(fd, b"@bad@\nnobody-"),
                               errno.EINVAL, "a bad line, then half a line")
        assert problem is None, problem
        os.write(fd, f"{B} half\n".encode())   # the rest: dropped
    finally:
        os.close(fd)
    m.write(inv, f"{B} marker\n")
    wait_until(lambda: invitations(n), timeout=10, what="the marker invitation")
    assert [x.get("reason") for _, x, _ in invitations(n)] == ["marker"], \
        invitations(n)
    # offline: ENOTCONN
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    problem = expect_errno(lambda: m.write(inv, f"{B}\n"), errno.ENOTCONN,
                           "inviting while offline")
    assert problem is None, problem


def test_kick_and_ban_others(server, tmp, stack):
    """As the room's owner, alice kicks bob (a line NICK<TAB>REASON to
    kick) and bans him (JID REASON to ban); each write returns once the
    room answered, with its refusal as the error."""
    tag = "mk"
    A, B, room, bnick = J(tag), J(tag, "b"), ROOM(tag), BNICK(tag)
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    join(m, A, room)   # alice makes the room: owner and moderator
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    kick, ban = f"{A}/rooms/{room}/kick", f"{A}/rooms/{room}/ban"

    def out(code, since):
        return wait_until(
            lambda: [c for t, c in room_presences(bob, room, bnick, since)
                     if t == "unavailable" and code in c],
            timeout=10, what=lambda: f"bob out of the room with {code}: "
                                     f"{room_presences(bob, room, bnick, since)!r}")
    since = len(bob.presences)
    m.write(kick, f"{bnick}\tstop that\n")
    out("307", since)
    wait_occupants(m, A, room, lambda occ: bnick not in nicks(occ),
                   "bob gone from occupants")
    # a kick is no ban: bob comes back
    bob.join_room(room, bnick)
    for line, want in ((f"nobody here\n", errno.ENOENT),
                       ("\n", errno.EINVAL),
                       (f"{bnick}\tbell\x07\n", errno.EILSEQ)):
        problem = expect_errno(lambda: m.write(kick, line), want,
                               f"writing {line!r} to kick")
        assert problem is None, problem
    problem = expect_errno(lambda: m.write(ban, "@no@jid\n"), errno.EINVAL,
                           "banning an invalid JID")
    assert problem is None, problem
    since = len(bob.presences)
    m.write(ban, f"{B} enough\n")
    out("301", since)
    problem = None
    try:
        bob.join_room(room, bnick)
        problem = "bob joined again after the ban"
    except TestFailure as e:
        assert "forbidden" in str(e), e
    assert problem is None, problem
    # not a moderator: bob owns this one, alice only takes part
    room2 = f"{tag}-second@{MUC}"
    bob.join_room(room2, bnick)
    join(m, A, room2)
    problem = expect_errno(lambda: m.write(f"{A}/rooms/{room2}/kick", f"{bnick}\n"),
                           (errno.EACCES, errno.EPERM), "a participant's kick")
    assert problem is None, problem
    assert bnick in nicks(occupants(m, A, room2)), occupants(m, A, room2)


def test_rejoin_after_server_restart(tmp, stack):
    tag = "st"
    A, room, bnick = J(tag), ROOM(tag), BNICK(tag)
    users = {f"{tag}-a": "apw", f"{tag}-b": "bpw"}
    srv = Server(tmp / "srv", users=users, direct_tls=False)
    srv.start()
    stack.callback(srv.stop)
    bob = peer(stack, srv, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    m = mount(stack, srv, tmp, tag, f"{tag}-mount")
    join(m, A, room)
    wait_in_room(bob, room, f"{tag}-a")
    peer_says(bob, room, bnick, "before the restart")
    wait_records(m, A, room, [(bnick, "before the restart")])
    bob.disconnect()
    srv.restart()
    t0 = time.monotonic()
    m.wait_state(A, "online", timeout=30)
    bob2 = peer(stack, srv, f"{tag}-b", f"{tag}-peer2")
    bob2.join_room(room, bnick)
    wait_occupants(m, A, room, lambda o: {bnick, f"{tag}-a"} <= {x[0] for x in o},
                   "to list both again", timeout=20)
    note(f"server up to alice back in the room: {time.monotonic() - t0:.2f}s")
    assert listed(m, A) == [room], listed(m, A)
    n = len(bob2.messages)
    write_chunks(rpath(m, A, room, "send"), "after the restart\n")
    bob2.wait_message(f"{room}/{tag}-a", "after the restart", since=n)
    peer_says(bob2, room, bnick, "welcome back")
    recs = wait_records(m, A, room, [(bnick, "welcome back"), (f"{tag}-a", "after the restart")])
    assert count_recs(recs, bnick, "before the restart") == 1, recs
