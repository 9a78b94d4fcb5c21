"""MUC self-ping (XEP-0410): a joined room that has been quiet for
room_ping seconds is asked whether it still has us; one that no longer
does is joined again, with the catch-up from its archive, nothing logged
twice, and a `rejoin` event (README "Group chat"; issue: "each joined
room is pinged after a quiet period").

A room forgets its occupants without telling them when its service
restarts.  Here the test bed's Prosody does it to conference.localhost
through its admin shell (mod_admin_shell): mod_muc is unloaded from the
component, which saves each room and its occupants to the `state` store
(and takes muc_mam along), the room's saved occupants are deleted, and
mod_muc and muc_mam are loaded again; the room then comes back from its
config, with its archive and without anyone in it, while every client
stream stays up.  (A module:reload keeps the occupants: the
second test shows that the room still answers after one.)  Prosody
answers a self-ping itself: a result while we are in the room,
not-acceptable once we are not.

TAG-a is the account in the mount (room_ping = 1 or 3 s, so the tests
are short), TAG-b a slixmpp client in the same room, which has to join
again by hand after the room forgot it."""

import re
import subprocess
import time
import xml.etree.ElementTree as ET

from xfstest import LineReader, TestFailure, note, wait_until, assert_stays, \
    events_reader, parse_event

from test_rooms import (J, count, peer_says, rd, records, room_presences,
                        setup, wait_records)

TAGS = ("pd", "pa")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)
MUC = "conference.localhost"


def shell(server, command, ok="OK:"):
    """One command of Prosody's admin shell (prosodyctl shell); its output
    must hold @ok."""
    r = subprocess.run(["prosodyctl", "--config", str(server.dir / "prosody.cfg.lua"),
                        "shell", command], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or ok not in r.stdout:
        raise TestFailure(f"prosodyctl shell {command!r} failed ({r.returncode}): "
                          f"{r.stdout}{r.stderr}")
    return r.stdout


def dm_encode(name):
    """Prosody's datamanager file name encoding (as scripts/testbed's)."""
    return re.sub(r"[^A-Za-z0-9]",
                  lambda m: "".join(f"%{b:02x}" for b in m.group().encode()), name)


def modules(server):
    """The modules loaded on the MUC component."""
    out = shell(server, f"module:list('{MUC}')", ok=f"{MUC}:")
    return {l.strip() for l in out.splitlines() if l.startswith((" ", "\t"))}


def forget_occupants(server, room):
    """The MUC service forgets who is in @room, and tells nobody: mod_muc
    is unloaded (which saves the room's occupants to its state store, and
    takes the modules that depend on it along: muc_mam...), the saved
    occupants of @room are deleted, and mod_muc and those modules are
    loaded again (the room comes back from its config when it is next
    addressed, with its archive)."""
    state = server.dir / "data" / dm_encode(MUC) / "state" / \
        f"{dm_encode(room.split('@')[0])}.dat"
    had = modules(server)
    shell(server, f"module:unload('muc', '{MUC}')")
    if not state.exists():
        raise TestFailure(f"unloading mod_muc saved no occupants at {state}")
    state.unlink()
    gone = had - modules(server) - {"muc"}
    shell(server, f"module:load('muc', '{MUC}')")
    for name in sorted(gone):
        shell(server, f"module:load('{name}', '{MUC}')")
    if modules(server) != had:
        raise TestFailure(f"{MUC} had {sorted(had)}, now {sorted(modules(server))}")


def rejoin_events(ev, room):
    return [e for e in map(parse_event, ev.snapshot())
            if e[1] == "rejoin" and e[2] == room]


def ping_results(raw, room, nick):
    """The answers (result iqs) from ROOM/NICK among the stanzas `raw`
    showed."""
    out = []
    for line in raw.snapshot():
        try:
            el = ET.fromstring(line)
        except ET.ParseError:
            continue
        if el.tag.endswith("iq") and el.get("type") == "result" and \
                el.get("from") == f"{room}/{nick}":
            out.append(el)
    return out


def test_a_room_that_forgot_us_is_joined_again(server, tmp, stack):
    tag = "pd"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag, room_ping=3)
    ev = events_reader(stack, m, A)
    peer_says(bob, room, bnick, "before the drop")
    wait_records(m, A, room, [(bnick, "before the drop")])
    before = rd(m, A, room, "log")

    # alice's quiet period starts with that message: within it the room
    # forgets both occupants, bob (no self-ping of his own) joins again
    # and speaks, to nobody else
    t0 = time.monotonic()
    forget_occupants(server, room)
    since = len(bob.presences)
    bob.join_room(room, bnick)
    while_out = ["while alice was out 1", "while alice was out 2"]
    for b in while_out:
        peer_says(bob, room, bnick, b)
    spoke = time.monotonic() - t0
    assert not any(t == "available" for t, _ in room_presences(bob, room, anick, since)), \
        f"alice was back {spoke:.1f}s after the drop, before bob spoke: the " \
        "test no longer tries the catch-up from the archive"
    assert count(records(m, A, room), bnick, while_out[0]) == 0, \
        "a message reached alice while the room did not have her"

    # alice's self-ping finds her out: an event, and she is in again
    e = wait_until(lambda: rejoin_events(ev, room), timeout=15,
                   what=lambda: f"a rejoin event for {room}; events: {ev.snapshot()!r}")[0]
    note(f"rejoin event {time.monotonic() - t0:.1f}s after the drop: {e[3]}")
    assert "not-acceptable" in e[3], e
    wait_until(lambda: any(t == "available"
                           for t, _ in room_presences(bob, room, anick, since)),
               timeout=10, what=lambda: f"bob to see alice join again; presences "
                                        f"{room_presences(bob, room, anick, since)!r}")
    wait_until(lambda: {bnick, anick} <= {o.split("\t")[0] for o in
                                          rd(m, A, room, "occupants").splitlines()},
               timeout=10, what=lambda: f"both in occupants: "
                                        f"{rd(m, A, room, 'occupants')!r}")

    # what bob said meanwhile came from the room's archive, once, after
    # what the log had; what came before the drop is not there twice
    recs = wait_records(m, A, room, [(bnick, b) for b in while_out])
    assert f"{room}: no archive" not in m.log_text(), m.log_tail()
    after = rd(m, A, room, "log")
    assert after.startswith(before), f"before {before!r}, after {after!r}"
    for b in ["before the drop"] + while_out:
        assert count(recs, bnick, b) == 1, f"{b!r} not once: {recs}"

    # live again, both ways, once each
    peer_says(bob, room, bnick, "after the rejoin")
    n = len(bob.messages)
    m.write(f"{A}/rooms/{room}/send", "alice is back\n")
    bob.wait_message(f"{room}/{anick}", "alice is back", since=n)
    recs = wait_records(m, A, room, [(bnick, "after the rejoin"), (anick, "alice is back")])
    for nick, b in [(bnick, "before the drop"), (bnick, while_out[0]),
                    (bnick, while_out[1]), (bnick, "after the rejoin"),
                    (anick, "alice is back")]:
        assert count(recs, nick, b) == 1, f"{b!r} not once: {recs}"
    assert len(rejoin_events(ev, room)) == 1, ev.snapshot()


