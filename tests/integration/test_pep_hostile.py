"""PEP notifications and bookmarks under attack or from quirky peers: a
contact forging our own notifications, another client of the account
that spells a room's JID its own way, a retraction that fails, rmdir
while offline.  The "phone" is a second client of the same account."""

import os
import time
import xml.etree.ElementTree as ET

from xfstest import Mount, Peer, assert_stays, wait_until
from test_bookmarks import (NS_BM, NS_PUBSUB, acct, bookmarks, el, mount,
                            phone_of, publish, retract, rooms)

DOM = "localhost"
MUC = "conference.localhost"
TAGS = ("forge", "case", "fail", "off", "many")
SERVER = dict(users={**{f"{t}-a": f"{t}-a-pw" for t in TAGS}, "bob": "bobpw"},
              direct_tls=False)
B = f"bob@{DOM}"


def event(room, retracted=False):
    """A pubsub#event message of the bookmarks node about @room."""
    ev = (f"<retract id='{room}'/>" if retracted else
          f"<item id='{room}'><conference xmlns='{NS_BM}' autojoin='true'>"
          f"<nick>evil</nick></conference></item>")
    return (f"<event xmlns='{NS_PUBSUB}#event'>"
            f"<items node='{NS_BM}'>{ev}</items></event>")


def test_a_contact_cannot_forge_our_bookmark_notifications(server, tmp, stack):
    """bob sends alice's full JID a bookmarks notification (join a room)
    and a retraction (leave one she is in), once claiming alice's JID as
    from: the server stamps bob's, and nothing changes."""
    joined, lure = f"pep-forge1@{MUC}", f"pep-forge2@{MUC}"
    m = mount(stack, server, tmp, "forge")
    A = acct(m)
    os.mkdir(m.path(A, "rooms", joined))
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-ph-b"))
    to = f"{A}/t-bm-forge"
    for frm in ("", f" from='{A}'", f" from='{A}/phone'"):
        bob.send_raw(f"<message to='{to}'{frm} type='headline'>"
                     f"{event(lure)}</message>")
        bob.send_raw(f"<message to='{to}'{frm} type='headline'>"
                     f"{event(joined, retracted=True)}</message>")
    assert_stays(lambda: rooms(m) == [joined], 2,
                 what=lambda: f"only {joined} in rooms/; have {rooms(m)}")


def test_rmdir_retracts_a_bookmark_another_client_spelled_its_own_way(server, tmp, stack):
    """The phone bookmarks Room@Conference.localhost (the id as the user
    typed it); we join room@conference.localhost.  rmdir must take that
    bookmark back, or the next connect joins the room again."""
    typed = f"Pep-Case@{MUC.capitalize()}"
    room = typed.lower()
    phone = phone_of(stack, server, "case")
    m = mount(stack, server, tmp, "case")
    A = acct(m)
    publish(phone, typed)
    wait_until(lambda: room in rooms(m), timeout=10,
               what=lambda: f"{room} in rooms/; have {rooms(m)}")
    os.rmdir(m.path(A, "rooms", room))
    wait_until(lambda: not bookmarks(phone), timeout=10,
               what=lambda: f"no bookmark left; have {bookmarks(phone)}")
    m.close()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    assert_stays(lambda: rooms(m) == [], 2,
                 what=lambda: f"rooms/ empty after the connect; have {rooms(m)}")


