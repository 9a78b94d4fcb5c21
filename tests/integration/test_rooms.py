"""Group chat (XEP-0045): ACCOUNT/rooms/ROOM/{send,post,log,stream,
occupants,nick,subject}, mkdir and rmdir under rooms/ (SPEC "The tree",
"Records"; issue 7, first part).

The test bed's Prosody has a MUC component conference.localhost that
creates a room at the first join (muc_room_locking = false) and keeps 20
messages of history.  Every test has users and a room of its own: TAG-a
is the account in the mount (its nick is its localpart unless the test
sets `nick`), TAG-b a slixmpp client in the same room.  Prosody shows
real JIDs to moderators only (and to each occupant its own): whoever
joins an empty room first is its owner and moderator.  What must not
happen (a record twice) is checked against a marker: the room relays one
sender's messages in order, so once a later marker is in the log,
anything before it would be too."""

import calendar
import errno
import os
import subprocess
import threading
import time

import xfstest
from xfstest import (LineReader, Mount, Peer, TestFailure, note,
                     wait_until, TIME_RE, write_chunks, expect_errno, events_reader,
                     parse_event)


DOM = "localhost"
MUC = "conference.localhost"
TAGS = ("jn", "mw", "ow", "hi", "ol", "nc", "lv", "kl", "rc", "rm", "ns",
        "nm", "off", "nf", "to")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)



def J(tag, who="a"):
    return f"{tag}-{who}@{DOM}"


def ROOM(tag):
    return f"{tag}-room@{MUC}"


def BNICK(tag):
    """The peer's nick: a space and a non-ASCII letter in it."""
    return f"B\u00f8b {tag}"


# --------------------------------------------------------------------------
# helpers

def mount(stack, server, tmp, tag, res, args=(), **keys):
    """TAG-a in a mount of its own (xmppfs @args), online."""
    a = J(tag)
    m = stack.enter_context(Mount(tmp, {a: server.account(f"{tag}-a", resource=res,
                                                          **keys)}, args=args))
    m.wait_state(a, "online", timeout=10)
    return m


def peer(stack, server, user, res):
    return stack.enter_context(Peer(server.jid(user), server.password(user),
                                    server, resource=res))


def rpath(m, acct, room, *parts):
    return m.path(acct, "rooms", room, *parts)


def rd(m, acct, room, name):
    with open(rpath(m, acct, room, name), encoding="utf-8") as f:
        return f.read()


def _rd_or_err(m, acct, room, name):
    try:
        return rd(m, acct, room, name)
    except (OSError, UnicodeDecodeError) as e:
        return e


def join(m, acct, room):
    """mkdir rooms/ROOM; returns the seconds it took."""
    t0 = time.monotonic()
    os.mkdir(rpath(m, acct, room))
    return time.monotonic() - t0


def leave(m, acct, room):
    t0 = time.monotonic()
    os.rmdir(rpath(m, acct, room))
    return time.monotonic() - t0


def listed(m, acct):
    return sorted(os.listdir(m.path(acct, "rooms")))


def reconnect(m, server, acct, full):
    """Write 'reconnect' to status; returns once a new session of @full
    is bound and the account is online again.  (Waiting for a state other
    than online could miss it: a reconnect to a live server takes ms.)"""
    sessions = len(server.c2s_session_ids(full))
    m.write(f"{acct}/status", "reconnect\n")
    wait_until(lambda: len(server.c2s_session_ids(full)) > sessions, timeout=10,
               what="a new session after writing 'reconnect'")
    m.wait_state(acct, "online", timeout=10)


def join_refused(m, acct, room, err, what):
    """mkdir rooms/ROOM fails with @err and leaves nothing behind: the room
    is neither listed nor found by a lookup."""
    t0 = time.monotonic()
    problem = expect_errno(lambda: os.mkdir(rpath(m, acct, room)), err, what)
    note(f"{what}: refused in {time.monotonic() - t0:.3f}s")
    assert problem is None, problem
    assert room not in listed(m, acct), listed(m, acct)
    problem = expect_errno(lambda: os.stat(rpath(m, acct, room)), errno.ENOENT,
                           f"lookup of {room} after the refusal")
    assert problem is None, problem


def parse_record(line, where="stream"):
    f = line.split("\t", 2)
    if len(f) != 3 or not TIME_RE.match(f[0]):
        raise TestFailure(f"{where}: not a TIME<TAB>NICK<TAB>TEXT record: {line!r}")
    return tuple(f)


