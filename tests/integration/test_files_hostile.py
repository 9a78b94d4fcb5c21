"""Files with cp and avatars, attacked: what a careless program, a
hostile contact or a bad server does to them (issue 16, items 3 and 4).
Each test is a case that once went wrong; the bytes bob downloads must
be the bytes copied, or the copy must fail with a clear errno."""

import base64
import errno
import hashlib
import os
import ssl
import subprocess
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

from xfstest import Mount, Peer, wait_until

DOM = "localhost"
A = f"alice@{DOM}"
B = f"bob@{DOM}"
E = f"eve@{DOM}"  # in no one's roster
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "eve": "evepw"},
              mutual=[("alice", "bob")], direct_tls=False)


def download(server, url):
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return r.read()


def mount(stack, server, tmp, res, user="alice"):
    acct = server.jid(user)
    m = stack.enter_context(Mount(tmp, {acct: server.account(user, resource=res)}))
    m.wait_state(acct, "online", timeout=10)
    return m


def received(server, bob, since):
    """The bytes of the file whose link bob got after @since."""
    got = bob.wait_message(A, None, since=since)
    return download(server, got["body"])


def test_append_survives_a_stat_between_writes(server, tmp, stack):
    """cmd >> FILE writes at the size the kernel thinks the file has; a
    stat in between (ls -l, the shell) must not tell it 0, or the next
    write lands at the start, over the first."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hap-b"))
    m = mount(stack, server, tmp, "t-hap")
    dst = m.path(A, "contacts", B, "notes.txt")
    since = len(bob.messages)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"first line\n")
        st = os.stat(dst)
        os.write(fd, b"second line\n")
    finally:
        os.close(fd)
    assert received(server, bob, since) == b"first line\nsecond line\n"
    assert st.st_size == len(b"first line\n"), st


def test_sparse_file_ending_in_a_hole_is_sent_whole(server, tmp, stack):
    """cp of a sparse file writes its data and then ftruncate()s the
    copy to the full size, for the hole at the end: that truncate must
    make the file sent that long, not be ignored (which sent only the
    data written, silently)."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hsp-b"))
    m = mount(stack, server, tmp, "t-hsp")
    src = tmp / "sparse.bin"
    with open(src, "wb") as f:
        f.write(b"head")
        f.truncate(300 * 1024)
    since = len(bob.messages)
    subprocess.run(["cp", "--sparse=always", str(src),
                    str(m.path(A, "contacts", B)) + "/"], check=True)
    assert received(server, bob, since) == src.read_bytes()


