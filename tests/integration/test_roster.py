"""Roster, presence, subscriptions and events (SPEC "The tree", "Records";
issue 5): contacts/JID/{presence,name,groups,subscription}, mkdir and
rmdir under contacts/, and ACCOUNT/events.

Roster state lives on the server and outlasts a test, so every test has
users of its own: TAG-a is the account in the mount, TAG-b (sometimes
TAG-c) the other party, seeded by the test bed as the test needs.  The
other party is a slixmpp client that answers no subscription request by
itself (Peer.manual_subscriptions()).  What the server's roster holds is
read with a fresh roster get by a second client logged in as the mount's
own account (another resource), never from the mount.  What must not
happen is checked against a marker: stanzas of one sender arrive in
order, so once the marker arrived anything sent before it would have."""

import errno
import os
import re
import select
import stat
import subprocess
import time

from xfstest import (read_with_deadline, Mount, Peer, Server, TestFailure,
                     assert_stays, note, wait_until, expect_errno, events_reader,
                     parse_event)


DOM = "localhost"
TAGS = ("mk", "ap", "dn", "st", "aa", "us", "ue", "rn", "gr", "rm", "bd",
        "se", "pr", "ev")


def J(tag, who="a"):
    return f"{tag}-{who}@{DOM}"


USERS = {f"{t}-{w}": f"{t}-{w}-pw" for t in TAGS for w in "ab"}

SERVER = dict(
    users=USERS,
    roster=[
        # ap: alice already sees bob's presence; bob will ask for hers
        "ap-a:ap-b:to", "ap-b:ap-a:from",
        # st: a request that waited on the server while alice was away
        "st-a:st-c:none+in",
        # us, ue, rn, gr, rm, bd, pr, ev: mutual subscription
        *[f"{t}-{x}:{t}-{y}:both" + (":Old Name" if (t, x) == ("rn", "a") else
                                     ":Gee Bee" if (t, x) == ("gr", "a") else
                                     ":Bee" if (t, x) == ("bd", "a") else "")
          for t in ("us", "ue", "rn", "gr", "rm", "bd", "pr", "ev")
          for x, y in (("a", "b"), ("b", "a"))],
        # rm: an item without any conversation
        "rm-a:rm-c:none:Cee",
    ],
    direct_tls=False)

SUB_RE = re.compile(r"^(none|to|from|both)( pending-out)?( pending-in)?\n$")


# --------------------------------------------------------------------------
# helpers

def mount(stack, server, tmp, tag, res, **keys):
    """TAG-a in a mount of its own, online."""
    a = J(tag)
    m = stack.enter_context(Mount(tmp, {a: server.account(f"{tag}-a", resource=res,
                                                          **keys)}))
    m.wait_state(a, "online", timeout=10)
    return m


def peer(stack, server, user, res):
    """@user (a localpart) as a slixmpp client that answers no
    subscription request by itself."""
    p = Peer(server.jid(user), server.password(user), server, resource=res)
    p.manual_subscriptions()
    return stack.enter_context(p)


def cpath(m, acct, jid, *parts):
    return m.path(acct, "contacts", jid, *parts)


def rd(m, acct, jid, name):
    with open(cpath(m, acct, jid, name), encoding="utf-8") as f:
        return f.read()


def echo(path, text):
    """Like `echo -n TEXT > PATH`: open(O_WRONLY|O_CREAT|O_TRUNC), one
    write, close.  OSError propagates, with the step in its filename."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        n = os.write(fd, text.encode("utf-8"))
    except OSError as e:
        os.close(fd)
        raise OSError(e.errno, e.strerror, f"write to {path}")
    try:
        os.close(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, f"close of {path}")
    if n != len(text.encode("utf-8")):
        raise TestFailure(f"short write to {path}: {n} bytes of "
                          f"{len(text.encode())}")


def wait_file(m, acct, jid, name, want, timeout=10.0):
    """Wait until contacts/JID/NAME reads exactly @want (a str, or a
    predicate on the text)."""
    ok = want if callable(want) else (lambda t: t == want)

    def check():
        t = rd(m, acct, jid, name)
        return (t,) if ok(t) else None
    return wait_until(check, timeout=timeout,
                      what=lambda: f"contacts/{jid}/{name} to read "
                                   f"{want if not callable(want) else 'as wanted'!r}; "
                                   f"it reads {_rd_or_err(m, acct, jid, name)!r}")[0]


def _rd_or_err(m, acct, jid, name):
    try:
        return rd(m, acct, jid, name)
    except OSError as e:
        return e


def server_item(chk, jid):
    return chk.roster_items().get(jid)


def wait_server_item(chk, jid, pred, what, timeout=10.0):
    """Wait until the server's roster item @jid (None if absent) satisfies
    @pred; returns it."""
    last = {}

    def check():
        last["v"] = chk.roster_items().get(jid)
        return (last["v"],) if pred(last["v"]) else None
    return wait_until(check, timeout=timeout, ignore=(),
                      what=lambda: f"the server's roster item {jid} to be {what}; "
                                   f"it is {last.get('v')!r}")[0]


# -- events -----------------------------------------------------------------

def events(r, since=0):
    return [parse_event(l) for l in r.snapshot()[since:]]


def _text_ok(want, text):
    if want is None:
        return True
    if callable(want):
        return want(text)
    return text == want


def wait_event(r, kind, jid, text=None, since=0, timeout=10.0):
    """Wait for an event line of @kind about @jid whose TEXT is @text
    (None: any; a callable: a predicate) at index >= @since of the
    reader's lines.  Returns (index, (time, kind, jid, text))."""
    def check():
        evs = events(r)
        for i in range(since, len(evs)):
            e = evs[i]
            if e[1] == kind and e[2] == jid and _text_ok(text, e[3]):
                return (i, e)
        return None
    return wait_until(
        check, timeout=timeout, ignore=(),
        what=lambda: f"an events line {kind} {jid} "
                     f"{text if not callable(text) else getattr(text, 'want', '?')!r}; "
                     f"lines since {since}: " + repr(r.snapshot()[since:])[-2500:])