def parse_records(text, where="log"):
    if text and not text.endswith("\n"):
        raise TestFailure(f"{where} does not end with a newline: {text[-200:]!r}")
    return [parse_record(l, where) for l in (text.split("\n")[:-1] if text else [])]


def records(m, acct, room):
    return parse_records(rd(m, acct, room, "log"), f"rooms/{room}/log")


def wait_records(m, acct, room, want, timeout=10.0):
    """Wait until every (nick, text) in @want is a record of the room's
    log; returns all records."""
    def check():
        recs = records(m, acct, room)
        have = {r[1:] for r in recs}
        return recs if all(w in have for w in want) else None
    return wait_until(check, timeout=timeout, ignore=(OSError, TestFailure),
                      what=lambda: f"records {want!r} in rooms/{room}/log; log now: "
                                   f"{_rd_or_err(m, acct, room, 'log')!r}"[:3000])


def count(recs, nick, text):
    return sum(1 for r in recs if r[1:] == (nick, text))


def occupants(m, acct, room):
    """[(nick, role, affiliation, jid), ...] in file order."""
    text = rd(m, acct, room, "occupants")
    if text and not text.endswith("\n"):
        raise TestFailure(f"occupants does not end with a newline: {text!r}")
    out = []
    for line in text.split("\n")[:-1] if text else []:
        f = line.split("\t")
        if len(f) != 4:
            raise TestFailure(f"occupants: not NICK<TAB>ROLE<TAB>AFFILIATION<TAB>JID: "
                              f"{line!r}")
        out.append(tuple(f))
    return out


def wait_occupants(m, acct, room, pred, what, timeout=10.0):
    def check():
        o = occupants(m, acct, room)
        return (o,) if pred(o) else None
    return wait_until(check, timeout=timeout, ignore=(OSError, TestFailure),
                      what=lambda: f"occupants of {room} {what}; now: "
                                   f"{_rd_or_err(m, acct, room, 'occupants')!r}")[0]


def nicks(occ):
    return [o[0] for o in occ]


def room_presences(p, room, nick, since=0):
    """(type, muc_codes) of the presences @p got from ROOM/NICK since index
    @since."""
    with p.cond:
        return [(x["type"], x["muc_codes"]) for x in p.presences[since:]
                if x["from"] == f"{room}/{nick}"]


def wait_in_room(p, room, nick, since=0, timeout=10.0):
    """Wait until @p saw ROOM/NICK available (since index @since)."""
    return wait_until(
        lambda: any(t == "available" for t, _ in room_presences(p, room, nick, since)),
        timeout=timeout,
        what=lambda: f"{p.bare} to see {room}/{nick} join; presences from it: "
                     f"{room_presences(p, room, nick, since)!r}")


def wait_gone(p, room, nick, since=0, timeout=10.0):
    return wait_until(
        lambda: any(t == "unavailable" for t, _ in room_presences(p, room, nick, since)),
        timeout=timeout,
        what=lambda: f"{p.bare} to see {room}/{nick} leave; presences from it: "
                     f"{room_presences(p, room, nick, since)!r}")


def peer_says(p, room, nick, body):
    """The peer sends @body to the room and waits for the room to reflect
    it back: from then on the room's history has it."""
    since = len(p.messages)
    p.send_message(room, body, mtype="groupchat")
    return p.wait_message(f"{room}/{nick}", body, since=since)


def marker_in_log(m, acct, room, p, nick, tag):
    """The peer sends a marker; wait until the mount's log has it.  Returns
    all records then."""
    body = f"{tag} marker {os.urandom(3).hex()}"
    p.send_message(room, body, mtype="groupchat")
    return wait_records(m, acct, room, [(nick, body)])


def setup(stack, server, tmp, tag, **keys):
    """The peer creates ROOM (so it is owner and moderator), alice joins it
    with mkdir.  Returns (m, bob, room, alice's nick, bob's nick)."""
    room, bnick = ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    m = mount(stack, server, tmp, tag, f"{tag}-mount", **keys)
    anick = keys.get("nick", f"{tag}-a")
    dt = join(m, J(tag), room)
    note(f"mkdir rooms/{room}: {dt:.3f}s")
    wait_in_room(bob, room, anick)
    return m, bob, room, anick, bnick


