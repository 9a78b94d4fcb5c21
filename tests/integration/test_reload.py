"""Reading the config again (issue 14, item 4): SIGHUP to the xmppfs
process, or `reconnect` written to ACCOUNT/status, re-reads the config
file; an account whose settings changed reconnects with them, one whose
settings did not is left alone, and a file that no longer loads changes
nothing and says why in one line (stderr) and in ACCOUNT/events.  SIGHUP
never unmounts.

Each test mounts in the foreground (Mount runs `xmppfs -f`), so the pid
it signals is the one it started.  A refused account is mounted beside
bob, who logs in: when no account can log in the mount goes away."""

import os
import re
import signal
import subprocess

from xfstest import (Mount, assert_stays, cert_sha256, config_text,
                     is_mounted, note, pid_alive, run_xmppfs, wait_until)

A = "alice@localhost"
B = "bob@localhost"
WRONG_PIN = "SHA256:" + ":".join(["AB"] * 32)


def mount(stack, tmp, accounts):
    return stack.enter_context(Mount(tmp, accounts))


def rewrite(m, accounts=None, text=None):
    """Replace the config's text in place (its mode, 0600, stays)."""
    m.cfg.write_text(text if text is not None else config_text(accounts))


def hup(m):
    os.kill(m.pid, signal.SIGHUP)


def event_lines(m, jid, words):
    """The lines of @jid's events (read through its `log`) with @words."""
    return [l for l in m.read(f"{jid}/log").splitlines() if words in l]


def log_lines(m, words):
    return [l for l in m.log_text().splitlines() if words in l]


def sessions(server, jid, resource):
    return len(server.c2s_session_ids(f"{jid}/{resource}"))


def still_mounted(m):
    return is_mounted(m.mnt) and pid_alive(m.pid)


# --------------------------------------------------------------------------

def test_hup_takes_a_mended_password(server, tmp, stack):
    """A refused password mended in the file: SIGHUP, and the account
    logs in; the mount stays; bob, whose settings did not change, keeps
    his stream."""
    bob = server.account("bob", resource="t-hup-pw-b")
    m = mount(stack, tmp, {
        A: server.account("alice", password="not-alices-pw",
                          resource="t-hup-pw"),
        B: bob})
    kv = m.wait_state(A, "failed", timeout=10)
    assert "authentication" in kv.get("error", "").lower(), kv
    m.wait_state(B, "online", timeout=10)
    rewrite(m, {A: server.account("alice", resource="t-hup-pw"), B: bob})
    hup(m)
    kv = m.wait_state(A, "online", timeout=10)
    note(f"after SIGHUP: {kv}")
    assert still_mounted(m)
    assert m.connection(B)["state"] == "online"
    assert sessions(server, B, "t-hup-pw-b") == 1, "bob reconnected"
    assert event_lines(m, A, "config reloaded: new settings"), \
        m.read(f"{A}/log")
    assert not event_lines(m, B, "config reloaded"), m.read(f"{B}/log")
    assert "alicepw" not in m.log_text()


def test_reconnect_takes_a_mended_pin(server, tmp, stack):
    """A tls_fingerprint that pins another certificate is refused although
    the CA vouches for the server's; the refusal names the server's.
    Pinned in the file (and the CA gone from it), `reconnect` written to
    status logs in with it."""
    m = mount(stack, tmp, {
        A: server.account("alice", tls_fingerprint=WRONG_PIN,
                          resource="t-hup-pin"),
        B: server.account("bob", resource="t-hup-pin-b")})
    kv = m.wait_state(A, "failed", timeout=10)
    found = re.search(r"sha256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2}) is not "
                      r"the one tls_fingerprint pins", kv.get("error", ""))
    assert found, kv
    fp = found.group(1)
    assert fp == cert_sha256(server.ca_file)
    assert not sessions(server, A, "t-hup-pin")
    rewrite(m, {A: server.account("alice", ca_file=None,
                                  tls_fingerprint=f"SHA256:{fp}",
                                  resource="t-hup-pin"),
                B: server.account("bob", resource="t-hup-pin-b")})
    m.write(f"{A}/status", "reconnect")
    kv = m.wait_state(A, "online", timeout=10)
    assert kv["tls"] == f"on, certificate sha256 {fp}", kv
    assert still_mounted(m)


def test_reconnect_takes_a_new_ca_file(server, tmp, stack):
    """No CA vouches for the server's certificate until ca_file names it:
    refused, then online after `reconnect` to status."""
    m = mount(stack, tmp, {
        A: server.account("alice", ca_file=None, resource="t-hup-ca"),
        B: server.account("bob", resource="t-hup-ca-b")})
    kv = m.wait_state(A, "failed", timeout=10)
    assert "certificate" in kv.get("error", ""), kv
    rewrite(m, {A: server.account("alice", resource="t-hup-ca"),
                B: server.account("bob", resource="t-hup-ca-b")})
    m.write(f"{A}/status", "reconnect")
    m.wait_state(A, "online", timeout=10)
    assert sessions(server, A, "t-hup-ca") == 1


