"""Tools that walk the tree, and rmdir of a conversation (issue 14): cp -r, rsync -a, tar, grep -r and
find over a live mount finish, exit 0 and copy the logs byte for byte.

What would hang them is a file that never ends: `stream`, `events` and
`raw` are symbolic links to the hidden `.stream`, `.events`, `.raw`, which
a tree walker copies as links and does not follow (cat, tail -f and `>`
follow them); the files one writes to (`send`, `post`, `invite`, `kick`,
`ban`) read as empty.  Each test runs the real tool, with a deadline, and
compares what it copied with what the mount shows."""

import errno
import glob
import os
import stat
import subprocess
import tarfile
import time

from xfstest import LineReader, Mount, Peer, TestFailure, note, wait_until

A = "alice@localhost"
B = "bob@localhost"
ROOM = "tools-room@conference.localhost"
C = "carol@localhost"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "carol": "carolpw",
                     "dave": "davepw"},
              mutual=[("alice", "bob"), ("alice", "carol")], direct_tls=False)

LINKS = {"events": ".events", "raw": ".raw"}
CONV_LINKS = {"stream": ".stream"}


def live_mount(stack, server, tmp, res):
    """alice mounted with a conversation with bob and a joined room, each
    with a record in its log."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource=f"{res}-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource=res)}))
    m.wait_state(A, "online", timeout=10)
    body = f"hello from bob {os.urandom(3).hex()}"
    bob.send_message(A, body)
    log = m.path(A, "contacts", B, "log")
    wait_until(lambda: body in open(log, encoding="utf-8").read(), timeout=10,
               ignore=(OSError,), what="bob's message in the log")
    try:
        os.mkdir(m.path(A, "rooms", ROOM))
    except FileExistsError:
        pass  # an earlier test's mkdir bookmarked it: joined at the connect
    said = f"alice in the room {os.urandom(3).hex()}"
    m.write(f"{A}/rooms/{ROOM}/send", said + "\n")
    rlog = m.path(A, "rooms", ROOM, "log")
    wait_until(lambda: said in open(rlog, encoding="utf-8").read(), timeout=10,
               ignore=(OSError,), what="alice's room message in the room's log")
    return m, bob, body


def run_tool(argv, timeout=60):
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"{' '.join(argv)} did not finish in {timeout} s")
    note(f"{argv[0]}: exit {r.returncode} in {time.monotonic() - t0:.2f} s")
    if r.returncode != 0:
        raise TestFailure(f"{' '.join(argv)} exited {r.returncode}: "
                          f"{r.stderr[-1500:]!r}")
    return r


def check_copy(m, copy):
    """The copy of alice's directory: logs identical, the live files links,
    the files one writes to empty, nothing hidden copied."""
    src = m.path(A)
    problems = []
    for rel in ("log", f"contacts/{B}/log", f"rooms/{ROOM}/log", "connection",
                "status", f"contacts/{B}/name", f"rooms/{ROOM}/occupants"):
        with open(os.path.join(src, rel), "rb") as f:
            want = f.read()
        try:
            with open(os.path.join(copy, rel), "rb") as f:
                got = f.read()
        except OSError as e:
            problems.append(f"{rel}: not copied ({e})")
            continue
        # the account's event log and the connection file may grow while
        # the tool runs; the conversation logs do not
        if rel in ("log", "connection"):
            if not got:
                problems.append(f"{rel}: copied empty")
        elif got != want:
            problems.append(f"{rel}: copy differs: {got[-200:]!r} != {want[-200:]!r}")
    for d, links in (("", LINKS), (f"contacts/{B}", CONV_LINKS),
                     (f"rooms/{ROOM}", CONV_LINKS)):
        for name, target in links.items():
            p = os.path.join(copy, d, name)
            if not os.path.islink(p):
                problems.append(f"{d}/{name}: not copied as a link")
            elif os.readlink(p) != target:
                problems.append(f"{d}/{name} -> {os.readlink(p)}")
            if os.path.lexists(os.path.join(copy, d, target)):
                problems.append(f"{d}/{target}: a hidden file was copied")
    for rel in (f"contacts/{B}/send", f"contacts/{B}/post", f"rooms/{ROOM}/send",
                f"rooms/{ROOM}/invite", f"rooms/{ROOM}/kick"):
        p = os.path.join(copy, rel)
        st = os.lstat(p) if os.path.lexists(p) else None
        if not st or not stat.S_ISREG(st.st_mode) or st.st_size:
            problems.append(f"{rel}: not an empty file in the copy: {st}")
    assert not problems, "\n".join(problems)


def test_cp_r_copies_the_mount(server, tmp, stack):
    m, _, _ = live_mount(stack, server, tmp, "t-tools-cp")
    dest = tmp / "cp-copy"
    run_tool(["cp", "-r", str(m.path(A)), str(dest)])
    check_copy(m, dest)


def test_rsync_a_copies_the_mount(server, tmp, stack):
    m, _, _ = live_mount(stack, server, tmp, "t-tools-rsync")
    dest = tmp / "rsync-copy"
    run_tool(["rsync", "-a", str(m.path(A)) + "/", str(dest) + "/"])
    check_copy(m, dest)
    # a second run over the copy finds nothing to do and still exits 0
    r = run_tool(["rsync", "-a", "--itemize-changes", str(m.path(A)) + "/",
                  str(dest) + "/"])
    note(f"second rsync: {r.stdout.strip()[:500]!r}")


def test_tar_archives_the_mount(server, tmp, stack):
    """tar exits 0: no "Cannot open", and no "file changed as we read it"
    (a directory whose time moved while tar read it)."""
    m, _, _ = live_mount(stack, server, tmp, "t-tools-tar")
    archive = tmp / "mount.tar"
    run_tool(["tar", "-cf", str(archive), "-C", str(m.mnt), A])
    dest = tmp / "untarred"
    dest.mkdir()
    with tarfile.open(archive) as t:
        t.extractall(dest)
    check_copy(m, dest / A)


def test_grep_r_and_find_finish(server, tmp, stack):
    m, _, body = live_mount(stack, server, tmp, "t-tools-grep")
    r = run_tool(["grep", "-r", body, str(m.mnt)])
    assert f"contacts/{B}/log:" in r.stdout, r.stdout
    r = run_tool(["find", str(m.mnt)])
    names = r.stdout.split("\n")
    assert str(m.path(A, "contacts", B, "stream")) in names, names
    assert not any(n.endswith("/.stream") for n in names), names


def test_links_lead_to_the_live_files(server, tmp, stack):
    """What follows a link still gets the stream: cat stream, tail -f
    events, and a stanza written to raw goes out."""
    m, bob, _ = live_mount(stack, server, tmp, "t-tools-follow")
    assert os.readlink(m.path(A, "contacts", B, "stream")) == ".stream"
    assert ".stream" not in os.listdir(m.path(A, "contacts", B))
    assert ".events" not in os.listdir(m.path(A))
    with LineReader(m.path(A, "contacts", B, "stream")) as s, \
            LineReader(m.path(A, "events")) as ev:
        s.wait_open()
        ev.wait_open()
        body = f"through the link {os.urandom(3).hex()}"
        bob.send_message(A, body)
        wait_until(lambda: any(l.endswith("\t" + body) for l in s.snapshot()),
                   timeout=10, what="the message through cat stream")
        wait_until(lambda: any(body in l for l in ev.snapshot()),
                   timeout=10, what="the message through cat events")
    since = len(bob.messages_from(A, 0))
    stanza = (f"<message to='{B}' type='chat'><body>raw through the link"
              f"</body></message>")
    m.write(f"{A}/raw", stanza)
    bob.wait_message(A, "raw through the link", since=since)


# --------------------------------------------------------------------------
# rmdir of a conversation

def trashed_logs(m, acct=A, kind="contacts"):
    return sorted(glob.glob(str(m.data / acct / "trash" / kind / "*" / "log")))


def test_rmdir_forgets_a_conversation_not_in_the_roster(server, tmp, stack):
    """A conversation with someone not in the roster (dave: a real
    account, so that no bounce lands in the log meanwhile; a typo'd JID
    is the same to xmppfs): rmdir takes it off the list, its log
    goes to DATA/ACCOUNT/trash/contacts/JID.TIME/, a stream open on it
    ends, and a new message to it starts an empty log (no page of the old
    one shows through the kernel's cache)."""
    typo = "dave@localhost"
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-rm")}))
    m.wait_state(A, "online", timeout=10)
    contacts = m.path(A, "contacts")
    conv = os.path.join(contacts, typo)
    problem = None
    try:
        os.rmdir(conv)
        problem = "rmdir of a JID with no conversation succeeded"
    except OSError as e:
        if e.errno != errno.ENOENT:
            problem = f"rmdir of a JID with no conversation: {e!r}"
    assert problem is None, problem
    old = "x" * 5000 + " the old conversation"   # more than a page
    m.write(f"{A}/contacts/{typo}/send", old + "\n")
    wait_until(lambda: old in open(os.path.join(conv, "log")).read(),
               timeout=10, what="the message in the log")
    assert typo in os.listdir(contacts)
    with open(os.path.join(conv, "log"), "rb") as f:
        cached = f.read()   # the kernel now has the log's pages
    with LineReader(os.path.join(conv, "stream")) as s:
        s.wait_open()
        os.rmdir(conv)
        wait_until(lambda: s.proc.poll() is not None, timeout=5,
                   what="cat stream to end when its conversation was removed")
        assert s.proc.returncode == 0, s.proc.returncode
    assert typo not in os.listdir(contacts), os.listdir(contacts)
    trash = trashed_logs(m)
    assert len(trash) == 1, trash
    with open(trash[0], "rb") as f:
        assert f.read() == cached
    assert os.path.basename(os.path.dirname(trash[0])).startswith(typo + ".")
    # the name still resolves (any valid JID does), with an empty log
    assert os.path.getsize(os.path.join(conv, "log")) == 0
    new = "a new conversation"
    m.write(f"{A}/contacts/{typo}/send", new + "\n")
    wait_until(lambda: new in open(os.path.join(conv, "log")).read(),
               timeout=10, what="the new message in the new log")
    with open(os.path.join(conv, "log")) as f:
        text = f.read()
    assert "old conversation" not in text and text.count("\n") == 1, text[:300]
    assert typo in os.listdir(contacts)
    # forgotten across a remount too: the new log only
    m.remount()
    m.wait_state(A, "online", timeout=10)
    with open(os.path.join(conv, "log")) as f:
        assert "old conversation" not in f.read()


def test_rmdir_of_a_roster_contact_then_of_its_conversation(server, tmp, stack):
    """rmdir of a roster item removes the item and keeps the log (listed:
    it is a conversation); a second rmdir forgets the log."""
    carol = stack.enter_context(Peer(C, "carolpw", server, resource="t-rm2-peer"))
    m = stack.enter_context(Mount(tmp, {A: server.account("alice", resource="t-rm2")}))
    m.wait_state(A, "online", timeout=10)
    body = f"from carol {os.urandom(3).hex()}"
    carol.send_message(A, body)
    conv = m.path(A, "contacts", C)
    wait_until(lambda: body in open(os.path.join(conv, "log")).read(),
               timeout=10, ignore=(OSError,), what="carol's message")
    os.rmdir(conv)
    assert C in os.listdir(m.path(A, "contacts")), "the conversation went too"
    assert trashed_logs(m) == []
    with open(os.path.join(conv, "subscription")) as f:
        sub = f.read()
    assert sub.startswith("none") or sub == "", sub
    os.rmdir(conv)
    assert C not in os.listdir(m.path(A, "contacts"))
    assert len(trashed_logs(m)) == 1
