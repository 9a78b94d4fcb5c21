"""Messages as people send them today (issue 15): every record named by
its ids in log.ids, beside log, line for line.

The other party is slixmpp (xfstest.Peer), which gives each message an id
of its own and records what it gets, with the XML."""

import errno
import os
import time
import xml.etree.ElementTree as ET

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
    """ID, KIND, REF of the records with @text."""
    return [i[:3] for r, i in aligned(d) if r[2] == text]


def sids_of(d, text):
    """SID (the archive's id) of the records with @text."""
    return [i[3] for r, i in aligned(d) if r[2] == text]


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
    # named by our archive too (the server's stanza-id), each its own
    s1, s2 = sids_of(d, "one")[0], sids_of(d, "two")[0]
    assert s1 != "-" and s2 != "-" and s1 != s2, (s1, s2)
    assert sids_of(d, "lines") == [s2]
    # ours: the id it went out with, which is also its origin-id
    since = len(bob.messages)
    m.write(f"{A}/contacts/{B}/send", "mine\n")
    got = bob.wait_message(A, "mine", since=since)
    oid = got["xml"].find(f"{{{NS_SID}}}origin-id")
    assert oid is not None and oid.get("id") == got["id"], got["xml"]
    assert ids_of(d, "mine") == [[got["id"], "message", "-"]], aligned(d)
    assert sids_of(d, "mine") == ["-"]   # the server tells the sender none
    # the same after a remount, and what came meanwhile is named too
    m.unmount()
    id3 = bob.send_message(A, "while you were away")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_text(d, "while you were away", timeout=15)
    assert ids_of(d, "while you were away") == [[id3, "message", "-"]], aligned(d)
    assert sids_of(d, "while you were away")[0] not in ("-", s1, s2)
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
    assert all(i == ["-", "message", "-", "-"] for _, i in recs[:-1]), recs
    assert recs[-1][1][:3] == [id4, "message", "-"], recs[-1]


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
                        ["-", "message", "-", "-"]), recs


def test_room_records_named_by_both_ids(server, tmp, stack):
    """In a room a record has the message's own id (ID, what a correction
    names) and the id the room gave it (SID, what a reaction, a reply or
    a retraction names there)."""
    room = f"ids-room@{MUC}"
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-ids-room-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-ids-room")}))
    m.wait_state(A, "online", timeout=10)
    os.mkdir(m.path(A, "rooms", room))
    carol.join_room(room, "carol")
    since = len(carol.messages)
    cid = carol.send_message(room, "hello room", mtype="groupchat")
    refl = carol.wait_message(f"{room}/carol", "hello room", since=since)
    sid = [e.get("id") for e in refl["xml"].findall(f"{{{NS_SID}}}stanza-id")
           if e.get("by") == room]
    assert sid, refl["xml"]
    d = m.path(A, "rooms", room)
    wait_text(d, "hello room")
    assert ids_of(d, "hello room") == [[cid, "message", "-"]], aligned(d)
    assert sids_of(d, "hello room") == [sid[0]]


# --------------------------------------------------------------------------
# receipts (XEP-0184) and chat markers (XEP-0333)

NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"


def el(ns, name, **attrs):
    e = ET.Element(f"{{{ns}}}{name}")
    for k, v in attrs.items():
        e.set(k, v)
    return e


def receipts_to(peer, since, of_id=None):
    """The receipts @peer got since index @since of peer.bodyless (for
    @of_id, or any)."""
    out = []
    for msg in peer.bodyless[since:]:
        r = msg["xml"].find(f"{{{NS_RECEIPTS}}}received")
        if r is not None and (of_id is None or r.get("id") == of_id):
            out.append(msg)
    return out


def events_of(m, kind):
    with open(m.path(A, "log"), encoding="utf-8") as f:
        return [l.split("\t", 3) for l in f.read().split("\n")
                if l.count("\t") >= 3 and l.split("\t")[1] == kind]