def test_a_broken_config_changes_nothing(server, tmp, stack):
    """A file that does not parse, or parses with a bad value: after
    SIGHUP the mount stays and the account keeps its stream; one line on
    stderr and one in its events say which file and why.  `reconnect`
    written meanwhile still reconnects, with the settings in use."""
    accounts = {A: server.account("alice", resource="t-hup-bad")}
    m = mount(stack, tmp, accounts)
    m.wait_state(A, "online", timeout=10)
    good = m.cfg.read_text()
    broken = [("does not parse", good + "\n[bob@localhost\n", "line "),
              ("a bad value", good + "\n[bob@localhost]\nport = abc\n",
               "not a port number")]
    for n, (what, text, why) in enumerate(broken, 1):
        rewrite(m, text=text)
        hup(m)
        wait_until(lambda: len(event_lines(m, A, "config not reloaded")) == n,
                   timeout=10, what=f"an event for a config that {what}")
        ev = event_lines(m, A, "config not reloaded")[-1]
        note(ev)
        f = ev.split("\t")
        assert f[1] == "error" and f[2] == A, ev
        assert str(m.cfg) in ev and why in ev, ev
        lines = log_lines(m, "config not reloaded")
        assert len(lines) == n, lines
        assert str(m.cfg) in lines[-1] and why in lines[-1], lines
        assert still_mounted(m)
        assert m.connection(A)["state"] == "online"
        assert sessions(server, A, "t-hup-bad") == 1, \
            "reconnected on a config that does not load"
    # the write succeeds and reconnects; the event says the file was not
    # taken
    m.write(f"{A}/status", "reconnect")
    wait_until(lambda: sessions(server, A, "t-hup-bad") == 2, timeout=10,
               what="a second session after reconnect")
    m.wait_state(A, "online", timeout=10)
    assert len(event_lines(m, A, "config not reloaded")) == 3


def test_hup_does_not_unmount(server, tmp, stack):
    """SIGHUP with the file unchanged: no unmount, no reconnect; many at
    once are no trouble either."""
    m = mount(stack, tmp, {A: server.account("alice", resource="t-hup-same")})
    m.wait_state(A, "online", timeout=10)
    for _ in range(5):
        hup(m)
    wait_until(lambda: log_lines(m, "no settings changed"), timeout=10,
               what="the log line of a reload")
    assert_stays(lambda: still_mounted(m) and
                 m.connection(A)["state"] == "online", 1.0,
                 what="mounted and online after SIGHUP")
    assert sessions(server, A, "t-hup-same") == 1
    assert m.read(f"{A}/status") == "available\n"
    m.write(f"{A}/status", "away back soon")
    hup(m)
    wait_until(lambda: len(log_lines(m, "no settings changed")) >= 2,
               timeout=10, what="a second reload")
    assert m.read(f"{A}/status") == "away back soon\n"
    assert sessions(server, A, "t-hup-same") == 1


def test_accounts_added_or_removed_need_a_remount(server, tmp, stack):
    """The tree cannot grow or lose an account while mounted: one line
    each says so; the account gone stays, online, with its settings."""
    bob = server.account("bob", resource="t-hup-gone-b")
    m = mount(stack, tmp, {A: server.account("alice", resource="t-hup-gone"),
                           B: bob})
    m.wait_state(A, "online", timeout=10)
    m.wait_state(B, "online", timeout=10)
    rewrite(m, {A: server.account("alice", resource="t-hup-gone"),
                "carol@localhost": server.account("alice")})
    hup(m)
    wait_until(lambda: log_lines(m, "need"), timeout=10,
               what="the lines of added and removed accounts")
    wait_until(lambda: event_lines(m, B, "removed from it"), timeout=10,
               what="an event for bob")
    added = log_lines(m, "added account")
    gone = log_lines(m, "removed from it")
    note(added, gone)
    assert len(added) == 1 and "carol@localhost" in added[0] \
        and "needs a remount" in added[0], added
    assert len(gone) == 1 and B in gone[0], gone
    assert not os.path.exists(m.path("carol@localhost"))
    assert os.path.isdir(m.path(B))
    assert m.connection(B)["state"] == "online"
    assert sessions(server, B, "t-hup-gone-b") == 1


def test_the_daemon_reloads_on_hup(server, tmp, stack):
    """Without -f: SIGHUP to the daemon (the pid in the data lock, not the
    parent that exited) reloads, and the mount stays."""
    bob = server.account("bob", resource="t-hup-daemon-b")
    m = Mount(tmp, {A: server.account("alice", password="not-alices-pw",
                                      resource="t-hup-daemon"), B: bob},
              name="t-hup-daemon")
    m.mnt.mkdir()
    m.cfg.write_text(m.text)
    os.chmod(m.cfg, 0o600)
    stack.callback(unmount_daemon, m)
    r = run_xmppfs(["--config", m.cfg, "--data-dir", m.data, m.mnt],
                   timeout=30)
    assert r.returncode == 0, r
    pid = int((m.data / A / "lock").read_text().split()[0])
    # for the runner's cleanup, should this test die: it kills by this
    (m.dir / "xmppfs.pid").write_text(f"{pid}\n")
    assert is_mounted(m.mnt) and pid_alive(pid)
    m.wait_state(A, "failed", timeout=10)
    rewrite(m, {A: server.account("alice", resource="t-hup-daemon"), B: bob})
    os.kill(pid, signal.SIGHUP)
    m.wait_state(A, "online", timeout=10)
    assert is_mounted(m.mnt) and pid_alive(pid)
    assert sessions(server, B, "t-hup-daemon-b") == 1
    unmount_daemon(m)
    wait_until(lambda: not pid_alive(pid), timeout=15,
               what=f"the daemon {pid} to exit after the unmount")


def unmount_daemon(m):
    if is_mounted(m.mnt):
        subprocess.run(["fusermount3", "-u", str(m.mnt)], capture_output=True)
    if is_mounted(m.mnt):
        subprocess.run(["fusermount3", "-uz", str(m.mnt)], capture_output=True)
