"""The foundation: mount, connect, connection/status files, clean unmount.

Each test mounts its own xmppfs against the file's shared Prosody (or a
fake server that misbehaves) and checks the result from both sides: the
files in the mount, and an independent client (slixmpp) or the server.
Every test uses its own resource so that what it waits for cannot be
confused with what an earlier test left on the server."""

import contextlib
import errno
import os
import re
import socket
import stat
import subprocess
import time
from datetime import datetime, timezone

import xfstest
from xfstest import (Mount, NoTlsServer, Peer, ROOT, SilentServer, TestFailure,
                     TlsStallServer, assert_stays, cert_sha256, is_mounted, note,
                     pid_alive, run_xmppfs, wait_until, xmppfs_binary, TIME_RE)


CAROL_PW = "c4rol-Pw-0x5eed-7f3a"
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", "carol": CAROL_PW},
              mutual=[("alice", "bob")], direct_tls=True)

A = "alice@localhost"
B = "bob@localhost"


def mount(stack, tmp, accounts, **kw):
    return stack.enter_context(Mount(tmp, accounts, **kw))


def peer(stack, server, jid, password, resource):
    return stack.enter_context(Peer(jid, password, server, resource=resource))


def error_with(m, jid, words, timeout):
    """Wait until @jid's connection error contains @words (lower case)."""
    def check():
        kv = m.connection(jid)
        return kv if words in kv.get("error", "").lower() else None
    return wait_until(check, timeout=timeout,
                      what=lambda: f"{jid} error containing {words!r}; "
                                   f"connection now: {m._conn_or_err(jid)}")


def check_since(kv):
    assert TIME_RE.match(kv.get("since", "")), f"bad since: {kv}"
    t = datetime.strptime(kv["since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    age = abs(datetime.now(timezone.utc).timestamp() - t.timestamp())
    assert age < 300, f"since {kv['since']} is {age:.0f} s away from now"


# --------------------------------------------------------------------------

def test_online_with_tls_and_bound_jid(server, tmp, stack):
    bob = peer(stack, server, B, "bobpw", "online-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-online")})
    kv = m.wait_state(A, "online", timeout=10)
    dt = time.monotonic() - m.t_mounted
    note(f"start to mounted {m.t_mounted - m.t_start:.3f}s, "
         f"mounted to online {dt:.3f}s")
    assert kv["jid"] == f"{A}/t-online", kv
    assert kv["server"] == f"127.0.0.1:{server.port}", kv
    assert kv["tls"] == f"on, certificate sha256 {cert_sha256(server.ca_file)}", kv
    check_since(kv)
    assert not kv.get("error"), kv
    assert dt < 2.0, f"online took {dt:.3f}s after the mount"
    # the other side: the server bound that resource over TLS, bob sees it
    bob.wait_presence(f"{A}/t-online", show="")
    lines = server.c2s_session_lines(f"{A}/t-online")
    assert any("Stream encrypted" in l for l in lines), "no TLS in Prosody's log"


