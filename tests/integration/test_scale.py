"""Many accounts and many conversations on one mount (issue 12).

libstrophe 0.12 waits on its sockets with select(), which aborts the
process for a descriptor of 1024 or more; xmppfs held five descriptors per
account and one per conversation, so 206 accounts, or 1,015 conversations,
crashed a mount.  Here 300 accounts with 1,500 conversations between them
come online under a limit of 1,024 open files (an ordinary user's), and a
message from a new contact is logged.  Not a timed test: scripts/bench
measures how long it takes."""

import os
import time

from xfstest import Mount, Peer, Server, note, wait_until

N_ACCOUNTS = 300
N_CONVERSATIONS = 1500


def test_300_accounts_and_1500_conversations_in_1024_descriptors(tmp, stack):
    srv = Server(tmp / "srv", users={"alice": "alicepw", "bob": "bobpw"},
                 bulk=[f"u:{N_ACCOUNTS}:upw"])
    srv.start()
    stack.callback(srv.stop)
    accounts = {f"u{i}@localhost": srv.account("alice", password="upw",
                                                resource="scale")
                for i in range(1, N_ACCOUNTS + 1)}
    data = tmp / "data"
    # conversations an earlier mount left: five per account
    per = N_CONVERSATIONS // N_ACCOUNTS
    for i in range(1, N_ACCOUNTS + 1):
        for k in range(per):
            d = data / f"u{i}@localhost" / "contacts" / f"c{k}-{i}@localhost"
            d.mkdir(parents=True)
            (d / "log").write_text(f"2026-01-01T00:00:00Z\tc{k}-{i}@localhost\t"
                                   f"hello {k}\n")
    m = stack.enter_context(Mount(tmp, accounts, data=data, nofile=1024,
                                  mount_timeout=30))

    def offline():
        return [j for j in accounts if m.connection(j).get("state") != "online"]
    wait_until(lambda: not offline(), timeout=240,
               what=lambda: f"all {N_ACCOUNTS} accounts online; not yet: "
                            f"{offline()[:5]} ({len(offline())})")
    fds = len(os.listdir(f"/proc/{m.pid}/fd"))
    note(f"{N_ACCOUNTS} accounts online; xmppfs holds {fds} descriptors")
    assert fds < 1024
    last = f"u{N_ACCOUNTS}@localhost"
    with Peer("bob@localhost", "bobpw", srv, resource="scale") as bob:
        bob.send_message(last, "from a new contact")
        log = m.path(last, "contacts", "bob@localhost", "log")
        wait_until(lambda: "from a new contact" in log.read_text(),
                   timeout=20, what="the new contact's message in the log",
                   ignore=(OSError,))
    old = m.path("u1@localhost", "contacts", "c0-1@localhost", "log").read_text()
    assert old.endswith("hello 0\n"), old
    assert "Too many open files" not in m.log_text(), m.log_tail()


test_300_accounts_and_1500_conversations_in_1024_descriptors.timeout = 360


def test_directory_times_follow_the_last_record(tmp, stack):
    """A conversation's directory has the time of its last record, as its
    log has, so `ls -t contacts/` sorts conversations by activity (it had
    the mount's time)."""
    srv = Server(tmp / "srv", users={"alice": "alicepw", "bob": "bobpw"})
    srv.start()
    stack.callback(srv.stop)
    m = stack.enter_context(Mount(tmp, {"alice@localhost": srv.account(
        "alice", resource="times")}))
    m.wait_state("alice@localhost", "online", timeout=15)
    d = m.path("alice@localhost", "contacts", "bob@localhost")
    with Peer("bob@localhost", "bobpw", srv, resource="times") as bob:
        t0 = int(time.time())
        bob.send_message("alice@localhost", "hello")
        wait_until(lambda: (d / "log").exists() and "hello" in (d / "log").read_text(),
                   timeout=10, what="bob's message in the log")
    st, lg = os.stat(d), os.stat(d / "log")
    assert st.st_mtime == lg.st_mtime >= t0, (st.st_mtime, lg.st_mtime, t0)
    listing = os.listdir(m.path("alice@localhost", "contacts"))
    assert "bob@localhost" in listing, listing
