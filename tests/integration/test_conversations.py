"""Conversations: contacts/JID/{send,post,log,stream} (SPEC "The tree",
"Records", "Writing", "Nothing is lost").

The other party is an independent client (slixmpp, xfstest.Peer) or a
second mount.  Each test mounts its own xmppfs (own data dir, own
resource) and tags its message bodies, so that nothing an earlier test
left on the server (offline messages, archives) can pass for what this
one waits for.  What must NOT happen (a message sent although the write
failed) is checked with a marker: a good message sent afterwards must be
the first thing the peer gets."""

import calendar
import errno
import os
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import time

from xfstest import (read_with_deadline, LineReader, Mount, Peer, Server, TestFailure,
                     assert_stays, note, wait_until, TIME_RE, write_chunks,
                     expect_errno)


SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "carol": "carolpw",
                     "dave": "davepw"},
              mutual=[("alice", "bob")], direct_tls=True)

A = "alice@localhost"
B = "bob@localhost"
C = "carol@localhost"
D = "dave@localhost"

# Bodies that XML, a record or a careless implementation could mangle.
SPECIAL = [
    "a < b && c > d",
    "]]> and <![CDATA[x]]> and </body>",
    "\"double\" 'single' `back`",
    "&amp; is not & and &lt; is not <",
    "emoji \U0001F600\U0001F44D\U0001F3FD \u00fcn\u00efc\u00f6d\u00e9 \u4e2d\u6587",
    "tab\tinside\tand at the end\t",
    "  leading and trailing spaces  ",
    "combining e\u0301 (not NFC) and \u212b",
]


# --------------------------------------------------------------------------
# helpers

def mount(stack, tmp, accounts, **kw):
    return stack.enter_context(Mount(tmp, accounts, **kw))


def peer(stack, server, jid, password, resource):
    return stack.enter_context(Peer(jid, password, server, resource=resource))


def setup(stack, server, tmp, res, **acct_keys):
    """bob as a slixmpp peer, alice in a mount; both see each other."""
    bob = peer(stack, server, B, "bobpw", f"{res}-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource=res, **acct_keys)})
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(f"{A}/{res}", timeout=10)
    return m, bob


def cpath(m, jid, *parts, acct=A):
    return m.path(acct, "contacts", jid, *parts)


def reader(stack, path):
    """A `cat stream` child that has the file open and blocks in read."""
    r = stack.enter_context(LineReader(path))
    r.wait_open()
    return r


def epoch(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


def parse_records(text, where="log"):
    """[(time, sender, text), ...]; TestFailure for anything not a record."""
    if text and not text.endswith("\n"):
        raise TestFailure(f"{where} does not end with a newline: {text[-200:]!r}")
    recs = []
    for line in text.split("\n")[:-1] if text else []:
        recs.append(parse_record(line, where))
    return recs


def parse_record(line, where="stream"):
    f = line.split("\t", 2)
    if len(f) != 3 or not TIME_RE.match(f[0]):
        raise TestFailure(f"{where}: not a TIME<TAB>SENDER<TAB>TEXT record: {line!r}")
    return tuple(f)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_log(m, jid, acct=A):
    return read_bytes(cpath(m, jid, "log", acct=acct)).decode("utf-8")


def wait_records(m, jid, want, acct=A, timeout=10.0):
    """Wait until every (sender, text) in @want is a record of the log;
    returns all records."""
    def check():
        recs = parse_records(read_log(m, jid, acct))
        have = {(r[1], r[2]) for r in recs}
        return recs if all(w in have for w in want) else None
    return wait_until(check, timeout=timeout, ignore=(OSError, TestFailure),
                      what=lambda: f"records {want!r} in {acct}/contacts/{jid}/log; "
                                   f"log now: {_log_or_err(m, jid, acct)!r}"[:3000])


def _log_or_err(m, jid, acct):
    try:
        return read_log(m, jid, acct)[-1500:]
    except (OSError, UnicodeDecodeError) as e:
        return e


def check_arrival(rec, t0, t1):
    """Record time within the second(s) of [t0, t1] (wall clock)."""
    e = epoch(rec[0])
    assert int(t0) - 1 <= e <= t1 + 1, \
        f"record time {rec[0]} is not between {time.strftime('%H:%M:%S', time.gmtime(t0))} " \
        f"and {time.strftime('%H:%M:%S', time.gmtime(t1))}: {rec!r}"


def bodies(msgs):
    return [m["body"] for m in msgs]


def marker_first(m, bob, since, tag, acct=A, jid=B):
    """Send a marker line from @acct and check it is the first message
    @bob got from @acct since index @since."""
    marker = f"{tag} marker {os.urandom(3).hex()}"
    m.write(f"{acct}/contacts/{jid}/send", marker + "\n")
    bob.wait_message(acct, marker, since=since)
    got = bodies(bob.messages_from(acct, since))
    assert got[0] == marker, \
        f"the peer got something before the marker: {[b[:80] for b in got[:5]]!r}"
    return got


def run_quick(argv, limit=1.0, timeout=10.0):
    """Run a command; returns (seconds, stdout bytes).  TestFailure when it
    fails or takes longer than @limit."""
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"{argv} did not finish in {timeout:g} s")
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise TestFailure(f"{argv} failed ({r.returncode}): {r.stderr[-300:]!r}")
    if dt > limit:
        raise TestFailure(f"{argv} took {dt:.2f} s (limit {limit:g} s)")
    return dt, r.stdout


# --------------------------------------------------------------------------
# the tree

def test_contacts_lookup_any_valid_jid_and_refuse_invalid(server, tmp, stack):
    m = mount(stack, tmp, {A: server.account("alice", resource="t-c-lookup")})
    contacts = m.path(A, "contacts")
    st = os.stat(contacts)
    assert stat.S_ISDIR(st.st_mode), oct(st.st_mode)
    before = os.listdir(contacts)
    assert D not in before, before
    # any valid bare JID: a directory with the four files, though not listed
    st = os.stat(cpath(m, D))
    assert stat.S_ISDIR(st.st_mode), oct(st.st_mode)
    names = set(os.listdir(cpath(m, D)))
    # send and post read as empty, so that cp -r, rsync and tar copy them;
    # stream is a link to the hidden .stream, which they copy as a link
    want = {"send": 0o600, "post": 0o600, "log": 0o400, "stream": 0o400}
    assert set(want) <= names, names
    assert os.readlink(cpath(m, D, "stream")) == ".stream"
    assert ".stream" not in names, names
    for name, mode in want.items():
        st = os.stat(cpath(m, D, name))
        assert stat.S_ISREG(st.st_mode), (name, oct(st.st_mode))
        assert stat.S_IMODE(st.st_mode) == mode, (name, oct(st.st_mode))
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), name
    assert D not in os.listdir(contacts), "a lookup alone made it listed"

    problems = []
    for bad in ("not a jid", "a@b@c", "@localhost", "bob@", "bob@local host",
                "tab\t@localhost"):
        p = m.path(A, "contacts", bad)
        try:
            os.stat(p)
            problems.append(f"lookup of {bad[:40]!r} succeeded")
        except FileNotFoundError:
            pass
        except OSError as e:
            problems.append(f"lookup of {bad[:40]!r}: {e!r} instead of ENOENT")
        pr = expect_errno(lambda: os.mkdir(p), errno.EINVAL, f"mkdir {bad!r}")
        if pr:
            problems.append(pr)
    # a resource is not a contact: contacts/bob@localhost/res
    try:
        os.stat(m.path(A, "contacts", B, "res"))
        problems.append("lookup of contacts/bob@localhost/res succeeded")
    except FileNotFoundError:
        pass
    try:
        os.mkdir(m.path(A, "contacts", B, "res"))
        problems.append("mkdir contacts/bob@localhost/res succeeded")
    except OSError:
        pass
    after = os.listdir(contacts)
    junk = [n for n in after if n not in before]
    if junk:
        problems.append(f"new entries after refused names: {junk!r}")
    assert not problems, "\n".join(problems)