@contextlib.contextmanager
def socket_on_loopback():
    """A TCP port on 127.0.0.1 that is bound but not listening: connections
    to it are refused while the context lasts."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def start_as_user(stack, tmp, accounts, foreground=False, timeout=30):
    """Run xmppfs as a user does, in the background (or with -f), and wait
    for the command to end: (result, Mount with its paths).  Whatever it
    leaves mounted is unmounted at the end, and its daemon must exit."""
    m = Mount(tmp, accounts)
    m.data.mkdir()
    m.mnt.mkdir()
    m.cfg.write_text(m.text)
    os.chmod(m.cfg, 0o600)

    def cleanup():
        pids = []
        for lock in m.data.glob("*/lock"):
            try:
                pids.append(int(lock.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        if is_mounted(m.mnt):
            m.unmount()
        for pid in pids:
            if pid != os.getpid():
                wait_until(lambda: not pid_alive(pid), timeout=15,
                           what=f"the daemon {pid} to exit after its unmount")
    stack.callback(cleanup)
    args = ["--config", m.cfg, "--data-dir", m.data, m.mnt]
    r = run_xmppfs((["-f"] if foreground else []) + args, timeout=timeout)
    return r, m


def lines_of(text):
    """xmppfs's lines on stderr: not blank, and not the sanitizers' notes
    of an ASan build ("==PID==WARNING: ASan doesn't fully support
    makecontext/swapcontext...", for the pool's coroutines)."""
    return [l for l in text.splitlines()
            if l.strip() and not re.match(r"==\d+==", l)]


def test_wrong_password_fails_the_mount(server, tmp, stack):
    """As sshfs does: a login that can never work fails the command (status
    1), with one line that says which account and what to do, and leaves
    no mount and no daemon behind."""
    t0 = time.monotonic()
    r, m = start_as_user(stack, tmp, {A: server.account(
        "alice", password="not-alices-pw", resource="t-wrongpw")})
    dt = time.monotonic() - t0
    note(f"exit {r.returncode} after {dt:.1f}s: {r.stderr.strip()!r}")
    assert r.returncode == 1, r
    assert not is_mounted(m.mnt)
    lines = lines_of(r.stderr)
    assert len(lines) == 2, lines
    assert A in lines[0] and "authentication" in lines[0].lower() \
        and "reconnect" in lines[0], lines
    assert "no account can log in" in lines[1], lines
    assert "not-alices-pw" not in r.stderr
    assert not server.c2s_session_ids(f"{A}/t-wrongpw")
    assert dt < 10, f"the verdict took {dt:.1f}s"


def test_untrusted_certificate_fails_a_foreground_mount(server, tmp, stack):
    """-f says the same and exits 1 when no account can work."""
    r, m = start_as_user(stack, tmp, {A: server.account(
        "alice", ca_file=None, resource="t-untrusted")}, foreground=True)
    assert r.returncode == 1, r
    assert not is_mounted(m.mnt)
    # (-f also logs the account's life on stderr; the verdict is one line)
    bad = [l for l in lines_of(r.stderr)
           if A in l and "certificate" in l and "not retried" in l]
    assert len(bad) == 1, r.stderr
    note(bad[0])
    # what the certificate is, and the two ways to trust it
    fp = cert_sha256(server.ca_file)
    assert f"sha256 {fp}" in bad[0] and "ca_file" in bad[0] and \
        f"tls_fingerprint = SHA256:{fp}" in bad[0], bad[0]
    assert any("no account can log in" in l for l in lines_of(r.stderr)), \
        r.stderr
    assert not server.c2s_session_ids(f"{A}/t-untrusted"), \
        "logged in although the certificate is not trusted"


def test_a_pinned_certificate_is_trusted_and_no_other(server, tmp, stack):
    """tls_fingerprint accepts exactly that certificate: a server whose
    certificate no CA vouches for logs in when pinned; a server the CAs
    vouch for is refused when the pin names another certificate, before
    the password goes out (no session on the server)."""
    fp = cert_sha256(server.ca_file)
    m = mount(stack, tmp, {A: server.account(
        "alice", ca_file=None, tls_fingerprint=f"SHA256:{fp}",
        resource="t-pinned")})
    kv = m.wait_state(A, "online", timeout=10)
    assert kv["tls"] == f"on, certificate sha256 {fp}", kv
    other = "SHA256:" + ":".join(["AB"] * 32)
    r, m2 = start_as_user(stack, tmp, {A: server.account(
        "alice", tls_fingerprint=other, resource="t-pin-other")})
    assert r.returncode == 1, r
    line = next((l for l in lines_of(r.stderr) if A in l), "")
    assert f"sha256 {fp} is not the one tls_fingerprint pins" in line, r.stderr
    note(line)
    assert not server.c2s_session_ids(f"{A}/t-pin-other"), \
        "logged in with a certificate that is not the pinned one"


@xfstest.waits
def test_accounts_still_logging_in_are_one_line(server, tmp, stack):
    """Accounts whose server says nothing are still trying when the first
    10 s are up: mounted (status 0), one warning each for a few, one line
    for many."""
    silent = stack.enter_context(SilentServer())

    def on_silent(i):
        return {"password": "x", "host": "127.0.0.1", "port": silent.port,
                "ca_file": server.ca_file, "resource": f"t-quiet-{i}"}
    few = {f"q{i}@localhost": on_silent(i) for i in range(2)}
    few[A] = server.account("alice", resource="t-quiet-ok")
    r, m = start_as_user(stack, tmp, few)
    assert r.returncode == 0, r
    lines = lines_of(r.stderr)
    assert len(lines) == 2 and all("not online after 10 s" in l
                                   for l in lines), lines
    many = {f"q{i}@localhost": on_silent(i) for i in range(7)}
    many[A] = server.account("alice", resource="t-quiet-ok2")
    r, m = start_as_user(stack, tmp, many)
    assert r.returncode == 0, r
    lines = lines_of(r.stderr)
    assert lines == ["xmppfs: warning: 7 accounts not online after 10 s; "
                     "still trying (ACCOUNT/connection says how far each "
                     "got)"], lines


def test_refused_account_beside_a_working_one(server, tmp, stack):
    """One account refused, one online: mounted (status 0), one line for
    the refused one; its `connection` says failed and why, and a message
    to it is refused (ENOTCONN) rather than kept where nothing will send
    it; with queue_when_failed = true it is kept in the outbox instead."""
    r, m = start_as_user(stack, tmp, {
        A: server.account("alice", password="not-alices-pw",
                          resource="t-refused"),
        B: server.account("bob", resource="t-beside"),
        "carol@localhost": server.account(
            "carol", password="not-carols-pw", resource="t-refused-q",
            queue_when_failed="true")})
    assert r.returncode == 0, r
    assert is_mounted(m.mnt)
    lines = lines_of(r.stderr)
    assert len(lines) == 2 and any(A in l for l in lines) and \
        any("carol@localhost" in l for l in lines), lines
    note(lines[0])
    kv = m.wait_state(A, "failed", timeout=10)
    assert "authentication" in kv.get("error", "").lower(), kv
    assert "not-alices-pw" not in m.read(f"{A}/connection")
    assert m.connection(B)["state"] == "online"
    try:
        m.write(f"{A}/contacts/{B}/send", "into the void\n")
        raise TestFailure("a message to a refused account was accepted")
    except OSError as e:
        assert e.errno == errno.ENOTCONN, e
    assert "into the void" not in (m.data / A / "outbox").read_text() \
        if (m.data / A / "outbox").exists() else True
    m.write(f"carol@localhost/contacts/{B}/send", "kept for later\n")
    assert "kept for later" in (m.data / "carol@localhost" / "outbox").read_text()


def test_network_trouble_still_mounts(server, tmp, stack):
    """A server that cannot be reached is no reason to fail: offline-first,
    the mount is there (status 0) with a warning line, and messages wait in
    the outbox."""
    with socket_on_loopback() as port:
        r, m = start_as_user(stack, tmp, {A: server.account(
            "alice", port=port, resource="t-closed")})
    assert r.returncode == 0, r
    assert is_mounted(m.mnt)
    lines = lines_of(r.stderr)
    assert len(lines) == 1 and A in lines[0] and "warning" in lines[0] \
        and "retrying" in lines[0], lines
    note(lines[0])
    m.write(f"{A}/contacts/{B}/send", "when the server is back\n")
    assert "when the server is back" in (m.data / A / "outbox").read_text()


@xfstest.waits
def test_silent_server_times_out_while_other_account_online(server, tmp, stack):
    silent = stack.enter_context(SilentServer())
    dave = "dave@localhost"
    accounts = {
        dave: {"password": "davepw", "host": "127.0.0.1", "port": silent.port,
               "ca_file": server.ca_file, "resource": "t-silent"},
        A: server.account("alice", resource="t-silent-ok"),
    }
    m = mount(stack, tmp, accounts)
    m.wait_state(A, "online", timeout=10)
    held = time.monotonic() - m.t_mounted
    note(f"alice online {held:.3f}s after the mount beside a silent server")
    assert held < 2.0, f"alice was held up {held:.1f}s by the silent server"
    wait_until(lambda: silent.connections >= 1, timeout=5,
               what="xmppfs to connect to the silent server")
    kv = error_with(m, dave, "timed out", timeout=25)
    dt = time.monotonic() - m.t_mounted
    note(f"silent server: 'timed out' after {dt:.1f}s")
    assert dt < 20, f"the timeout took {dt:.1f}s"
    assert kv["state"] in ("connecting", "offline", "failed"), kv
    assert m.connection(A)["state"] == "online"
    assert "online" != m.connection(dave)["state"]


@xfstest.waits
def test_tls_handshake_stall_times_out(server, tmp, stack):
    stall = stack.enter_context(TlsStallServer())
    dave = "dave@localhost"
    m = mount(stack, tmp, {dave: {"password": "davepw", "host": "127.0.0.1",
                                  "port": stall.port, "ca_file": server.ca_file,
                                  "resource": "t-stall"}})
    wait_until(lambda: stall.proceeded >= 1, timeout=5,
               what="xmppfs to start TLS with the stalling server")
    kv = error_with(m, dave, "timed out", timeout=25)
    dt = time.monotonic() - m.t_mounted
    note(f"TLS stall: 'timed out' after {dt:.1f}s: {kv['error']!r}")
    assert dt < 20, f"the timeout took {dt:.1f}s"
    assert kv["state"] in ("connecting", "offline", "failed"), kv
    # the mount still answers
    assert m.read(f"{dave}/status")


def _stall_beside(server, tmp, stack, stalled_first):
    """dave's server stalls inside the TLS handshake; alice's is fine."""
    stall = stack.enter_context(TlsStallServer())
    dave = "dave@localhost"
    items = [
        (dave, {"password": "davepw", "host": "127.0.0.1", "port": stall.port,
                "ca_file": server.ca_file, "resource": "t-stall2"}),
        (A, server.account("alice", resource="t-stall2-ok")),
    ]
    if not stalled_first:
        items.reverse()
    m = mount(stack, tmp, dict(items))
    wait_until(lambda: stall.proceeded >= 1, timeout=10,
               what="dave to reach the TLS handshake with the stalling server")
    m.wait_state(A, "online", timeout=20)
    held = time.monotonic() - m.t_mounted
    # the pool must answer for alice while dave's handshake is still stalled
    t0 = time.monotonic()
    m.write(f"{A}/status", "away beside a stalled handshake\n")
    applied = time.monotonic() - t0
    assert m.connection(dave).get("state") == "connecting", \
        f"dave's handshake should still be stalled: {m.connection(dave)}"
    assert m.read(f"{A}/status") == "away beside a stalled handshake\n"
    note(f"alice online {held:.3f}s after the mount, status applied in "
         f"{applied * 1000:.1f} ms, while dave's TLS handshake stalls")
    assert held < 2.0, f"alice was held up {held:.1f}s by the stalled handshake"
    assert applied < 1.0, f"a status write took {applied:.1f}s beside the stall"


def test_tls_stall_does_not_hold_other_accounts(server, tmp, stack):
    """STYLE.md, threads rule 4: one stalled TLS handshake must not hold
    the other accounts (the stalled account comes first in the file)."""
    _stall_beside(server, tmp, stack, stalled_first=True)


def test_tls_stall_does_not_hold_accounts_listed_before_it(server, tmp, stack):
    """The same with the stalled account last in the file."""
    _stall_beside(server, tmp, stack, stalled_first=False)


def test_tls_required_never_sends_auth_in_clear(server, tmp, stack):
    notls = stack.enter_context(NoTlsServer())
    dave = "dave@localhost"
    m = mount(stack, tmp, {dave: {"password": "pw-never-in-clear",
                                  "host": "127.0.0.1", "port": notls.port,
                                  "tls": "required", "resource": "t-notls"}})
    wait_until(lambda: notls.connections >= 1, timeout=5,
               what="xmppfs to connect to the server without STARTTLS")

    def given_up():
        kv = m.connection(dave)
        return kv if kv.get("error") and kv.get("state") != "online" else None
    kv = wait_until(given_up, timeout=15,
                    what=lambda: f"an error; connection now: {m._conn_or_err(dave)}")
    wait_until(lambda: notls.closed_by_peer >= 1, timeout=10,
               what="xmppfs to close the connection to the server without STARTTLS")
    note(f"no STARTTLS: state {kv['state']}, error {kv['error']!r}")
    got = notls.all_received()
    assert not notls.auth_seen, f"sent <auth> without TLS: {got[-300:]!r}"
    assert b"pw-never-in-clear" not in got
    assert kv["state"] != "online"


def test_direct_tls_online(server, tmp, stack):
    assert server.direct_tls_port, "the shared server has no direct TLS port"
    m = mount(stack, tmp, {A: server.account("alice", port=server.direct_tls_port,
                                              tls="direct", resource="t-direct")})
    kv = m.wait_state(A, "online", timeout=10)
    assert kv["jid"] == f"{A}/t-direct", kv
    assert kv["server"] == f"127.0.0.1:{server.direct_tls_port}", kv
    assert kv["tls"] == f"on, certificate sha256 {cert_sha256(server.ca_file)}", kv
    assert server.c2s_session_ids(f"{A}/t-direct")


def test_status_changes_seen_by_peer(server, tmp, stack):
    bob = peer(stack, server, B, "bobpw", "status-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-status")})
    full = f"{A}/t-status"
    status = f"{A}/status"
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(full, show="", status="")
    assert m.read(status) == "available\n"
    steps = [("away gone fishing\n", "away", "gone fishing"),
             ("dnd\n", "dnd", ""),
             ("xa back in a week\n", "xa", "back in a week"),
             ("chat\n", "chat", ""),
             ("available\n", "", "")]
    for text, show, st in steps:
        t0 = time.monotonic()
        m.write(status, text)
        bob.wait_presence(full, show=show, status=st)
        note(f"{text.strip()!r} seen by the peer in {time.monotonic() - t0:.3f}s")
        assert m.read(status) == text
        assert os.stat(m.path(status)).st_size == len(text.encode())