def test_receipts_answered_once_logged_and_only_to_whom_may_have_them(server, tmp, stack):
    """A request for a receipt from a contact who may see our presence
    gets one, from the mount's full JID, once the message is in the log;
    a stranger's gets none (a receipt tells that we are online)."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-rcpt-peer"))
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-rcpt-carol"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-rcpt")}))
    m.wait_state(A, "online", timeout=10)
    since = len(bob.bodyless)
    mid = bob.send_message_with(A, "receipt please", [el(NS_RECEIPTS, "request")])
    got = wait_until(lambda: receipts_to(bob, since, mid), timeout=10,
                     what="a receipt for bob's message")
    assert got[0]["from"] == f"{A}/t-rcpt", got[0]["from"]
    assert "receipt please" in open(cpath(m, B, "log")).read()
    # a message without a request gets none
    bob.send_message(A, "no request")
    # carol is no contact of alice's: her message is logged, no receipt
    csince = len(carol.bodyless)
    carol.send_message_with(A, "stranger asks", [el(NS_RECEIPTS, "request")])
    wait_text(cpath(m, C), "stranger asks")
    wait_text(cpath(m, B), "no request")
    time.sleep(1)
    assert receipts_to(carol, csince) == [], carol.bodyless[csince:]
    assert len(receipts_to(bob, since)) == 1, receipts_to(bob, since)


def test_receipts_off_by_config(server, tmp, stack):
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-rcpt-off-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account(
        "alice", resource="t-rcpt-off", receipts="false")}))
    m.wait_state(A, "online", timeout=10)
    since = len(bob.bodyless)
    bob.send_message_with(A, "receipt please", [el(NS_RECEIPTS, "request")])
    wait_text(cpath(m, B), "receipt please")
    time.sleep(1)
    assert receipts_to(bob, since) == [], bob.bodyless[since:]


def test_ours_ask_for_receipts_and_show_delivered_and_displayed(server, tmp, stack):
    """What xmppfs sends asks for a receipt and is markable; the contact's
    receipt and markers set `delivered` and `displayed` to that id, with
    events, and they survive a remount."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-dlv-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-dlv")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    assert open(os.path.join(d, "delivered")).read() == ""
    since = len(bob.messages)
    m.write(f"{A}/contacts/{B}/send", "did you get this?\n")
    got = bob.wait_message(A, "did you get this?", since=since)
    assert got["xml"].find(f"{{{NS_RECEIPTS}}}request") is not None, got["xml"]
    assert got["xml"].find(f"{{{NS_MARKERS}}}markable") is not None, got["xml"]
    mid = got["id"]
    assert ids_of(d, "did you get this?") == [[mid, "message", "-"]]
    bob.send_message_with(f"{A}/t-dlv", None,
                          [el(NS_RECEIPTS, "received", id=mid)], mtype="normal")
    wait_until(lambda: open(os.path.join(d, "delivered")).read() == mid + "\n",
               timeout=10, what="delivered to show the id")
    assert open(os.path.join(d, "displayed")).read() == ""
    bob.send_message_with(A, None, [el(NS_MARKERS, "displayed", id=mid)])
    wait_until(lambda: open(os.path.join(d, "displayed")).read() == mid + "\n",
               timeout=10, what="displayed to show the id")
    def evs():
        return [(e[1], e[2], e[3]) for e in
                events_of(m, "delivered") + events_of(m, "displayed")]
    wait_until(lambda: ("delivered", B, mid) in evs() and
               ("displayed", B, mid) in evs(), timeout=10,
               what=lambda: f"the events; have {evs()}")
    # a receipt is no record
    assert not [r for r, _ in aligned(d) if r[2] == ""], aligned(d)
    m.remount()
    assert open(os.path.join(d, "delivered")).read() == mid + "\n"
    assert open(os.path.join(d, "displayed")).read() == mid + "\n"


def test_caps_say_what_is_implemented(server, tmp, stack):
    """disco#info names receipts and chat markers, and the caps hash in
    our presence is that of the disco#info answer (XEP-0115 §5.1,
    recomputed here)."""
    import base64
    import hashlib
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-caps-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-caps")}))
    m.wait_state(A, "online", timeout=10)
    p = bob.wait_presence(f"{A}/t-caps", timeout=10)
    caps = p["caps"]
    assert caps.get("hash") == "sha-1", caps
    r = bob.iq(f"{A}/t-caps", "get", el("http://jabber.org/protocol/disco#info", "query",
                                        node=f"{caps['node']}#{caps['ver']}"))
    q = r.find("{http://jabber.org/protocol/disco#info}query")
    ids = q.findall("{http://jabber.org/protocol/disco#info}identity")
    feats = sorted(f.get("var") for f in
                   q.findall("{http://jabber.org/protocol/disco#info}feature"))
    assert {NS_RECEIPTS, NS_MARKERS} <= set(feats), feats
    s = "".join(f"{i.get('category')}/{i.get('type')}/{i.get('{http://www.w3.org/XML/1998/namespace}lang', '')}/{i.get('name', '')}<"
                for i in sorted(ids, key=lambda i: (i.get("category"), i.get("type"))))
    s += "".join(f + "<" for f in feats)
    ver = base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()
    assert ver == caps["ver"], (ver, caps, s)


# --------------------------------------------------------------------------
# read position, unread counts

