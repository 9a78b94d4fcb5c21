"""xfstest - the integration test harness for xmppfs.

Real mounts against a real Prosody on loopback (scripts/testbed), a second
and independent XMPP client (slixmpp, in its own thread and event loop), and
fake servers that misbehave on purpose.  Standard library + slixmpp only;
run it with /usr/bin/python3 (the Debian python that has slixmpp).

Rules every helper here keeps: servers bind 127.0.0.1 only; what a helper
starts it stops, by pid; a mount is always unmounted; nothing sleeps for a
fixed time: wait_until() polls a condition with a deadline.
"""

import asyncio
import errno
import hashlib
import logging
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTBED = ROOT / "scripts" / "testbed"
DOMAIN = "localhost"

# Lines in an xmppfs log that fail the test that produced them.
BAD_LOG_PATTERNS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                    "CRITICAL", "WARNING **")


class TestFailure(AssertionError):
    pass


def waits(fn):
    """Mark a test that spends its time waiting out a protocol deadline
    (run --skip-waits leaves it out: the sanitizer stage)."""
    fn.waits = True
    return fn


def note(*args):
    """A line the runner shows even when the test passes."""
    print("#", *args, flush=True)


def xmppfs_binary():
    p = Path(os.environ.get("XMPPFS", "build/xmppfs"))
    if not p.is_absolute():
        p = ROOT / p
    return p


def wait_until(fn, timeout=10.0, what=None, interval=0.02,
               ignore=(OSError,)):
    """Call fn() every ~20 ms until it returns a true value, and return that
    value.  Past the deadline raise TestFailure naming @what and the last
    value (or exception) seen.  Exceptions in @ignore count as "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except ignore as e:
            last = e
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            raise TestFailure(f"timed out after {timeout:g} s waiting for "
                              f"{what or getattr(fn, '__name__', 'condition')}"
                              f"; last value: {last!r}")
        time.sleep(interval)


def assert_stays(fn, duration, what=None, interval=0.02):
    """Check that fn() stays true for @duration seconds (the one way to check
    that something does NOT happen)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        v = fn()
        if not v:
            raise TestFailure(f"{what or 'condition'} stopped holding: {v!r}")
        time.sleep(interval)


def read_kv(path):
    """Parse 'key: value' lines into a dict (first ': ' splits)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if not line.strip():
                continue
            k, sep, v = line.partition(":")
            if not sep:
                raise TestFailure(f"{path}: line without 'key: value': {line!r}")
            out[k.strip()] = v.strip()
    return out


def mounted_paths():
    """Mount points from /proc/self/mountinfo (never touches the mounts)."""
    res = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            res.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), mp))
    return res


def is_mounted(path):
    return os.path.abspath(path) in mounted_paths()


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def cert_sha256(pem_path):
    """'AB:CD:...' SHA-256 fingerprint of the first certificate in a PEM."""
    pem = Path(pem_path).read_text()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    der = ssl.PEM_cert_to_DER_cert(m.group(0))
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Prosody

class Server:
    """A Prosody started by scripts/testbed in @tmpdir.

    users: {"alice": "alicepw", ...} (default alice and bob)
    roster: [("alice", "bob", "both", "Bob"), ...] or "alice:bob:both" strings
    mutual: [("alice", "bob"), ...] adds subscription "both" both ways
    direct_tls: also listen for XEP-0368 direct TLS
    bulk: ["u:300:pw", ...] makes u1..u300 with password pw
    """

    def __init__(self, tmpdir, users=None, roster=(), mutual=(),
                 direct_tls=False, plaintext=False, port=None, bulk=()):
        self.dir = Path(tmpdir)
        self.users = dict(users or {"alice": "alicepw", "bob": "bobpw"})
        self.roster = [r if isinstance(r, str) else ":".join(r) for r in roster]
        for a, b in mutual:
            self.roster += [f"{a}:{b}:both", f"{b}:{a}:both"]
        self.direct_tls = direct_tls
        self.plaintext = plaintext
        self.bulk = list(bulk)  # "PREFIX:COUNT:PASSWORD" (testbed --users)
        self.want_port = port
        self.port = None
        self.direct_tls_port = None
        self.want_https_port = None
        self.https_port = None  # HTTP File Upload's (upload.localhost)
        self.started = False
        self.seeded = False

    @classmethod
    def attach(cls, tmpdir, users):
        """A Server object for a testbed another process started."""
        s = cls(tmpdir, users=users)
        s._read_ports()
        s.started = False  # not ours to stop
        return s

    def _read_ports(self):
        kv = dict(l.split("=", 1) for l in
                  (self.dir / "ports").read_text().split())
        self.port = int(kv["port"])
        if "direct_tls_port" in kv:
            self.direct_tls_port = int(kv["direct_tls_port"])
        if "https_port" in kv:
            self.https_port = int(kv["https_port"])

    @property
    def ca_file(self):
        return str(self.dir / "certs" / "localhost.crt")

    @property
    def log(self):
        return self.dir / "prosody.log"

    @property
    def debug_log(self):
        return self.dir / "debug.log"

    def jid(self, user):
        return user if "@" in user else f"{user}@{DOMAIN}"

    def password(self, user):
        if user in self.users:  # NAME@HOST: an account on another host
            return self.users[user]
        return self.users[user.split("@")[0]]

    def start(self):
        cmd = [str(TESTBED), "start", str(self.dir)]
        if self.want_port:
            cmd += ["--port", str(self.want_port)]
        if self.want_https_port:
            cmd += ["--https-port", str(self.want_https_port)]
        if self.direct_tls:
            cmd += ["--direct-tls-port", "auto" if self.direct_tls is True
                    else str(self.direct_tls)]
        if self.plaintext:
            cmd += ["--plaintext"]
        for u, p in self.users.items():
            cmd += ["--user", f"{u}:{p}"]
        for b in self.bulk:
            cmd += ["--users", b]
        if not self.seeded:  # a restart keeps what the tests changed
            for r in self.roster:
                cmd += ["--roster", r]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise TestFailure(f"testbed start failed ({r.returncode}):\n"
                              f"{r.stdout}{r.stderr}")
        self.started = True
        self.seeded = True
        self._read_ports()
        return self

    def stop(self):
        if not self.started:
            return
        self.started = False
        r = subprocess.run([str(TESTBED), "stop", str(self.dir)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise TestFailure(f"testbed stop failed: {r.stdout}{r.stderr}")

    def restart(self):
        """Stop and start again on the same ports (accounts, rosters and
        archives stay)."""
        self.stop()
        self.want_port = self.port
        self.want_https_port = self.https_port  # slots handed out stay good
        if self.direct_tls_port:
            self.direct_tls = self.direct_tls_port
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def account(self, user, **keys):
        """Config keys for @user on this server (password, host, port,
        ca_file); keyword arguments add or override keys, None removes."""
        d = {"password": self.password(user), "host": "127.0.0.1",
             "port": self.port, "ca_file": self.ca_file}
        for k, v in keys.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return d

    def debug_log_text(self):
        try:
            return self.debug_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def c2s_session_ids(self, full_jid):
        """Prosody's ids (e.g. 'c2s55d448bb7c30') of the c2s sessions that
        bound @full_jid, from the debug log's 'Resource bound:' lines."""
        text = self.debug_log_text()
        return re.findall(r"^\S+ +\d+ [\d:]+ (c2s[0-9a-f]+)\tdebug\tResource bound: "
                          + re.escape(full_jid) + r"$", text, re.M)

    def c2s_session_lines(self, full_jid):
        """Every debug log line of the session(s) that bound @full_jid."""
        ids = self.c2s_session_ids(full_jid)
        return [l for l in self.debug_log_text().splitlines()
                if any(f" {i}\t" in l for i in ids)]

    def closed_cleanly(self, full_jid):
        """True once Prosody logged that the session of @full_jid received
        the client's </stream:stream> (the clean-close marker)."""
        return any(l.endswith("\tdebug\tReceived </stream:stream>")
                   for l in self.c2s_session_lines(full_jid))

    def start_again(self):
        """start() after stop() on the same ports: restart() in two steps,
        so that a test can act while the server is down."""
        self.want_port = self.port
        if self.direct_tls_port:
            self.direct_tls = self.direct_tls_port
        return self.start()