def test_status_empty_is_einval_other_word_reconnects(server, tmp, stack):
    bob = peer(stack, server, B, "bobpw", "einval-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-einval")})
    full = f"{A}/t-einval"
    status = f"{A}/status"
    m.wait_state(A, "online", timeout=10)
    m.write(status, "away before\n")
    bob.wait_presence(full, show="away", status="before")
    for bad in ("\n", " away\n"):
        try:
            m.write(status, bad)
        except OSError as e:
            assert e.errno == errno.EINVAL, (bad, e)
        else:
            raise TestFailure(f"writing {bad!r} to status succeeded")
    assert m.read(status) == "away before\n"
    assert m.connection(A)["state"] == "online"
    # SPEC: any other value reconnects, and the presence stays what it was
    sessions = len(server.c2s_session_ids(full))
    seen = len(bob.presences)
    m.write(status, "reconnect\n")
    wait_until(lambda: len(server.c2s_session_ids(full)) > sessions, timeout=10,
               what="a new session after writing 'reconnect'")
    m.wait_state(A, "online", timeout=10)
    wait_until(lambda: any(p["from"] == full and p["type"] == "available"
                           for p in bob.presences[seen:]), timeout=10,
               what="the peer to see alice available again after the reconnect")
    bob.wait_presence(full, show="away", status="before")
    assert m.read(status) == "away before\n"