def rd(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def markers_to(peer, since, kind="displayed"):
    out = []
    for msg in peer.bodyless[since:]:
        e = msg["xml"].find(f"{{{NS_MARKERS}}}{kind}")
        if e is not None:
            out.append(e.get("id"))
    return out


def test_read_position_unread_counts_and_displayed_marker(server, tmp, stack):
    """unread counts the records after the read position (so tail -n
    "$(cat unread)" log shows them); a write to read moves it (an ID, or
    all) and sends a displayed marker for their last markable message
    read; a message of ours marks all before it read; the counts survive
    a remount and take in what the archive brings."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-read-peer"))
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-read-carol"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-read")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    total = m.path(A, "unread")
    assert rd(os.path.join(d, "unread")) == "0\n" and rd(total) == "0\n"
    assert rd(os.path.join(d, "read")) == ""
    mk = [el(NS_MARKERS, "markable")]
    id1 = bob.send_message_with(A, "u1", mk)
    id2 = bob.send_message_with(A, "u2\nu2b", mk)
    wait_text(d, "u2b")
    assert rd(os.path.join(d, "unread")) == "3\n"
    assert rd(total) == "3\n"
    tail = lines(os.path.join(d, "log"))[-3:]
    assert [l.split("\t")[2] for l in tail] == ["u1", "u2", "u2b"], tail
    since = len(bob.bodyless)
    m.write(f"{A}/contacts/{B}/read", id1 + "\n")
    assert rd(os.path.join(d, "unread")) == "2\n"
    assert rd(os.path.join(d, "read")) == id1 + "\n"
    # unknown ids are refused, and change nothing
    try:
        m.write(f"{A}/contacts/{B}/read", "no-such-id\n")
        raise AssertionError("an unknown id was taken")
    except OSError as e:
        assert e.errno == errno.ENOENT, e
    assert rd(os.path.join(d, "unread")) == "2\n"
    m.write(f"{A}/contacts/{B}/read", "\n")
    assert rd(os.path.join(d, "unread")) == "0\n" and rd(total) == "0\n"
    assert rd(os.path.join(d, "read")) == id2 + "\n"
    got = wait_until(lambda: markers_to(bob, since), timeout=10,
                     what="a displayed marker at bob")
    assert got == [id2], got   # the last markable read, once
    # a message of ours: what they said before is read
    bob.send_message(A, "u3")
    wait_text(d, "u3")
    assert rd(os.path.join(d, "unread")) == "1\n"
    m.write(f"{A}/contacts/{B}/send", "my answer\n")
    assert rd(os.path.join(d, "unread")) == "0\n"
    # a stranger's first message: a new conversation, unread
    carol.send_message(A, "hello stranger")
    wait_text(cpath(m, C), "hello stranger")
    assert rd(os.path.join(cpath(m, C), "unread")) == "1\n"
    assert rd(total) == "1\n"
    # across a remount, with what came meanwhile from the archive
    m.unmount()
    bob.send_message(A, "while away")
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_text(d, "while away", timeout=15)
    assert rd(os.path.join(d, "unread")) == "1\n"
    assert rd(total) == "2\n"
    assert rd(os.path.join(d, "read")) != ""


# --------------------------------------------------------------------------
# corrections, retractions, reactions, replies, headlines, URLs

NS_CORRECT = "urn:xmpp:message-correct:0"
NS_RETRACT = "urn:xmpp:message-retract:1"
NS_REACTIONS = "urn:xmpp:reactions:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_FALLBACK = "urn:xmpp:fallback:0"


def reactions(ref, *emojis):
    r = el(NS_REACTIONS, "reactions", id=ref)
    for e in emojis:
        x = el(NS_REACTIONS, "reaction")
        x.text = e
        r.append(x)
    return r


def records(d):
    """[(sender, text, [ID, KIND, REF, SID])] of a conversation."""
    return [(r[1], r[2], i) for r, i in aligned(d)]


def events_since(m, n):
    with open(m.path(A, "log"), encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    return [l.split("\t", 3)[1:] for l in lines[n:]]


def event_count(m):
    with open(m.path(A, "log"), encoding="utf-8") as f:
        return f.read().count("\n")


def test_their_corrections_reactions_replies_retractions(server, tmp, stack):
    """Each kind a modern client sends is a record whose log.ids line says
    its kind and names the message it is about, and an event; a reply's
    quoted fallback is not in the record; a subject and an out-of-band URL
    are kept.  A correction that comes from the archive (sent while
    unmounted) is linked the same way."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-kinds-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-kinds")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    ev0 = event_count(m)
    x = bob.send_message(A, "helo")
    bob.send_message_with(A, "hello", [el(NS_CORRECT, "replace", id=x)])
    bob.send_message_with(A, None, [reactions(x, "\U0001F44D", "\U0001F389")])
    fb = el(NS_FALLBACK, "fallback", **{"for": NS_REPLY})
    fb.append(el(NS_FALLBACK, "body", start="0", end="8"))
    rid = bob.send_message_with(A, "> hello\nsure",
                                [el(NS_REPLY, "reply", id=x, to=B), fb])
    bob.send_message_with(A, "This person retracted a message",
                          [el(NS_RETRACT, "retract", id=x)])
    bob.send_message_with(A, "the body", [], mtype="headline",
                          mid="hl1")
    sub = ET.Element("{jabber:client}subject")
    sub.text = "The Subject"
    bob.send_message_with(A, "with a subject", [sub], mtype="normal", mid="n1")
    oob = el("jabber:x:oob", "x")
    u = el("jabber:x:oob", "url")
    u.text = "https://example.org/f.png"
    oob.append(u)
    bob.send_message_with(A, "a picture", [oob], mid="o1")
    bob.send_message(A, "/me waves")
    wait_text(d, "/me waves")
    got = [(t, i[1], i[2]) for s, t, i in records(d) if s == B]
    want = [("helo", "message", "-"), ("hello", "correction", x),
            ("\U0001F44D \U0001F389", "reaction", x), ("sure", "reply", x),
            ("[retracted]", "retraction", x), ("the body", "headline", "-"),
            ("The Subject", "subject", "-"), ("with a subject", "message", "-"),
            ("a picture", "message", "-"),
            ("https://example.org/f.png", "oob", "o1"),
            ("/me waves", "message", "-")]
    assert got == want, got
    assert ids_of(d, "sure")[0][0] == rid
    evs = events_since(m, ev0)
    for kind, text in (("correction", f"{x}\thello"),
                       ("reaction", f"{x}\t\U0001F44D \U0001F389"),
                       ("retraction", x), ("message", "sure"),
                       ("headline", "the body")):
        assert [kind, B, text] in evs, (kind, text, evs)
    assert not [e for e in evs if e[0] == "message" and "hello" == e[2]], evs
    # through the archive: a correction sent while alice was away
    m.unmount()
    y = bob.send_message(A, "spelling mistaek")
    bob.send_message_with(A, "spelling mistake", [el(NS_CORRECT, "replace", id=y)])
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_text(d, "spelling mistake", timeout=15)
    assert ids_of(d, "spelling mistake") == [[ids_of(d, "spelling mistake")[0][0],
                                              "correction", y]], aligned(d)