# --------------------------------------------------------------------------
# xmppfs mounts

def keyfile_escape(v):
    v = str(v).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    if v.startswith(" "):
        v = "\\s" + v[1:]
    return v


def config_text(accounts):
    """GLib key file text for {group: {key: value}}."""
    out = []
    for group, keys in accounts.items():
        out.append(f"[{group}]")
        for k, v in keys.items():
            out.append(f"{k}={keyfile_escape(v)}")
        out.append("")
    return "\n".join(out)


_active_mounts = []   # started and not yet torn down
all_mounts = []       # every Mount of this process, for the runner's report


class Mount:
    """One running xmppfs with its own config, data dir and mountpoint.

    accounts: {"alice@localhost": {"password": ..., "port": ...}, ...}
              (keep order: it is the order of the groups in the file)
    config: raw config text instead of @accounts
    config_mode: mode of the config file (0600)
    expect_exit: the exit status teardown expects (0)
    data: the data directory (default: one of its own in its directory)
    nofile: run xmppfs with this limit on open files (soft and hard)
    """

    def __init__(self, tmpdir, accounts=None, config=None, config_mode=0o600,
                 args=(), binary=None, env=None, mount_timeout=10.0,
                 expect_exit=0, name="m", data=None, nofile=None):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmpdir))
        self.cfg = self.dir / "config"
        self.data = Path(data) if data else self.dir / "data"
        self.mnt = self.dir / "mnt"
        self.logfile = self.dir / "xmppfs.log"
        self.binary = Path(binary) if binary else xmppfs_binary()
        self.nofile = nofile
        self.args = list(args)
        self.env = env
        self.mount_timeout = mount_timeout
        self.expect_exit = expect_exit
        self.proc = None
        self.returncode = None
        self.closed = False
        self.t_mounted = None
        self.text = config if config is not None else config_text(accounts or {})
        self.config_mode = config_mode
        all_mounts.append(self)

    # -- lifecycle --------------------------------------------------------

    def start(self):
        if not self.binary.exists():
            raise TestFailure(f"no xmppfs binary at {self.binary} "
                              "(build it, or set XMPPFS)")
        self.data.mkdir(exist_ok=True)
        self.mnt.mkdir()
        fd = os.open(self.cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.text)
        os.chmod(self.cfg, self.config_mode)
        return self._spawn(open(self.logfile, "wb"), "")

    def _spawn(self, log, again):
        """Run xmppfs with its output to @log (closed here) and wait until
        the mount is there; @again words the messages of a remount."""
        cmd = [str(self.binary), "-f", *self.args, "--config", str(self.cfg),
               "--data-dir", str(self.data), str(self.mnt)]
        self.t_start = time.monotonic()
        limit = None
        if self.nofile:
            import resource
            n = self.nofile

            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=self.env,
                                     preexec_fn=limit)
        log.close()
        (self.dir / "xmppfs.pid").write_text(f"{self.proc.pid}\n")
        _active_mounts.append(self)
        try:
            wait_until(lambda: is_mounted(self.mnt) or self.proc.poll() is not None,
                       timeout=self.mount_timeout,
                       what=f"xmppfs to mount {self.mnt}{again}")
            if not is_mounted(self.mnt):
                raise TestFailure(f"xmppfs exited with {self.proc.returncode} "
                                  f"before mounting{again}:\n{self.log_tail()}")
        except BaseException:
            self._teardown(check=False)
            raise
        self.t_mounted = time.monotonic()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, e, tb):
        if etype is None:
            self.close()
        else:
            try:
                self.close()
            except TestFailure as err:
                print(f"teardown of {self.mnt} also failed: {err}", file=sys.stderr)

    def unmount(self, timeout=5.0):
        """fusermount3 -u, retried while busy; -uz as a last resort (and then
        TestFailure).  Returns once the kernel no longer has the mount."""
        if not is_mounted(self.mnt):
            return
        deadline = time.monotonic() + timeout
        err = ""
        while time.monotonic() < deadline:
            r = subprocess.run(["fusermount3", "-u", str(self.mnt)],
                               capture_output=True, text=True)
            if r.returncode == 0 or not is_mounted(self.mnt):
                return
            err = r.stderr.strip()
            time.sleep(0.05)
        subprocess.run(["fusermount3", "-uz", str(self.mnt)], capture_output=True)
        raise TestFailure(f"fusermount3 -u {self.mnt} kept failing ({err}); "
                          "lazily unmounted")

    def wait_exit(self, timeout=10.0):
        try:
            self.returncode = self.proc.wait(timeout)
            return self.returncode
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        """Unmount, wait for the process, check the log.  Raises
        TestFailure for anything wrong; never leaves the mount or the
        process behind."""
        if self.closed:
            return self.returncode
        self._teardown(check=True)
        return self.returncode

    def _teardown(self, check):
        self.closed = True
        problems = []
        try:
            self.unmount()
        except TestFailure as e:
            problems.append(str(e))
        if self.proc is not None:
            if self.wait_exit(10.0) is None:
                problems.append(f"xmppfs (pid {self.proc.pid}) did not exit "
                                "within 10 s of the unmount; killed")
                self.kill()
            self.returncode = self.proc.returncode
            if self.returncode != self.expect_exit and check:
                problems.append(f"xmppfs exited with status {self.returncode}, "
                                f"expected {self.expect_exit}")
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", str(self.mnt)], capture_output=True)
        bad = self.bad_log_lines()
        if bad:
            problems.append("xmppfs log has sanitizer/GLib warnings:\n  " +
                            "\n  ".join(bad[:20]))
        if self in _active_mounts:
            _active_mounts.remove(self)
        if problems and check:
            raise TestFailure("; ".join(problems) + "\n" + self.log_tail())

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    # -- looking at it ----------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid

    def path(self, *parts):
        return self.mnt.joinpath(*parts)

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return (f"--- last {min(n, len(lines))} lines of {self.logfile} ---\n" +
                "\n".join(lines[-n:]))

    def bad_log_lines(self):
        return [l for l in self.log_text().splitlines()
                if any(p in l for p in BAD_LOG_PATTERNS)]

    def connection(self, jid):
        return read_kv(self.path(jid, "connection"))

    def wait_state(self, jid, state, timeout=10.0):
        """Wait until @jid's connection file says state: @state; returns the
        whole dict."""
        def check():
            kv = self.connection(jid)
            return kv if kv.get("state") == state else None
        return wait_until(check, timeout=timeout,
                          what=lambda: f"{jid} state {state}; connection now: "
                                       f"{self._conn_or_err(jid)}")

    def _conn_or_err(self, jid):
        try:
            return self.connection(jid)
        except OSError as e:
            return e

    def write(self, relpath, text):
        """echo-like: one open, one write, one close; OSError propagates."""
        with open(self.path(relpath), "w", encoding="utf-8") as f:
            f.write(text)

    def read(self, relpath):
        with open(self.path(relpath), encoding="utf-8") as f:
            return f.read()

    def remount(self):
        """Start xmppfs again on the same config, data dir and mount point
        (its log is appended to).  Call close() first to check the first
        run; after kill() the dead mount is torn down here unchecked."""
        if not self.closed:
            self._teardown(check=False)
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", str(self.mnt)],
                           capture_output=True)
        log = open(self.logfile, "ab")
        log.write(b"\n--- remount ---\n")
        log.flush()
        self.closed = False
        self.returncode = None
        return self._spawn(log, " again")