def test_a_room_that_answers_is_left_alone(server, tmp, stack):
    """A room that still has us answers each self-ping with a result: no
    rejoin, however many quiet periods pass, and also not after Prosody
    reloads mod_muc (which keeps the occupants)."""
    tag = "pa"
    A = J(tag)
    m, bob, room, anick, bnick = setup(stack, server, tmp, tag, room_ping=1)
    ev = events_reader(stack, m, A)
    raw = stack.enter_context(LineReader(m.path(A, "raw")))
    raw.wait_open()
    since = len(bob.presences)
    wait_until(lambda: len(ping_results(raw, room, anick)) >= 3, timeout=10,
               what=lambda: f"3 answered self-pings in raw: {raw.snapshot()!r}"[:3000])
    shell(server, f"module:reload('muc', '{MUC}')")
    n = len(ping_results(raw, room, anick))
    wait_until(lambda: len(ping_results(raw, room, anick)) >= n + 3, timeout=10,
               what=lambda: "3 more answered self-pings after the reload")
    assert rejoin_events(ev, room) == [], ev.snapshot()
    assert room_presences(bob, room, anick, since) == [], \
        "alice left or joined again: " + repr(room_presences(bob, room, anick, since))
    # a room that speaks is not pinged at all (but for one that may have
    # been on its way when the talk began)
    peer_says(bob, room, bnick, "busy")
    wait_records(m, A, room, [(bnick, "busy")])
    n = len(ping_results(raw, room, anick))

    def chatty():
        peer_says(bob, room, bnick, f"busy {time.monotonic()}")
        return len(ping_results(raw, room, anick)) <= n + 1
    assert_stays(chatty, 3, "no self-ping while the room speaks", interval=0.3)
    peer_says(bob, room, bnick, "marker")
    wait_records(m, A, room, [(bnick, "marker")])