def their_last(peer, since, frm=A):
    """The last message @peer got from @frm since @since (bodied or not),
    by arrival."""
    both = [m for m in peer.messages[since[0]:] + peer.bodyless[since[1]:]
            if m["from"].split("/")[0] == frm]
    return sorted(both, key=lambda m: m["time"])


def marks(peer):
    return (len(peer.messages), len(peer.bodyless))


def wait_from(peer, since, pred, what, frm=A):
    return wait_until(lambda: [m for m in their_last(peer, since, frm) if pred(m)],
                      timeout=10, what=what)[-1]


def test_ours_correct_retract_react_reply(server, tmp, stack):
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-own-kinds-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-own-kinds")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/send", "teh cat\n")
    first = bob.wait_message(A, "teh cat", since=s[0])
    a1 = first["id"]
    # a correction names the original, also the second time
    for text in ("the cat", "the cat!"):
        s = marks(bob)
        m.write(f"{A}/contacts/{B}/correct", text + "\n")
        got = bob.wait_message(A, text, since=s[0])
        rep = got["xml"].find(f"{{{NS_CORRECT}}}replace")
        assert rep is not None and rep.get("id") == a1, got["xml"]
    assert ids_of(d, "the cat!")[0][1:] == ["correction", a1]
    # react to and reply to bob's message
    b1 = bob.send_message(A, "a question")
    wait_text(d, "a question")
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/react", f"{b1}\t\U0001F44D \U0001F389\n")
    got = wait_from(bob, s, lambda x: x["xml"].find(f"{{{NS_REACTIONS}}}reactions")
                    is not None, "the reactions at bob")
    r = got["xml"].find(f"{{{NS_REACTIONS}}}reactions")
    assert r.get("id") == b1, got["xml"]
    assert [e.text for e in r] == ["\U0001F44D", "\U0001F389"], got["xml"]
    assert got["xml"].find("{jabber:client}body") is None, got["xml"]
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/reply", f"{b1}\tyes, two lines\nof answer\n")
    got = bob.wait_message(A, "yes, two lines\nof answer", since=s[0])
    rp = got["xml"].find(f"{{{NS_REPLY}}}reply")
    assert rp is not None and rp.get("id") == b1 and rp.get("to") == B, got["xml"]
    assert ids_of(d, "of answer")[0][1:] == ["reply", b1]
    # retract our first message
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/retract", a1 + "\n")
    got = wait_from(bob, s, lambda x: x["xml"].find(f"{{{NS_RETRACT}}}retract")
                    is not None, "the retraction at bob")
    assert got["xml"].find(f"{{{NS_RETRACT}}}retract").get("id") == a1
    assert ids_of(d, "[retracted]")[-1][1:] == ["retraction", a1]
    # what cannot be: nothing sent, a clear errno
    for f, v, err in (("retract", b1, errno.EPERM), ("retract", "nope", errno.ENOENT),
                      ("react", "nope\t\U0001F44D", errno.ENOENT),
                      ("react", "no tab here", errno.EINVAL),
                      ("reply", f"{b1}\tbell\x07", errno.EILSEQ),
                      ("correct", "bad \x01 byte", errno.EILSEQ)):
        before = len(lines(os.path.join(d, "log")))
        try:
            m.write(f"{A}/contacts/{B}/{f}", v + "\n")
            raise AssertionError(f"{f} {v!r} was taken")
        except OSError as e:
            assert e.errno == err, (f, v, e)
        assert len(lines(os.path.join(d, "log"))) == before, f
    # correct with nothing of ours said: ENOENT
    try:
        m.write(f"{A}/contacts/{C}/correct", "x\n")
        raise AssertionError("a correction of nothing was taken")
    except OSError as e:
        assert e.errno == errno.ENOENT, e