def test_truncate_by_name_of_a_copy_in_progress_is_ebusy(server, tmp, stack):
    """truncate(1) of the name while another descriptor copies to it:
    EBUSY, and the copy goes on whole."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-htr-b"))
    m = mount(stack, server, tmp, "t-htr")
    dst = m.path(A, "contacts", B, "busy.txt")
    since = len(bob.messages)
    with open(dst, "wb", buffering=0) as f:
        f.write(b"0123456789")
        try:
            os.truncate(dst, 3)
            raise AssertionError("truncated by name")
        except OSError as e:
            assert e.errno == errno.EBUSY, e
        f.truncate(4)  # its own descriptor: taken
        f.seek(4)
        f.write(b"!")
    assert received(server, bob, since) == b"0123!"


def test_close_from_another_thread_sends(server, tmp, stack):
    """A program that opens in one thread and closes in another (Go's
    runtime, a thread pool): its close is still the opener's, and sends;
    not a silent drop at release."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hth-b"))
    m = mount(stack, server, tmp, "t-hth")
    since = len(bob.messages)
    fd = os.open(m.path(A, "contacts", B, "threads.txt"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"from a thread pool\n")
    res = {}

    def closer():
        try:
            os.close(fd)
            res["ok"] = True
        except OSError as e:
            res["err"] = e
    t = threading.Thread(target=closer)
    t.start()
    t.join()
    assert res == {"ok": True}, res
    assert received(server, bob, since) == b"from a thread pool\n"


def test_shell_redirect_sends(server, tmp, stack):
    """echo hi > FILE: the shell opens FILE, dup2()s it onto 1 and closes
    the first descriptor, a close of the opener before any write.  That
    close of an empty file must not end the copy with ENODATA: the last
    close sends what was written."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hsh-b"))
    m = mount(stack, server, tmp, "t-hsh")
    since = len(bob.messages)
    subprocess.run(["bash", "-c", 'echo hello > "$1"', "sh",
                    str(m.path(A, "contacts", B, "hello.txt"))], check=True)
    assert received(server, bob, since) == b"hello\n"


NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_NICK = "http://jabber.org/protocol/nick"
NS_DATA = "urn:xmpp:avatar:data"
NS_META = "urn:xmpp:avatar:metadata"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def publish_open(peer, node, item_id, payload):
    """Publish to @peer's PEP @node, readable by anyone (open access)."""
    ps = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
    pub = ET.SubElement(ps, f"{{{NS_PUBSUB}}}publish", node=node)
    ET.SubElement(pub, f"{{{NS_PUBSUB}}}item", id=item_id).append(payload)
    opts = ET.SubElement(ps, f"{{{NS_PUBSUB}}}publish-options")
    x = ET.SubElement(opts, "{jabber:x:data}x", type="submit")
    for var, val in (("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
                     ("pubsub#access_model", "open")):
        f = ET.SubElement(x, "{jabber:x:data}field", var=var)
        ET.SubElement(f, "{jabber:x:data}value").text = val
    r = peer.iq(peer.bare, "set", ps)
    assert r is not None and r.get("type") == "result", \
        ET.tostring(r) if r is not None else "no answer"


def test_a_stranger_sets_no_avatar_and_no_nick(server, tmp, stack):
    """PEP notifications come from contacts (the server sends them to
    subscribers).  Anyone may send a message that looks like one: eve,
    in no roster, sends alice an avatar's metadata (its data readable by
    all) and a nick.  Nothing of it is fetched or kept: else anyone could
    put a file of a MiB on alice's disk per JID they name."""
    eve = stack.enter_context(Peer(E, "evepw", server, resource="t-hev-e"))
    m = mount(stack, server, tmp, "t-hev")
    sha = hashlib.sha1(PNG).hexdigest()
    data = ET.Element(f"{{{NS_DATA}}}data")
    data.text = base64.b64encode(PNG).decode()
    publish_open(eve, NS_DATA, sha, data)
    eve.send_raw(
        f"<message to='{A}' type='headline'>"
        "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
        f"<items node='{NS_META}'><item id='{sha}'>"
        f"<metadata xmlns='{NS_META}'><info id='{sha}' type='image/png' "
        f"bytes='{len(PNG)}'/></metadata></item></items></event></message>"
        f"<message to='{A}' type='headline'>"
        "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
        f"<items node='{NS_NICK}'><item id='current'>"
        f"<nick xmlns='{NS_NICK}'>Your Bank</nick></item></items></event>"
        "</message>")
    # (a message after them: once it is in, they were handled)
    eve.send_message(A, "after")
    wait_until(lambda: "after" in open(m.path(A, "contacts", E, "log")).read(),
               timeout=10, what="eve's message after the notifications")
    time.sleep(0.5)  # (a fetch, had one gone out, would be answered)
    kept = list((m.data / A / "avatars").glob("*")) if (m.data / A / "avatars").exists() else []
    assert kept == [], kept
    names = os.listdir(m.path(A, "contacts", E))
    assert not [n for n in names if n.startswith("avatar.")], names
    with open(m.path(A, "contacts", E, "nick")) as f:
        assert f.read() == ""


def test_own_avatar_written_out_of_order(server, tmp, stack):
    """A writer that does not go front to back (pwrite, a download tool,
    cp with holes): each byte lands where it was written, not after the
    last write."""
    m = mount(stack, server, tmp, "t-havo")
    img = PNG + os.urandom(3000)
    fd = os.open(m.path(A, "avatar.png"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.pwrite(fd, img[1000:], 1000)
        os.pwrite(fd, img[:1000], 0)
    finally:
        os.close(fd)
    with open(m.path(A, "avatar.png"), "rb") as f:
        assert f.read() == img


def upload_events(m, jid):
    with open(m.path(A, "log"), encoding="utf-8") as f:
        recs = [l.split("\t", 3) for l in f.read().splitlines()]
    return [r[3] for r in recs if len(r) == 4 and r[1] == "upload" and r[2] == jid]


def test_odd_names_are_sent_and_told_on_one_line(server, tmp, stack):
    """Names with a newline or a tab, and of 255 bytes, are sent; each
    'upload' event is one record (a newline in a name must not make a
    second one that reads as an event of its own); a name that is not
    UTF-8, or hidden, is refused; a conversation's own file is not
    replaced."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hnm-b"))
    m = mount(stack, server, tmp, "t-hnm")
    d = m.path(A, "contacts", B)
    fake = "x.txt: sent, https:evil.example"
    for name in (f"two\n{fake}", "tab\there.txt", "n" * 251 + ".txt"):
        since = len(bob.messages)
        with open(os.path.join(d, name), "wb") as f:
            f.write(name.encode())
        assert received(server, bob, since) == name.encode()
    ev = upload_events(m, B)
    assert not [e for e in ev if e.startswith(fake)], ev
    assert len([e for e in ev if ": sent, " in e]) == 3, ev
    for name, err in ((b"bad\xff.txt", errno.EACCES), (b".hidden", errno.EACCES)):
        try:
            os.close(os.open(os.path.join(os.fsencode(d), name),
                             os.O_WRONLY | os.O_CREAT, 0o600))
            raise AssertionError(f"{name!r} made")
        except OSError as e:
            assert e.errno == err, (name, e)
    for own in ("log", "log.ids", "nick", "avatar.png"):
        try:
            with open(os.path.join(d, own), "wb") as f:
                f.write(b"clobber")
            raise AssertionError(f"{own} written")
        except OSError as e:
            assert e.errno in (errno.EACCES, errno.EPERM), (own, e)


def test_many_copies_at_once_each_sent_once(server, tmp, stack):
    """Twelve cp's at once into one conversation (more than libfuse's ten
    workers), and a second writer of a name being copied (EBUSY): each
    file reaches bob once, with its bytes."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-hmany-b"))
    m = mount(stack, server, tmp, "t-hmany")
    d = m.path(A, "contacts", B)
    files = {}
    for i in range(12):
        p = tmp / f"f{i}.bin"
        p.write_bytes(os.urandom(20000 + i))
        files[p.name] = p.read_bytes()
    since = len(bob.messages)
    with open(d / "same.txt", "wb") as held:
        held.write(b"held")
        try:
            open(d / "same.txt", "wb").close()
            raise AssertionError("a second writer of same.txt")
        except OSError as e:
            assert e.errno == errno.EBUSY, e
        procs = [subprocess.Popen(["cp", str(tmp / n), str(d) + "/"]) for n in files]
        assert [p.wait(60) for p in procs] == [0] * len(procs)
    files["same.txt"] = b"held"
    wait_until(lambda: len(bob.messages_from(A, since=since)) >= len(files),
               timeout=20, what="every file's link")
    time.sleep(0.5)
    got = sorted(download(server, msg["body"]) for msg in bob.messages_from(A, since=since))
    assert got == sorted(files.values())


def test_server_gone_before_the_close(tmp, stack):
    """The server stops between the last write and the close: the close
    fails at once with ENOTCONN (no slot can be asked for), says so in
    the events, and nothing is sent later, when the server is back."""
    from xfstest import Server
    srv = Server(tmp / "srv", users={"alice": "alicepw", "bob": "bobpw"},
                 mutual=[("alice", "bob")])
    srv.start()
    stack.callback(srv.stop)
    m = stack.enter_context(Mount(tmp, {A: srv.account("alice", resource="t-hgone")}))
    m.wait_state(A, "online", timeout=10)
    f = open(m.path(A, "contacts", B, "late.txt"), "wb", buffering=0)
    f.write(b"late")
    srv.stop()
    wait_until(lambda: m.connection(A).get("state") != "online", timeout=10,
               what="the account to see the server gone")
    t0 = time.monotonic()
    try:
        f.close()
        raise AssertionError("sent with the server gone")
    except OSError as e:
        assert e.errno == errno.ENOTCONN, e
    assert time.monotonic() - t0 < 5
    assert upload_events(m, B)[-1].startswith("late.txt: not sent: "), upload_events(m, B)
    srv.start_again()
    bob = stack.enter_context(Peer(B, "bobpw", srv, resource="t-hgone-b"))
    m.wait_state(A, "online", timeout=30)
    time.sleep(1)
    assert bob.messages_from(A) == [], bob.messages_from(A)


def test_stalled_uploads_leave_the_mount_answering(server, tmp, stack):
    """Twelve copies whose upload service stalls (the server frozen right
    after their last write) wait in their close; the mount's other files
    answer meanwhile (a close used to hold one of FUSE's ten workers for
    as long as its upload waited), and once the server goes on each file
    arrives."""
    import signal
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-stall-b"))
    m = mount(stack, server, tmp, "t-stall")
    time.sleep(0.5)  # (the upload service found)
    since = len(bob.messages)
    pid = int((server.dir / "prosody.pid").read_text())
    fds, results = [], {}
    for i in range(12):
        fd = os.open(m.path(A, "contacts", B, f"stall{i}.txt"),
                     os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, f"stalled file {i}\n".encode())
        fds.append(fd)

    def close(i, fd):
        try:
            os.close(fd)
            results[i] = 0
        except OSError as e:
            results[i] = e.errno
    os.kill(pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=close, args=(i, fd))
                   for i, fd in enumerate(fds)]
        for t in threads:
            t.start()
        time.sleep(1)
        assert len(results) == 0, results  # (they wait for the server)
        t0 = time.monotonic()
        with open(m.path(A, "connection"), encoding="utf-8") as f:
            assert "state:" in f.read()
        os.listdir(m.path(A, "contacts"))
        took = time.monotonic() - t0
        assert took < 2, f"the mount took {took:.1f} s to answer"
    finally:
        os.kill(pid, signal.SIGCONT)
    for t in threads:
        t.join(timeout=60)
    assert all(v == 0 for v in results.values()) and len(results) == 12, results
    wait_until(lambda: len([x for x in bob.messages[since:]
                            if x["from"].split("/")[0] == A]) >= 12, timeout=20,
               what="the twelve links at bob")