def unmounted(m, bob, tag, room, bnick, body="before the absence"):
    """The peer says @body and alice's mount logs it, then goes (the peer
    sees her leave).  Returns her log then."""
    A, anick = J(tag), f"{tag}-a"
    peer_says(bob, room, bnick, body)
    wait_records(m, A, room, [(bnick, body)])
    before = rd(m, A, room, "log")
    since = len(bob.presences)
    m.close()
    wait_gone(bob, room, anick, since)
    return before


def epoch(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


def early_in_a_second():
    """Wait until a new wall-clock second has just begun, so that what a
    test does in the next ~0.5 s shares one second: the records of a log
    have whole seconds, and a history request "since the last record" must
    not lose what came later in the same second."""
    prev = int(time.time())
    wait_until(lambda: int(time.time()) > prev and time.time() % 1 < 0.1,
               timeout=3, interval=0.002, what="the start of a second")


def stamp_second(stamp):
    """A XEP-0082 stamp cut to whole seconds, as a record writes it."""
    return stamp[:19] + "Z"


# --------------------------------------------------------------------------
# joining

def test_join_seen_by_other_occupant(server, tmp, stack):
    tag = "jn"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    # listed, and a directory with the files of a room
    assert listed(m, A) == [room], listed(m, A)
    names = set(os.listdir(rpath(m, A, room)))
    want = {"send", "post", "log", "stream", "occupants", "nick", "subject"}
    assert want <= names, f"rooms/{room}/ lacks {sorted(want - names)}: {sorted(names)}"
    # the peer saw alice's join presence; alice is a participant
    assert rd(m, A, room, "nick") == f"{anick}\n", rd(m, A, room, "nick")
    # mkdir returned after the self-presence; the room sends every other
    # occupant's presence before it, so the peer is listed at once
    occ = occupants(m, A, room)
    # alice is no moderator: the room does not show her bob's JID, but
    # shows her her own
    assert occ == sorted(occ, key=lambda o: o[0]), f"occupants not sorted by nick: {occ}"
    assert set(occ) == {(bnick, "moderator", "owner", ""),
                        (anick, "participant", "none", f"{A}/{tag}-mount")}, occ


def test_messages_both_ways(server, tmp, stack):
    tag = "mw"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    st = stack.enter_context(LineReader(rpath(m, A, room, "stream")))
    st.wait_open()
    ev = events_reader(stack, m, A)

    # peer -> alice: log, stream, events, exact bodies
    bodies = ["hello room", "a < b && c > d ]]> &amp;",
              "emoji \U0001F600 \u00fcn\u00efc\u00f6d\u00e9", "tab\tinside"]
    t0 = time.time()
    for b in bodies:
        bob.send_message(room, b, mtype="groupchat")
    recs = wait_records(m, A, room, [(bnick, b) for b in bodies])
    t1 = time.time()
    got = [r[1:] for r in recs if r[1] == bnick]
    assert got == [(bnick, b) for b in bodies], got
    for r in recs:
        assert int(t0) - 1 <= epoch(r[0]) <= t1 + 1, f"record time off: {r!r}"
    lines = st.wait_lines(len(bodies))
    assert [parse_record(l)[1:] for l in lines] == [(bnick, b) for b in bodies], lines

    def gc_events():
        return [e for e in map(parse_event, ev.snapshot()) if e[1] == "groupchat"]
    wait_until(lambda: len(gc_events()) >= len(bodies), timeout=5,
               what=lambda: f"{len(bodies)} groupchat events; have {ev.snapshot()!r}")
    # the room is the JID, the nick starts the text: IFS=TAB read works
    assert [e[2:] for e in gc_events()[:len(bodies)]] == \
        [(room, f"{bnick}\t{b}") for b in bodies], gc_events()
    # a body of several lines: the nick on each of its lines
    bob.send_message(room, "line one\nline two", mtype="groupchat")
    wait_until(lambda: len(gc_events()) >= len(bodies) + 2, timeout=5,
               what=lambda: f"two more groupchat events; have {ev.snapshot()!r}")
    assert [e[2:] for e in gc_events()[len(bodies):]] == \
        [(room, f"{bnick}\tline one"), (room, f"{bnick}\tline two")], gc_events()
    wait_records(m, A, room, [(bnick, "line one"), (bnick, "line two")])
    st.wait_lines(len(bodies) + 2)

    # alice -> peer: send (one message per line) and post (one per open)
    since = len(bob.messages)
    write_chunks(rpath(m, A, room, "send"), "first line\nsecond ", "line\n")
    write_chunks(rpath(m, A, room, "post"), "posted\n", "two lines\n")
    ms = bob.wait_messages(f"{room}/{anick}", 3, since=since)
    assert [(x["type"], x["body"]) for x in ms] == \
        [("groupchat", "first line"), ("groupchat", "second line"),
         ("groupchat", "posted\ntwo lines")], ms
    recs = wait_records(m, A, room, [(anick, "first line"), (anick, "second line"),
                                     (anick, "posted"), (anick, "two lines")])
    lines = st.wait_lines(len(bodies) + 6)
    assert [parse_record(l)[1:] for l in lines[len(bodies) + 2:]] == \
        [(anick, "first line"), (anick, "second line"), (anick, "posted"),
         (anick, "two lines")], lines

    # a nick with a slash (a resourcepart may hold one): the record's
    # sender and the event's nick field are that nick, and the README's
    # `IFS=TAB read` splits the event line as it says
    odd, onick = peer(stack, server, f"{tag}-b", f"{tag}-odd"), "x/y z"
    odd.join_room(room, onick)
    odd.send_message(room, "from a slashed nick", mtype="groupchat")
    wait_records(m, A, room, [(onick, "from a slashed nick")])
    line = wait_until(lambda: next((l for l in ev.snapshot()
                                    if l.endswith("\tfrom a slashed nick")), None),
                      timeout=5, what=lambda: f"the event: {ev.snapshot()!r}")
    out = subprocess.run(
        ["bash", "-c", "IFS=$'\\t' read -r time kind room nick text; "
                       "printf '%s|%s|%s|%s' \"$kind\" \"$room\" \"$nick\" \"$text\""],
        input=line + "\n", capture_output=True, text=True, check=True).stdout
    assert out == f"groupchat|{room}|{onick}|from a slashed nick", (line, out)


def test_own_message_recorded_once(server, tmp, stack):
    tag = "ow"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    st = stack.enter_context(LineReader(rpath(m, A, room, "stream")))
    st.wait_open()
    since = len(bob.messages)
    m.write(f"{A}/rooms/{room}/send", "said once\n")
    bob.wait_message(f"{room}/{anick}", "said once", since=since)
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    assert count(recs, anick, "said once") == 1, recs
    mine = [r for r in recs if r[1] == anick]
    assert len(mine) == 1, f"alice's records: {mine}"
    lines = st.wait_lines(2)
    got = [parse_record(l)[1:] for l in lines]
    assert got[0] == (anick, "said once") and got.count((anick, "said once")) == 1, got


def test_history_on_join_written_once(server, tmp, stack):
    tag = "hi"
    A = J(tag)
    room, bnick, anick = ROOM(tag), BNICK(tag), f"{tag}-a"
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    hist = [f"history {i}" for i in (1, 2, 3)]
    for b in hist:
        peer_says(bob, room, bnick, b)
    t_last = time.time()
    # a second client joins after the posts only to learn the delay stamps
    obs = peer(stack, server, f"{tag}-b", f"{tag}-obs")
    obs.join_room(room, "observer")
    got = obs.wait_messages(f"{room}/{bnick}", 3)
    stamps = {x["body"]: x["stamp"] for x in got}
    assert all(stamps.get(b) for b in hist), f"history without delay stamps: {got}"
    # let the clock pass the posts' second, so that a record stamped with
    # the arrival time cannot pass for one with the delay stamp
    wait_until(lambda: time.time() >= int(t_last) + 2, timeout=3,
               what="the clock to move on")

    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    join(m, A, room)
    recs = wait_records(m, A, room, [(bnick, b) for b in hist])
    for b in hist:
        assert count(recs, bnick, b) == 1, f"{b!r} not once: {recs}"
        r = [r for r in recs if r[1:] == (bnick, b)][0]
        assert r[0] == stamp_second(stamps[b]), \
            f"{b!r}: record time {r[0]}, delay stamp {stamps[b]}"
    recs = marker_in_log(m, A, room, bob, bnick, f"{tag}-1")
    for b in hist:
        assert count(recs, bnick, b) == 1, f"{b!r} not once: {recs}"

    # leave, one more message while away (in the second of the last
    # record), join again
    early_in_a_second()
    recs = marker_in_log(m, A, room, bob, bnick, f"{tag}-1b")
    before = rd(m, A, room, "log")
    since = len(bob.presences)
    leave(m, A, room)
    wait_gone(bob, room, anick, since)
    peer_says(bob, room, bnick, "while away")
    last = recs[-1][0]
    note(f"last record {last}, 'while away' sent at "
         f"{time.strftime('%H:%M:%S', time.gmtime())}")
    join(m, A, room)
    recs = wait_records(m, A, room, [(bnick, "while away")])
    recs = marker_in_log(m, A, room, bob, bnick, f"{tag}-2")
    after = rd(m, A, room, "log")
    assert after.startswith(before), \
        f"the log changed across the rejoin:\nbefore {before!r}\nafter {after!r}"
    for b in hist + ["while away"]:
        assert count(recs, bnick, b) == 1, f"{b!r} not once after the rejoin: {recs}"
    new = [r[1:] for r in parse_records(after[len(before):])]
    assert new[0] == (bnick, "while away") and len(new) == 2, \
        f"records added by the rejoin: {new}"


def test_occupants_follow_joins_and_leaves(server, tmp, stack):
    tag = "ol"
    A = J(tag)
    room, bnick = ROOM(tag), BNICK(tag)
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    anick = f"{tag}-a"
    # alice creates the room: owner and moderator, she sees real JIDs
    join(m, A, room)
    assert occupants(m, A, room) == [(anick, "moderator", "owner", f"{A}/{tag}-mount")], \
        occupants(m, A, room)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    both = sorted([(anick, "moderator", "owner", f"{A}/{tag}-mount"),
                   (bnick, "participant", "none", bob.jid)])
    occ = wait_occupants(m, A, room, lambda o: bnick in nicks(o), f"to list {bnick}")
    assert occ == both, occ
    # a second one, whose nick sorts first
    obs = peer(stack, server, f"{tag}-b", f"{tag}-obs")
    obs.join_room(room, "Aaa observer")
    occ = wait_occupants(m, A, room, lambda o: len(o) == 3, "to list 3")
    assert occ == sorted(both + [("Aaa observer", "participant", "none", obs.jid)]), occ
    # leaves
    bob.send_presence(ptype="unavailable", to=f"{room}/{bnick}")
    occ = wait_occupants(m, A, room, lambda o: bnick not in nicks(o), f"to drop {bnick}")
    assert nicks(occ) == ["Aaa observer", anick], occ
    obs.disconnect()
    occ = wait_occupants(m, A, room, lambda o: len(o) == 1, "to drop the observer")
    assert occ == [(anick, "moderator", "owner", f"{A}/{tag}-mount")], occ


def test_nick_conflict_is_eexist(server, tmp, stack):
    tag = "nc"
    A = J(tag)
    room = ROOM(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, f"{tag}-a")   # alice's nick
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    join_refused(m, A, room, errno.EEXIST, "mkdir with a nick in use")


def test_room_that_cannot_be_made_is_enoent(server, tmp, stack):
    """closed.localhost lets no one but the server's admins make a room:
    joining one that does not exist is ENOENT, and nothing is left of it."""
    tag = "nf"
    A = J(tag)
    room = f"{tag}-nowhere@closed.localhost"
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    join_refused(m, A, room, errno.ENOENT, "mkdir of a room that may not be made")
    assert listed(m, A) == [], listed(m, A)
    # not remembered either: a remount does not try it again
    kept = m.data / A / "rooms.list"
    assert not kept.exists() or room not in kept.read_text(), kept.read_text()


@xfstest.waits
def test_silent_service_is_etimedout(server, tmp, stack):
    """silent.localhost takes the join and never answers: mkdir ends with
    ETIMEDOUT after its 15 s, the account stays online and usable all the
    while, and the room is not kept."""
    tag = "to"
    A = J(tag)
    room = f"{tag}-void@silent.localhost"
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    result = {}

    def try_join():
        t0 = time.monotonic()
        try:
            os.mkdir(rpath(m, A, room))
            result["err"] = None
        except OSError as e:
            result["err"] = e.errno
        result["took"] = time.monotonic() - t0

    t = threading.Thread(target=try_join)
    t.start()
    try:
        # while the join waits: the account sends and the tree answers
        m.write(f"{A}/contacts/{J(tag, 'b')}/send", "while the room is silent\n")
        bob.wait_message(A, "while the room is silent")
        assert m.connection(A)["state"] == "online", m.connection(A)
    finally:
        t.join(30)
    assert not t.is_alive(), "mkdir of a silent room did not end in 30 s"
    note(f"mkdir of a silent room: {result.get('err')} after {result.get('took', 0):.1f}s")
    assert result["err"] == errno.ETIMEDOUT, result
    assert 14 < result["took"] < 25, result
    assert listed(m, A) == [], listed(m, A)
    assert m.connection(A)["state"] == "online", m.connection(A)


def test_leave_seen_by_others(server, tmp, stack):
    tag = "lv"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    since = len(bob.presences)
    dt = leave(m, A, room)
    note(f"rmdir rooms/{room}: {dt:.3f}s")
    wait_gone(bob, room, anick, since)
    # the server confirms a leave at once (our unavailable presence with
    # status 110); rmdir waits 5 s only when no answer comes
    assert dt < 2.5, f"rmdir took {dt:.3f} s: the server's confirmation " \
                     "(self-presence unavailable, status 110) went unnoticed"
    assert room not in listed(m, A), listed(m, A)
    problem = expect_errno(lambda: os.stat(rpath(m, A, room)), errno.ENOENT,
                           "lookup of the room after rmdir")
    assert problem is None, problem
    # what is said in the room afterwards does not reach alice's events
    # (a direct message from the peer, sent after it, is the marker)
    ev = events_reader(stack, m, A)
    peer_says(bob, room, bnick, "after alice left")
    sync = f"{tag} direct {os.urandom(3).hex()}"
    bob.send_message(A, sync)
    wait_until(lambda: any(sync in l for l in ev.snapshot()), timeout=10,
               what="the direct message in events")
    assert not [l for l in ev.snapshot() if "after alice left" in l], ev.snapshot()


def test_rmdir_keeps_log(server, tmp, stack):
    tag = "kl"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    peer_says(bob, room, bnick, "kept on disk")
    m.write(f"{A}/rooms/{room}/send", "mine, kept too\n")
    wait_records(m, A, room, [(bnick, "kept on disk"), (anick, "mine, kept too")])
    before = rd(m, A, room, "log")
    since = len(bob.presences)
    leave(m, A, room)
    wait_gone(bob, room, anick, since)
    in_data = [f for f in m.data.rglob("*") if f.is_file()
               and b"kept on disk" in f.read_bytes()]
    assert in_data, f"no file under {m.data} holds the room's log after rmdir"
    join(m, A, room)
    after = rd(m, A, room, "log")
    assert after.startswith(before), f"old log {before!r}, after the rejoin {after!r}"
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    assert count(recs, bnick, "kept on disk") == 1, recs
    assert count(recs, anick, "mine, kept too") == 1, recs


# --------------------------------------------------------------------------
# rejoining

def test_rejoin_after_reconnect(server, tmp, stack):
    tag = "rc"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    full = f"{A}/{tag}-mount"
    peer_says(bob, room, bnick, "before the reconnect")
    wait_records(m, A, room, [(bnick, "before the reconnect")])
    before = rd(m, A, room, "log")
    since = len(bob.presences)
    reconnect(m, server, A, full)

    def left_and_back():
        ps = room_presences(bob, room, anick, since)
        types = [t for t, _ in ps]
        return "unavailable" in types and "available" in types[types.index("unavailable"):]
    wait_until(left_and_back, timeout=10,
               what=lambda: f"the peer to see alice leave and join again; presences: "
                            f"{room_presences(bob, room, anick, since)!r}")
    assert listed(m, A) == [room], listed(m, A)
    peer_says(bob, room, bnick, "after the reconnect")
    wait_records(m, A, room, [(bnick, "after the reconnect")])
    n = len(bob.messages)
    m.write(f"{A}/rooms/{room}/send", "back again\n")
    bob.wait_message(f"{room}/{anick}", "back again", since=n)
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    after = rd(m, A, room, "log")
    assert after.startswith(before), f"before {before!r}, after {after!r}"
    for nick, b in ((bnick, "before the reconnect"), (bnick, "after the reconnect"),
                    (anick, "back again")):
        assert count(recs, nick, b) == 1, f"{b!r} not once: {recs}"


def test_rejoin_after_remount(server, tmp, stack):
    tag = "rm"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag)
    early_in_a_second()
    before = unmounted(m, bob, tag, room, bnick, "before the remount")
    peer_says(bob, room, bnick, "while unmounted")
    note(f"last record {parse_records(before)[-1][0]}, 'while unmounted' sent at "
         f"{time.strftime('%H:%M:%S', time.gmtime())}")
    since = len(bob.presences)
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_in_room(bob, room, anick, since)
    wait_until(lambda: listed(m, A) == [room], timeout=5,
               what=lambda: f"rooms/ to list {room}; it lists {listed(m, A)}")
    recs = wait_records(m, A, room, [(bnick, "while unmounted")])
    n = len(bob.messages)
    m.write(f"{A}/rooms/{room}/send", "after the remount\n")
    bob.wait_message(f"{room}/{anick}", "after the remount", since=n)
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    after = rd(m, A, room, "log")
    assert after.startswith(before), f"before {before!r}, after {after!r}"
    for nick, b in ((bnick, "before the remount"), (bnick, "while unmounted"),
                    (anick, "after the remount")):
        assert count(recs, nick, b) == 1, f"{b!r} not once: {recs}"