def roster_text(sub, name="", pending=False):
    """Predicate for a `roster` event's TEXT: `set SUB[ pending-out] NAME`.
    With an empty NAME the TEXT may or may not keep the space before it."""
    head = f"set {sub}" + (" pending-out" if pending else "")
    accepted = {f"{head} {name}"} | ({head} if name == "" else set())

    def ok(text):
        return text in accepted
    ok.want = f"{head} {name}"
    return ok


EVENT_TEXT = {
    "presence": r"(available|chat|away|xa|dnd|unavailable)( .+)?",
    "roster": r"set (none|to|from|both)( pending-out)?( .*)?|remove",
    "error": r"(message|presence|iq) [a-z-]+( .+)?",
    "connection": r"(offline|connecting|online|failed)(: .+)?",
}
BARE_KINDS = {"message", "subscribe", "subscribed", "unsubscribe",
              "unsubscribed", "roster", "connection"}


def check_event_formats(lines, acct):
    """Problems with the kind-specific parts of event lines: bare JIDs
    where the contract says bare, TEXT in the contract's form."""
    bad = []
    for line in lines:
        _, kind, jid, text = parse_event(line)
        if kind in BARE_KINDS and "/" in jid:
            bad.append(f"a full JID in a {kind} event: {line!r}")
        if kind == "connection" and jid != acct:
            bad.append(f"a connection event not about {acct}: {line!r}")
        if kind in EVENT_TEXT and not re.fullmatch(EVENT_TEXT[kind], text, re.S):
            bad.append(f"TEXT of a {kind} event not in the contract's form: {line!r}")
    return bad


def no_events_about(r, jid, kinds=None, since=0):
    return [e for e in events(r, since)
            if e[2].split("/")[0] == jid and (kinds is None or e[1] in kinds)]


def sync_marker(m, acct, bob, tag):
    """Send a message from the mount to @bob and wait until it arrived:
    every stanza the mount sent to bob before it has arrived as well.
    Returns bob's presence count at that moment."""
    body = f"{tag} marker {os.urandom(3).hex()}"
    since = len(bob.messages)
    echo(cpath(m, acct, bob.bare, "send"), body + "\n")
    bob.wait_message(acct, body, since=since)
    with bob.cond:
        return len(bob.presences)


def sync_from_peer(m, acct, bob, tag):
    """The reverse: bob sends a message to the mount and we wait until its
    log has it; everything bob sent before has been processed."""
    body = f"{tag} marker {os.urandom(3).hex()}"
    bob.send_message(acct, body)
    wait_until(lambda: f"\t{bob.bare}\t{body}\n" in rd(m, acct, bob.bare, "log"),
               timeout=10, what=f"bob's marker {body!r} in the log")


# --------------------------------------------------------------------------
# adding, renaming, regrouping, removing