def test_status_offline_then_available(server, tmp, stack):
    bob = peer(stack, server, B, "bobpw", "offline-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-offline")})
    full = f"{A}/t-offline"
    status = f"{A}/status"
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(full, show="")

    m.write(status, "offline\n")
    bob.wait_presence(full, ptype="unavailable")
    kv = m.wait_state(A, "offline", timeout=5)
    check_since(kv)
    assert m.read(status) == "offline\n"
    wait_until(lambda: server.closed_cleanly(full), timeout=5,
               what="Prosody to receive </stream:stream> after 'offline'")
    n_sessions = len(server.c2s_session_ids(full))
    assert_stays(lambda: m.connection(A)["state"] == "offline", 1.5,
                 what="state offline after writing 'offline'")
    assert len(server.c2s_session_ids(full)) == n_sessions, "reconnected by itself"

    t0 = time.monotonic()
    m.write(status, "available\n")
    kv = m.wait_state(A, "online", timeout=10)
    bob.wait_presence(full, show="")
    note(f"back online in {time.monotonic() - t0:.3f}s")
    assert kv["jid"] == full, kv
    assert m.read(status) == "available\n"


def test_tree_listing_modes_owner_sizes(server, tmp, stack):
    m = mount(stack, tmp, {A: server.account("alice", resource="t-tree-a"),
                           B: server.account("bob", resource="t-tree-b")})
    assert sorted(os.listdir(m.mnt)) == sorted([A, B])
    for j in (A, B):
        m.wait_state(j, "online", timeout=10)
    uid, gid = os.getuid(), os.getgid()
    for j in (A, B):
        st = os.stat(m.path(j))
        assert stat.S_ISDIR(st.st_mode), j
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        assert (st.st_uid, st.st_gid) == (uid, gid), (st.st_uid, st.st_gid)
        names = set(os.listdir(m.path(j)))
        assert {"connection", "status"} <= names, names
        for name, mode in (("connection", 0o400), ("status", 0o600)):
            p = m.path(j, name)
            st = os.stat(p)
            assert stat.S_ISREG(st.st_mode), p
            assert stat.S_IMODE(st.st_mode) == mode, f"{p}: {oct(st.st_mode)}"
            assert (st.st_uid, st.st_gid) == (uid, gid), p
            data = subprocess.run(["cat", str(p)], capture_output=True,
                                  check=True).stdout
            assert len(data) > 0, p
            assert st.st_size == len(data), f"{p}: st_size {st.st_size}, cat reads {len(data)}"
    # the size follows the content
    text = "away a somewhat longer status text\n"
    m.write(f"{A}/status", text)
    data = open(m.path(A, "status"), "rb").read()
    assert os.stat(m.path(A, "status")).st_size == len(data) == len(text), data
    for bad in ("nobody@localhost", "not a jid", "alice@localhost@x"):
        try:
            os.stat(m.path(bad))
        except FileNotFoundError:
            pass
        else:
            raise TestFailure(f"lookup of {bad!r} in the root succeeded")


