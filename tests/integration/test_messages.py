"""Messages as people send them today (issue 15): every record named by
its ids in log.ids, beside log, line for line.

The other party is slixmpp (xfstest.Peer), which gives each message an id
of its own and records what it gets, with the XML."""

import os
import shutil
import time

from xfstest import Mount, Peer, wait_until

A = "alice@localhost"
B = "bob@localhost"
C = "carol@localhost"
MUC = "conference.localhost"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"},
              mutual=[("alice", "bob")], direct_tls=False)
NS_SID = "urn:xmpp:sid:0"


def cpath(m, jid, *parts, acct=A):
    return m.path(acct, "contacts", jid, *parts)


def lines(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert not text or text.endswith("\n"), text[-200:]
    return text.split("\n")[:-1] if text else []


def aligned(d):
    """[(record fields, ids fields)] of a conversation directory; fails
    unless log and log.ids have as many lines."""
    log, ids = lines(os.path.join(d, "log")), lines(os.path.join(d, "log.ids"))
    assert len(log) == len(ids), f"log has {len(log)} lines, log.ids {len(ids)}:\n" \
                                 f"{log[-5:]!r}\n{ids[-5:]!r}"
    return [(l.split("\t", 2), i.split("\t")) for l, i in zip(log, ids)]


def wait_text(d, text, timeout=10):
    return wait_until(lambda: any(r[2] == text for r, _ in aligned(d)),
                      timeout=timeout, ignore=(OSError, AssertionError),
                      what=lambda: f"a record {text!r} in {d}")


def ids_of(d, text):
    return [i for r, i in aligned(d) if r[2] == text]


def test_log_ids_name_every_record(server, tmp, stack):
    """Received, sent, several lines, across a remount, from the archive
    while away, and a log from before log.ids existed."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-ids-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-ids")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    id1 = bob.send_message(A, "one")
    id2 = bob.send_message(A, "two\nlines")
    wait_text(d, "lines")
    assert ids_of(d, "one") == [[id1, "message", "-"]], aligned(d)
    assert ids_of(d, "two") == ids_of(d, "lines") == [[id2, "message", "-"]]
    # ours: the id it went out with, which is also its origin-id
    since = len(bob.messages)
    m.write(f"{A}/contacts/{B}/send", "mine\n")
    got = bob.wait_message(A, "mine", since=since)
    oid = got["xml"].find(f"{{{NS_SID}}}origin-id")
    assert oid is not None and oid.get("id") == got["id"], got["xml"]
    assert ids_of(d, "mine") == [[got["id"], "message", "-"]], aligned(d)
    # the same after a remount, and what came meanwhile is named too
    m.unmount()
    id3 = bob.send_message(A, "while you were away")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_text(d, "while you were away", timeout=15)
    assert ids_of(d, "while you were away") == [[id3, "message", "-"]], aligned(d)
    assert ids_of(d, "one") == [[id1, "message", "-"]]
    # a log from before log.ids (an older xmppfs): its records get "-"
    # lines, and what comes next its own, in line
    m.unmount()
    os.unlink(m.data / A / "contacts" / B / "log.ids")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    id4 = bob.send_message(A, "after the upgrade")
    wait_text(d, "after the upgrade")
    recs = aligned(d)
    assert all(i == ["-", "message", "-"] for _, i in recs[:-1]), recs
    assert recs[-1][1] == [id4, "message", "-"], recs[-1]


def test_log_ids_cut_between_the_two_writes(server, tmp, stack):
    """A crash (or a full disk) between the record and its ids line: at
    the next mount, an ids line without its record is cut off, and a
    record without one gets "-"; the two files stay line for line."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-ids-cut-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-ids-cut")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    bob.send_message(A, "first")
    wait_text(d, "first")
    m.unmount()
    ids = m.data / A / "contacts" / B / "log.ids"
    with open(ids, "a") as f:
        f.write("orphan\tmessage\t-\nhalf a li")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    recs = aligned(d)
    assert len(recs) == 1 and recs[0][0][2] == "first", recs
    m.unmount()
    with open(m.data / A / "contacts" / B / "log", "a") as f:
        f.write("2026-01-01T00:00:00Z\tbob@localhost\tno ids line\n")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    recs = aligned(d)
    assert recs[-1] == (["2026-01-01T00:00:00Z", B, "no ids line"],
                        ["-", "message", "-"]), recs


def test_room_records_named_by_the_rooms_id(server, tmp, stack):
    """In a room, a message is named by the id the room gave it (its
    stanza-id), the one replies and reactions use there."""
    room = f"ids-room@{MUC}"
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-ids-room-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-ids-room")}))
    m.wait_state(A, "online", timeout=10)
    os.mkdir(m.path(A, "rooms", room))
    carol.join_room(room, "carol")
    since = len(carol.messages)
    carol.send_message(room, "hello room", mtype="groupchat")
    refl = carol.wait_message(f"{room}/carol", "hello room", since=since)
    sid = [e.get("id") for e in refl["xml"].findall(f"{{{NS_SID}}}stanza-id")
           if e.get("by") == room]
    assert sid, refl["xml"]
    d = m.path(A, "rooms", room)
    wait_text(d, "hello room")
    assert ids_of(d, "hello room") == [[sid[0], "message", "-"]], aligned(d)
