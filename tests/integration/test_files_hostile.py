"""Files with cp and avatars, attacked: what a careless program, a
hostile contact or a bad server does to them (issue 16, items 3 and 4).
Each test is a case that once went wrong; the bytes bob downloads must
be the bytes copied, or the copy must fail with a clear errno."""

import errno
import os
import ssl
import subprocess
import threading
import time
import urllib.request

from xfstest import Mount, Peer, wait_until

DOM = "localhost"
A = f"alice@{DOM}"
B = f"bob@{DOM}"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw"},
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