# --------------------------------------------------------------------------
# nick, subject, names, offline

def test_nick_key_and_subject(server, tmp, stack):
    tag = "ns"
    A = J(tag)
    room, bnick = ROOM(tag), BNICK(tag)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    bob.send_raw(f"<message to='{room}' type='groupchat'>"
                 f"<subject>First &amp; topic</subject></message>")
    # (slixmpp hands on no message without a body: a message after the
    # subject tells that the room has processed it)
    peer_says(bob, room, bnick, "after the subject")
    nick = "Alice Liddell"
    m = mount(stack, server, tmp, tag, f"{tag}-mount", nick=nick)
    join(m, A, room)
    wait_in_room(bob, room, nick)
    assert rd(m, A, room, "nick") == f"{nick}\n", rd(m, A, room, "nick")
    wait_until(lambda: rd(m, A, room, "subject") == "First & topic\n", timeout=5,
               what=lambda: f"subject to read the room's; it reads "
                            f"{_rd_or_err(m, A, room, 'subject')!r}")
    bob.send_raw(f"<message to='{room}' type='groupchat'>"
                 f"<subject>Second topic</subject></message>")
    wait_until(lambda: rd(m, A, room, "subject") == "Second topic\n", timeout=5,
               what=lambda: f"subject to follow the change; it reads "
                            f"{_rd_or_err(m, A, room, 'subject')!r}")
    # the subject is no record of the log
    recs = marker_in_log(m, A, room, bob, bnick, tag)
    assert not [r for r in recs if "topic" in r[2]], recs


