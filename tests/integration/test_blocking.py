"""Blocking (XEP-0191): contacts/JID/blocked (yes or no; a write blocks
or unblocks and returns once the server did) and ACCOUNT/blocked (the
whole list).  Changes made by another client of the account reach the
mount as the server's pushes, and every change is a `blocked` event.

The other party is a slixmpp client; whether the server really shuts a
blocked sender out is checked with messages and a marker: one sender's
stanzas arrive in order, so once the marker is in the log anything sent
before it would be too."""

import errno
import xml.etree.ElementTree as ET

from xfstest import (Peer, events_reader, expect_errno, parse_event,
                     wait_until)
from test_archive import J, mount

DOM = "localhost"
TAGS = ("bu", "pu", "bi")
USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}
SERVER = dict(users=USERS, direct_tls=False)
NS = "urn:xmpp:blocking"


def peer(stack, server, user, res):
    p = Peer(server.jid(user), server.password(user), server,
             resource=res).connect()
    stack.callback(p.disconnect)
    return p


def rd(m, *parts):
    with open(m.path(*parts), encoding="utf-8") as f:
        return f.read()


def records(m, acct, contact):
    try:
        text = rd(m, acct, "contacts", contact, "log")
    except FileNotFoundError:
        return []
    return [tuple(l.split("\t", 2)) for l in text.split("\n")[:-1]]


def wait_body(m, acct, contact, body):
    return wait_until(
        lambda: (lambda rs: rs if any(r[2] == body for r in rs) else None)(
            records(m, acct, contact)),
        timeout=10, what=lambda: f"{body!r} in the log of {contact}: "
                                 f"{records(m, acct, contact)!r}")


def server_list(p):
    """The blocklist as the server has it, asked by another client of
    the account."""
    r = p.iq(p.bare, "get", ET.Element(f"{{{NS}}}blocklist"))
    assert r is not None and r.get("type") == "result", r
    bl = r.find(f"{{{NS}}}blocklist")
    return sorted(i.get("jid") for i in bl.findall(f"{{{NS}}}item"))


def blocked_events(ev):
    return [(e[2], e[3]) for e in map(parse_event, ev.snapshot())
            if e[1] == "blocked"]


def test_block_and_unblock(server, tmp, stack):
    tag = "bu"
    A, B = J(tag), J(tag, "b")
    m = mount(stack, server, tmp, tag)
    ev = events_reader(stack, m, A)
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    phone = peer(stack, server, f"{tag}-a", "phone")
    assert rd(m, A, "blocked") == ""
    assert rd(m, A, "contacts", B, "blocked") == "no\n"
    bob.send_message(A, "before")
    wait_body(m, A, B, "before")

    m.write(f"{A}/contacts/{B}/blocked", "yes\n")
    # the write returned: the server has it, and so does the mount
    assert server_list(phone) == [B]
    assert rd(m, A, "contacts", B, "blocked") == "yes\n"
    assert rd(m, A, "blocked") == f"{B}\n"
    wait_until(lambda: blocked_events(ev) == [(B, "yes")], timeout=10,
               what=lambda: f"one blocked event: {ev.snapshot()!r}")
    bob.send_message(A, "while blocked")

    m.write(f"{A}/contacts/{B}/blocked", "no")
    assert server_list(phone) == []
    assert rd(m, A, "contacts", B, "blocked") == "no\n"
    assert rd(m, A, "blocked") == ""
    bob.send_message(A, "after")
    recs = wait_body(m, A, B, "after")
    assert [r[2] for r in recs] == ["before", "after"], recs
    wait_until(lambda: blocked_events(ev) == [(B, "yes"), (B, "no")],
               timeout=10, what=lambda: f"two blocked events: {ev.snapshot()!r}")