def test_mkdir_adds_contact_and_asks_for_presence(server, tmp, stack):
    A, B = J("mk"), J("mk", "b")
    bob = peer(stack, server, "mk-b", "mk-peer")
    chk = peer(stack, server, "mk-a", "mk-check")
    m = mount(stack, server, tmp, "mk", "mk-mount")
    ev = events_reader(stack, m, A)
    contacts = m.path(A, "contacts")
    assert B not in os.listdir(contacts), os.listdir(contacts)
    since = len(bob.presences)

    t0 = time.monotonic()
    os.mkdir(cpath(m, A, B))
    dt = time.monotonic() - t0
    note(f"mkdir contacts/JID (roster set answered): {dt:.3f}s")
    item = server_item(chk, B)
    assert item is not None, "mkdir returned before the server had the roster item"
    assert item["subscription"] == "none" and not item["name"] and not item["groups"], item
    assert B in os.listdir(contacts), os.listdir(contacts)

    # the subscription request: the peer gets it, the server marks it
    # pending, the mount says so
    req = bob.wait_presence_type(A, "subscribe", since)
    assert req["from"] == A, f"the request comes from {req['from']}, not the bare {A}"
    wait_server_item(chk, B, lambda i: i and i["ask"] == "subscribe",
                     "none with ask=subscribe")
    wait_file(m, A, B, "subscription", "none pending-out\n")
    assert rd(m, A, B, "name") == "", rd(m, A, B, "name")
    assert rd(m, A, B, "groups") == "", rd(m, A, B, "groups")
    wait_event(ev, "roster", B, roster_text("none", pending=True))
    modes = {"presence": 0o400, "name": 0o600, "groups": 0o600,
             "subscription": 0o600}
    for name, mode in modes.items():
        st = os.stat(cpath(m, A, B, name))
        assert stat.S_ISREG(st.st_mode), (name, oct(st.st_mode))
        assert stat.S_IMODE(st.st_mode) == mode, (name, oct(st.st_mode))

    # the peer approves: alice now has "to", bob "from", bob's presence shows
    i = len(ev.snapshot())
    bob.send_presence(ptype="subscribed", to=A)
    wait_file(m, A, B, "subscription", "to\n")
    wait_event(ev, "subscribed", B, "", since=i)
    wait_event(ev, "roster", B, roster_text("to"), since=i)
    item = server_item(chk, B)
    assert item["subscription"] == "to" and item["ask"] is None, item
    theirs = bob.roster_items().get(A)
    assert theirs and theirs["subscription"] == "from", theirs
    wait_file(m, A, B, "presence", "mk-peer\tavailable\t0\t\n")


def test_rename_via_name(server, tmp, stack):
    A, B = J("rn"), J("rn", "b")
    chk = peer(stack, server, "rn-a", "rn-check")
    m = mount(stack, server, tmp, "rn", "rn-mount")
    wait_file(m, A, B, "name", "Old Name\n")
    assert B in os.listdir(m.path(A, "contacts")), "a roster item is not listed"
    ev = events_reader(stack, m, A)

    # a change made elsewhere (another client's roster set) shows up
    chk.roster_set(B, name="Old Name", groups=["Team", "\u00dcn\u00efcode"])
    wait_file(m, A, B, "groups",
              lambda t: sorted(t.split("\n")) == ["", "Team", "\u00dcn\u00efcode"])

    new = "B\u00f3b \u00dcn\u00efcode \U0001F642 & <co>"
    t0 = time.monotonic()
    echo(cpath(m, A, B, "name"), new + "\n")
    note(f"write to name (until the server answered): {time.monotonic() - t0:.3f}s")
    item = server_item(chk, B)
    assert item["name"] == new, f"the write returned before the server had the " \
                                f"name, or it differs: {item!r}"
    assert sorted(item["groups"]) == ["Team", "\u00dcn\u00efcode"], \
        f"renaming lost the groups: {item!r}"
    assert item["subscription"] == "both", item
    assert rd(m, A, B, "name") == new + "\n", rd(m, A, B, "name")
    wait_event(ev, "roster", B, roster_text("both", new))

    echo(cpath(m, A, B, "name"), "Plain")            # no newline
    assert server_item(chk, B)["name"] == "Plain", server_item(chk, B)
    assert rd(m, A, B, "name") == "Plain\n", rd(m, A, B, "name")

    # another client renames: the file follows
    chk.roster_set(B, name="Pushed", groups=["Team"])
    wait_file(m, A, B, "name", "Pushed\n")
    wait_file(m, A, B, "groups", "Team\n")

    # an empty name removes it
    echo(cpath(m, A, B, "name"), "\n")
    assert not server_item(chk, B)["name"], server_item(chk, B)
    assert rd(m, A, B, "name") == "", rd(m, A, B, "name")


