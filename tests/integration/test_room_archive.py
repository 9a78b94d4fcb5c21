"""Group chat (XEP-0045 with XEP-0313): what a room said while we were
away is logged once and in order, however much it was (SPEC "Nothing is
lost"; issue 7: "history on join written once").

A join's history holds only the room's last messages: the test bed keeps
20 (muc_room_default_history_length), as Prosody does by default.  So
before a join of a room whose log has records, xmppfs reads the room's
archive (conference.localhost has muc_mam) from the last record on, and
the join's history starts where the archive ended.  A service without an
archive (locked.localhost has no muc_mam) answers the query with an
error: the join's history is all there is, and it is still written once.
An archive that never answers (deaf.localhost) is waited for 10 s.  A
history stamped a second later than the archive's copies
(skewed.localhost) is told apart by the ids the room gives.

The other party is a slixmpp client in the room."""

import time

import xfstest
from xfstest import note

from test_rooms import (BNICK, J, ROOM, join, mount, parse_records, peer,
                        peer_says, rd, unmounted, wait_in_room, wait_records)

TAGS = ("ar", "na", "da", "sk")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)

HISTORY_KEPT = 20  # the test bed's muc_room_default_history_length
ARCHIVE_PAGE = 100  # ROOM_ARCHIVE_PAGE in muc.c


def in_room(stack, server, tmp, tag, room):
    """Alice (in a mount) makes @room; the peer joins it."""
    bnick = BNICK(tag)
    m = mount(stack, server, tmp, tag, f"{tag}-mount")
    join(m, J(tag), room)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    bob.join_room(room, bnick)
    wait_in_room(bob, room, f"{tag}-a")
    return m, bob, bnick


def check_once_in_order(before, after, bnick, bodies, marker):
    assert after.startswith(before), \
        f"the log changed across the rejoin:\nbefore {before[-500:]!r}\n" \
        f"after {after[:len(before) + 500][-1000:]!r}"
    new = parse_records(after[len(before):])
    got = [r[2] for r in new if r[1] == bnick]
    assert got == bodies + [marker], \
        f"records added by the rejoin (want {len(bodies)} and the marker, " \
        f"once each, in order): {got}"
    stamps = [r[0] for r in new]
    assert stamps == sorted(stamps), f"record times out of order: {stamps}"


def back(m, bob, tag, room, bnick, bodies, before, timeout=15):
    """The mount comes back and rejoins (within @timeout seconds): what
    the peer said meanwhile (@bodies) is in the log once each, in order,
    before a marker said after the rejoin.  Returns the seconds from the
    remount to the last of @bodies in the log."""
    A, anick = J(tag), f"{tag}-a"
    since = len(bob.presences)
    t0 = time.monotonic()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_in_room(bob, room, anick, since, timeout=timeout)
    wait_records(m, A, room, [(bnick, b) for b in bodies], timeout=timeout)
    dt = time.monotonic() - t0
    marker = "marker after the rejoin"
    peer_says(bob, room, bnick, marker)
    wait_records(m, A, room, [(bnick, marker)])
    check_once_in_order(before, rd(m, A, room, "log"), bnick, bodies, marker)
    return dt


def test_long_absence_comes_from_the_room_archive(server, tmp, stack):
    tag = "ar"
    A, anick, room = J(tag), f"{tag}-a", ROOM(tag)
    m, bob, bnick = in_room(stack, server, tmp, tag, room)
    before = unmounted(m, bob, tag, room, bnick)
    # more than the room's history keeps, and more than a page of the
    # archive (xmppfs asks for 100 at a time)
    bodies = [f"while away {i}" for i in range(1, ARCHIVE_PAGE + HISTORY_KEPT + 16)]
    n = len(bob.messages)
    for b in bodies:
        bob.send_message(room, b, mtype="groupchat")
    bob.wait_message(f"{room}/{bnick}", bodies[-1], since=n, timeout=15)
    dt = back(m, bob, tag, room, bnick, bodies, before)
    note(f"remount to {len(bodies)} missed messages in the log: {dt:.2f}s")
    # what alice writes now goes out as usual
    n = len(bob.messages)
    m.write(f"{A}/rooms/{room}/send", "back after the archive\n")
    bob.wait_message(f"{room}/{anick}", "back after the archive", since=n)


def test_without_an_archive_the_history_is_written_once(server, tmp, stack):
    tag = "na"
    room = f"{tag}-room@locked.localhost"
    m, bob, bnick = in_room(stack, server, tmp, tag, room)
    before = unmounted(m, bob, tag, room, bnick)
    bodies = [f"while away {i}" for i in (1, 2, 3)]
    for b in bodies:
        peer_says(bob, room, bnick, b)
    back(m, bob, tag, room, bnick, bodies, before)
    assert f"{room}: no archive" in m.log_text(), m.log_tail()


@xfstest.waits
def test_an_archive_that_never_answers_does_not_keep_us_out(server, tmp, stack):
    """deaf.localhost takes archive queries and never answers them: after
    its wait (10 s) the rejoin goes on with the room's history, and what
    the room said meanwhile is in the log once."""
    tag = "da"
    room = f"{tag}-room@deaf.localhost"
    m, bob, bnick = in_room(stack, server, tmp, tag, room)
    before = unmounted(m, bob, tag, room, bnick)
    bodies = [f"while away {i}" for i in (1, 2)]
    for b in bodies:
        peer_says(bob, room, bnick, b)
    dt = back(m, bob, tag, room, bnick, bodies, before, timeout=25)
    note(f"remount to the records, past the silent archive: {dt:.1f}s")
    assert 8 < dt < 25, dt
    assert f"{room}: no answer from the room's archive" in m.log_text(), m.log_tail()


def test_history_stamped_later_than_the_archive_is_written_once(server, tmp,
                                                               stack):
    """skewed.localhost stamps the history of a join one second later than
    its archive has the same messages (some servers do, by a few ms that
    now and then cross a second).  The rejoin logs them from the archive,
    then the history brings them again in another second: the ids the
    room gave them (<stanza-id/>) keep them from being written twice."""
    tag = "sk"
    room = f"{tag}-room@skewed.localhost"
    m, bob, bnick = in_room(stack, server, tmp, tag, room)
    peer_says(bob, room, bnick, "before the absence")
    wait_records(m, J(tag), room, [(bnick, "before the absence")])
    before = unmounted(m, bob, tag, room, bnick)
    bodies = [f"while away {i}" for i in (1, 2, 3)]
    for b in bodies:
        peer_says(bob, room, bnick, b)
    back(m, bob, tag, room, bnick, bodies, before)
    ids = (m.data / J(tag) / "rooms" / room / "ids").read_text().split()
    assert len(ids) == len(set(ids)) >= len(bodies) + 1, ids