def _try_config(tmp, name, text, mode):
    """Run xmppfs on a config that must be refused.  Returns (rc, stderr,
    cfg path, was mounted); never leaves a mount or a process behind."""
    d = tmp / name
    d.mkdir()
    cfg, data, mnt = d / "config", d / "data", d / "mnt"
    data.mkdir()
    mnt.mkdir()
    cfg.write_text(text)
    os.chmod(cfg, mode)
    p = subprocess.Popen([str(xmppfs_binary()), "-f", "--config", str(cfg),
                          "--data-dir", str(data), str(mnt)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True,
                         start_new_session=True)
    (d / "xmppfs.pid").write_text(f"{p.pid}\n")
    try:
        out, err = p.communicate(timeout=10)
        return p.returncode, err, cfg, is_mounted(mnt)
    except subprocess.TimeoutExpired:
        was = is_mounted(mnt)
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
        return None, "(still running after 10 s)", cfg, was


def test_bad_configs_refused_before_mount(server, tmp):
    base = f"host=127.0.0.1\nport={server.port}\nca_file={server.ca_file}\n"
    cases = [
        # name, text, mode, group, key
        ("world-readable", f"[{A}]\npassword=alicepw\n{base}", 0o644, A, "password"),
        ("unknown-key", f"[{A}]\npassword=alicepw\n{base}colour=blue\n", 0o600, A, "colour"),
        ("invalid-jid", f"[alice@@localhost]\npassword=alicepw\n{base}", 0o600,
         "alice@@localhost", None),
        ("port-word", f"[{A}]\npassword=alicepw\nhost=127.0.0.1\nport=abc\n", 0o600, A, "port"),
        ("port-range", f"[{A}]\npassword=alicepw\nhost=127.0.0.1\nport=70000\n", 0o600, A, "port"),
        ("bad-tls", f"[{A}]\npassword=alicepw\n{base}tls=maybe\n", 0o600, A, "tls"),
        # a server's name alone is no account (it would look "tester" up
        # on the network for ever)
        ("domain-only", f"[tester]\npassword=alicepw\n{base}", 0o600,
         "tester", None),
    ]
    problems = []
    for name, text, mode, group, key in cases:
        rc, err, cfg, was_mounted = _try_config(tmp, name, text, mode)
        lines = [l for l in err.splitlines() if l.strip()]
        why = []
        if rc is None or rc == 0:
            why.append(f"exit status {rc}")
        if was_mounted:
            why.append("it mounted")
        if len(lines) != 1:
            why.append(f"{len(lines)} lines on stderr")
        if str(cfg) not in err:
            why.append("the file is not named")
        if group not in err:
            why.append(f"the group {group!r} is not named")
        if key and key not in err:
            why.append(f"the key {key!r} is not named")
        if "alicepw" in err:
            why.append("the password is in the message")
        if why:
            problems.append(f"{name}: {', '.join(why)}; stderr: {err.strip()!r}")
        else:
            note(f"{name}: {lines[0]}")
    assert not problems, "\n".join(problems)


def test_missing_config_names_the_file_and_shows_one(tmp):
    """No config: exit 1 before mounting, naming the file to create and
    showing a group to put in it (not just "No such file or directory")."""
    d = tmp / "noconfig"
    mnt = d / "mnt"
    mnt.mkdir(parents=True)
    cfg = d / "sub" / "config"
    r = subprocess.run([str(xmppfs_binary()), "-f", "--config", str(cfg),
                        "--data-dir", str(d / "data"), str(mnt)],
                       capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    try:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert not is_mounted(mnt)
        assert str(cfg) in r.stderr.splitlines()[0], r.stderr
        assert "chmod 600" in r.stderr and "[you@example.org]" in r.stderr, \
            r.stderr
        assert not (d / "data").exists(), "a data directory was made"
        note(r.stderr.splitlines()[0])
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)


def test_password_command_and_no_password_in_proc(server, tmp, stack):
    pwfile = tmp / "carol.pw"
    pwfile.write_text(CAROL_PW + "\nsecond line ignored\n")
    os.chmod(pwfile, 0o600)
    carol = "carol@localhost"
    acct = server.account("carol", password=None, resource="t-pwcmd")
    acct["password_command"] = f"cat {pwfile}"
    # without a 'password' key a world-readable file is fine
    m = mount(stack, tmp, {carol: acct}, config_mode=0o644)
    m.wait_state(carol, "online", timeout=10)
    pw = CAROL_PW.encode()
    procs = [f"/proc/{m.pid}"] + [f"/proc/{m.pid}/task/{t}"
                                  for t in os.listdir(f"/proc/{m.pid}/task")]
    for p in procs:
        for f in ("cmdline", "environ"):
            data = open(f"{p}/{f}", "rb").read()
            assert pw not in data, f"the password is in {p}/{f}"
    # nor in the mount, the data dir or the log
    for rel in ("connection", "status"):
        assert CAROL_PW not in m.read(f"{carol}/{rel}")
    for dirpath, _, files in os.walk(m.data):
        for f in files:
            assert pw not in open(os.path.join(dirpath, f), "rb").read(), f
    assert CAROL_PW not in m.log_text()
    # the command has finished: no child of xmppfs is left running
    children = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if st[1] == str(m.pid):
                children.append(d)
    assert not children, f"xmppfs has children: {children}"


def test_unmount_closes_stream_and_exits_0(server, tmp, stack):
    bob = peer(stack, server, B, "bobpw", "unmount-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-unmount")})
    full = f"{A}/t-unmount"
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(full, show="")
    t0 = time.monotonic()
    rc = m.close()  # fusermount3 -u; waits for the exit; checks the log
    note(f"unmount to exit: {time.monotonic() - t0:.3f}s")
    assert rc == 0, rc
    assert not is_mounted(m.mnt)
    bob.wait_presence(full, ptype="unavailable", timeout=10)
    wait_until(lambda: server.closed_cleanly(full), timeout=10,
               what="Prosody to log 'Received </stream:stream>' for alice's session")