def test_regroup_via_groups(server, tmp, stack):
    A, B = J("gr"), J("gr", "b")
    chk = peer(stack, server, "gr-a", "gr-check")
    m = mount(stack, server, tmp, "gr", "gr-mount")
    wait_file(m, A, B, "name", "Gee Bee\n")
    assert rd(m, A, B, "groups") == "", rd(m, A, B, "groups")
    ev = events_reader(stack, m, A)

    t0 = time.monotonic()
    echo(cpath(m, A, B, "groups"), "Friends\nWork\n")
    note(f"write to groups (until the server answered): {time.monotonic() - t0:.3f}s")
    item = server_item(chk, B)
    assert sorted(item["groups"]) == ["Friends", "Work"], item
    assert item["name"] == "Gee Bee", f"regrouping lost the name: {item!r}"
    assert item["subscription"] == "both", item
    got = rd(m, A, B, "groups")
    assert got.endswith("\n") and sorted(got.split("\n")[:-1]) == ["Friends", "Work"], got
    wait_event(ev, "roster", B, roster_text("both", "Gee Bee"))

    echo(cpath(m, A, B, "groups"), "Family")          # replaces; no newline
    assert server_item(chk, B)["groups"] == ["Family"], server_item(chk, B)
    assert rd(m, A, B, "groups") == "Family\n", rd(m, A, B, "groups")

    long = "g" * 1023                                  # the longest allowed
    echo(cpath(m, A, B, "groups"), f"{long}\nsp ace \u00e9\n")
    assert sorted(server_item(chk, B)["groups"]) == sorted([long, "sp ace \u00e9"]), \
        server_item(chk, B)

    chk.roster_set(B, name="Gee Bee", groups=["Pushed"])
    wait_file(m, A, B, "groups", "Pushed\n")
    assert rd(m, A, B, "name") == "Gee Bee\n", rd(m, A, B, "name")


def test_rmdir_removes_roster_item_and_keeps_log(server, tmp, stack):
    A, B, C = J("rm"), J("rm", "b"), J("rm", "c")
    bob = peer(stack, server, "rm-b", "rm-peer")
    chk = peer(stack, server, "rm-a", "rm-check")
    m = mount(stack, server, tmp, "rm", "rm-mount")
    wait_until(lambda: {B, C} <= set(os.listdir(m.path(A, "contacts"))),
               what=lambda: f"roster items listed: {os.listdir(m.path(A, 'contacts'))}")
    bob.send_message(A, "remember this after the rmdir")
    wait_until(lambda: "remember this after the rmdir" in rd(m, A, B, "log"),
               what="bob's message in the log")
    log_before = rd(m, A, B, "log")
    ev = events_reader(stack, m, A)

    t0 = time.monotonic()
    os.rmdir(cpath(m, A, B))
    note(f"rmdir contacts/JID (roster remove answered): {time.monotonic() - t0:.3f}s")
    assert B not in chk.roster_items(), \
        f"rmdir returned while the server still had the item: {server_item(chk, B)}"
    wait_event(ev, "roster", B, "remove")
    wait_file(m, A, B, "subscription", "none\n")
    assert rd(m, A, B, "log") == log_before, "the log changed with the rmdir"
    on_disk = [p for p in m.data.rglob("*") if p.is_file() and
               "remember this after the rmdir" in p.read_text(errors="replace")]
    assert on_disk, f"no file under {m.data} holds the conversation any more"
    # bob: the server told him, alice's item is gone from his side too
    wait_server_item(bob, A, lambda i: i is None or i["subscription"] == "none",
                     "none or removed (bob's roster)")

    # an item without a conversation disappears from the listing
    os.rmdir(cpath(m, A, C))
    assert C not in chk.roster_items(), server_item(chk, C)
    wait_until(lambda: C not in os.listdir(m.path(A, "contacts")),
               what="rm-c to leave the listing after its rmdir")
    wait_event(ev, "roster", C, "remove")


# --------------------------------------------------------------------------
# subscriptions

def test_their_request_approved(server, tmp, stack):
    A, B = J("ap"), J("ap", "b")
    m = mount(stack, server, tmp, "ap", "ap-mount")
    ev = events_reader(stack, m, A)
    bob = peer(stack, server, "ap-b", "ap-peer")
    wait_file(m, A, B, "subscription", "to\n")

    bob.send_presence(ptype="subscribe", to=A, status="may I see you?")
    wait_event(ev, "subscribe", B, "may I see you?")
    wait_file(m, A, B, "subscription", "to pending-in\n")
    since = len(bob.presences)
    i = len(ev.snapshot())
    echo(cpath(m, A, B, "subscription"), "approve\n")
    bob.wait_presence_type(A, "subscribed", since)
    wait_file(m, A, B, "subscription", "both\n")
    wait_event(ev, "roster", B, roster_text("both"), since=i)
    wait_server_item(bob, A, lambda it: it and it["subscription"] == "both",
                     "both (bob's roster)")
    bob.wait_presence(f"{A}/ap-mount")     # alice's presence reaches bob now


