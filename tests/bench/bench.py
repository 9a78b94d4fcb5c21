"""bench.py - the benchmark of xmppfs against a raw libstrophe client.

Run through scripts/bench (which builds first).  Starts a private Prosody
(scripts/testbed), mounts xmppfs with one account, and measures each figure
on xmppfs and on its baseline in the same run, alternating which goes
first, several times; prints medians and the ratio xmppfs/baseline.  It
prints figures and never fails on a time: the exit status is non-zero only
when a measurement could not be made at all (a message never arrived, the
mount never came online...).

Parties (all on the test bed's Prosody, host "localhost"):
  alice  the xmppfs account
  carol  the raw sender (tests/bench/rawclient) and go-sendxmpp
  bob    the independent receiver: rawclient recv-count, which counts the
         distinct messages of one run's unique marker and stamps the last
  echo   the echo peer: rawclient echo-peer sends every body back

Environment: BENCH_IDLE (seconds of idle-CPU measurement, default 30),
BENCH_REPS, BENCH_N (throughput messages), BENCH_LOOP (messages of the
echo loop), BENCH_GO (go-sendxmpp messages), BENCH_RTT (round trips).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTBED = ROOT / "scripts" / "testbed"
DOMAIN = "localhost"
USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw",
         "echo": "echopw"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def jid(user):
    return f"{user}@{DOMAIN}"


# ---------------------------------------------------------------------------
# /proc

def cpu_ticks(pid):
    """utime+stime of a process in seconds (all threads, also exited
    ones; 1/CLK_TCK resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_precise(pid):
    """(CPU seconds, context switches) summed over the live threads of a
    process, from schedstat (ns resolution) and status."""
    ns = 0
    switches = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches",
                                        "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return ns / 1e9, switches


def io_rchar(pid):
    """Bytes the process has read with read(2)-like calls (its files and
    /dev/fuse)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def p99(xs):
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, -(-99 * len(s) // 100) - 1)  # nearest-rank
    return s[k]


# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = Path(args.build).resolve()
        self.xmppfs = self.build / "xmppfs"
        self.raw = self.build / "tests" / "bench" / "rawclient"
        for p in (self.xmppfs, self.raw):
            if not p.exists():
                raise BenchError(f"{p} is missing: build first")
        self.work = Path(tempfile.mkdtemp(prefix="xmppfs-bench.", dir="/tmp"))
        self.srv = self.work / "server"
        self.data = self.work / "data"
        self.mnt = self.work / "mnt"
        self.cfg = self.work / "config"
        self.children = []       # Popen objects we started
        self.xproc = None
        self.server_up = False
        self.runid = f"{os.getpid():x}{int(time.time()) % 100000:x}"
        self.seq = 0
        self.results = {}        # name -> list of values
        self.extra = {}          # name -> list of values (side figures)
        self.t0 = time.monotonic()

    # -- bookkeeping ------------------------------------------------------

    def add(self, name, value, extra=False):
        (self.extra if extra else self.results).setdefault(name, []).append(value)

    def marker(self, what):
        self.seq += 1
        return f"{what}-{self.runid}-{self.seq}"

    def acct(self):
        return self.mnt / jid("alice")

    # -- server -----------------------------------------------------------

    def start_server(self):
        cmd = [str(TESTBED), "start", str(self.srv)]
        for u, p in USERS.items():
            cmd += ["--user", f"{u}:{p}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise BenchError(f"testbed start failed:\n{r.stdout}{r.stderr}")
        self.server_up = True
        kv = dict(l.split("=", 1) for l in (self.srv / "ports").read_text().split())
        self.port = int(kv["port"])
        self.prosody_pid = int((self.srv / "testbed.pid").read_text())
        self.ca = str(self.srv / "certs" / "localhost.crt")
        # The test bed logs every stanza at debug level to debug.log; that
        # costs Prosody about 40% of its throughput.  Drop that one log
        # target and have Prosody reload its config (SIGHUP).
        cfgf = self.srv / "prosody.cfg.lua"
        text = cfgf.read_text()
        new = re.sub(r"(?m)^\s*debug = .*\n", "", text)
        if new != text:
            cfgf.write_text(new)
            size = (self.srv / "prosody.log").stat().st_size
            os.kill(self.prosody_pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(self.srv / "prosody.log", "rb") as f:
                    f.seek(size)
                    if b"Certificates reloaded" in f.read():
                        break
                time.sleep(0.05)
        text = cfgf.read_text()
        for want in ("storage_archive_item_limit", "nagle = false",
                     "limits = { }"):
            if want not in text:
                log(f"bench: note: the test bed config lacks {want!r}")

    def stop_server(self):
        if self.server_up:
            self.server_up = False
            subprocess.run([str(TESTBED), "stop", str(self.srv)],
                           capture_output=True, timeout=60)

    # -- rawclient --------------------------------------------------------

    def rawcmd(self, user, *mode, resource=None):
        j = jid(user) + (f"/{resource}" if resource else "")
        opts = []
        if mode and mode[0] == "-n":
            opts, mode = ["-n"], mode[1:]
        return [str(self.raw), *opts, "-j", j, "-H", "127.0.0.1", "-p", str(self.port),
                "-c", self.ca, *mode]

    def rawenv(self, user):
        env = dict(os.environ)
        env["RAWCLIENT_PASSWORD"] = USERS[user]
        return env

    def spawn_raw(self, user, *mode, resource=None):
        p = subprocess.Popen(self.rawcmd(user, *mode, resource=resource),
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=self.rawenv(user), text=True)
        self.children.append(p)
        return p

    def run_raw(self, user, *mode, timeout=120, resource=None):
        r = subprocess.run(self.rawcmd(user, *mode, resource=resource),
                           capture_output=True, text=True, timeout=timeout,
                           env=self.rawenv(user))
        if r.returncode:
            raise BenchError(f"rawclient {' '.join(mode)} failed: {r.stderr}")
        return r.stdout

    def run_file(self, *mode, timeout=120):
        r = subprocess.run([str(self.raw), *mode], capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode:
            raise BenchError(f"rawclient {mode[0]} failed: {r.stderr}")
        return r.stdout

    @staticmethod
    def expect_line(p, word, timeout=30):
        """Read p's stdout until a line starting with @word; return it."""
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                line = p.stdout.readline()
                if not line:
                    break
                if line.startswith(word):
                    return line.split()
            elif p.poll() is not None:
                break
        raise BenchError(f"no '{word}' line from {' '.join(p.args[-4:])} "
                         f"(exit {p.poll()})")

    def stop_child(self, p, timeout=5):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.children:
            self.children.remove(p)

    # -- xmppfs -----------------------------------------------------------

    def write_config(self):
        fd = os.open(self.cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"[{jid('alice')}]\npassword = {USERS['alice']}\n"
                    f"host = 127.0.0.1\nport = {self.port}\n"
                    f"ca_file = {self.ca}\nresource = bench\n")

    def is_mounted(self):
        mp = str(self.mnt)
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == mp for line in f)

    def mount(self):
        """Start xmppfs; return seconds from the spawn to 'state: online'."""
        conn = self.acct() / "connection"
        logf = open(self.work / "xmppfs.log", "ab")
        t0 = time.monotonic()
        self.xproc = subprocess.Popen(
            [str(self.xmppfs), "-f", "--config", str(self.cfg), "--data-dir",
             str(self.data), str(self.mnt)], stdout=logf, stderr=logf,
            stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        deadline = t0 + 30
        while True:
            try:
                with open(conn, "rb") as f:
                    if b"state: online" in f.read():
                        return time.monotonic() - t0
            except OSError:
                pass
            if self.xproc.poll() is not None:
                raise BenchError(f"xmppfs exited ({self.xproc.returncode}); "
                                 f"see {self.work}/xmppfs.log")
            if time.monotonic() > deadline:
                raise BenchError("xmppfs did not come online in 30 s")
            time.sleep(0.001)

    def unmount(self):
        if self.is_mounted():
            deadline = time.monotonic() + 10
            while self.is_mounted() and time.monotonic() < deadline:
                r = subprocess.run(["fusermount3", "-u", str(self.mnt)],
                                   capture_output=True)
                if r.returncode:
                    time.sleep(0.1)
            if self.is_mounted():
                subprocess.run(["fusermount3", "-uz", str(self.mnt)],
                               capture_output=True)
        if self.xproc:
            try:
                self.xproc.wait(15)
            except subprocess.TimeoutExpired:
                self.xproc.kill()
                self.xproc.wait()
            self.xproc = None

    def settle(self, max_s=20):
        """Wait until xmppfs and Prosody stop using CPU (the previous
        measurement's tail: acknowledgements, archive writes)."""
        pids = [self.prosody_pid] + ([self.xproc.pid] if self.xproc else [])
        deadline = time.monotonic() + max_s
        last = sum(cpu_ticks(p) for p in pids)
        while time.monotonic() < deadline:
            time.sleep(0.25)
            cur = sum(cpu_ticks(p) for p in pids)
            if cur - last <= 0.01:
                return
            last = cur

    # -- log files for tail -----------------------------------------------

    def make_logs(self):
        base = self.data / jid("alice") / "contacts"
        self.logs = {}
        for name, n in (("10k", 10_000), ("1M", 1_000_000)):
            peer = f"log{name.lower()}@{DOMAIN}"
            d = base / peer
            d.mkdir(parents=True, exist_ok=True)
            path = d / "log"
            t = 1_700_000_000
            with open(path, "w", encoding="utf-8") as f:
                chunk = []
                for i in range(n):
                    who = peer if i % 2 else jid("alice")
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                          time.gmtime(t + i // 10))
                    chunk.append(f"{stamp}\t{who}\trecord {i} of {n}: "
                                 "the quick brown fox jumps over the lazy dog\n")
                    if len(chunk) == 10000:
                        f.write("".join(chunk))
                        chunk = []
                f.write("".join(chunk))
            os.chmod(path, 0o600)
            self.logs[name] = (peer, path)

    # -- measurements -----------------------------------------------------

    def receiver(self, n, marker, secs):
        p = self.spawn_raw("bob", "recv-count", str(n), marker, str(secs),
                           resource="recv")
        self.expect_line(p, "ready")
        return p

    def receiver_result(self, p, n, what, timeout):
        f = self.expect_line(p, "received", timeout=timeout)
        self.stop_child(p)
        got, last, cpu = int(f[1]), float(f[7]), float(f[11])
        if got != n:
            raise BenchError(f"{what}: the receiver got {got} of {n} messages")
        return last, cpu

    def throughput(self, side, n):
        marker = self.marker("tp")
        deadline = max(120, n // 50)
        rx = self.receiver(n, marker, deadline)
        pids = [self.prosody_pid] + ([self.xproc.pid] if side == "xmppfs" else [])
        c0 = [cpu_ticks(p) for p in pids]
        if side == "xmppfs":
            send = self.acct() / "contacts" / jid("bob") / "send"
            out = self.run_file("fs-send", str(send), str(n), marker,
                                timeout=deadline)
        else:
            out = self.run_raw("carol", "send", jid("bob"), str(n), marker,
                               timeout=deadline, resource="send")
        start = float(re.search(r"start (\S+)", out).group(1))
        done = float(re.search(r"done (\S+)", out).group(1))
        # xmppfs: every write(2) returned; raw: the server answered a ping
        # sent after the last message, i.e. it has routed them all
        self.add(f"tp_accept_{side}", n / (done - start), extra=True)
        last, rx_cpu = self.receiver_result(rx, n, f"throughput {side}",
                                            deadline)
        c1 = [cpu_ticks(p) for p in pids]
        el = last - start
        self.add(f"tp_{side}", n / el)
        self.add(f"tp_prosody_{side}", (c1[0] - c0[0]) / el, extra=True)
        self.add(f"tp_rx_{side}", rx_cpu / el, extra=True)
        if side == "xmppfs":
            self.add("tp_xmppfs_cpu", (c1[1] - c0[1]) / el, extra=True)
        log(f"  throughput {side:6}: {n} in {el:.2f} s = {n / el:.0f} msg/s")

    def loop(self, side, n):
        marker = self.marker("loop")
        deadline = max(120, n)
        rx = self.receiver(n, marker, deadline)
        if side == "xmppfs":
            send = self.acct() / "contacts" / jid("bob") / "send"
            script = ('for i in $(seq 1 "$N"); do echo "$M $i" > "$SEND"; '
                      'done')
            env = dict(os.environ, N=str(n), M=marker, SEND=str(send))
        else:
            script = ('for i in $(seq 1 "$N"); do echo "$M $i" | go-sendxmpp '
                      '-u "$U" -p "$PW" -j "127.0.0.1:$PORT" -n "$TO" || '
                      'exit 1; done')
            env = dict(os.environ, N=str(n), M=marker, U=jid("carol"),
                       PW=USERS["carol"], PORT=str(self.port), TO=jid("bob"))
        t0 = time.monotonic()
        r = subprocess.run(["bash", "-c", script], env=env, timeout=deadline,
                           capture_output=True, text=True)
        if r.returncode:
            raise BenchError(f"loop {side} failed: {r.stderr}")
        t_loop = time.monotonic() - t0
        last, _ = self.receiver_result(rx, n, f"loop {side}", deadline)
        per = (last - t0) / n
        self.add(f"loop_{side}", per * 1000)
        self.add(f"loop_self_{side}", t_loop / n * 1000, extra=True)
        log(f"  loop {side:6}: {n} messages, {per * 1000:.2f} ms each "
            f"(loop itself {t_loop / n * 1000:.2f} ms each)")

    def rtt(self, side, n, nagle=False):
        marker = self.marker("rtt")
        if nagle:  # the raw client without TCP_NODELAY, like xmppfs today
            out = self.run_raw("carol", "-n", "rtt", jid("echo"), str(n),
                               marker, resource="rtt")
            us = [int(x) for x in
                  re.search(r"rtts_us(.*)", out).group(1).split()]
            self.add("rtt_med_raw_nagle", median(us) / 1000, extra=True)
            log(f"  rtt raw -n: median {median(us) / 1000:.3f} ms")
            return
        if side == "xmppfs":
            d = self.acct() / "contacts" / jid("echo")
            out = self.run_file("fs-rtt", str(d / "send"), str(d / "stream"),
                                jid("echo"), str(n), marker)
        else:
            out = self.run_raw("carol", "rtt", jid("echo"), str(n), marker,
                               resource="rtt")
        us = [int(x) for x in re.search(r"rtts_us(.*)", out).group(1).split()]
        ms = [u / 1000 for u in us]
        self.add(f"rtt_med_{side}", median(ms))
        self.add(f"rtt_p99_{side}", p99(ms))
        log(f"  rtt {side:6}: median {median(ms):.3f} ms, p99 {p99(ms):.3f} ms")

    def tail(self, name, reps):
        peer, disk = self.logs[name]
        fs = self.acct() / "contacts" / peer / "log"
        want = subprocess.run(["tail", "-n", "10", str(disk)],
                              capture_output=True).stdout
        for side, path in (("xmppfs", fs), ("disk", disk)):
            times = []
            rchar0 = io_rchar(self.xproc.pid)
            for i in range(reps + 1):
                t0 = time.monotonic()
                r = subprocess.run(["tail", "-n", "10", str(path)],
                                   capture_output=True)
                t = time.monotonic() - t0
                if r.returncode or r.stdout != want:
                    raise BenchError(f"tail -n 10 {path} gave "
                                     f"{r.stdout[-200:]!r} {r.stderr!r}")
                if i:  # the first one warms the caches
                    times.append(t * 1000)
            self.add(f"tail{name}_{side}", median(times))
            if side == "xmppfs":  # what xmppfs itself read per tail
                self.add(f"tail{name}_kb", (io_rchar(self.xproc.pid) - rchar0)
                         / (reps + 1) / 1024, extra=True)
        log(f"  tail {name}: xmppfs {self.results[f'tail{name}_xmppfs'][-1]:.2f} ms, "
            f"disk {self.results[f'tail{name}_disk'][-1]:.2f} ms")

    def idle(self, secs):
        """CPU and memory of the mounted xmppfs and of an idle raw client
        (libstrophe's own loop), side by side over the same @secs."""
        raw = self.spawn_raw("carol", "idle", resource="idle")
        self.expect_line(raw, "ready")
        self.settle()
        time.sleep(1)
        pids = {"xmppfs": self.xproc.pid, "raw": raw.pid}
        a = {k: (cpu_precise(p), cpu_ticks(p)) for k, p in pids.items()}
        time.sleep(secs)
        b = {k: (cpu_precise(p), cpu_ticks(p)) for k, p in pids.items()}
        for k, p in pids.items():
            (c0, s0), t0 = a[k]
            (c1, s1), t1 = b[k]
            cpu = max(c1 - c0, t1 - t0)
            self.add(f"idle_cpu_{k}", cpu * 1000 * 60 / secs)
            self.add(f"idle_wakeups_{k}", (s1 - s0) * 60 / secs, extra=True)
            self.add(f"rss_{k}", status_kb(p, "VmRSS") / 1024)
            log(f"  idle {k:6}: {cpu * 1000:.2f} ms CPU in {secs} s, "
                f"{s1 - s0} context switches, "
                f"RSS {status_kb(p, 'VmRSS') / 1024:.1f} MB")
        self.stop_child(raw)

    # -- the run ----------------------------------------------------------

    def run(self):
        a = self.args
        q = a.quick
        reps = a.reps or int(os.environ.get("BENCH_REPS", 3 if q else 5))
        n_tp = int(os.environ.get("BENCH_N", 1000 if q else 10_000))
        n_loop = int(os.environ.get("BENCH_LOOP", 100 if q else 1000))
        n_go = int(os.environ.get("BENCH_GO", 5 if q else 20))
        n_rtt = int(os.environ.get("BENCH_RTT", 50 if q else 200))
        idle_s = float(os.environ.get("BENCH_IDLE", 3 if q else 30))
        self.params = dict(reps=reps, n_tp=n_tp, n_loop=n_loop, n_go=n_go,
                           n_rtt=n_rtt, idle_s=idle_s)
        log(f"bench: work dir {self.work}; {reps} rounds, throughput N={n_tp}, "
            f"loop {n_loop} (go-sendxmpp {n_go}), {n_rtt} round trips, "
            f"idle {idle_s:g} s")
        self.start_server()
        self.data.mkdir()
        self.mnt.mkdir()
        self.write_config()
        t = time.monotonic()
        self.make_logs()
        log(f"bench: wrote logs of 10,000 and 1,000,000 records "
            f"({time.monotonic() - t:.1f} s)")
        echo = self.spawn_raw("echo", "echo-peer", resource="peer")
        self.expect_line(echo, "ready")

        for r in range(reps):
            log(f"bench: round {r + 1} of {reps}")
            first = ("xmppfs", "raw") if r % 2 == 0 else ("raw", "xmppfs")
            for side in first:
                if side == "xmppfs":
                    t = self.mount()
                    self.add("online_xmppfs", t * 1000)
                else:
                    t0 = time.monotonic()
                    out = self.run_raw("carol", "login", resource="login")
                    t = float(out.split()[1]) - t0
                    self.add("online_raw", t * 1000)
                log(f"  mount/login to online {side:6}: {t * 1000:.1f} ms")
            if r == 0:
                self.idle(idle_s)
            for side in first:
                self.settle()
                self.throughput(side, n_tp)
            for side in first:
                self.settle()
                self.loop(side, n_loop if side == "xmppfs" else n_go)
            for side in first:
                self.settle()
                self.rtt(side, n_rtt)
            if r == 0:
                self.settle()
                self.rtt("raw", max(10, n_rtt // 4), nagle=True)
            for name in (("10k", "1M") if r % 2 == 0 else ("1M", "10k")):
                self.settle()
                self.tail(name, 5)
            if r == reps - 1:
                self.add("rss_after_xmppfs",
                         status_kb(self.xproc.pid, "VmRSS") / 1024, extra=True)
                self.add("hwm_xmppfs",
                         status_kb(self.xproc.pid, "VmHWM") / 1024, extra=True)
            self.unmount()
        self.stop_child(echo)
        self.report()

    def cleanup(self):
        try:
            self.unmount()
        except Exception as e:  # keep going: the server must stop
            log(f"bench: unmount: {e}")
        for p in list(self.children):
            self.stop_child(p)
        self.stop_server()
        if self.args.keep:
            log(f"bench: kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- the table ----------------------------------------------------------

    def report(self):
        R = {k: median(v) for k, v in self.results.items()}
        E = {k: median(v) for k, v in self.extra.items()}
        P = self.params
        rows = []

        def row(what, x, base, ratio, target, ok):
            rows.append((what, x, base, ratio, target,
                         "-" if ok is None else ("yes" if ok else "NO")))

        tp = R["tp_xmppfs"] / R["tp_raw"]
        row(f"throughput, one send fd, N={P['n_tp']:,} (msg/s)",
            f"{R['tp_xmppfs']:.0f}", f"{R['tp_raw']:.0f}", f"{tp:.2f}",
            ">= 0.90", tp >= 0.9)
        sp = R["loop_raw"] / R["loop_xmppfs"]
        row("one process per message (ms/msg): "
            "echo > send | go-sendxmpp",
            f"{R['loop_xmppfs']:.2f}", f"{R['loop_raw']:.1f}",
            f"1/{sp:.0f}", "<= 1/50", sp >= 50)
        d = R["rtt_med_xmppfs"] - R["rtt_med_raw"]
        row(f"echo round trip, median of {P['n_rtt']} (ms)",
            f"{R['rtt_med_xmppfs']:.2f}", f"{R['rtt_med_raw']:.2f}",
            f"{R['rtt_med_xmppfs'] / R['rtt_med_raw']:.2f} (+{d:.2f} ms)",
            "<= raw + 0.5 ms", d <= 0.5)
        row(f"echo round trip, p99 of {P['n_rtt']} (ms)",
            f"{R['rtt_p99_xmppfs']:.2f}", f"{R['rtt_p99_raw']:.2f}",
            f"{R['rtt_p99_xmppfs'] / R['rtt_p99_raw']:.2f}", "", None)
        for name, n in (("10k", "10,000"), ("1M", "1,000,000")):
            row(f"tail -n 10 log, {n} records (ms)",
                f"{R[f'tail{name}_xmppfs']:.2f}",
                f"{R[f'tail{name}_disk']:.2f}",
                f"{R[f'tail{name}_xmppfs'] / R[f'tail{name}_disk']:.2f}",
                "", None)
        sc = R["tail1M_xmppfs"] / R["tail10k_xmppfs"]
        row("tail -n 10 log: 1,000,000 / 10,000 records", f"{sc:.2f}",
            f"{R['tail1M_disk'] / R['tail10k_disk']:.2f}", "", "<= 2",
            sc <= 2)
        row("mount (login) to online (ms)", f"{R['online_xmppfs']:.1f}",
            f"{R['online_raw']:.1f}",
            f"{R['online_xmppfs'] / R['online_raw']:.2f}", "", None)
        row("resident memory, one account idle (MB)",
            f"{R['rss_xmppfs']:.1f}", f"{R['rss_raw']:.1f}",
            f"{R['rss_xmppfs'] / R['rss_raw']:.1f}", "< 20", R["rss_xmppfs"] < 20)
        row(f"CPU idle online, per minute (ms; over {P['idle_s']:g} s)",
            f"{R['idle_cpu_xmppfs']:.2f}", f"{R['idle_cpu_raw']:.2f}", "",
            "< 10", R["idle_cpu_xmppfs"] < 10)

        heads = ("measure", "xmppfs", "raw", "xmppfs/raw", "target", "met")
        widths = [max(len(str(r[i])) for r in rows + [heads])
                  for i in range(len(heads))]
        print()
        print(f"xmppfs benchmark: medians of {P['reps']} rounds "
              f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
              f"{time.monotonic() - self.t0:.0f} s)")
        print()
        print("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in rows:
            print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths))
                  + " |")
        print()
        print("raw = tests/bench/rawclient (libstrophe alone, same TLS and "
              "server); for the process-per-message row it is go-sendxmpp; "
              "for tail it is the same file on the local disk.")
        print(f"side figures (medians): during throughput Prosody used "
              f"{E['tp_prosody_xmppfs'] * 100:.0f}% of a core (xmppfs run) / "
              f"{E['tp_prosody_raw'] * 100:.0f}% (raw run); the receiver "
              f"{E['tp_rx_xmppfs'] * 100:.0f}% / {E['tp_rx_raw'] * 100:.0f}%; "
              f"xmppfs {E['tp_xmppfs_cpu'] * 100:.0f}%.")
        print(f"  with N={P['n_tp']:,}, xmppfs accepted the writes at "
              f"{E['tp_accept_xmppfs']:.0f} msg/s (all write(2) calls "
              f"returned); the raw client had them all routed by the server "
              f"at {E['tp_accept_raw']:.0f} msg/s.")
        print(f"  shell loops alone (until the last process exited): echo > send "
              f"{E['loop_self_xmppfs']:.2f} ms/msg, go-sendxmpp "
              f"{E['loop_self_raw']:.1f} ms/msg; echo round trip of the raw "
              f"client without TCP_NODELAY (-n): "
              f"{E['rtt_med_raw_nagle']:.2f} ms.")
        print(f"  per tail -n 10, xmppfs read {E['tail10k_kb']:.0f} KB (10,000 "
              f"records, {self.logs['10k'][1].stat().st_size / 1e6:.1f} MB) "
              f"and {E['tail1M_kb']:.0f} KB (1,000,000 records, "
              f"{self.logs['1M'][1].stat().st_size / 1e6:.0f} MB), "
              f"FUSE requests included.")
        print(f"  idle wake-ups per minute: xmppfs "
              f"{E['idle_wakeups_xmppfs']:.0f}, raw (1 s loop) "
              f"{E['idle_wakeups_raw']:.0f}; xmppfs RSS after the load "
              f"{E['rss_after_xmppfs']:.1f} MB (peak {E['hwm_xmppfs']:.1f} MB).")
        print("all rounds: " + "; ".join(
            f"{k} " + " ".join(f"{v:.4g}" for v in vs)
            for k, vs in self.results.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--quick", action="store_true",
                    help="small N, few rounds, short idle: a smoke run")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory")
    args = ap.parse_args()
    b = None
    try:
        b = Bench(args)
        b.run()
        return 0
    except (BenchError, subprocess.TimeoutExpired) as e:
        log(f"bench: {e}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if b:
            b.cleanup()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    sys.exit(main())