def test_a_reaction_written_offline_goes_out_after_a_remount(server, tmp, stack):
    """The kind and what it is about are in the outbox's journal: a
    reaction accepted while offline goes out, as one, after a remount."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-kinds-ob-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-kinds-ob")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    b1 = bob.send_message(A, "react; to: me")
    wait_text(d, "react; to: me")
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=10)
    m.write(f"{A}/contacts/{B}/react", f"{b1}\t\u2764\ufe0f\n")
    s = marks(bob)
    m.unmount()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    got = wait_from(bob, s, lambda x: x["xml"].find(f"{{{NS_REACTIONS}}}reactions")
                    is not None, "the reaction after the remount")
    r = got["xml"].find(f"{{{NS_REACTIONS}}}reactions")
    assert r.get("id") == b1 and [e.text for e in r] == ["\u2764\ufe0f"], got["xml"]


def test_the_readme_bot_thanks_for_a_reaction(server, tmp, stack):
    """The README's bot, run by bash as it is printed there, answers a
    reaction to our message with a reply to that message."""
    import re
    import subprocess
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..",
                               "README.md"), encoding="utf-8").read()
    block = re.search(r"A bot that thanks for every reaction:\n\n((?:    .*\n)+)",
                      readme)
    assert block, "the README's reaction bot"
    script = "\n".join(l[4:] for l in block.group(1).split("\n"))
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-bot-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-bot")}))
    m.wait_state(A, "online", timeout=10)
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/send", "rate this\n")
    mine = bob.wait_message(A, "rate this", since=s[0])["id"]
    bot = subprocess.Popen(["bash", "-c", script], cwd=str(m.path(A)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stack.callback(lambda: (bot.kill(), bot.wait()))
    # the bot has events open (a stream: it gets what comes after)
    target = os.path.realpath(m.path(A, "events"))

    def bot_reads():
        fds = f"/proc/{bot.pid}/fd"
        return any(os.readlink(f"{fds}/{f}") == target for f in os.listdir(fds))
    wait_until(bot_reads, timeout=10, ignore=(OSError,),
               what="the bot to open events")
    s = marks(bob)
    bob.send_message_with(A, None, [reactions(mine, "\U0001F44D")])
    got = bob.wait_message(A, "thanks for the \U0001F44D", since=s[0])
    rp = got["xml"].find(f"{{{NS_REPLY}}}reply")
    assert rp is not None and rp.get("id") == mine, got["xml"]
    assert bot.poll() is None, bot.stderr.read()


# --------------------------------------------------------------------------
# chat states (XEP-0085)

NS_CS = "http://jabber.org/protocol/chatstates"


def test_their_chat_states_and_ours_only_when_asked(server, tmp, stack):
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-cs-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-cs")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    cs = os.path.join(d, "chatstate")
    assert rd(cs) == ""
    ev0 = event_count(m)
    bob.send_message_with(A, None, [el(NS_CS, "composing")])
    wait_until(lambda: rd(cs) == "composing\n", timeout=10, what="composing")
    bob.send_message_with(A, "typed it", [el(NS_CS, "active")])
    wait_text(d, "typed it")
    assert rd(cs) == "active\n"
    evs = events_since(m, ev0)
    assert ["chatstate", B, "composing"] in evs and ["chatstate", B, "active"] in evs, evs
    # a state alone is no record
    assert [t for s, t, _ in records(d)] == ["typed it"], records(d)
    # ours: none by default, and writing one is refused
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/send", "plain\n")
    got = bob.wait_message(A, "plain", since=s[0])
    assert not [c for c in got["xml"] if c.tag.startswith(f"{{{NS_CS}}}")], got["xml"]
    try:
        m.write(f"{A}/contacts/{B}/chatstate", "composing\n")
        raise AssertionError("a chat state was sent without chat_states")
    except OSError as e:
        assert e.errno == errno.EPERM, e


def test_our_chat_states_with_chat_states_true(server, tmp, stack):
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-cs2-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account(
        "alice", resource="t-cs2", chat_states="true")}))
    m.wait_state(A, "online", timeout=10)
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/chatstate", "composing\n")
    got = wait_from(bob, s, lambda x: x["xml"].find(f"{{{NS_CS}}}composing")
                    is not None, "composing at bob")
    assert got["xml"].find("{jabber:client}body") is None
    s = marks(bob)
    m.write(f"{A}/contacts/{B}/send", "done typing\n")
    got = bob.wait_message(A, "done typing", since=s[0])
    assert got["xml"].find(f"{{{NS_CS}}}active") is not None, got["xml"]
    try:
        m.write(f"{A}/contacts/{B}/chatstate", "sleepy\n")
        raise AssertionError("no such state, taken")
    except OSError as e:
        assert e.errno == errno.EINVAL, e


# --------------------------------------------------------------------------
# displayed-sync (XEP-0490) with another client of the same account

NS_MDS = "urn:xmpp:mds:displayed:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"


def mds_items(phone):
    """{conversation JID: stanza-id} of the account's MDS node."""
    ps = el(NS_PUBSUB, "pubsub")
    ps.append(el(NS_PUBSUB, "items", node=NS_MDS))
    r = phone.iq(A, "get", ps)
    out = {}
    if r is None or r.get("type") != "result":
        return out
    for it in r.iter(f"{{{NS_PUBSUB}}}item"):
        sid = it.find(f"{{{NS_MDS}}}displayed/{{{NS_SID}}}stanza-id")
        if sid is not None and sid.get("by") == A:
            out[it.get("id")] = sid.get("id")
    return out


def mds_publish(phone, jid, sid):
    ps = el(NS_PUBSUB, "pubsub")
    pub = el(NS_PUBSUB, "publish", node=NS_MDS)
    item = el(NS_PUBSUB, "item", id=jid)
    d = el(NS_MDS, "displayed")
    d.append(el(NS_SID, "stanza-id", by=A, id=sid))
    item.append(d)
    pub.append(item)
    ps.append(pub)
    r = phone.iq(A, "set", ps)
    assert r is not None and r.get("type") == "result", ET.tostring(r)