def test_deny_both_directions(server, tmp, stack):
    A, B = J("dn"), J("dn", "b")
    bob = peer(stack, server, "dn-b", "dn-peer")
    m = mount(stack, server, tmp, "dn", "dn-mount")
    ev = events_reader(stack, m, A)
    since = len(bob.presences)
    os.mkdir(cpath(m, A, B))
    bob.wait_presence_type(A, "subscribe", since)
    wait_file(m, A, B, "subscription", "none pending-out\n")

    # bob asks as well: both requests wait
    bob.send_presence(ptype="subscribe", to=A)
    wait_event(ev, "subscribe", B, "")
    wait_file(m, A, B, "subscription", "none pending-out pending-in\n")

    # alice refuses bob's request
    since = len(bob.presences)
    echo(cpath(m, A, B, "subscription"), "deny\n")
    bob.wait_presence_type(A, "unsubscribed", since)
    wait_file(m, A, B, "subscription", "none pending-out\n")
    wait_server_item(bob, A, lambda it: it and it["subscription"] == "none"
                     and it["ask"] is None, "none without ask (bob's roster)")

    # bob refuses alice's request
    i = len(ev.snapshot())
    bob.send_presence(ptype="unsubscribed", to=A)
    wait_event(ev, "unsubscribed", B, "", since=i)
    wait_file(m, A, B, "subscription", "none\n")
    assert_stays(lambda: not bob.presences_of_type(A, "subscribed"), 0.3,
                 what="no approval ever sent to bob")


def test_stranger_request_is_pending_in_and_not_approved(server, tmp, stack):
    A, B, C = J("st"), J("st", "b"), J("st", "c")
    m = mount(stack, server, tmp, "st", "st-mount")
    # a request that waited on the server while the account was offline
    wait_file(m, A, C, "subscription", "none pending-in\n")
    ev = events_reader(stack, m, A)
    bob = peer(stack, server, "st-b", "st-peer")
    assert rd(m, A, B, "subscription") == "none\n", rd(m, A, B, "subscription")

    since = len(bob.presences)
    bob.send_presence(ptype="subscribe", to=A, status="hello, it's me \u00e9")
    wait_event(ev, "subscribe", B, "hello, it's me \u00e9")
    wait_file(m, A, B, "subscription", "none pending-in\n")
    # nothing answered: a marker from alice arrives with no answer before it
    sync_marker(m, A, bob, "st")
    answers = [p for p in bob.presences[since:] if p["from"].split("/")[0] == A
               and p["type"] in ("subscribed", "unsubscribed")]
    assert not answers, f"the request was answered by itself: {answers}"
    it = bob.roster_items().get(A)
    assert it and it["subscription"] == "none" and it["ask"] == "subscribe", it


def test_auto_approve_true_approves(server, tmp, stack):
    A, B = J("aa"), J("aa", "b")
    m = mount(stack, server, tmp, "aa", "aa-mount", auto_approve="true")
    bob = peer(stack, server, "aa-b", "aa-peer")
    since = len(bob.presences)
    bob.send_presence(ptype="subscribe", to=A)
    bob.wait_presence_type(A, "subscribed", since)
    wait_server_item(bob, A, lambda it: it and it["subscription"] == "to",
                     "to (bob's roster)")
    wait_file(m, A, B, "subscription", "from\n")
    bob.wait_presence(f"{A}/aa-mount")


def test_unsubscribe_cancel_and_subscribe_again(server, tmp, stack):
    A, B = J("us"), J("us", "b")
    bob = peer(stack, server, "us-b", "us-peer")
    m = mount(stack, server, tmp, "us", "us-mount")
    wait_file(m, A, B, "subscription", "both\n")
    ev = events_reader(stack, m, A)

    since = len(bob.presences)
    echo(cpath(m, A, B, "subscription"), "unsubscribe\n")
    bob.wait_presence_type(A, "unsubscribe", since)
    wait_file(m, A, B, "subscription", "from\n")
    wait_event(ev, "roster", B, roster_text("from"))
    wait_server_item(bob, A, lambda it: it and it["subscription"] == "to",
                     "to (bob's roster)")

    since = len(bob.presences)
    echo(cpath(m, A, B, "subscription"), "cancel\n")
    bob.wait_presence_type(A, "unsubscribed", since)
    wait_file(m, A, B, "subscription", "none\n")
    wait_server_item(bob, A, lambda it: it and it["subscription"] == "none",
                     "none (bob's roster)")

    since = len(bob.presences)
    echo(cpath(m, A, B, "subscription"), "subscribe")   # no newline
    bob.wait_presence_type(A, "subscribe", since)
    wait_file(m, A, B, "subscription", "none pending-out\n")