def test_send_to_unlisted_jid_makes_it_listed(server, tmp, stack):
    m = mount(stack, tmp, {A: server.account("alice", resource="t-c-unlisted")})
    m.wait_state(A, "online", timeout=10)
    assert D not in os.listdir(m.path(A, "contacts"))
    # like `echo hi > contacts/dave@localhost/send`
    r = subprocess.run(["sh", "-c", 'echo "hi dave, unlisted" > "$1"', "sh",
                        str(cpath(m, D, "send"))], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: D in os.listdir(m.path(A, "contacts")), timeout=5,
               what="dave@localhost to be listed after a message to him")
    recs = wait_records(m, D, [(A, "hi dave, unlisted")])
    assert [(s, t) for _, s, t in recs] == [(A, "hi dave, unlisted")], recs


def test_mkdir_valid_jid_lists_it(server, tmp, stack):
    """SPEC: `mkdir contacts/JID` adds it.  As any valid JID answers a
    lookup, the kernel itself would answer EEXIST unless the lookup made
    for the mkdir says ENOENT."""
    m = mount(stack, tmp, {A: server.account("alice", resource="t-c-mkdir")})
    m.wait_state(A, "online", timeout=10)  # mkdir adds a roster item
    # a JID of its own: mkdir puts it in alice's roster on the shared server
    C = "mkdir-new@localhost"
    contacts = m.path(A, "contacts")
    assert C not in os.listdir(contacts)
    try:
        os.mkdir(m.path(A, "contacts", C))
    except FileExistsError:
        raise TestFailure("mkdir contacts/carol@localhost: EEXIST (the kernel "
                          "answers EEXIST for a name whose lookup succeeds, "
                          "so the filesystem's mkdir never runs)")
    assert C in os.listdir(contacts), os.listdir(contacts)
    pr = expect_errno(lambda: os.mkdir(m.path(A, "contacts", C)), errno.EEXIST,
                      "a second mkdir of carol@localhost")
    assert not pr, pr
    # mkdirat(2), and the shell's mkdir and mkdir -p
    dfd = os.open(contacts, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.mkdir(D, dir_fd=dfd)
    finally:
        os.close(dfd)
    r = subprocess.run(["mkdir", str(m.path(A, "contacts", "eve@localhost"))],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["mkdir", "-p", str(m.path(A, "contacts", "frank@localhost"))],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    names = os.listdir(contacts)
    for j in (C, D, "eve@localhost", "frank@localhost"):
        assert j in names, (j, names)


def test_mkdir_right_after_a_lookup_of_the_same_jid(server, tmp, stack):
    """`ls contacts/JID; mkdir contacts/JID`: the first lookup must not
    leave a positive dentry that makes the mkdir EEXIST in the kernel."""
    m = mount(stack, tmp, {A: server.account("alice", resource="t-c-mkdir2")})
    m.wait_state(A, "online", timeout=10)  # mkdir adds a roster item
    C = "mkdir-after-lookup@localhost"     # not in any earlier test's roster
    contacts = m.path(A, "contacts")
    os.stat(m.path(A, "contacts", C))        # an unlisted JID resolves
    os.listdir(m.path(A, "contacts", C))
    try:
        os.mkdir(m.path(A, "contacts", C))
    except FileExistsError:
        raise TestFailure("mkdir right after a stat of the same unlisted JID: "
                          "EEXIST (the kernel kept the positive dentry of the "
                          "stat; its entry timeout is not 0)")
    assert C in os.listdir(contacts), os.listdir(contacts)


# --------------------------------------------------------------------------
# send and post: what the peer gets

def test_send_single_line(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-single")
    since = len(bob.messages)
    t0 = time.monotonic()
    m.write(f"{A}/contacts/{B}/send", "hello bob, one line\n")
    msg = bob.wait_message(A, "hello bob, one line", since=since)
    note(f"write to the peer's receipt: {time.monotonic() - t0:.3f}s")
    assert msg["type"] == "chat", msg
    assert msg["from"] == f"{A}/t-c-single", msg
    assert_stays(lambda: len(bob.messages_from(A, since)) == 1, 0.3,
                 what="exactly one message")


def test_send_several_lines_in_one_write(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-several")
    since = len(bob.messages)
    lines = ["first of three", "second of three", "third of three"]
    write_chunks(cpath(m, B, "send"), "".join(l + "\n" for l in lines))
    got = bob.wait_messages(A, 3, since)
    assert bodies(got) == lines, bodies(got)
    assert all(g["type"] == "chat" for g in got), got
    assert_stays(lambda: len(bob.messages_from(A, since)) == 3, 0.3,
                 what="exactly three messages")


def test_send_line_split_over_writes_sent_at_newline(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-split")
    since = len(bob.messages)
    fd = os.open(cpath(m, B, "send"), os.O_WRONLY)
    try:
        # pieces, one of them ending inside a UTF-8 sequence (caf|\xc3|\xa9)
        for piece in (b"one line ", b"split over ", b"many writes, caf\xc3",
                      b"\xa9 included"):
            os.write(fd, piece)
        assert_stays(lambda: not bob.messages_from(A, since), 0.4,
                     what="nothing sent before the newline")
        t0 = time.monotonic()
        os.write(fd, b"\nsecond line\n")
        got = bob.wait_messages(A, 2, since)
        note(f"line complete to the peer's receipt (fd still open): "
             f"{time.monotonic() - t0:.3f}s")
    finally:
        os.close(fd)
    assert bodies(got) == ["one line split over many writes, caf\u00e9 included",
                           "second line"], bodies(got)
    assert_stays(lambda: len(bob.messages_from(A, since)) == 2, 0.3,
                 what="no more messages after the close")


def test_send_last_line_without_newline_sent_on_close(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-lastline")
    since = len(bob.messages)
    fd = os.open(cpath(m, B, "send"), os.O_WRONLY)
    try:
        os.write(fd, b"complete line\nincomplete last")
        bob.wait_message(A, "complete line", since=since)
        assert_stays(lambda: len(bob.messages_from(A, since)) == 1, 0.4,
                     what="the incomplete line held back while open")
    finally:
        os.close(fd)
    got = bob.wait_messages(A, 2, since)
    assert bodies(got) == ["complete line", "incomplete last"], bodies(got)


def test_cat_to_send_is_interactive(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-cat")
    since = len(bob.messages)
    p = subprocess.Popen(["sh", "-c", 'exec cat > "$1"', "sh",
                          str(cpath(m, B, "send"))],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"typed line one\n")
        p.stdin.flush()
        bob.wait_message(A, "typed line one", since=since)
        assert p.poll() is None, "cat ended"
        p.stdin.write(b"typed line two\n")
        p.stdin.flush()
        bob.wait_message(A, "typed line two", since=since)
        p.stdin.write(b"bye without newline")
        p.stdin.close()
        rc = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, (rc, p.stderr.read())
    got = bob.wait_messages(A, 3, since)
    assert bodies(got) == ["typed line one", "typed line two",
                           "bye without newline"], bodies(got)


def test_post_one_message_per_close(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-post")
    since = len(bob.messages)
    post = cpath(m, B, "post")
    multi = "line one\n\tindented <b>&amp;</b>\n\n  last line  "
    fd = os.open(post, os.O_WRONLY)
    try:
        os.write(fd, b"line one\n\tindented <b>")
        os.write(fd, b"&amp;</b>\n\n  last line  \n")
        assert_stays(lambda: not bob.messages_from(A, since), 0.4,
                     what="post sends nothing before the close")
    finally:
        os.close(fd)
    bob.wait_messages(A, 1, since)
    write_chunks(post, "two trailing newlines\n\n")
    write_chunks(post, "no trailing newline")
    write_chunks(post, "\nleading newline kept\n")
    got = bob.wait_messages(A, 4, since)
    assert bodies(got) == [multi, "two trailing newlines\n",
                           "no trailing newline", "\nleading newline kept"], \
        bodies(got)
    assert all(g["type"] == "chat" for g in got), got
    assert_stays(lambda: len(bob.messages_from(A, since)) == 4, 0.3,
                 what="exactly four messages")


# --------------------------------------------------------------------------
# log and stream: what is recorded

def test_incoming_message_in_log_and_stream(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-incoming")
    r = reader(stack, cpath(m, B, "stream"))
    t0 = time.time()
    bob.send_message(A, "hello alice, incoming")
    line = r.wait_lines(1)[0]
    t1 = time.time()
    note(f"peer's send to the stream reader: {t1 - t0:.3f}s")
    rec = parse_record(line)
    assert rec[1:] == (B, "hello alice, incoming"), rec
    check_arrival(rec, t0, t1)
    recs = wait_records(m, B, [(B, "hello alice, incoming")])
    assert line + "\n" in read_log(m, B), "the log's record differs from the stream's"
    assert B in os.listdir(m.path(A, "contacts"))
    assert len(recs) == 1, recs


def test_own_messages_recorded_with_own_jid(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-own")
    r = reader(stack, cpath(m, B, "stream"))
    t0 = time.time()
    m.write(f"{A}/contacts/{B}/send", "my own line\n")
    m.write(f"{A}/contacts/{B}/post", "my own post\nof two lines\n")
    lines = r.wait_lines(3)
    t1 = time.time()
    recs = [parse_record(l) for l in lines]
    assert [x[1:] for x in recs] == [(A, "my own line"), (A, "my own post"),
                                     (A, "of two lines")], recs
    for x in recs:
        check_arrival(x, t0, t1)
    assert recs[1][0] == recs[2][0], f"one message, two times: {recs}"
    log = parse_records(read_log(m, B))
    assert [x[1:] for x in log] == [x[1:] for x in recs], log
    bob.wait_messages(A, 2)


def test_special_and_multiline_bodies_both_ways(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-special")
    r = reader(stack, cpath(m, B, "stream"))
    since = len(bob.messages)
    multi = "first line\n\nthird <line> & \"more\"\n\tfourth\ttabbed\n\U0001F600"
    # alice -> bob: one write per special line, then a multi-line post
    for s in SPECIAL:
        write_chunks(cpath(m, B, "send"), s + "\n")
    write_chunks(cpath(m, B, "post"), multi)
    got = bob.wait_messages(A, len(SPECIAL) + 1, since)
    want = SPECIAL + [multi]
    for g, w in zip(bodies(got), want):
        assert g == w, f"the peer got {g!r} for {w!r}"
    # bob -> alice
    for s in SPECIAL:
        bob.send_message(A, s)
    bob.send_message(A, multi)
    own_n = len(SPECIAL) + len(multi.split("\n"))
    lines = r.wait_lines(2 * own_n)
    recs = [parse_record(l) for l in lines]
    want_recs = ([(A, s) for s in SPECIAL] + [(A, l) for l in multi.split("\n")] +
                 [(B, s) for s in SPECIAL] + [(B, l) for l in multi.split("\n")])
    for i, (x, w) in enumerate(zip(recs, want_recs)):
        assert x[1:] == w, f"record {i}: {x!r}, expected {w!r}"
    assert len(recs) == len(want_recs), recs[len(want_recs):]
    # the lines of one body share their time and sender
    for base in (len(SPECIAL), own_n + len(SPECIAL)):
        part = recs[base:base + len(multi.split("\n"))]
        assert len({x[0] for x in part}) == 1, part
    assert parse_records(read_log(m, B)) == recs


def test_delay_stamp_is_the_record_time(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-delay")
    r = reader(stack, cpath(m, B, "stream"))
    bob.send_raw(f"<message to='{A}' type='chat' id='delay1'>"
                 "<body>sent in 2020</body>"
                 "<delay xmlns='urn:xmpp:delay' from='localhost' "
                 "stamp='2020-01-02T03:04:05Z'/></message>")
    bob.send_raw(f"<message to='{A}' type='chat' id='delay2'>"
                 "<body>fraction and offset</body>"
                 "<delay xmlns='urn:xmpp:delay' "
                 "stamp='2021-06-07T10:11:12.345+02:00'/></message>")
    lines = r.wait_lines(2)
    recs = [parse_record(l) for l in lines]
    assert recs == [("2020-01-02T03:04:05Z", B, "sent in 2020"),
                    ("2021-06-07T08:11:12Z", B, "fraction and offset")], recs
    wait_records(m, B, [(B, "sent in 2020"), (B, "fraction and offset")])
    log = parse_records(read_log(m, B))
    assert set(recs) <= set(log), log


def test_messages_without_body_not_recorded(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-nobody")
    r = reader(stack, cpath(m, B, "stream"))
    full = m.connection(A)["jid"]
    bob.send_raw(f"<message to='{A}' type='chat' id='cs1'>"
                 "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    bob.send_raw(f"<message to='{full}' type='chat' id='cs2'>"
                 "<active xmlns='http://jabber.org/protocol/chatstates'/></message>")
    bob.send_raw(f"<message to='{full}' id='rc1'>"
                 "<received xmlns='urn:xmpp:receipts' id='x1'/></message>")
    bob.send_raw(f"<message to='{full}' type='chat' id='dm1'>"
                 "<displayed xmlns='urn:xmpp:chat-markers:0' id='x1'/></message>")
    bob.send_message(A, "the marker after four bodyless messages")
    lines = r.wait_lines(1)
    assert_stays(lambda: len(r.snapshot()) == 1, 0.3, what="one record only")
    assert parse_record(lines[0])[1:] == (B, "the marker after four bodyless messages"), lines
    log = parse_records(read_log(m, B))
    assert [x[1:] for x in log] == [(B, "the marker after four bodyless messages")], log


def test_message_from_jid_not_in_roster_and_type_normal(server, tmp, stack):
    carol = peer(stack, server, C, "carolpw", "t-c-stranger-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-c-stranger")})
    m.wait_state(A, "online", timeout=10)
    assert C not in os.listdir(m.path(A, "contacts"))
    full = m.connection(A)["jid"]
    # to the full JID: Prosody routes messages from strangers to it without
    # asking for presence
    carol.send_raw(f"<message to='{full}' type='chat' id='s1'><body>from a stranger"
                   "</body></message>")
    carol.send_message(A, "type normal from a stranger", mtype="normal")
    recs = wait_records(m, C, [(C, "from a stranger"),
                               (C, "type normal from a stranger")])
    assert [x[1:] for x in recs] == [(C, "from a stranger"),
                                     (C, "type normal from a stranger")], recs
    assert C in os.listdir(m.path(A, "contacts"))


def test_incoming_error_message_is_marked(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-error")
    r = reader(stack, cpath(m, B, "stream"))
    full = m.connection(A)["jid"]
    # Prosody drops type='error' messages to a bare JID: send to the full one
    bob.send_raw(f"<message to='{full}' type='error' id='err1'>"
                 "<body>what alice had sent</body>"
                 "<error type='cancel'><service-unavailable "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    bob.send_message(A, "after the error")
    lines = r.wait_lines(2)
    recs = [parse_record(l) for l in lines]
    errs = [x for x in recs if x[2].startswith("[error")]
    assert errs and errs[0][1] == B, f"no [error record from bob: {recs}"
    assert recs[-1][1:] == (B, "after the error"), recs
    note(f"error record: {errs[0][2]!r}")
    log = parse_records(read_log(m, B))
    assert any(x[2].startswith("[error") for x in log), log


# --------------------------------------------------------------------------
# stream: blocking, O_NONBLOCK, poll, signals, many readers

def test_stream_nonblock_eagain_and_poll(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-poll")
    fd = os.open(cpath(m, B, "stream"), os.O_RDONLY | os.O_NONBLOCK)
    stack.callback(os.close, fd)
    out = read_with_deadline(fd)
    assert "err" in out and out["err"].errno == errno.EAGAIN, \
        f"empty stream with O_NONBLOCK: {out} instead of EAGAIN"
    p = select.poll()
    p.register(fd, select.POLLIN)
    ev = p.poll(300)
    assert ev == [], f"poll says {ev} with no record waiting"
    r, _, _ = select.select([fd], [], [], 0)
    assert r == [], "select says readable with no record waiting"
    t0 = time.monotonic()
    bob.send_message(A, "wakes the poll")
    ev = p.poll(10000)
    dt = time.monotonic() - t0
    note(f"peer's send to POLLIN: {dt:.3f}s")
    assert ev and ev[0][1] & select.POLLIN, f"poll: {ev} after {dt:.1f}s"
    r, _, _ = select.select([fd], [], [], 0)
    assert r == [fd], "select does not say readable with a record waiting"
    out = read_with_deadline(fd)
    assert "data" in out, out
    rec = parse_record(out["data"].decode().rstrip("\n"))
    assert out["data"].endswith(b"\n") and out["data"].count(b"\n") == 1, out
    assert rec[1:] == (B, "wakes the poll"), rec
    out = read_with_deadline(fd)
    assert "err" in out and out["err"].errno == errno.EAGAIN, \
        f"drained stream: {out} instead of EAGAIN"
    assert p.poll(0) == [], "poll says readable after the stream was drained"


def test_stream_read_blocks_until_a_record(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-block")
    r = reader(stack, cpath(m, B, "stream"))
    assert_stays(lambda: r.proc.poll() is None and r.blocked_in_read()
                 and not r.snapshot(), 0.5, what="cat blocked with nothing read")
    t0 = time.monotonic()
    bob.send_message(A, "unblocks the reader")
    lines = r.wait_lines(1)
    dt = time.monotonic() - t0
    note(f"peer's send to the blocked reader's line: {dt:.3f}s")
    assert parse_record(lines[0])[1:] == (B, "unblocks the reader"), lines
    assert dt < 1.0, f"a blocked reader got its record after {dt:.2f}s"
    wait_until(r.blocked_in_read, timeout=5, what="cat to block again")
    assert r.proc.poll() is None, "the stream ended"


def test_sigint_ends_blocked_cat(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-sigint")
    stream = cpath(m, B, "stream")
    r = reader(stack, stream)
    dt = r.stop(signal.SIGINT, timeout=5)
    note(f"SIGINT to the end of a blocked cat: {dt * 1000:.1f} ms")
    assert r.returncode == -signal.SIGINT, f"cat ended with {r.returncode}"
    assert dt < 1.0, f"cat took {dt:.2f}s to end after SIGINT"
    # the mount is fine and a new reader gets the next record
    run_quick(["ls", str(m.path(A, "contacts"))])
    r2 = reader(stack, stream)
    bob.send_message(A, "after the interrupted reader")
    assert parse_record(r2.wait_lines(1)[0])[1:] == (B, "after the interrupted reader")


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_hundred_blocked_readers_each_get_every_record(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-hundred")
    bob.send_message(A, "before the readers opened")
    wait_records(m, B, [(B, "before the readers opened")])
    stream = cpath(m, B, "stream")
    readers = [LineReader(stream) for _ in range(100)]

    def stop_all():
        for x in readers:
            if x.proc and x.proc.poll() is None:
                x.proc.send_signal(signal.SIGINT)
        for x in readers:
            x.stop(check=False)
    stack.callback(stop_all)
    t0 = time.monotonic()
    for x in readers:
        x.start()
    for x in readers:
        x.wait_open(timeout=20)
    note(f"100 readers open and blocked in {time.monotonic() - t0:.2f}s")
    cpu0, w0 = _cpu_seconds(m.pid), time.monotonic()
    t_ls, out = run_quick(["ls", str(m.path(A, "contacts"))])
    assert B in out.decode().split(), out
    t_cat, out = run_quick(["cat", str(cpath(m, B, "log"))])
    assert b"before the readers opened" in out
    t_st = time.monotonic()
    os.stat(cpath(m, B, "log"))
    t_st = time.monotonic() - t_st
    note(f"beside 100 blocked readers: ls {t_ls * 1000:.1f} ms, "
         f"cat log {t_cat * 1000:.1f} ms, stat {t_st * 1000:.1f} ms")
    n = 5
    texts = [f"record {i} for a hundred readers" for i in range(n)]
    for t in texts:
        bob.send_message(A, t)
    for i, x in enumerate(readers):
        lines = x.wait_lines(n, timeout=15)
        got = [parse_record(l)[1:] for l in lines]
        assert got == [(B, t) for t in texts], f"reader {i}: {got}"
    # all blocked again; the mount still answers at once, and idles
    for x in readers:
        wait_until(x.blocked_in_read, timeout=5, what="a reader to block again")
    run_quick(["ls", str(m.path(A, "contacts"))])
    run_quick(["cat", str(cpath(m, B, "log"))])
    cpu, wall = _cpu_seconds(m.pid) - cpu0, time.monotonic() - w0
    note(f"xmppfs CPU while 100 readers got {n} records: {cpu:.2f}s in {wall:.2f}s")
    assert cpu < 0.5 * wall + 0.2, f"xmppfs busy: {cpu:.2f}s CPU in {wall:.2f}s"
    t0 = time.monotonic()
    for x in readers:
        x.proc.send_signal(signal.SIGINT)
    for x in readers:
        dt = x.stop(timeout=5)
    dt = time.monotonic() - t0
    note(f"SIGINT to 100 blocked readers: all ended in {dt:.2f}s")
    assert all(x.returncode == -signal.SIGINT for x in readers), \
        [x.returncode for x in readers]


# --------------------------------------------------------------------------
# log as a file

def test_log_size_tail_wc_grep_follow_each_record(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-logsize")
    r = reader(stack, cpath(m, B, "stream"))
    log = cpath(m, B, "log")
    seen = 0
    mtimes = []
    for i in range(6):
        os.stat(log) if i else None  # prime any attribute cache
        t_before = time.time()
        if i % 2:
            bob.send_message(A, f"incoming number {i}")
        else:
            m.write(f"{A}/contacts/{B}/send", f"own number {i}\n")
        seen += 1
        r.wait_lines(seen)
        st = os.stat(log)          # at once: no attribute caching
        data = read_bytes(log)
        assert st.st_size == len(data), \
            f"step {i}: st_size {st.st_size}, content {len(data)} bytes"
        recs = parse_records(data.decode())
        assert len(recs) == seen, recs
        last = data.decode().split("\n")[-2]
        assert last == r.snapshot()[-1], (last, r.snapshot()[-1])
        _, out = run_quick(["tail", "-n", "1", str(log)])
        assert out.decode() == last + "\n", out
        mtimes.append(st.st_mtime)
        assert st.st_mtime >= int(t_before) - 1, \
            f"step {i}: mtime {st.st_mtime} before the record ({t_before})"
    assert mtimes == sorted(mtimes), mtimes
    # 30 more records in one post, then tail/wc/grep
    write_chunks(cpath(m, B, "post"), "\n".join(f"bulk line {j:02d}" for j in range(30)))
    r.wait_lines(seen + 30)
    data = read_bytes(log)
    assert os.stat(log).st_size == len(data)
    _, out = run_quick(["tail", "-n", "10", str(log)])
    assert [parse_record(l)[2] for l in out.decode().splitlines()] == \
        [f"bulk line {j:02d}" for j in range(20, 30)], out
    _, out = run_quick(["wc", "-l", str(log)])
    assert int(out.split()[0]) == seen + 30, out
    _, out = run_quick(["grep", "-c", "incoming number", str(log)])
    assert int(out) == 3, out


def test_log_survives_remount(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-persist")
    full = f"{A}/t-c-persist"
    m.write(f"{A}/contacts/{B}/send", "said before the remount\n")
    bob.send_message(A, "heard before the remount")
    wait_records(m, B, [(A, "said before the remount"), (B, "heard before the remount")])
    before = read_log(m, B)
    m.close()
    # the conversation is in the data dir
    in_data = [f for f in m.data.rglob("*") if f.is_file()
               and b"heard before the remount" in f.read_bytes()]
    assert in_data, f"no file under {m.data} holds the conversation"
    bob.wait_presence(full, ptype="unavailable")
    m.remount()
    # at once, before any connection
    assert B in os.listdir(m.path(A, "contacts"))
    assert read_log(m, B) == before
    assert os.stat(cpath(m, B, "log")).st_size == len(before.encode())
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(full, show="")
    bob.send_message(A, "heard after the remount")
    recs = wait_records(m, B, [(B, "heard after the remount")])
    after = read_log(m, B)
    assert after.startswith(before), "the old records changed"
    assert [x[1:] for x in parse_records(after[len(before):])] == \
        [(B, "heard after the remount")], after[len(before):]
    assert len(recs) == len(parse_records(before)) + 1


# --------------------------------------------------------------------------
# bad input

def test_invalid_bodies_eilseq_nothing_sent(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-eilseq")
    since = len(bob.messages)
    send, post = cpath(m, B, "send"), cpath(m, B, "post")
    send_cases = [
        ("truncated UTF-8", b"bad \xc3\n"),
        ("lone continuation byte", b"bad \x80 byte\n"),
        ("overlong", b"over \xc0\xaf long\n"),
        ("surrogate", b"sur \xed\xa0\x80 rogate\n"),
        ("beyond U+10FFFF", b"big \xf4\x90\x80\x80\n"),
        ("latin-1", b"caf\xe9\n"),
        ("\\x01", b"ctl \x01 char\n"),
        ("\\r inside a line", b"cr \r inside\n"),
        ("ESC", b"\x1b[31mred\n"),
        ("NUL", b"nul \x00 byte\n"),
        ("DEL", b"del \x7f\n"),
        ("U+0085", "nel \u0085\n".encode()),
        ("form feed", b"ff \x0c\n"),
        ("good line then bad line in one write", b"good first line\nbad \x01\n"),
    ]
    problems = []
    for what, data in send_cases:
        fd = os.open(send, os.O_WRONLY)
        pr = expect_errno(lambda: os.write(fd, data), errno.EILSEQ, f"send, {what}")
        try:
            os.close(fd)
        except OSError as e:
            note(f"send, {what}: close after the refused write: {e!r}")
        if pr:
            problems.append(pr)
    # the last line of send, without newline, is checked at close
    for what, data in (("truncated UTF-8 at the end", b"bad \xc3"),
                       ("latin-1 at the end", b"caf\xe9"),
                       ("latin-1 inside", b"caf\xe9 au lait"),
                       ("\\x01", b"ctl \x01 char"),
                       ("\\r with no LF after it", b"cr at the end\r")):
        pr = expect_errno(lambda: write_chunks(send, data), errno.EILSEQ,
                          f"send, last line without newline, {what}")
        if pr:
            problems.append(pr)
    post_cases = [
        ("truncated UTF-8 at the end", [b"bad \xc3"]),
        ("truncated UTF-8 at the end, then newline", [b"bad \xc3\n"]),
        ("latin-1 at the end of the second write", [b"first write ok\n", b"caf\xe9"]),
        ("latin-1 inside", [b"caf\xe9 au lait\n"]),
        ("\\x01", [b"ctl \x01"]),
        ("\\r inside", [b"cr\rlf\n"]),
    ]
    for what, chunks in post_cases:
        pr = expect_errno(lambda: write_chunks(post, *chunks), errno.EILSEQ,
                          f"post, {what}")
        if pr:
            problems.append(pr)
    assert m.connection(A)["state"] == "online", m.connection(A)
    try:
        marker_first(m, bob, since, "eilseq")
    except AssertionError as e:
        problems.append(str(e))
    assert not problems, "\n".join(problems)
    assert m.connection(A)["state"] == "online", m.connection(A)


def test_crlf_line_ends_are_line_ends(server, tmp, stack):
    """A CR right before a LF (a file from Windows, a network tool) is
    dropped, in send and post: what bob gets has no CR."""
    m, bob = setup(stack, server, tmp, "t-c-crlf")
    since = len(bob.messages)
    write_chunks(cpath(m, B, "send"), b"first line\r\nsecond", b" line\r\n")
    write_chunks(cpath(m, B, "post"), b"one\r\ntwo\r", b"\nthree\r\n")
    got = [x["body"] for x in bob.wait_messages(A, 3, since=since)][:3]
    assert got == ["first line", "second line", "one\ntwo\nthree"], got
    assert "\r" not in read_log(m, B)


def test_single_threaded_mount_serves_a_waiting_reader_and_a_writer(server, tmp, stack):
    """-s (listed in --help): one thread serves every request.  A blocked
    reader of stream holds no thread (its read is parked), so ls, a send
    and the record reaching the reader all still happen."""
    bob = peer(stack, server, B, "bobpw", "t-c-single-peer")
    m = stack.enter_context(Mount(tmp, {A: server.account(
        "alice", resource="t-c-single")}, args=["-s"]))
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(f"{A}/t-c-single", timeout=10)
    r = reader(stack, cpath(m, B, "stream"))
    assert "send" in os.listdir(cpath(m, B))
    since = len(bob.messages)
    m.write(f"{A}/contacts/{B}/send", "one thread\n")
    bob.wait_messages(A, 1, since=since)
    bob.send_message(A, "back to the reader")
    lines = r.wait_lines(2)
    assert lines[-1].endswith("\tback to the reader"), lines
    # and it was one FUSE thread: the main one (a multi-threaded loop
    # would have started workers for the requests above, with one read
    # parked all along).  The others have names of their own: the pool,
    # the watchdog, the SIGHUP reloader, resolvers.
    names = []
    for t in os.listdir(f"/proc/{m.proc.pid}/task"):
        try:
            names.append(open(f"/proc/{m.proc.pid}/task/{t}/comm").read().strip())
        except OSError:
            pass
    note(f"-s: threads {names}")
    main = open(f"/proc/{m.proc.pid}/comm").read().strip()
    assert names.count(main) == 1, names


def test_tail_f_on_the_account_log(server, tmp, stack):
    """ACCOUNT/log is the events as a log: a size that grows, so tail -n
    ends at once and tail -f prints each new event (events, a stream,
    has neither)."""
    m, bob = setup(stack, server, tmp, "t-c-tail")
    log = m.path(A, "log")
    bob.send_message(A, "before tail")
    wait_until(lambda: "before tail" in open(log).read(), timeout=10,
               what="the event in ACCOUNT/log")
    r = subprocess.run(["tail", "-n", "1", log], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0 and "\tmessage\t" in r.stdout and \
        "before tail" in r.stdout, r
    p = subprocess.Popen(["tail", "-n", "0", "-f", log],
                         stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        bob.send_message(A, "while tailing")
        got = ""
        deadline = time.monotonic() + 15
        while "while tailing" not in got and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.5)
            if ready:
                got += p.stdout.readline()
        assert "while tailing" in got, f"tail -f printed {got!r}"
        note(f"tail -f: {got.strip()!r}")
    finally:
        p.kill()
        p.wait()


def test_message_limit_efbig_nothing_sent(server, tmp, stack):
    bob = peer(stack, server, B, "bobpw", "t-c-efbig-peer")
    m = mount(stack, tmp, {
        A: server.account("alice", resource="t-c-efbig", message_limit=1000),
        C: server.account("carol", resource="t-c-efbig-default")})
    for j in (A, C):
        m.wait_state(j, "online", timeout=10)
    since = len(bob.messages)
    send, post = cpath(m, B, "send"), cpath(m, B, "post")
    problems = []

    def check(pr):
        if pr:
            problems.append(pr)
    check(expect_errno(lambda: write_chunks(send, "x" * 1001 + "\n"), errno.EFBIG,
                       "send, 1001 bytes, limit 1000"))
    check(expect_errno(lambda: write_chunks(post, "p" * 1001), errno.EFBIG,
                       "post, 1001 bytes, limit 1000"))
    check(expect_errno(lambda: write_chunks(post, "\u00e9" * 501), errno.EFBIG,
                       "post, 501 characters in 1002 bytes, limit 1000"))
    check(expect_errno(lambda: write_chunks(send, *(["s" * 100] * 10 + ["z\n"])),
                       errno.EFBIG, "send, 1001 bytes in 11 writes, limit 1000"))
    # the limit itself is allowed
    write_chunks(send, "y" * 1000 + "\n")
    write_chunks(post, "q" * 1000)
    got = bob.wait_messages(A, 2, since)
    if bodies(got)[:2] != ["y" * 1000, "q" * 1000]:
        problems.append(f"limit 1000: the peer got "
                        f"{[(b[:10], len(b)) for b in bodies(got)]} first")
    since2 = len(bob.messages)
    try:
        marker_first(m, bob, since2, "efbig")
    except AssertionError as e:
        problems.append(str(e))
    # the default limit: 64 KiB
    since3 = len(bob.messages)
    check(expect_errno(lambda: write_chunks(m.path(C, "contacts", B, "post"),
                                            "d" * (64 * 1024 + 1)),
                       errno.EFBIG, "post, 64 KiB + 1, default limit"))
    write_chunks(m.path(C, "contacts", B, "post"), "e" * (64 * 1024))
    got = bob.wait_messages(C, 1, since3)
    if bodies(got)[0] != "e" * (64 * 1024):
        problems.append(f"default limit: the peer got {len(bodies(got)[0])} bytes "
                        f"{bodies(got)[0][:10]!r}... first")
    assert not problems, "\n".join(problems)


def test_log_and_stream_refuse_writes(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-rdonly")
    bob.send_message(A, "a record to protect")
    wait_records(m, B, [(B, "a record to protect")])
    before = read_log(m, B)
    problems = []
    for name in ("log", "stream"):
        p = cpath(m, B, name)
        for flags, what in ((os.O_WRONLY, "O_WRONLY"), (os.O_RDWR, "O_RDWR"),
                            (os.O_WRONLY | os.O_APPEND, "O_WRONLY|O_APPEND"),
                            (os.O_WRONLY | os.O_TRUNC, "O_WRONLY|O_TRUNC")):
            try:
                fd = os.open(p, flags)
            except OSError as e:
                if e.errno != errno.EACCES:
                    problems.append(f"open {name} {what}: {e!r} instead of EACCES")
                continue
            try:
                pr = expect_errno(lambda: os.write(fd, b"injected\tline\n"),
                                  (errno.EACCES, errno.EBADF),
                                  f"write to {name} opened {what}")
                if pr:
                    problems.append(pr)
            finally:
                try:
                    os.close(fd)
                except OSError:
                    pass
        pr = expect_errno(lambda: os.truncate(p, 0), (errno.EACCES, errno.EPERM),
                          f"truncate {name}")
        if pr:
            problems.append(pr)
    for name in ("send", "post"):
        # they read as empty (so that cp -r and tar copy them)
        with open(cpath(m, B, name), "rb") as f:
            if f.read() != b"":
                problems.append(f"{name} read as something")
    if read_log(m, B) != before:
        problems.append(f"the log changed: {read_log(m, B)!r}")
    assert not problems, "\n".join(problems)


def test_tools_that_make_or_move_names_are_refused_with_a_reason(server, tmp, stack):
    """The tree's files are its own: mkfifo, ln, ln -s of a new name say
    "Permission denied" (EACCES), rm and mv of one of its files
    "Operation not permitted" (EPERM); never "Function not implemented"
    (ENOSYS), and the tree and the log are as they were.  A new file in a
    conversation is one to send (cp): touch makes an empty one, which is
    "No data available" (ENODATA), and nothing is sent."""
    m, bob = setup(stack, server, tmp, "t-c-tools")
    bob.send_message(A, "before the tools")
    wait_records(m, B, [(B, "before the tools")])
    before_log = read_log(m, B)
    d = cpath(m, B, "")
    before_names = sorted(os.listdir(d))
    cases = [
        (["touch", os.path.join(d, "newfile")], "No data available"),
        (["mkfifo", os.path.join(d, "fifo")], "Permission denied"),
        (["ln", "-s", "log", os.path.join(d, "link")], "Permission denied"),
        (["ln", os.path.join(d, "log"), os.path.join(d, "hard")],
         "Permission denied"),
        (["rm", "-f", os.path.join(d, "post")], "Operation not permitted"),
        (["mv", os.path.join(d, "log"), os.path.join(d, "log2")],
         "Operation not permitted"),
        (["mv", os.path.join(d, "send"), os.path.join(d, "post")],
         "Operation not permitted"),
    ]
    problems = []
    for argv, want in cases:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        if r.returncode == 0:
            problems.append(f"{' '.join(argv)} succeeded")
        elif want not in r.stderr or "not implemented" in r.stderr:
            problems.append(f"{' '.join(argv)}: {r.stderr.strip()!r}, "
                            f"expected {want!r}")
    # touch of a file that is there only sets its times, as before
    r = subprocess.run(["touch", os.path.join(d, "send")],
                       capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        problems.append(f"touch send: {r.stderr.strip()!r}")
    if sorted(os.listdir(d)) != before_names:
        problems.append(f"the directory changed: {sorted(os.listdir(d))}")
    if read_log(m, B) != before_log:
        problems.append(f"the log changed: {read_log(m, B)!r}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# concurrency

WRITER = r"""
import os, sys
path, i = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY)
sys.stdin.read()   # the start signal: stdin closed
for j in range(50):
    # give the others the CPU between the pieces of a line: on a plain
    # file this interleaves nearly every line
    os.write(fd, b"w%02d " % i)
    os.sched_yield()
    os.write(fd, b"line %03d " % j)
    os.sched_yield()
    os.write(fd, b"end\n")
os.close(fd)
"""


def test_concurrent_writers_lines_never_interleave(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-writers")
    since = len(bob.messages)
    send = cpath(m, B, "send")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(send), str(i)],
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(10)]
    try:
        t0 = time.monotonic()
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait(30)
        t_write = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    errs = [(p.returncode, p.stderr.read()[-300:]) for p in procs if p.returncode]
    assert not errs, errs
    got = bodies(bob.wait_messages(A, 500, since, timeout=30))
    note(f"10 writers x 50 lines: written in {t_write:.2f}s, received in "
         f"{time.monotonic() - t0:.2f}s")
    bad = [b for b in got if not re.fullmatch(r"w\d\d line \d\d\d end", b)]
    assert not bad, f"{len(bad)} mangled lines, e.g. {bad[:5]!r}"
    assert len(got) == len(set(got)) == 500, \
        f"{len(got)} messages, {len(set(got))} different"
    per = {}
    for b in got:
        per.setdefault(b[:3], []).append(b)
    for w, lines in per.items():
        assert lines == sorted(lines), f"{w}'s lines out of order: {lines[:10]}"
    assert_stays(lambda: len(bob.messages_from(A, since)) == 500, 0.3,
                 what="exactly 500 messages")


def test_two_mounts_talk(server, tmp, stack):
    ma = mount(stack, tmp, {A: server.account("alice", resource="t-c-2m-a")}, name="ma")
    mb = mount(stack, tmp, {B: server.account("bob", resource="t-c-2m-b")}, name="mb")
    ma.wait_state(A, "online", timeout=10)
    mb.wait_state(B, "online", timeout=10)
    ra = reader(stack, cpath(ma, B, "stream"))
    rb = reader(stack, cpath(mb, A, "stream", acct=B))
    # alice -> bob: send, line by line
    write_chunks(cpath(ma, B, "send"), "".join(s + "\n" for s in SPECIAL))
    want = [(A, s) for s in SPECIAL]
    got_b = [parse_record(l)[1:] for l in rb.wait_lines(len(SPECIAL))]
    got_a = [parse_record(l)[1:] for l in ra.wait_lines(len(SPECIAL))]
    assert got_b == want, got_b
    assert got_a == want, got_a
    # bob -> alice: post, several lines with TABs and markup
    multi = "reply <one>\n\ttwo & three\n]]>\n\U0001F600 four\tfive"
    write_chunks(cpath(mb, A, "post", acct=B), multi + "\n")
    want2 = [(B, l) for l in multi.split("\n")]
    got_a = [parse_record(l) for l in ra.wait_lines(len(SPECIAL) + len(want2))]
    got_b = [parse_record(l) for l in rb.wait_lines(len(SPECIAL) + len(want2))]
    assert [x[1:] for x in got_a[len(SPECIAL):]] == want2, got_a
    assert [x[1:] for x in got_b[len(SPECIAL):]] == want2, got_b
    assert len({x[0] for x in got_a[len(SPECIAL):]}) == 1, got_a
    wait_records(ma, B, want + want2)
    wait_records(mb, A, want + want2, acct=B)
    assert [x[1:] for x in parse_records(read_log(ma, B))] == want + want2
    assert [x[1:] for x in parse_records(read_log(mb, A, acct=B))] == want + want2


# --------------------------------------------------------------------------
# nothing is lost: the offline outbox

def test_outbox_while_status_offline(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-outbox")
    full = f"{A}/t-c-outbox"
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    bob.wait_presence(full, ptype="unavailable")
    since = len(bob.messages)
    # none of these writes may fail because the link is down
    write_chunks(cpath(m, B, "send"), "queued one\nqueued two\n")
    write_chunks(cpath(m, B, "send"), "queued three, no newline")
    write_chunks(cpath(m, B, "post"), "queued post\nof two lines\n")
    assert_stays(lambda: not bob.messages_from(A, since), 0.5,
                 what="nothing sent while offline")
    assert m.connection(A)["state"] == "offline"
    t0 = time.monotonic()
    m.write(f"{A}/status", "available\n")
    got = bob.wait_messages(A, 4, since, timeout=15)
    note(f"'available' to the last queued message at the peer: "
         f"{time.monotonic() - t0:.3f}s")
    want = ["queued one", "queued two", "queued three, no newline",
            "queued post\nof two lines"]
    assert bodies(got)[:4] == want, bodies(got)
    got = marker_first(m, bob, since + len(got), "outbox")
    assert bodies(bob.messages_from(A, since)) == want + got[:1], \
        bodies(bob.messages_from(A, since))


def test_outbox_across_server_stop_and_start(tmp, stack):
    srv = Server(tmp / "srv", users={"alice": "alicepw", "bob": "bobpw"},
                 mutual=[("alice", "bob")])
    srv.start()
    stack.callback(srv.stop)
    m = mount(stack, tmp, {A: srv.account("alice", resource="t-c-restart")})
    m.wait_state(A, "online", timeout=10)
    srv.stop()
    # at once, before xmppfs may have noticed
    write_chunks(cpath(m, B, "send"), "written as the server stopped\n")
    wait_until(lambda: m.connection(A)["state"] != "online", timeout=10,
               what="alice to notice the server is gone")
    write_chunks(cpath(m, B, "send"), "written while the server was down\n")
    write_chunks(cpath(m, B, "post"), "posted while down\nsecond line")
    t0 = time.monotonic()
    srv.start_again()
    bob = peer(stack, srv, B, "bobpw", "t-c-restart-peer")
    got = bob.wait_messages(A, 3, timeout=40)
    note(f"server start to the 3 queued messages at the peer: "
         f"{time.monotonic() - t0:.2f}s")
    m.wait_state(A, "online", timeout=5)
    want = ["written as the server stopped", "written while the server was down",
            "posted while down\nsecond line"]
    assert bodies(got)[:3] == want, bodies(got)
    got = marker_first(m, bob, len(bob.messages), "restart")
    assert bodies(bob.messages_from(A)) == want + got[:1], \
        f"duplicates? {bodies(bob.messages_from(A))!r}"


def test_outbox_across_remount(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-outbox-rm")
    full = f"{A}/t-c-outbox-rm"
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    bob.wait_presence(full, ptype="unavailable")
    since = len(bob.messages)
    write_chunks(cpath(m, B, "send"), "queued before unmount\n")
    write_chunks(cpath(m, B, "post"), "posted before unmount\nline two\n")
    m.close()
    assert not bob.messages_from(A, since), bodies(bob.messages_from(A, since))
    m.remount()
    st = wait_until(lambda: m.connection(A)["state"] in ("online", "offline")
                    and m.connection(A)["state"], timeout=10,
                    what="alice online or offline after the remount")
    if st == "offline":
        note("after the remount the account is offline; writing 'available'")
        m.write(f"{A}/status", "available\n")
    got = bob.wait_messages(A, 2, since, timeout=15)
    want = ["queued before unmount", "posted before unmount\nline two"]
    assert bodies(got)[:2] == want, bodies(got)
    got = marker_first(m, bob, since + len(got), "remount")
    assert bodies(bob.messages_from(A, since)) == want + got[:1], \
        bodies(bob.messages_from(A, since))


def test_outbox_across_crash_and_remount(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-outbox-crash")
    full = f"{A}/t-c-outbox-crash"
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    bob.wait_presence(full, ptype="unavailable")
    since = len(bob.messages)
    write_chunks(cpath(m, B, "send"), "queued before the crash\n")
    write_chunks(cpath(m, B, "post"), "posted before the crash\nline two")
    m.kill(signal.SIGKILL)
    m.remount()
    st = wait_until(lambda: m.connection(A)["state"] in ("online", "offline")
                    and m.connection(A)["state"], timeout=10,
                    what="alice online or offline after the remount")
    if st == "offline":
        m.write(f"{A}/status", "available\n")
    got = bob.wait_messages(A, 2, since, timeout=15)
    want = ["queued before the crash", "posted before the crash\nline two"]
    assert bodies(got)[:2] == want, bodies(got)
    got = marker_first(m, bob, since + len(got), "crash")
    assert bodies(bob.messages_from(A, since)) == want + got[:1], \
        bodies(bob.messages_from(A, since))


def _recv_queue(port):
    """Bytes waiting unread in the receive queues of the TCP sockets on
    127.0.0.1:@port (the server's side of its connections)."""
    total = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, queues = fields[1], fields[4]
            if int(local.split(":")[1], 16) == port:
                total += int(queues.split(":")[1], 16)
    return total


def test_outbox_resends_what_a_killed_server_never_read(tmp, stack):
    """The server stops reading (SIGSTOP), takes messages into its socket
    buffer, and dies (SIGKILL) without acknowledging them (XEP-0198): they
    must be sent again after the reconnect, each once."""
    srv = Server(tmp / "srv", users={"alice": "alicepw", "bob": "bobpw"},
                 mutual=[("alice", "bob")])
    srv.start()
    stack.callback(srv.stop)
    m = mount(stack, tmp, {A: srv.account("alice", resource="t-c-unacked")})
    m.wait_state(A, "online", timeout=10)
    # stop the server only when the login exchange is over: one iq round
    # trip through the mount (stopping it in the middle of the login burst
    # made the link fail now and then under load, before any message)
    fd = os.open(m.path(A, "iq"), os.O_RDWR)
    try:
        os.write(fd, b"<iq type='get' to='localhost'>"
                     b"<ping xmlns='urn:xmpp:ping'/></iq>")
        assert b"result" in os.read(fd, 4096)
    finally:
        os.close(fd)
    pid = int((srv.dir / "testbed.pid").read_text())
    assert str(srv.dir).encode() in open(f"/proc/{pid}/cmdline", "rb").read()
    q0 = _recv_queue(srv.port)
    os.kill(pid, signal.SIGSTOP)
    try:
        want = [f"unacked {i}" for i in range(3)]
        write_chunks(cpath(m, B, "send"), "".join(w + "\n" for w in want))
        wait_until(lambda: _recv_queue(srv.port) > q0 + 30, timeout=5,
                   what="the messages to wait in the stopped server's socket")
        assert m.connection(A)["state"] == "online", m.connection(A)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") or
               open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in "ZX",
               timeout=5, what="the killed server to be gone")
    t0 = time.monotonic()
    srv.start_again()
    bob = peer(stack, srv, B, "bobpw", "t-c-unacked-peer")
    got = bob.wait_messages(A, 3, timeout=40)
    note(f"server start to the 3 unacknowledged messages at the peer: "
         f"{time.monotonic() - t0:.2f}s")
    assert bodies(got)[:3] == want, bodies(got)
    got = marker_first(m, bob, len(bob.messages), "unacked")
    assert bodies(bob.messages_from(A)) == want + got[:1], \
        f"duplicates? {bodies(bob.messages_from(A))!r}"


# --------------------------------------------------------------------------
# fsync (SPEC "Nothing is lost": fsync on send/post returns once every
# message written on that descriptor was acknowledged by the server)

def test_fsync_waits_for_the_servers_acknowledgement(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-fsync")
    since = len(bob.messages)
    fd = os.open(cpath(m, B, "send"), os.O_WRONLY)
    try:
        os.write(fd, b"acknowledged before fsync returns\n")
        t0 = time.monotonic()
        os.fsync(fd)
        note(f"fsync online: {(time.monotonic() - t0) * 1000:.1f} ms")
        # the server has it: the outbox journal no longer holds it
        outbox = os.path.join(m.data, A, "outbox")
        with open(outbox, encoding="utf-8", errors="replace") as f:
            journal = f.read()
        added = re.findall(r"^\+ (\S+) ", journal, re.M)
        removed = re.findall(r"^- (\S+)$", journal, re.M)
        assert added and set(added) <= set(removed), journal
    finally:
        os.close(fd)
    bob.wait_messages(A, 1, since, timeout=5)

    # offline: fsync blocks until the account is back and the server acked
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    fd = os.open(cpath(m, B, "send"), os.O_WRONLY)
    done = threading.Event()
    try:
        os.write(fd, b"written while offline\n")
        t = threading.Thread(target=lambda: (os.fsync(fd), done.set()))
        t.start()
        assert_stays(lambda: not done.is_set(), 0.5,
                     what="fsync to wait while the account is offline")
        m.write(f"{A}/status", "available\n")
        wait_until(done.is_set, timeout=15, what="fsync to return once online")
        t.join(5)
    finally:
        os.close(fd)
    got = bob.wait_messages(A, 2, since, timeout=5)
    assert bodies(got)[-1] == "written while offline", bodies(got)


def test_fsync_is_interrupted_by_a_signal(server, tmp, stack):
    m, bob = setup(stack, server, tmp, "t-c-fsync-int")
    m.write(f"{A}/status", "offline\n")
    m.wait_state(A, "offline", timeout=5)
    code = ("import os\n"
            f"fd = os.open({str(cpath(m, B, 'send'))!r}, os.O_WRONLY)\n"
            "os.write(fd, b'never acknowledged yet\\n')\n"
            "print('fsync', flush=True)\n"
            "os.fsync(fd)\n")
    child = subprocess.Popen([sys.executable, "-c", code],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = child.stdout.readline().strip()
        assert first == b"fsync", (first, child.stderr.read())
        assert_stays(lambda: child.poll() is None, 0.3,
                     what="fsync to block while offline")
        t0 = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(5)
        note(f"SIGINT ended a blocked fsync in "
             f"{(time.monotonic() - t0) * 1000:.1f} ms")
        assert child.returncode != 0
        assert b"KeyboardInterrupt" in child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