def test_a_failed_retraction_does_not_swallow_the_phones_next(server, tmp, stack):
    """The phone retracts a bookmark without notifying; rmdir here then
    retracts it again, which the server refuses (item-not-found), so no
    echo of it will ever come.  When the phone bookmarks the room again
    and retracts it (with a notification), that retraction is news."""
    room = f"pep-fail@{MUC}"
    phone = phone_of(stack, server, "fail")
    m = mount(stack, server, tmp, "fail")
    A = acct(m)
    os.mkdir(m.path(A, "rooms", room))
    wait_until(lambda: room in bookmarks(phone), timeout=10,
               what=lambda: f"the bookmark; have {bookmarks(phone)}")
    ps = el(NS_PUBSUB, "pubsub")
    rt = el(NS_PUBSUB, "retract", node=NS_BM)  # (no notify)
    rt.append(el(NS_PUBSUB, "item", id=room))
    ps.append(rt)
    r = phone.iq(phone.bare, "set", ps)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    os.rmdir(m.path(A, "rooms", room))
    time.sleep(1)  # (the refusal comes back)
    publish(phone, room)
    wait_until(lambda: room in rooms(m), timeout=10,
               what=lambda: f"{room} joined again; have {rooms(m)}")
    retract(phone, room)
    wait_until(lambda: room not in rooms(m), timeout=10,
               what=lambda: f"{room} left after the retraction; have {rooms(m)}")


def test_rmdir_while_offline_retracts_at_the_next_connect(server, tmp, stack):
    """A room left while the account is offline loses its bookmark at
    the next connect (bookmarks.known says -ROOM), and stays left."""
    room = f"pep-off@{MUC}"
    phone = phone_of(stack, server, "off")
    m = mount(stack, server, tmp, "off")
    A = acct(m)
    os.mkdir(m.path(A, "rooms", room))
    wait_until(lambda: room in bookmarks(phone), timeout=10,
               what=lambda: f"the bookmark; have {bookmarks(phone)}")
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    os.rmdir(m.path(A, "rooms", room))
    with open(m.data / A / "bookmarks.known", encoding="utf-8") as f:
        assert f.read() == f"-{room}\n"
    m.write(f"{A}/status", "available\n")
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: room not in bookmarks(phone), timeout=15,
               what=lambda: f"the bookmark gone; have {bookmarks(phone)}")
    assert_stays(lambda: rooms(m) == [], 2,
                 what=lambda: f"rooms/ empty; have {rooms(m)}")


NS_NICK = "http://jabber.org/protocol/nick"


def test_a_stranger_cannot_give_itself_a_nick_by_notification(server, tmp, stack):
    """PEP notifications come from those whose presence we have (the
    roster); bob, a stranger to forge-a, sends one of a nick anyway, then
    a message: his conversation shows no nick (and nothing of his is kept
    for each forged notification)."""
    m = mount(stack, server, tmp, "forge")
    A = acct(m)
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-ph-n"))
    bob.send_raw(f"<message to='{A}/t-bm-forge' type='headline'>"
                 f"<event xmlns='{NS_PUBSUB}#event'><items node='{NS_NICK}'>"
                 f"<item id='current'><nick xmlns='{NS_NICK}'>Your Bank</nick>"
                 f"</item></items></event></message>")
    bob.send_message(A, "hello")
    path = m.path(A, "contacts", B, "nick")
    wait_until(lambda: os.path.exists(path), timeout=10,
               what=lambda: f"{path} (bob's conversation)")
    time.sleep(0.5)
    with open(path, encoding="utf-8") as f:
        assert f.read() == "", "a stranger's forged nick was taken"


def test_a_long_bookmark_list_joins_at_most_200_rooms(server, tmp, stack):
    """A bookmark list another client made too long (204 with autojoin;
    Prosody keeps at most 256 items a node, other servers more) joins 200
    rooms at the connect; the others are an event each, not joins."""
    phone = phone_of(stack, server, "many")
    for i in range(204):
        publish(phone, f"many{i:03d}@{MUC}")
    m = mount(stack, server, tmp, "many")
    A = acct(m)

    def not_joined():
        with open(m.path(A, "log"), encoding="utf-8") as f:
            return [l for l in f.read().splitlines()
                    if "\tbookmark\t" in l and "not joined" in l]
    wait_until(lambda: len(not_joined()) == 4, timeout=60,
               what=lambda: f"4 rooms not joined; have {len(not_joined())}, "
                            f"{len(rooms(m))} rooms")
    assert len(rooms(m)) == 200, len(rooms(m))