def test_their_unsubscribe_and_unsubscribed(server, tmp, stack):
    A, B = J("ue"), J("ue", "b")
    bob = peer(stack, server, "ue-b", "ue-peer")
    m = mount(stack, server, tmp, "ue", "ue-mount")
    wait_file(m, A, B, "subscription", "both\n")
    ev = events_reader(stack, m, A)
    bob.send_presence(ptype="unsubscribe", to=A)
    wait_event(ev, "unsubscribe", B, "")
    wait_file(m, A, B, "subscription", "to\n")
    bob.send_presence(ptype="unsubscribed", to=A, status="bye now")
    wait_event(ev, "unsubscribed", B, "bye now")
    wait_file(m, A, B, "subscription", "none\n")
    wait_event(ev, "roster", B, roster_text("none"))


# --------------------------------------------------------------------------
# bad input

def test_bad_input_refused_and_nothing_sent(server, tmp, stack):
    A, B = J("bd"), J("bd", "b")
    bob = peer(stack, server, "bd-b", "bd-peer")
    chk = peer(stack, server, "bd-a", "bd-check")
    m = mount(stack, server, tmp, "bd", "bd-mount")
    wait_file(m, A, B, "subscription", "both\n")      # the roster is loaded
    ev = events_reader(stack, m, A)
    before = server_item(chk, B)
    assert before == {"subscription": "both", "ask": None, "name": "Bee",
                      "groups": []}, before
    since = len(bob.presences)
    problems = []
    for word in ("foo\n", "both\n", "none\n", "subscribed\n", "approve now\n",
                 "\n"):
        pr = expect_errno(lambda: echo(cpath(m, A, B, "subscription"), word),
                          errno.EINVAL, f"subscription write {word!r}")
        if pr:
            problems.append(pr)
    for groups in ("Friends\n\nWork\n", "\nFriends\n", "Friends\n\n\nWork",
                   "ok\n" + "x" * 1024 + "\n"):
        pr = expect_errno(lambda: echo(cpath(m, A, B, "groups"), groups),
                          errno.EINVAL, f"groups write {groups[:30]!r}"
                                        f"{'...' if len(groups) > 30 else ''}")
        if pr:
            problems.append(pr)
    pr = expect_errno(lambda: os.mkdir(cpath(m, A, B)), errno.EEXIST,
                      "mkdir of a roster item")
    if pr:
        problems.append(pr)
    # a roster push from someone else than the server is not believed
    evil = "evil@localhost"
    bob.send_raw(f"<iq type='set' id='spoof1' to='{A}/bd-mount'>"
                 "<query xmlns='jabber:iq:roster'>"
                 f"<item jid='{evil}' name='Evil' subscription='both'/>"
                 f"<item jid='{B}' subscription='remove'/></query></iq>")
    sync_from_peer(m, A, bob, "bd")
    if evil in os.listdir(m.path(A, "contacts")):
        problems.append("a roster push from bob added evil@localhost")
    if rd(m, A, B, "subscription") != "both\n":
        problems.append(f"after bob's forged push subscription reads "
                        f"{rd(m, A, B, 'subscription')!r}")
    if no_events_about(ev, evil):
        problems.append(f"events about the forged item: {no_events_about(ev, evil)}")

    sync_marker(m, A, bob, "bd")
    sent = [p for p in bob.presences[since:] if p["from"].split("/")[0] == A
            and p["type"] in ("subscribe", "subscribed", "unsubscribe", "unsubscribed")]
    if sent:
        problems.append(f"refused writes still sent {[p['type'] for p in sent]}")
    after = server_item(chk, B)
    if after != before:
        problems.append(f"the server's item changed: {before} -> {after}")
    if no_events_about(ev, B, {"roster"}):
        problems.append(f"roster events after refused writes: "
                        f"{no_events_about(ev, B, {'roster'})}")
    assert rd(m, A, B, "subscription") == "both\n"
    assert rd(m, A, B, "groups") == "", rd(m, A, B, "groups")
    assert not problems, "\n".join(problems)


def test_server_errors_are_the_writes_errors(server, tmp, stack):
    """The server refuses a roster set for the account's own JID
    (not-allowed); that answer is the error of the write (or mkdir)."""
    A = J("se")
    m = mount(stack, server, tmp, "se", "se-mount")
    problems = []
    for name, text in (("name", "Myself\n"), ("groups", "Me\n")):
        try:
            echo(cpath(m, A, A, name), text)
            problems.append(f"a write to contacts/<own JID>/{name} succeeded")
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EACCES):
                problems.append(f"{name} of the own JID: {e!r}, not EPERM/EACCES "
                                "(the server answered not-allowed)")
            elif not str(e.filename).startswith("write"):
                problems.append(f"{name} of the own JID: the error came from "
                                f"{e.filename}, not from the write")
    pr = expect_errno(lambda: os.rmdir(cpath(m, A, "never-added@localhost")),
                      errno.ENOENT, "rmdir of a JID that is in no roster")
    if pr:
        problems.append(pr)
    if A in os.listdir(m.path(A, "contacts")):
        problems.append("the own JID is listed after the refused writes")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# presence