def test_unmount_acks_everything_received(server, tmp, stack):
    """A clean close acknowledges (XEP-0198) what the server sent: else
    Prosody bounces the unacked stanzas to their senders as errors (bob
    gets a presence error from alice; a message that xmppfs did log would
    bounce to its sender as undelivered)."""
    bob = peer(stack, server, B, "bobpw", "ack-peer")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-ack")})
    full = f"{A}/t-ack"
    m.wait_state(A, "online", timeout=10)
    bob.wait_presence(full, show="")
    mid = bob.send_message(A, "one last message before the unmount")
    wait_until(lambda: any("Sending[c2s]: <message" in l and mid in l
                           for l in server.c2s_session_lines(full)), timeout=5,
               what="Prosody to deliver the message to alice's session")
    m.close()
    wait_until(lambda: server.closed_cleanly(full), timeout=10,
               what="Prosody to log 'Received </stream:stream>' for alice's session")
    wait_until(lambda: any("Unbinding resource" in l
                           for l in server.c2s_session_lines(full)), timeout=10,
               what="Prosody to end alice's session")
    unacked = [l for l in server.c2s_session_lines(full)
               if "unacked stanzas" in l]
    assert not unacked, f"Prosody: {unacked[0].split(chr(9))[-1]}; " \
        f"bob got {len(bob.presence_errors(A))} presence error(s) from alice"


def test_help_and_version():
    r = run_xmppfs(["--help"])
    out = r.stdout + r.stderr
    assert r.returncode == 0, (r.returncode, out)
    assert "usage" in out.lower(), out
    for opt in ("--config", "--data-dir", "-f"):
        assert opt in out, f"--help does not mention {opt}"
    r = run_xmppfs(["--version"])
    out = r.stdout + r.stderr
    assert r.returncode == 0, (r.returncode, out)
    version = re.search(r"version\s*:\s*'([^']+)'",
                        (ROOT / "meson.build").read_text()).group(1)
    assert version in out, f"--version says {out!r}, meson.build has {version}"