def test_pushes_from_another_client(server, tmp, stack):
    """The phone blocks a spammer and a whole domain, then unblocks
    everything at once: the mount follows the server's pushes."""
    tag = "pu"
    A = J(tag)
    m = mount(stack, server, tmp, tag)
    ev = events_reader(stack, m, A)
    phone = peer(stack, server, f"{tag}-a", "phone")
    block = ET.Element(f"{{{NS}}}block")
    for j in (f"spam@{DOM}", "spam.example"):
        ET.SubElement(block, f"{{{NS}}}item", {"jid": j})
    r = phone.iq(phone.bare, "set", block)
    assert r is not None and r.get("type") == "result", r
    wait_until(lambda: rd(m, A, "blocked") == f"spam.example\nspam@{DOM}\n",
               timeout=10, what=lambda: f"the list: {rd(m, A, 'blocked')!r}")
    assert rd(m, A, "contacts", f"spam@{DOM}", "blocked") == "yes\n"
    assert rd(m, A, "contacts", "spam.example", "blocked") == "yes\n"
    r = phone.iq(phone.bare, "set", ET.Element(f"{{{NS}}}unblock"))
    assert r is not None and r.get("type") == "result", r
    wait_until(lambda: rd(m, A, "blocked") == "", timeout=10,
               what=lambda: f"an empty list: {rd(m, A, 'blocked')!r}")
    both = [("spam.example", "no"), ("spam.example", "yes"),
            (f"spam@{DOM}", "no"), (f"spam@{DOM}", "yes")]
    wait_until(lambda: sorted(blocked_events(ev)) == both, timeout=10,
               what=lambda: f"four blocked events: {ev.snapshot()!r}")
    # a change made while the mount was offline: the fetch at the
    # reconnect brings it, with its events
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    r = phone.iq(phone.bare, "set", block)
    assert r is not None and r.get("type") == "result", r
    m.write(f"{A}/status", "available\n")
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: rd(m, A, "blocked") == f"spam.example\nspam@{DOM}\n",
               timeout=10, what=lambda: f"the list after a reconnect: "
                                        f"{rd(m, A, 'blocked')!r}")
    wait_until(lambda: sorted(blocked_events(ev)) == sorted(
                   both + [("spam.example", "yes"), (f"spam@{DOM}", "yes")]),
               timeout=10, what=lambda: f"the events of the reconnect: "
                                        f"{ev.snapshot()!r}")
    # a remount fetches the list at its connect too
    ev.stop()   # its cat would hold the mount
    m.close()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: rd(m, A, "blocked") == f"spam.example\nspam@{DOM}\n",
               timeout=10, what=lambda: f"the list after a remount: "
                                        f"{rd(m, A, 'blocked')!r}")


def test_bad_input_changes_nothing(server, tmp, stack):
    tag = "bi"
    A, B = J(tag), J(tag, "b")
    m = mount(stack, server, tmp, tag)
    phone = peer(stack, server, f"{tag}-a", "phone")
    for word in ("maybe\n", "YES\n", "yes\nno\n"):
        problem = expect_errno(lambda: m.write(f"{A}/contacts/{B}/blocked", word),
                               errno.EINVAL, f"writing {word!r} to blocked")
        assert problem is None, problem
    assert server_list(phone) == []
    assert rd(m, A, "blocked") == ""
    problem = expect_errno(lambda: m.write(f"{A}/blocked", f"{B}\n"),
                           (errno.EACCES, errno.EBADF, errno.EPERM),
                           "writing to the read-only list")
    assert problem is None, problem
    # a forged push from a stranger changes nothing
    bob = peer(stack, server, f"{tag}-b", f"{tag}-peer")
    forged = ET.Element(f"{{{NS}}}block")
    ET.SubElement(forged, f"{{{NS}}}item", {"jid": f"victim@{DOM}"})
    r = bob.iq(f"{A}/{tag}-mount", "set", forged)
    assert r is not None and r.get("type") == "error", r
    assert rd(m, A, "blocked") == ""
    # offline: ENOTCONN, and nothing changes
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    problem = expect_errno(lambda: m.write(f"{A}/contacts/{B}/blocked", "yes\n"),
                           errno.ENOTCONN, "blocking while offline")
    assert problem is None, problem
    assert server_list(phone) == []
    assert rd(m, A, "contacts", B, "blocked") == "no\n"