def presence_raw(show=None, status=None, priority=None):
    x = "<presence>"
    if show:
        x += f"<show>{show}</show>"
    if status:
        x += f"<status>{status}</status>"
    if priority is not None:
        x += f"<priority>{priority}</priority>"
    return x + "</presence>"


def test_presence_lines_follow_resources(server, tmp, stack):
    A, B = J("pr"), J("pr", "b")
    m = mount(stack, server, tmp, "pr", "pr-mount")
    assert rd(m, A, B, "presence") == "", rd(m, A, B, "presence")
    assert rd(m, A, "nobody@localhost", "presence") == ""
    ev = events_reader(stack, m, A)

    zeta = peer(stack, server, "pr-b", "zeta")
    wait_file(m, A, B, "presence", "zeta\tavailable\t0\t\n")
    wait_event(ev, "presence", f"{B}/zeta", "available")
    zeta.send_raw(presence_raw("away", "at lunch, back at 2", 5))
    alpha = peer(stack, server, "pr-b", "alpha")
    alpha.send_raw(presence_raw("dnd", "in a meeting", -3))
    want = ("alpha\tdnd\t-3\tin a meeting\n"
            "zeta\taway\t5\tat lunch, back at 2\n")
    wait_file(m, A, B, "presence", want)
    wait_event(ev, "presence", f"{B}/zeta", "away at lunch, back at 2")
    wait_event(ev, "presence", f"{B}/alpha", "dnd in a meeting")

    zeta.send_raw(presence_raw("chat", None, 1))
    wait_file(m, A, B, "presence", "alpha\tdnd\t-3\tin a meeting\nzeta\tchat\t1\t\n")
    wait_event(ev, "presence", f"{B}/zeta", "chat")
    alpha.send_raw(presence_raw("xa", "gone \U0001F3D6 \u00e9t\u00e9", None))
    wait_file(m, A, B, "presence",
              "alpha\txa\t0\tgone \U0001F3D6 \u00e9t\u00e9\nzeta\tchat\t1\t\n")

    i = len(ev.snapshot())
    alpha.disconnect()
    wait_file(m, A, B, "presence", "zeta\tchat\t1\t\n")
    wait_event(ev, "presence", f"{B}/alpha",
               lambda t: t == "unavailable" or t.startswith("unavailable "), since=i)
    zeta.send_raw("<presence type='unavailable'><status>off now</status></presence>")
    wait_file(m, A, B, "presence", "")
    wait_event(ev, "presence", f"{B}/zeta", "unavailable off now", since=i)


# --------------------------------------------------------------------------
# events