def run_xmppfs(args, timeout=10.0, binary=None, env=None):
    """Run the binary to completion (for --help, bad configs...)."""
    b = Path(binary) if binary else xmppfs_binary()
    if not b.exists():
        raise TestFailure(f"no xmppfs binary at {b} (build it, or set XMPPFS)")
    return subprocess.run([str(b), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# The other side: an independent client

class Peer:
    """A slixmpp client in its own thread and asyncio loop.

    p = Peer("bob@localhost", "bobpw", server).connect()
    p.wait_presence("alice@localhost", show="away", status="gone fishing")
    p.send_message("alice@localhost", "hi")
    p.wait_message("alice@localhost", body="hello")
    p.disconnect()

    Presences and messages are kept in order (self.presences,
    self.messages: lists of dicts, under self.cond) and also put on
    thread-safe queues (self.presence_queue, self.message_queue)."""

    def __init__(self, jid, password, server=None, resource="peer",
                 host="127.0.0.1", port=None, ca_file=None, verify=True,
                 direct_tls=False):
        import queue
        self.jid = jid if "/" in jid else f"{jid}/{resource}"
        self.bare = self.jid.split("/")[0]
        self.password = password
        self.host = host
        self.direct_tls = direct_tls
        if port is None and server is not None:
            port = server.direct_tls_port if direct_tls else server.port
        self.port = port or 5222
        self.ca_file = ca_file or (server.ca_file if server else None)
        self.verify = verify
        self.cond = threading.Condition()
        self.presences = []
        self.messages = []
        self.bodyless = []   # messages without a body (receipts, markers)
        self.subjects = []   # subject-only messages: from, subject, type
        self.presence_queue = queue.Queue()
        self.message_queue = queue.Queue()
        self.loop = None
        self.xmpp = None
        self.thread = None
        self._online = threading.Event()
        self._failed = None
        self._gone = threading.Event()

    # -- thread and loop ---------------------------------------------------

    def _run(self):
        import slixmpp
        logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
        asyncio.set_event_loop(self.loop)
        x = slixmpp.ClientXMPP(self.jid, self.password)
        x.loop = self.loop
        self.xmpp = x
        if self.verify and self.ca_file:
            x.ca_certs = Path(self.ca_file)
        elif not self.verify:
            x.ssl_context.check_hostname = False
            x.ssl_context.verify_mode = ssl.CERT_NONE
        x.register_plugin("xep_0030")
        x.register_plugin("xep_0199")
        x.register_plugin("xep_0203")
        x.add_event_handler("session_start", self._on_session)
        x.add_event_handler("failed_auth", lambda *_: self._fail("authentication failed"))
        x.add_event_handler("connection_failed", lambda e: self._fail(f"connection failed: {e}"))
        x.add_event_handler("disconnected", lambda *_: self._gone.set())
        x.add_event_handler("message", self._on_message)
        x.add_event_handler("presence", self._on_presence)
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        x.register_handler(Callback(
            "xfstest subject", MatchXPath("{jabber:client}message/{jabber:client}subject"),
            self._on_subject))
        # slixmpp's "message" event is for messages with a body only:
        # receipts, markers, chat states go to self.bodyless
        x.register_handler(Callback(
            "xfstest bodyless", MatchXPath("{jabber:client}message"),
            self._on_bodyless))
        self._configure(x)
        if self.direct_tls:
            x.connect((self.host, self.port), use_ssl=True)
        else:
            x.connect((self.host, self.port))
        self.loop.run_forever()
        # run_forever returned: cancel what slixmpp left running, then close
        try:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self.loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True))
        finally:
            self.loop.close()

    def _configure(self, x):
        """Hook for subclasses: register more plugins and handlers on the
        slixmpp client @x, in its loop, before it connects."""

    def _fail(self, why):
        self._failed = why
        self._online.set()

    async def _on_session(self, _):
        self.xmpp.send_presence()
        await self.xmpp.get_roster()
        self._online.set()

    def _on_message(self, msg):
        if msg["type"] == "error":
            kind = "error"
        else:
            kind = msg["type"]
        stamp = None
        d = msg.xml.find("{urn:xmpp:delay}delay")
        if d is not None:
            stamp = d.get("stamp")
        rec = {"from": str(msg["from"]), "to": str(msg["to"]), "type": kind,
               "body": msg["body"], "stamp": stamp, "time": time.time(),
               "id": msg["id"], "error": _error_condition(msg.xml),
               "xml": msg.xml}
        with self.cond:
            self.messages.append(rec)
            self.cond.notify_all()
        self.message_queue.put(rec)

    def _on_bodyless(self, msg):
        if msg.xml.find("{jabber:client}body") is not None:
            return
        rec = {"from": str(msg["from"]), "to": str(msg["to"]),
               "type": msg.xml.get("type", "normal"), "id": msg["id"],
               "time": time.time(), "xml": msg.xml}
        with self.cond:
            self.bodyless.append(rec)
            self.cond.notify_all()

    def _on_subject(self, msg):
        """A subject change (or the subject a room sends at join): slixmpp
        hands on no message without a body."""
        x = msg.xml
        if x.find("{jabber:client}body") is not None:
            return
        subj = x.find("{jabber:client}subject")
        with self.cond:
            self.subjects.append({"from": x.get("from"), "subject": subj.text or "",
                                  "type": x.get("type"), "time": time.time()})
            self.cond.notify_all()

    def _on_presence(self, pres):
        x = pres.xml
        show = x.find("{jabber:client}show")
        status = x.find("{jabber:client}status")
        prio = x.find("{jabber:client}priority")
        rec = {"from": str(pres["from"]), "type": x.get("type", "available"),
               "show": (show.text or "").strip() if show is not None else "",
               "status": (status.text or "") if status is not None else "",
               "priority": prio.text if prio is not None else None,
               "error": _error_condition(x), "time": time.time(),
               "muc_codes": [c.get("code") for c in
                             x.iter("{http://jabber.org/protocol/muc#user}status")],
               "caps": dict((x.find("{http://jabber.org/protocol/caps}c")
                             if x.find("{http://jabber.org/protocol/caps}c")
                             is not None else ET.Element("c")).attrib)}
        with self.cond:
            self.presences.append(rec)
            self.cond.notify_all()
        self.presence_queue.put(rec)

    def _call(self, fn, *args, timeout=10.0, **kw):
        """Run fn(*args) in the client's loop; wait for (and await) it."""
        async def wrapper():
            r = fn(*args, **kw)
            if asyncio.iscoroutine(r) or isinstance(r, asyncio.Future):
                r = await r
            return r
        fut = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        return fut.result(timeout)

    # -- public ------------------------------------------------------------

    def connect(self, timeout=10.0):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"peer-{self.jid}")
        self.thread.start()
        if not self._online.wait(timeout):
            self.disconnect()
            raise TestFailure(f"peer {self.jid} did not come online in {timeout:g} s")
        if self._failed:
            self.disconnect()
            raise TestFailure(f"peer {self.jid}: {self._failed}")
        return self

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.disconnect()

    def disconnect(self, timeout=10.0):
        if not self.thread:
            return
        if self.xmpp is not None and self.loop.is_running():
            try:
                self._call(self.xmpp.disconnect, timeout=timeout)
            except Exception:
                pass
            self._gone.wait(timeout)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        self.thread = None

    def send_message(self, to, body, mtype="chat"):
        """Send a message; returns its id."""
        def send():
            msg = self.xmpp.make_message(mto=to, mbody=body, mtype=mtype)
            msg["id"] = os.urandom(8).hex()
            msg.send()
            return msg["id"]
        return self._call(send)

    def send_message_with(self, to, body=None, children=(), mtype="chat",
                          mid=None):
        """Send a message with extra child elements (ElementTree
        elements: a receipt request, a marker, a correction...); @body None
        for none.  Returns its id."""
        def send():
            msg = self.xmpp.make_message(mto=to, mbody=body, mtype=mtype)
            msg["id"] = mid or os.urandom(8).hex()
            for c in children:
                msg.xml.append(c)
            msg.send()
            return msg["id"]
        return self._call(send)

    def send_presence(self, show=None, status=None, ptype=None, to=None):
        kw = {}
        if show:
            kw["pshow"] = show
        if status:
            kw["pstatus"] = status
        if ptype:
            kw["ptype"] = ptype
        if to:
            kw["pto"] = to
        self._call(lambda: self.xmpp.send_presence(**kw))

    def join_room(self, room, nick, timeout=10.0):
        """Join a MUC room (XEP-0045) and wait for our own presence in it.
        Only what the room sends after this join counts: a kick or ban
        also carries 110, in an unavailable presence."""
        with self.cond:
            since = len(self.presences)
        def send():
            p = self.xmpp.make_presence(pto=f"{room}/{nick}")
            p.append(ET.Element("{http://jabber.org/protocol/muc}x"))
            p.send()
        self._call(send)
        def joined():
            with self.cond:
                ps = [p for p in self.presences[since:]
                      if p["from"] == f"{room}/{nick}"]
            for p in ps:
                if p["type"] == "error":
                    raise TestFailure(f"joining {room}: {p['error']}")
                if "110" in p["muc_codes"] and p["type"] == "available":
                    return p
            return None
        return wait_until(joined, timeout=timeout, what=f"{self.bare} to join {room}")

    def roster(self):
        """{bare JID: subscription} as the server has it now."""
        async def get():
            await self.xmpp.get_roster()
            r = self.xmpp.client_roster
            return {j: r[j]["subscription"] for j in r}
        return self._call(get)

    def latest_presences(self, jid, errors=False):
        """{full JID: latest presence dict} of @jid (bare or full).  Presence
        errors (bounces of our own presence) say nothing about @jid's
        availability and are left out unless @errors."""
        out = {}
        with self.cond:
            for p in self.presences:
                f = p["from"]
                if p["type"] == "error" and not errors:
                    continue
                if f == jid or f.split("/")[0] == jid:
                    out[f] = p
        return out

    def presence_errors(self, jid):
        """Presence errors that came from @jid (bare or full)."""
        with self.cond:
            return [p for p in self.presences if p["type"] == "error" and
                    (p["from"] == jid or p["from"].split("/")[0] == jid)]

    def wait_presence(self, jid, show=None, status=None, ptype="available",
                      timeout=10.0):
        """Wait until the latest presence of @jid matches.  For a bare JID
        and ptype 'available' any resource may match; for 'unavailable'
        every resource seen must be unavailable.  show '' means plain
        available (no <show/>); None means any."""
        def check():
            latest = self.latest_presences(jid, errors=(ptype == "error"))
            if not latest:
                return None

            def ok(p):
                return (p["type"] == ptype and
                        (show is None or p["show"] == show) and
                        (status is None or p["status"] == status))
            if ptype == "unavailable":
                return all(ok(p) for p in latest.values()) and latest
            hits = [p for p in latest.values() if ok(p)]
            return hits[-1] if hits else None
        return wait_until(check, timeout=timeout,
                          what=lambda: f"{self.bare} to see presence of {jid} "
                                       f"type={ptype} show={show!r} status={status!r} "
                                       f"(latest: {self.latest_presences(jid)})")

    def wait_message(self, frm, body=None, timeout=10.0, since=0):
        """Wait for a message from @frm (bare or full) with @body (or any);
        @since: index into self.messages to start at."""
        def check():
            with self.cond:
                for m in self.messages[since:]:
                    f = m["from"]
                    if (f == frm or f.split("/")[0] == frm) and \
                            (body is None or m["body"] == body):
                        return m
            return None
        return wait_until(check, timeout=timeout,
                          what=f"{self.bare} to get a message from {frm} body={body!r}")

    def wait_subject(self, frm, subject, since=0, timeout=10.0):
        """Wait for a subject-only message from @frm (bare or full) with
        @subject, since index @since of self.subjects."""
        def check():
            with self.cond:
                for m in self.subjects[since:]:
                    f = m["from"] or ""
                    if (f == frm or f.split("/")[0] == frm) and m["subject"] == subject:
                        return m
            return None
        return wait_until(check, timeout=timeout,
                          what=lambda: f"{self.bare} to see subject {subject!r} from {frm}; "
                                       f"saw {self.subjects[since:]!r}")

    def send_raw(self, xml):
        """Send @xml (one or more stanzas, as text) as it is; the server
        adds 'from'."""
        self._call(self.xmpp.send_raw, xml)

    def messages_from(self, frm, since=0, errors=False):
        """Messages from @frm (bare or full) since index @since, in order;
        type='error' ones only with @errors."""
        with self.cond:
            return [m for m in self.messages[since:]
                    if (m["from"] == frm or m["from"].split("/")[0] == frm)
                    and (errors or m["type"] != "error")]

    def wait_messages(self, frm, n, since=0, timeout=10.0):
        """Wait until at least @n messages from @frm arrived since index
        @since; returns all of them (maybe more than @n)."""
        return wait_until(
            lambda: (lambda ms: ms if len(ms) >= n else None)(
                self.messages_from(frm, since)),
            timeout=timeout,
            what=lambda: f"{self.bare} to get {n} messages from {frm}; got "
                         f"{[m['body'] for m in self.messages_from(frm, since)]!r}"[:2000])

    def archive(self, with_jid=None, page=50, timeout=30.0):
        """Every message in this account's own archive (XEP-0313), oldest
        first, paged by RSM: dicts with from, to, body, id (the
        stanza's), origin_id, stamp."""
        import uuid
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        ns, rsm = "urn:xmpp:mam:2", "http://jabber.org/protocol/rsm"
        qid = uuid.uuid4().hex
        out = []

        def on_result(msg):
            r = msg.xml.find(f"{{{ns}}}result")
            if r is None or r.get("queryid") != qid:
                return
            fwd = r.find("{urn:xmpp:forward:0}forwarded")
            inner = fwd.find("{jabber:client}message") if fwd is not None else None
            if inner is None:
                return
            d = fwd.find("{urn:xmpp:delay}delay")
            body = inner.find("{jabber:client}body")
            oid = inner.find("{urn:xmpp:sid:0}origin-id")
            out.append({"from": inner.get("from"), "to": inner.get("to"),
                        "body": body.text if body is not None else None,
                        "id": inner.get("id"),
                        "origin_id": oid.get("id") if oid is not None else None,
                        "stamp": d.get("stamp") if d is not None else None,
                        "archive_id": r.get("id")})
        name = f"xfstest archive {qid}"
        self._call(lambda: self.xmpp.register_handler(Callback(
            name, MatchXPath(f"{{jabber:client}}message/{{{ns}}}result"),
            on_result)))
        try:
            after = None
            while True:
                q = ET.Element(f"{{{ns}}}query", {"queryid": qid})
                if with_jid:
                    x = ET.SubElement(q, "{jabber:x:data}x", {"type": "submit"})
                    for var, val in (("FORM_TYPE", ns), ("with", with_jid)):
                        f = ET.SubElement(x, "{jabber:x:data}field", {"var": var})
                        ET.SubElement(f, "{jabber:x:data}value").text = val
                s = ET.SubElement(q, f"{{{rsm}}}set")
                ET.SubElement(s, f"{{{rsm}}}max").text = str(page)
                if after:
                    ET.SubElement(s, f"{{{rsm}}}after").text = after
                ans = self.iq(self.bare, "set", q, timeout=timeout)
                if ans is None or ans.get("type") != "result":
                    raise TestFailure(f"{self.bare}: archive query failed: "
                                      f"{ans if ans is None else _error_condition(ans)}")
                fin = ans.find(f"{{{ns}}}fin")
                last = fin.find(f"{{{rsm}}}set/{{{rsm}}}last") if fin is not None else None
                if fin is None or fin.get("complete") == "true" or last is None:
                    return out
                after = last.text
        finally:
            self._call(lambda: self.xmpp.remove_handler(name))

    # -- roster and subscriptions ------------------------------------------

    def manual_subscriptions(self):
        """Make this client answer no subscription request by itself
        (slixmpp approves every request and subscribes back by default).
        Call it before connect(): then it holds from before the initial
        presence, so that no request the server delivers at login is
        answered.  Returns self."""
        def manual():
            self.xmpp.auto_authorize = None   # neither approve nor refuse
            self.xmpp.auto_subscribe = False
        if self.xmpp is not None and self.loop and self.loop.is_running():
            self._call(manual)
            return self
        on_session = self._on_session

        async def manual_then_session(ev):
            manual()
            await on_session(ev)
        self._on_session = manual_then_session   # _run looks it up later
        return self

    def _roster_iq(self, itype, item=None, timeout=10.0):
        """Send a jabber:iq:roster get/set (@item: an ET <item/>); returns
        the answer's XML or raises TestFailure with the error."""
        q = ET.Element("{jabber:iq:roster}query")
        if item is not None:
            q.append(item)
        x = self._call(self.aiq, None, itype, q, timeout, timeout=timeout + 2)
        if x is None:
            raise TestFailure(f"{self.jid}: no answer to a roster {itype}")
        if x.get("type") == "error":
            raise TestFailure(f"{self.jid}: roster {itype} failed: "
                              f"{_error_condition(x)}")
        return x

    async def aiq(self, to, itype, child, timeout=10.0):
        """iq() in the client's loop (to=None: our own account)."""
        from slixmpp.exceptions import IqError, IqTimeout
        iq = self.xmpp.Iq()
        iq["type"] = itype
        if to:
            iq["to"] = to
        iq.append(child)
        try:
            r = await iq.send(timeout=timeout)
        except IqError as e:
            return e.iq.xml
        except IqTimeout:
            return None
        return r.xml

    def iq(self, to, itype, child, timeout=10.0):
        """Send an <iq type=@itype to=@to> with @child (an ET element);
        returns the answer's XML (result or error), None on no answer."""
        return self._call(self.aiq, to, itype, child, timeout,
                          timeout=timeout + 2)

    def roster_items(self):
        """The roster as the server has it now, fetched with a fresh
        jabber:iq:roster get (no cache): {bare JID: {"subscription",
        "ask" (None or "subscribe"), "name" (None when absent),
        "groups" (list, in the server's order)}}."""
        x = self._roster_iq("get")
        out = {}
        q = x.find("{jabber:iq:roster}query")
        for it in (q if q is not None else []):
            if it.tag != "{jabber:iq:roster}item":
                continue
            out[it.get("jid")] = {
                "subscription": it.get("subscription", "none"),
                "ask": it.get("ask"),
                "name": it.get("name"),
                "groups": [g.text or "" for g in
                           it.findall("{jabber:iq:roster}group")]}
        return out

    def roster_set(self, jid, name=None, groups=()):
        """Add or change the roster item @jid (name None: no name)."""
        it = ET.Element("{jabber:iq:roster}item", {"jid": jid})
        if name is not None:
            it.set("name", name)
        for g in groups:
            ET.SubElement(it, "{jabber:iq:roster}group").text = g
        self._roster_iq("set", it)

    def roster_remove(self, jid):
        self._roster_iq("set", ET.Element("{jabber:iq:roster}item",
                                          {"jid": jid, "subscription": "remove"}))

    def presences_of_type(self, jid, ptype, since=0):
        """Presences of type @ptype (e.g. 'subscribe') from @jid (bare or
        full) since index @since of self.presences."""
        with self.cond:
            return [p for p in self.presences[since:]
                    if p["type"] == ptype and
                    (p["from"] == jid or p["from"].split("/")[0] == jid)]

    def wait_presence_type(self, jid, ptype, since=0, timeout=10.0):
        """Wait for a presence of type @ptype from @jid since index @since;
        returns the first one."""
        return wait_until(
            lambda: (self.presences_of_type(jid, ptype, since) or [None])[0],
            timeout=timeout,
            what=lambda: f"{self.bare} to get presence type={ptype} from {jid}; "
                         f"got since {since}: " + repr(
                             [(p['from'], p['type']) for p in self.presences[since:]])[:1500])