def test_read_positions_shared_with_the_accounts_other_clients(server, tmp, stack):
    """What is read here is published on the account's MDS node (the
    phone finds the stanza-id of the last message read); what the phone
    says it read moves the position here, live and, for what it read
    while xmppfs was unmounted, at the next connect once the catch-up
    brought the message."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-mds-peer"))
    phone = stack.enter_context(Peer(A, "alicepw", server, resource="phone"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-mds")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    bob.send_message(A, "read me here")
    wait_text(d, "read me here")
    sid1 = sids_of(d, "read me here")[0]
    assert sid1 != "-"
    m.write(f"{A}/contacts/{B}/read", "\n")
    wait_until(lambda: mds_items(phone).get(B) == sid1, timeout=10,
               what=lambda: f"the MDS item for bob at {sid1}; have {mds_items(phone)}")
    # the phone reads: live
    bob.send_message(A, "read me on the phone")
    wait_text(d, "read me on the phone")
    assert rd(os.path.join(d, "unread")) == "1\n"
    mds_publish(phone, B, sids_of(d, "read me on the phone")[0])
    wait_until(lambda: rd(os.path.join(d, "unread")) == "0\n", timeout=10,
               what="the phone's read to reach the mount")
    # read on the phone while unmounted: after the catch-up
    m.unmount()
    since = len(phone.messages)
    bob.send_message(A, "away and read on the phone")
    got = phone.wait_message(B, "away and read on the phone", since=since)
    sid = [e.get("id") for e in got["xml"].findall(f"{{{NS_SID}}}stanza-id")
           if e.get("by") == A]
    assert sid, got["xml"]
    mds_publish(phone, B, sid[0])
    m.remount()
    m.wait_state(A, "online", timeout=10)
    wait_text(d, "away and read on the phone", timeout=15)
    assert sids_of(d, "away and read on the phone") == sid
    wait_until(lambda: rd(os.path.join(d, "unread")) == "0\n", timeout=10,
               what=lambda: f"unread 0 after the catch-up; have {rd(os.path.join(d, 'unread'))!r}")


def test_room_corrections_reactions_retractions(server, tmp, stack):
    """In a room the same kinds are records with their KIND and REF: a
    reaction, reply or retraction names the message by the room's id (its
    SID), a correction by the message's own id (its ID), as the XEPs have
    it."""
    room = f"kinds-room@{MUC}"
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-rk-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-rk")}))
    m.wait_state(A, "online", timeout=10)
    os.mkdir(m.path(A, "rooms", room))
    carol.join_room(room, "carol")
    d = m.path(A, "rooms", room)
    since = len(carol.messages)
    cid = carol.send_message_with(room, "first tyop", [], mtype="groupchat")
    refl = carol.wait_message(f"{room}/carol", "first tyop", since=since)
    sid = [e.get("id") for e in refl["xml"].findall(f"{{{NS_SID}}}stanza-id")
           if e.get("by") == room][0]
    ev0 = event_count(m)
    carol.send_message_with(room, "first typo", [el(NS_CORRECT, "replace", id=cid)],
                            mtype="groupchat")
    carol.send_message_with(room, None, [reactions(sid, "\U0001F602")],
                            mtype="groupchat")
    carol.send_message_with(room, "retracted", [el(NS_RETRACT, "retract", id=sid)],
                            mtype="groupchat")
    carol.send_message_with(room, "last", [], mtype="groupchat")
    wait_text(d, "last")
    got = [(s, t, i[1], i[2]) for s, t, i in records(d)]
    assert got[-5:] == [("carol", "first tyop", "message", "-"),
                        ("carol", "first typo", "correction", cid),
                        ("carol", "\U0001F602", "reaction", sid),
                        ("carol", "[retracted]", "retraction", sid),
                        ("carol", "last", "message", "-")], got
    assert ids_of(d, "first tyop")[0][0] == cid
    assert sids_of(d, "first tyop") == [sid]
    evs = events_since(m, ev0)
    assert ["correction", room, f"carol\t{cid}\tfirst typo"] in evs, evs
    assert ["reaction", room, f"carol\t{sid}\t\U0001F602"] in evs, evs
    assert ["retraction", room, f"carol\t{sid}"] in evs, evs


def test_ours_in_a_room(server, tmp, stack):
    """correct, react, reply and retract in a room: the messages carry
    the ids the XEPs want there (the original's own id for a correction,
    the room's id for the others), and their reflections are records of
    their kind."""
    room = f"own-kinds@{MUC}"
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-ork-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-ork")}))
    m.wait_state(A, "online", timeout=10)
    os.mkdir(m.path(A, "rooms", room))
    carol.join_room(room, "carol")
    d = m.path(A, "rooms", room)
    base = f"{A}/rooms/{room}"
    since = len(carol.messages)
    carol.send_message_with(room, "carol asks", [], mtype="groupchat")
    wait_text(d, "carol asks")
    csid = sids_of(d, "carol asks")[0]
    assert csid != "-"
    m.write(f"{base}/send", "alice tyop\n")
    got = carol.wait_message(f"{room}/alice", "alice tyop", since=since)
    oid = got["xml"].find(f"{{{NS_SID}}}origin-id").get("id")
    wait_text(d, "alice tyop")
    asid = sids_of(d, "alice tyop")[0]
    s = marks(carol)
    m.write(f"{base}/correct", "alice typo\n")
    got = carol.wait_message(f"{room}/alice", "alice typo", since=s[0])
    assert got["xml"].find(f"{{{NS_CORRECT}}}replace").get("id") == oid, got["xml"]
    s = marks(carol)
    m.write(f"{base}/react", f"{csid}\t\U0001F44D\n")
    got = wait_from(carol, s, lambda x: x["xml"].find(f"{{{NS_REACTIONS}}}reactions")
                    is not None and x["from"] == f"{room}/alice", "the reaction",
                    frm=room)
    assert got["xml"].find(f"{{{NS_REACTIONS}}}reactions").get("id") == csid
    s = marks(carol)
    m.write(f"{base}/reply", f"{csid}\tan answer\n")
    got = carol.wait_message(f"{room}/alice", "an answer", since=s[0])
    rp = got["xml"].find(f"{{{NS_REPLY}}}reply")
    assert rp.get("id") == csid and rp.get("to") == f"{room}/carol", got["xml"]
    s = marks(carol)
    m.write(f"{base}/retract", oid + "\n")
    got = wait_from(carol, s, lambda x: x["xml"].find(f"{{{NS_RETRACT}}}retract")
                    is not None and x["from"] == f"{room}/alice", "the retraction",
                    frm=room)
    assert got["xml"].find(f"{{{NS_RETRACT}}}retract").get("id") == asid
    wait_text(d, "[retracted]")
    mine = [(t, i[1], i[2]) for s_, t, i in records(d) if s_ == "alice"]
    assert mine == [("alice tyop", "message", "-"), ("alice typo", "correction", oid),
                    ("\U0001F44D", "reaction", csid), ("an answer", "reply", csid),
                    ("[retracted]", "retraction", asid)], mine
    try:
        m.write(f"{base}/retract", csid + "\n")
        raise AssertionError("retracting carol's message was taken")
    except OSError as e:
        assert e.errno == errno.EPERM, e


# --------------------------------------------------------------------------
# hostile input

def test_hostile_ids_references_and_forged_read_positions(server, tmp, stack):
    """Ids with white space keep log.ids one line per record (a TAB or LF
    in an attribute reaches us as a space, XML's normalisation; the unit
    test record covers them); a reply's fallback that points
    past its body is ignored (the body kept whole); a flood of reactions
    is cut to what fits; a displayed-sync item from a contact (not from
    our own account) moves nothing."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hostile-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-hostile")}))
    m.wait_state(A, "online", timeout=10)
    d = cpath(m, B)
    bob.send_message_with(A, "tab id", [], mid="a\tb\nc")
    bob.send_message_with(A, "bad ref", [el(NS_CORRECT, "replace", id="x\ty")])
    fb = el(NS_FALLBACK, "fallback", **{"for": NS_REPLY})
    fb.append(el(NS_FALLBACK, "body", start="3", end="999"))
    bob.send_message_with(A, "whole body kept", [el(NS_REPLY, "reply", id="zz"), fb])
    bob.send_message_with(A, None, [reactions("zz", *(["\U0001F600" * 40] * 50 +
                                                      ["ok"]))])
    bob.send_message_with(A, None, [el(NS_RETRACT, "retract", id="")])
    bob.send_message(A, "forge after this")
    wait_text(d, "forge after this")
    real_sid = sids_of(d, "forge after this")[0]
    # a forged displayed-sync item, from bob, naming a real message
    ev = ET.Element("{http://jabber.org/protocol/pubsub#event}event")
    items = ET.SubElement(ev, "{http://jabber.org/protocol/pubsub#event}items",
                          node=NS_MDS)
    item = ET.SubElement(items, "{http://jabber.org/protocol/pubsub#event}item", id=B)
    disp = ET.SubElement(item, f"{{{NS_MDS}}}displayed")
    ET.SubElement(disp, f"{{{NS_SID}}}stanza-id", by=A, id=real_sid)
    bob.send_message_with(A, None, [ev], mtype="headline")
    bob.send_message(A, "the end")
    wait_text(d, "the end")
    recs = records(d)   # aligned() checks one ids line per record
    got = [(t, i[0], i[1], i[2]) for s, t, i in recs]
    assert got[0] == ("tab id", "a b c", "message", "-"), got
    assert got[1] == ("bad ref", got[1][1], "correction", "x y"), got
    assert got[2][0] == "whole body kept" and got[2][2:] == ("reply", "zz"), got
    assert got[3][0] == "ok" and got[3][2:] == ("reaction", "zz"), got
    assert [g[0] for g in got[4:]] == ["forge after this", "the end"], got
    assert rd(os.path.join(d, "unread")) == str(len(recs)) + "\n"