def test_events_stream_messages_errors_connection(server, tmp, stack):
    A, B = J("ev"), J("ev", "b")
    bob = peer(stack, server, "ev-b", "ev-peer")
    m = mount(stack, server, tmp, "ev", "ev-mount")
    bob.wait_presence(f"{A}/ev-mount")
    evp = m.path(A, "events")
    st = os.stat(evp)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o400, oct(st.st_mode)

    wait_file(m, A, B, "presence", "ev-peer\tavailable\t0\t\n")  # settled

    r1 = events_reader(stack, m, A)
    fd = os.open(evp, os.O_RDONLY | os.O_NONBLOCK)
    stack.callback(os.close, fd)
    for _ in range(10):     # whatever came in since the open, then EAGAIN
        out = read_with_deadline(fd)
        if "data" not in out:
            break
        assert out["data"], "a read of events returned end of file"
    assert "err" in out and out["err"].errno == errno.EAGAIN, \
        f"events with nothing new, O_NONBLOCK: {out} instead of EAGAIN"
    p = select.poll()
    p.register(fd, select.POLLIN)
    assert p.poll(200) == [], "poll says readable with no event waiting"

    # message: one line per body line, the bare sender, one time
    t0 = time.monotonic()
    bob.send_message(A, "first line\nsecond\tline")
    assert p.poll(10000), "poll did not wake for a message"
    note(f"peer's send to POLLIN on events: {time.monotonic() - t0:.3f}s")
    i1, e1 = wait_event(r1, "message", B, "first line")
    i2, e2 = wait_event(r1, "message", B, "second\tline")
    assert i2 == i1 + 1 and e1[0] == e2[0], (e1, e2)
    data = b""
    while b"second\tline\n" not in data:
        out = read_with_deadline(fd)
        assert "data" in out, f"O_NONBLOCK read after POLLIN: {out}; so far {data!r}"
        data += out["data"]
    assert f"\tmessage\t{B}\tfirst line\n".encode() in data, data

    # readers opened later see only what comes after their open
    r2 = events_reader(stack, m, A)
    r3 = events_reader(stack, m, A)
    bob.send_message(A, "third, for every reader")
    for r in (r1, r2, r3):
        wait_event(r, "message", B, "third, for every reader")
    for r in (r2, r3):
        old = [l for l in r.snapshot() if "first line" in l]
        assert not old, f"a reader opened later got an older event: {old}"

    # error: JID = the stanza's sender, TEXT = KIND CONDITION[ TEXT]
    full_b = bob.jid
    bob.send_raw(f"<message type='error' id='e1' to='{A}/ev-mount'>"
                 "<error type='cancel'><item-not-found "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                 "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such thing"
                 "</text></error></message>")
    wait_event(r1, "error", full_b, "message item-not-found no such thing")
    bob.send_raw(f"<presence type='error' id='e2' to='{A}/ev-mount'>"
                 "<error type='modify'><bad-request "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>")
    wait_event(r1, "error", full_b, "presence bad-request")
    bob.send_raw(f"<iq type='error' id='e3' to='{A}/ev-mount'>"
                 "<error type='cancel'><service-unavailable "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    wait_event(r1, "error", full_b, "iq service-unavailable")
    # one the server makes: a message to a user that does not exist
    echo(cpath(m, A, "nobody@localhost", "send"), "anyone there?\n")
    wait_event(r1, "error", "nobody@localhost",
               lambda t: re.fullmatch(r"message [a-z-]+( .*)?", t) is not None)

    # connection: JID = the account, TEXT = the new state
    i = len(r1.snapshot())
    m.write(f"{A}/status", "offline\n")
    wait_event(r1, "connection", A, "offline", since=i)
    i = len(r1.snapshot())
    m.write(f"{A}/status", "available\n")
    ic, _ = wait_event(r1, "connection", A, "connecting", since=i)
    wait_event(r1, "connection", A, "online", since=ic + 1)
    m.wait_state(A, "online")

    for r in (r1, r2, r3):
        dt = r.stop()
        assert dt < 2.0, f"SIGINT took {dt:.2f}s to end a blocked cat of events"
    bad = check_event_formats(r1.snapshot(), A)
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------
# a big roster

BIG_N = 5000


def test_five_thousand_item_roster(tmp, stack):
    """Seeded by the test bed into a server of its own: none, from, and
    none with a request out, every second one named."""
    subs = ("none", "from", "none+ask")
    items = [f"big:c{i:04d}:{subs[i % 3]}" + (f":Contact {i}" if i % 2 == 0 else "")
             for i in range(BIG_N)]
    t0 = time.monotonic()
    srv = stack.enter_context(Server(tmp / "srv", users={"big": "bigpw"},
                                     roster=items))
    note(f"test bed seeded {BIG_N} roster items and started in "
         f"{time.monotonic() - t0:.1f}s")
    A = "big@localhost"
    want = {f"c{i:04d}@localhost" for i in range(BIG_N)}
    m = stack.enter_context(Mount(tmp, {A: srv.account("big", resource="big-mount")}))

    def complete():
        return want <= set(os.listdir(m.path(A, "contacts")))
    wait_until(complete, timeout=30, interval=0.05,
               what=lambda: f"all {BIG_N} items in contacts/; listed "
                            f"{len(set(os.listdir(m.path(A, 'contacts'))) & want)}")
    note(f"mount to the whole roster listed: {time.monotonic() - m.t_mounted:.2f}s "
         f"(start to mounted {m.t_mounted - m.t_start:.2f}s)")
    t1 = time.monotonic()
    r = subprocess.run(["ls", str(m.path(A, "contacts"))], capture_output=True,
                       text=True, timeout=30)
    dt = time.monotonic() - t1
    assert r.returncode == 0, r.stderr
    listed = set(r.stdout.split())
    assert want <= listed, f"ls misses {len(want - listed)}, e.g. {sorted(want - listed)[:5]}"
    note(f"`ls contacts/` of {len(listed)} entries: {dt:.3f}s")
    t1 = time.monotonic()
    r = subprocess.run(["ls", "-l", str(m.path(A, "contacts"))], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    note(f"`ls -l contacts/`: {time.monotonic() - t1:.3f}s")
    m.wait_state(A, "online")
    for i in (0, 1, 2, 3, 4997, 4998, 4999):
        jid = f"c{i:04d}@localhost"
        sub = {"none": "none\n", "from": "from\n",
               "none+ask": "none pending-out\n"}[subs[i % 3]]
        assert rd(m, A, jid, "subscription") == sub, (jid, rd(m, A, jid, "subscription"))
        name = f"Contact {i}\n" if i % 2 == 0 else ""
        assert rd(m, A, jid, "name") == name, (jid, rd(m, A, jid, "name"))