def test_subject_empty_and_names(server, tmp, stack):
    tag = "nm"
    A = J(tag)
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    assert listed(m, A) == [], listed(m, A)
    problems = []
    for bad in ("@" + MUC, "a b@" + MUC, "x@y@" + MUC, "room@", "room@bad..domain"):
        problems.append(expect_errno(lambda: os.mkdir(rpath(m, A, bad)), errno.EINVAL,
                                     f"mkdir rooms/{bad!r}"))
    problems.append(expect_errno(lambda: os.stat(rpath(m, A, ROOM(tag))), errno.ENOENT,
                                 "lookup of a room not joined"))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    assert listed(m, A) == [], listed(m, A)
    # names are normalized JIDs: another spelling is no name (as under
    # contacts/: EINVAL on mkdir, ENOENT on lookup), the normalized one joins
    other = f"{tag.upper()}-Room@Conference.LOCALHOST"
    problems = [expect_errno(lambda: os.mkdir(rpath(m, A, other)), errno.EINVAL,
                             f"mkdir rooms/{other}"),
                expect_errno(lambda: os.stat(rpath(m, A, other)), errno.ENOENT,
                             f"lookup of rooms/{other}")]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)
    join(m, A, ROOM(tag))
    assert listed(m, A) == [ROOM(tag)], listed(m, A)
    problem = expect_errno(lambda: os.stat(rpath(m, A, other)), errno.ENOENT,
                           f"lookup of rooms/{other} while joined")
    assert problem is None, problem
    # a room nobody set a subject for: subject is empty
    assert rd(m, A, ROOM(tag), "subject") == "", rd(m, A, ROOM(tag), "subject")


def test_join_offline_is_enotconn(server, tmp, stack):
    tag = "off"
    A = J(tag)
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    problem = expect_errno(lambda: os.mkdir(rpath(m, A, ROOM(tag))), errno.ENOTCONN,
                           "mkdir while offline")
    assert problem is None, problem
    assert listed(m, A) == [], listed(m, A)