def test_moderators_retract_others_messages_in_a_room(server, tmp, stack):
    """alice owns the room (she made it): `moderate` retracts carol's
    message for everyone (XEP-0425, in the form the server's module
    speaks); the room's word of it is a record of kind moderation under
    the moderator's nick in every occupant's log, and an event.  bob, in
    the room as a mere participant, is refused (EACCES); an unknown id is
    ENOENT."""
    if not os.path.exists("/usr/lib/prosody/modules/mod_muc_moderation/"
                          "mod_muc_moderation.lua"):
        raise AssertionError("prosody-modules is not installed (scripts/deps)")
    room = f"moderated@{MUC}"
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-mod-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-mod")}))
    m.wait_state(A, "online", timeout=10)
    os.mkdir(m.path(A, "rooms", room))   # alice first: the owner
    carol.join_room(room, "carol")
    d = m.path(A, "rooms", room)
    carol.send_message_with(room, "spam spam", [], mtype="groupchat")
    wait_text(d, "spam spam")
    sid = sids_of(d, "spam spam")[0]
    cid = ids_of(d, "spam spam")[0][0]
    s = marks(carol)
    m.write(f"{A}/rooms/{room}/moderate", f"{cid}\tno spam here\n")
    got = wait_from(carol, s, lambda x: x["from"] == room and
                    (x["xml"].find("{urn:xmpp:fasten:0}apply-to") is not None or
                     x["xml"].find(f"{{{NS_RETRACT}}}retract") is not None),
                    "the room's word of the moderation", frm=room)
    wait_text(d, "[retracted by a moderator: no spam here]")
    mod = [(s_, i[1], i[2]) for s_, t, i in records(d) if t.startswith("[retracted by")]
    assert mod == [("alice", "moderation", sid)], mod
    try:
        m.write(f"{A}/rooms/{room}/moderate", "no-such-id\n")
        raise AssertionError("an unknown id was taken")
    except OSError as e:
        assert e.errno == errno.ENOENT, e
    # bob, a participant, may not
    mb = stack.enter_context(Mount(tmp, {B: server.account("bob", resource="t-mod-b")}))
    mb.wait_state(B, "online", timeout=10)
    os.mkdir(mb.path(B, "rooms", room))
    carol.send_message_with(room, "more spam", [], mtype="groupchat")
    db = mb.path(B, "rooms", room)
    wait_text(db, "more spam")
    try:
        mb.write(f"{B}/rooms/{room}/moderate", ids_of(db, "more spam")[0][0] + "\n")
        raise AssertionError("a participant moderated")
    except OSError as e:
        assert e.errno == errno.EACCES, e
    # alice moderates it: in bob's log and events, under alice's nick
    wait_text(d, "more spam")
    sid2 = sids_of(d, "more spam")[0]
    with open(mb.path(B, "log"), encoding="utf-8") as f:
        bev0 = f.read().count("\n")
    m.write(f"{A}/rooms/{room}/moderate", f"{sid2}\n")
    wait_text(db, "[retracted by a moderator]")
    assert [(s_, i[1], i[2]) for s_, t, i in records(db)
            if t == "[retracted by a moderator]"] == [("alice", "moderation", sid2)]
    def bob_events():
        with open(mb.path(B, "log"), encoding="utf-8") as f:
            return [l.split("\t", 3)[1:] for l in f.read().split("\n")[bev0:-1]]
    wait_until(lambda: ["moderation", room, f"alice\t{sid2}\t[retracted by a moderator]"]
               in bob_events(), timeout=10, what=lambda: f"the event at bob: {bob_events()}")