def _error_condition(xml):
    """'cancel/item-not-found' for a stanza error, else None."""
    e = xml.find("{jabber:client}error")
    if e is None:
        return None
    conds = [c.tag.split("}")[1] for c in e
             if c.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")
             and not c.tag.endswith("}text")]
    return f"{e.get('type')}/{conds[0] if conds else '?'}"



# --------------------------------------------------------------------------
# Readers of files that block (stream, events, raw)

def _read_syscall_nr():
    return {"x86_64": 0, "aarch64": 63, "riscv64": 63}.get(os.uname().machine)


class LineReader:
    """`cat PATH` in a child process of its own; a thread collects its
    output line by line (self.lines: str without the LF, under
    self.cond).  A child can be killed even while it blocks in a read;
    a thread of the test could not.

    r = LineReader(m.path(A, "contacts", B, "stream")).start()
    r.wait_open()                 # cat has the file open
    r.wait_lines(3)               # at least 3 lines read
    r.stop()                      # SIGINT; TestFailure if cat does not end
    """

    def __init__(self, path, argv=None):
        self.path = str(path)
        self.argv = argv or ["cat", self.path]
        self.realpath = os.path.realpath(self.path)
        self.proc = None
        self.thread = None
        self.cond = threading.Condition()
        self.lines = []
        self.partial = b""
        self.eof = False
        self.returncode = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._collect, daemon=True,
                                       name=f"reader-{self.proc.pid}")
        self.thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=False)

    def _collect(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                buf = self.partial + data
                *done, self.partial = buf.split(b"\n")
                self.lines += [l.decode("utf-8", "replace") for l in done]
                self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def has_open(self):
        """True once the child has self.path open."""
        d = f"/proc/{self.proc.pid}/fd"
        for fd in os.listdir(d):
            try:
                if os.readlink(f"{d}/{fd}") == self.realpath:
                    return True
            except OSError:
                pass
        return False

    def blocked_in_read(self):
        """True while the child sits in a read(2) (of anything)."""
        nr = _read_syscall_nr()
        try:
            with open(f"/proc/{self.proc.pid}/syscall") as f:
                first = f.read().split()[0]
        except (OSError, IndexError):
            return False
        if nr is None:
            return pid_alive(self.proc.pid)
        return first == str(nr)

    def wait_open(self, timeout=10.0):
        """Wait until the child has the file open and sits in a read."""
        def check():
            if self.proc.poll() is not None:
                self._fail_exited()
            return self.has_open() and self.blocked_in_read()
        return wait_until(check, timeout=timeout,
                          what=f"{self.argv} to open {self.path} and block in read")

    def _fail_exited(self):
        raise TestFailure(f"{self.argv} exited with {self.proc.returncode}: "
                          f"{self.proc.stderr.read().decode(errors='replace')!r}")

    def snapshot(self):
        with self.cond:
            return list(self.lines)

    def wait_lines(self, n, timeout=10.0):
        """Wait until at least @n complete lines were read; returns them."""
        def check():
            with self.cond:
                if len(self.lines) >= n:
                    return list(self.lines)
                if self.eof:
                    raise TestFailure(f"{self.argv} ended after {len(self.lines)} "
                                      f"lines: {self.lines!r}")
            return None
        return wait_until(check, timeout=timeout,
                          what=lambda: f"{n} lines from {self.argv}; have "
                                       f"{self.snapshot()!r}"[:2000])

    def stop(self, sig=signal.SIGINT, timeout=5.0, check=True):
        """Send @sig and wait for the child to end; returns the seconds
        that took.  If it does not end in @timeout: SIGKILL, and
        TestFailure when @check."""
        from contextlib import suppress
        if self.proc is None or self.returncode is not None:
            return 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                self.proc.kill()
            try:
                self.returncode = self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.returncode = None
            if check:
                raise TestFailure(f"{self.argv} (pid {self.proc.pid}) did not end "
                                  f"within {timeout:g} s of signal {sig}")
        dt = time.monotonic() - t0
        if self.thread:
            self.thread.join(2)
        for f in (self.proc.stdout, self.proc.stderr):
            with suppress(OSError):
                f.close()
        return dt

# --------------------------------------------------------------------------
# Servers that misbehave

class _FakeServer:
    """A TCP listener on 127.0.0.1:random served by one thread.  Subclasses
    override on_connect(conn) and on_data(conn, data).  Connections stay
    open until the client closes them or stop()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0     # accepted so far
        self.closed_by_peer = 0  # connections the client closed
        self.received = []       # bytes per connection, in accept order
        self.conns = {}
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name=type(self).__name__)

    def start(self):
        self.thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self._stop:
            return
        self._stop = True
        os.write(self._wake_w, b"x")
        if self.thread.is_alive():
            self.thread.join(10)
        for c in list(self.conns):
            c.close()
        self.conns.clear()
        self.sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _serve(self):
        while not self._stop:
            fds = [self.sock, self._wake_r] + [c for c, st in self.conns.items()
                                                if st.get("read", True)]
            r, _, _ = select.select(fds, [], [], 1.0)
            for s in r:
                if s is self._wake_r or self._stop:
                    continue
                if s is self.sock:
                    c, _ = self.sock.accept()
                    with self.lock:
                        self.connections += 1
                        self.received.append(bytearray())
                    self.conns[c] = {"idx": len(self.received) - 1}
                    self.on_connect(c)
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    with self.lock:
                        self.closed_by_peer += 1
                    self.conns.pop(s, None)
                    s.close()
                    continue
                st = self.conns[s]
                with self.lock:
                    self.received[st["idx"]] += data
                self.on_data(s, st, data)

    def all_received(self):
        with self.lock:
            return b"".join(bytes(b) for b in self.received)

    def on_connect(self, conn):
        pass

    def on_data(self, conn, st, data):
        pass


class SilentServer(_FakeServer):
    """Accepts TCP connections and never says a word."""


STREAM_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' "
                 "id='{id}' from='localhost' version='1.0'>")


class _StreamServer(_FakeServer):
    features = ""

    def on_data(self, conn, st, data):
        st.setdefault("buf", b"")
        st["buf"] += data
        if not st.get("opened") and re.search(rb"<(stream:)?stream[^>]*>", st["buf"]):
            st["opened"] = True
            st["buf"] = re.split(rb"<(?:stream:)?stream[^>]*>", st["buf"], 1)[1]
            conn.sendall((STREAM_HEADER.format(id=os.urandom(4).hex()) +
                          "<stream:features>" + self.features +
                          "</stream:features>").encode())
        if st.get("opened"):
            self.on_stanza_data(conn, st)

    def on_stanza_data(self, conn, st):
        pass


class TlsStallServer(_StreamServer):
    """Offers required STARTTLS, answers <starttls/> with <proceed/>, then
    stays silent inside the TLS handshake (never reads, never answers)."""
    features = ("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                "<required/></starttls>")

    def __init__(self):
        super().__init__()
        self.proceeded = 0

    def on_stanza_data(self, conn, st):
        if b"<starttls" in st["buf"] and not st.get("proceed"):
            st["proceed"] = True
            with self.lock:
                self.proceeded += 1
            # keep reading to notice a close, but answer nothing
            conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")

    def on_data(self, conn, st, data):
        if st.get("proceed"):
            return  # TLS ClientHello and the like: never answered
        super().on_data(conn, st, data)


class NoTlsServer(_StreamServer):
    """Offers SASL PLAIN without STARTTLS; records whether an <auth> ever
    arrives (auth_seen) - a client that requires TLS must never send one."""
    features = ("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                "<mechanism>PLAIN</mechanism></mechanisms>")

    @property
    def auth_seen(self):
        return b"<auth" in self.all_received()

    def on_stanza_data(self, conn, st):
        if b"<auth" in st["buf"] and not st.get("failed"):
            st["failed"] = True
            conn.sendall(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                         b"<not-authorized/></failure>")


# --------------------------------------------------------------------------
# For the runner: what a test left behind

def find_files(root, name):
    """Paths of files called @name under @root, never descending into a
    mount point (a dead FUSE mount answers ECONNABORTED, a live one might
    hang)."""
    mounts = mounted_paths()
    out = []
    stack = [str(root)]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.path not in mounts:
                        stack.append(e.path)
                elif e.name == name:
                    out.append(Path(e.path))
            except OSError:
                continue
    return out


def cleanup_tree(root):
    """Kill every xmppfs whose pid file is under @root, lazily unmount every
    mount under it, stop every testbed in it.  For what a test left behind
    (e.g. one killed on timeout); each pid is checked against its command
    line first.  Returns a list of what it had to clean."""
    root = Path(root).resolve()
    left = []
    for pidf in find_files(root, "xmppfs.pid"):
        try:
            pid = int(pidf.read_text())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if str(pidf.parent / "mnt").encode() in cmd and pid_alive(pid):
            left.append(f"xmppfs pid {pid} ({pidf.parent}) still running: killed")
            os.kill(pid, signal.SIGKILL)
    for mp in sorted(mounted_paths(), reverse=True):
        if mp.startswith(str(root) + "/"):
            left.append(f"{mp} still mounted: lazily unmounted")
            subprocess.run(["fusermount3", "-uz", mp], capture_output=True)
            if is_mounted(mp):
                subprocess.run(["umount", "-l", mp], capture_output=True)
    for pidf in find_files(root, "testbed.pid"):
        left.append(f"testbed in {pidf.parent} still running: stopped")
        subprocess.run([str(TESTBED), "stop", str(pidf.parent)],
                       capture_output=True, timeout=60)
    return left


def read_with_deadline(fd, timeout=3.0):
    """os.read(fd) in a thread, for a read that must not block (O_NONBLOCK):
    TestFailure if it has not returned after @timeout s.  Returns a dict
    with "data" or "err" (the OSError)."""
    out = {}

    def run():
        try:
            out["data"] = os.read(fd, 65536)
        except OSError as e:
            out["err"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TestFailure(f"a read of fd {fd} with O_NONBLOCK blocked for "
                          f"{timeout:g} s")
    return out


# --------------------------------------------------------------------------
# Helpers the test files share: records, writes, errors, events

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# the kinds of `events` lines the tests of roster and rooms expect
KINDS = {"message", "groupchat", "presence", "subscribe", "subscribed",
         "unsubscribe", "unsubscribed", "roster", "error", "connection",
         # README's additions to SPEC
         "private", "invite", "kicked", "banned", "destroyed", "removed",
         "blocked", "bookmark", "avatar", "rejoin", "upload", "download"}


def write_chunks(path, *chunks):
    """open, one write per chunk, close; OSError propagates (from the
    write or from close)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        for c in chunks:
            os.write(fd, c.encode() if isinstance(c, str) else c)
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    os.close(fd)


def expect_errno(fn, want, what):
    """fn() must raise OSError with an errno in @want; returns a problem
    string or None."""
    want = (want,) if isinstance(want, int) else tuple(want)
    try:
        fn()
    except OSError as e:
        if e.errno in want:
            return None
        return f"{what}: {errno.errorcode.get(e.errno, e.errno)} ({e}) instead of " \
               f"{'/'.join(errno.errorcode[w] for w in want)}"
    return f"{what}: succeeded instead of failing with " \
           f"{'/'.join(errno.errorcode[w] for w in want)}"


def el(ns, tag, text=None, **attrs):
    """An ElementTree element {@ns}@tag with @attrs and @text, for the
    raw stanzas a test sends."""
    e = ET.Element(f"{{{ns}}}{tag}")
    for k, v in attrs.items():
        e.set(k, v)
    if text is not None:
        e.text = text
    return e


def events_reader(stack, m, acct):
    r = stack.enter_context(LineReader(m.path(acct, "events")))
    r.wait_open()
    return r


def parse_event(line):
    f = line.split("\t", 3)
    if len(f) != 4 or not TIME_RE.match(f[0]) or f[1] not in KINDS:
        raise TestFailure(f"events: not a TIME<TAB>KIND<TAB>JID<TAB>TEXT line "
                          f"with a known kind: {line!r}")
    return tuple(f)