def test_rooms_have_unread_counts_and_share_their_read_positions(server, tmp, stack):
    """A room's unread records, its read position (with the ids of its
    log), the account's total with rooms in it, our own words marking the
    room read, and its position on the MDS node named by the room's id."""
    room = f"unread-room@{MUC}"
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-ru-peer"))
    phone = stack.enter_context(Peer(A, "alicepw", server, resource="phone-ru"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-ru")}))
    m.wait_state(A, "online", timeout=10)
    os.mkdir(m.path(A, "rooms", room))
    carol.join_room(room, "carol")
    d = m.path(A, "rooms", room)
    base = f"{A}/rooms/{room}"
    total = m.path(A, "unread")
    assert rd(os.path.join(d, "unread")) == "0\n"
    carol.send_message_with(room, "r1", [], mtype="groupchat")
    carol.send_message_with(room, "r2\nr2b", [], mtype="groupchat")
    wait_text(d, "r2b")
    assert rd(os.path.join(d, "unread")) == "3\n"
    assert rd(total) == "3\n"
    sid1 = sids_of(d, "r1")[0]
    m.write(f"{base}/read", sid1 + "\n")
    assert rd(os.path.join(d, "unread")) == "2\n"
    assert rd(os.path.join(d, "read")) == ids_of(d, "r1")[0][0] + "\n"
    m.write(f"{base}/read", "\n")
    assert rd(os.path.join(d, "unread")) == "0\n" and rd(total) == "0\n"
    sid2 = sids_of(d, "r2b")[0]
    # the room's position on the MDS node, by the room's id
    ps = el(NS_PUBSUB, "pubsub")
    ps.append(el(NS_PUBSUB, "items", node=NS_MDS))

    def room_item():
        r = phone.iq(A, "get", ps)
        for it in (r.iter(f"{{{NS_PUBSUB}}}item") if r is not None else []):
            s_ = it.find(f"{{{NS_MDS}}}displayed/{{{NS_SID}}}stanza-id")
            if it.get("id") == room and s_ is not None and s_.get("by") == room:
                return s_.get("id")
        return None
    wait_until(lambda: room_item() == sid2, timeout=10,
               what=lambda: f"the room's MDS item at {sid2}: {room_item()}")
    # our own words mark the room read
    carol.send_message_with(room, "r3", [], mtype="groupchat")
    wait_text(d, "r3")
    assert rd(os.path.join(d, "unread")) == "1\n"
    m.write(f"{base}/send", "mine\n")
    wait_text(d, "mine")
    assert rd(os.path.join(d, "unread")) == "0\n"
    # the phone reads the room: the position moves here
    carol.send_message_with(room, "r4", [], mtype="groupchat")
    wait_text(d, "r4")
    assert rd(os.path.join(d, "unread")) == "1\n"
    pub = el(NS_PUBSUB, "pubsub")
    p = el(NS_PUBSUB, "publish", node=NS_MDS)
    item = el(NS_PUBSUB, "item", id=room)
    disp = el(NS_MDS, "displayed")
    disp.append(el(NS_SID, "stanza-id", by=room, id=sids_of(d, "r4")[0]))
    item.append(disp)
    p.append(item)
    pub.append(p)
    phone.iq(A, "set", pub)
    wait_until(lambda: rd(os.path.join(d, "unread")) == "0\n", timeout=10,
               what="the phone's read of the room")
    m.remount()
    assert rd(os.path.join(d, "unread")) == "0\n"
