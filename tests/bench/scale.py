"""scale.py - the benchmark of xmppfs at scale (issue 12), each figure
against a baseline measured in the same run.

Run through scripts/bench (which builds first): `scripts/bench --scale`
runs only this; a full `scripts/bench` runs it after bench.py.

  accounts     N accounts (10, 100, 1,000; --quick: 10, 100) on one mount:
               spawn to all online; xmppfs's CPU per login against a raw
               libstrophe login's (tests/bench/rawclient login, the same
               TLS set-up, one process each: what a client pays per
               login); resident memory per account (the growth from the
               10-account mount); idle CPU over BENCH_IDLE seconds; and
               one message's latency to the log (send to the log on disk)
               against a raw receiver's (send to receipt)
  flood        BENCH_FLOOD messages (10,000; --quick 2,000) sent as fast as
               the server takes them to the mount's account and, in turn,
               to a raw receiver (rawclient recv-count): first to last
  read         cat and wc -l of a log of 1,000,000 records (--quick
               100,000) through the mount against the same file on disk
  grep         grep -c over the logs of 2,000 conversations (500 records
               each), through the mount against the data directory
  ls -l        contacts/ with 5,000 conversations, against the data
               directory's contacts/

Prints a table of medians (BENCH_REPS rounds, 3; --quick 1) and ratios.
BENCH_ACCOUNTS=10,1000 chooses the account counts (the first is the base
of the memory per account), BENCH_IDLE the idle window (30 s; --quick 5).
A benchmark, not a test: it fails only when a figure cannot be measured.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import (USERS, BenchError, cpu_precise, log,  # noqa: E402
                   median, print_table, status_kb)

ROOT = bench.ROOT
BULK_PW = "scalepw"


class Scale(bench.Harness):
    def __init__(self, args):
        super().__init__(args, "scale")
        self.mounts = []  # (mnt, proc)
        self.rows = []

    # -- mounts -------------------------------------------------------------

    def mount(self, name, accounts, data=None):
        """xmppfs with @accounts ({jid: password}); returns (mnt, proc,
        data)."""
        d = self.work / name
        d.mkdir()
        cfg = d / "config"
        mnt = d / "mnt"
        data = Path(data) if data else d / "data"
        mnt.mkdir()
        data.mkdir(exist_ok=True)
        text = "".join(f"[{j}]\npassword = {pw}\nhost = 127.0.0.1\n"
                       f"port = {self.port}\nca_file = {self.ca}\n"
                       f"resource = scale\n" for j, pw in accounts.items())
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        proc = self.start_xmppfs(cfg, data, mnt, d / "xmppfs.log")
        self.mounts.append((mnt, proc))
        deadline = time.monotonic() + 30
        while not self.is_mounted(mnt):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"xmppfs did not mount; see {d}/xmppfs.log")
            time.sleep(0.005)
        return mnt, proc, data

    def unmount(self, mnt, proc):
        self.unmount_at(mnt, proc)
        if (mnt, proc) in self.mounts:
            self.mounts.remove((mnt, proc))

    def cleanup(self):
        for mnt, proc in list(self.mounts):
            self.unmount(mnt, proc)
        super().cleanup()

    # -- accounts -------------------------------------------------------------

    def all_online(self, mnt, jids, timeout):
        t0 = time.monotonic()
        left = set(jids)
        while left:
            for j in list(left):
                try:
                    if b"state: online" in (mnt / j / "connection").read_bytes():
                        left.discard(j)
                except OSError:
                    pass
            if time.monotonic() - t0 > timeout:
                raise BenchError(f"{len(left)} of {len(jids)} accounts not "
                                 f"online after {timeout} s")
            if left:
                time.sleep(0.05)
        return time.monotonic() - t0

    def raw_login_cpu(self, k=5):
        """CPU seconds of one raw libstrophe login (a process each)."""
        before = os.times()
        for i in range(k):
            self.run_raw("carol", "login")
        after = os.times()
        return ((after.children_user - before.children_user) +
                (after.children_system - before.children_system)) / k

    def latency(self, mnt, data, jid_to):
        """Seconds from a raw client's send to the record in the log on
        disk."""
        mk = self.marker("lat")
        logp = data / jid_to / "contacts" / "carol@localhost" / "log"
        p = self.spawn_raw("carol", "send", jid_to, "1", mk)
        t0 = float(self.expect_line(p, "start")[1])
        while True:
            try:
                if mk.encode() in logp.read_bytes():
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 30:
                raise BenchError("a message never reached the log")
            time.sleep(0.0005)
        t = time.monotonic() - t0
        p.wait(30)
        return t

    def accounts_round(self, n, idle_s):
        jids = {f"s{i}@localhost": BULK_PW for i in range(1, n + 1)}
        t0 = time.monotonic()
        mnt, proc, data = self.mount(f"acc{n}-{self.seq}", jids)
        self.seq += 1
        self.all_online(mnt, list(jids), timeout=600)
        online = time.monotonic() - t0  # spawn to all online
        cpu = bench.cpu_ticks(proc.pid)  # exited resolver threads too
        rss = status_kb(proc.pid, "VmRSS")
        time.sleep(2)  # the logins' tails (roster, archive, carbons)
        c0, sw0 = cpu_precise(proc.pid)
        time.sleep(idle_s)
        c1, sw1 = cpu_precise(proc.pid)
        idle_ms_min = (c1 - c0) * 1000 * 60 / idle_s
        lat = self.latency(mnt, data, f"s{max(1, n // 2)}@localhost")
        self.unmount(mnt, proc)
        return dict(online=online, cpu=cpu, rss=rss, idle=idle_ms_min,
                    wakeups=(sw1 - sw0) * 60 / idle_s, lat=lat)

    def raw_latency(self):
        mk = self.marker("rlat")
        p = self.spawn_raw("bob", "recv-count", "1", mk, "30")
        self.expect_line(p, "ready")
        s = self.spawn_raw("carol", "send", "bob@localhost", "1", mk)
        t0 = float(self.expect_line(s, "start")[1])
        line = self.expect_line(p, "received", timeout=40)
        p.wait(10)
        s.wait(30)
        return float(line[line.index("last") + 1]) - t0

    # -- flood -----------------------------------------------------------------

    def flood(self, n, data):
        """(xmppfs s, raw s): first to last of @n messages."""
        mk = self.marker("flood")
        logp = data / "alice@localhost" / "contacts" / "carol@localhost" / "log"
        before = logp.stat().st_size if logp.exists() else 0
        sender = self.spawn_raw("carol", "send", "alice@localhost", str(n),
                                mk)
        start = float(self.expect_line(sender, "start")[1])
        want = f"{mk} {n}\n".encode()
        deadline = time.monotonic() + 600
        while True:
            try:
                with open(logp, "rb") as f:
                    f.seek(max(before, (logp.stat().st_size) - 4096))
                    if want in f.read():
                        break
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the flood never reached the log")
            time.sleep(0.005)
        x = time.monotonic() - start
        sender.wait(120)
        mk = self.marker("rflood")
        recv = self.spawn_raw("bob", "recv-count", str(n), mk, "600")
        self.expect_line(recv, "ready")
        sender = self.spawn_raw("carol", "send", "bob@localhost", str(n), mk)
        start = float(self.expect_line(sender, "start")[1])
        line = self.expect_line(recv, "received", timeout=700)
        sender.wait(60)
        recv.wait(10)
        got = int(line[1])
        if got != n:
            raise BenchError(f"the raw receiver got {got} of {n}")
        return x, float(line[line.index("last") + 1]) - start

    # -- reads -------------------------------------------------------------------

    @staticmethod
    def timed(cmd, cwd=None):
        t0 = time.monotonic()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return time.monotonic() - t0

    def make_reads(self, data, n_big, n_conv, n_ls):
        acct = data / "alice@localhost" / "contacts"
        big = acct / "big@localhost"
        big.mkdir(parents=True)
        line = "2026-01-01T00:00:00Z\tbig@localhost\tthe quick brown fox %d\n"
        with open(big / "log", "w") as f:
            for i in range(n_big):
                f.write(line % i)
        for i in range(max(n_conv, n_ls)):
            d = acct / f"c{i}@localhost"
            d.mkdir()
            with open(d / "log", "w") as f:
                recs = 500 if i < n_conv else 1
                for k in range(recs):
                    f.write(f"2026-01-01T00:00:00Z\tc{i}@localhost\t"
                            f"{'needle' if k == 250 else 'hay'} {k}\n")

    # -- the run -------------------------------------------------------------------

    def run(self):
        q = self.args.quick
        reps = int(os.environ.get("BENCH_REPS", 1 if q else 3))
        ns = [10, 100] if q else [10, 100, 1000]
        if os.environ.get("BENCH_ACCOUNTS"):
            ns = [int(x) for x in os.environ["BENCH_ACCOUNTS"].split(",")]
        idle_s = float(os.environ.get("BENCH_IDLE", 5 if q else 30))
        n_flood = int(os.environ.get("BENCH_FLOOD", 2000 if q else 10000))
        n_big = 100_000 if q else 1_000_000
        n_conv, n_ls = 2000, 5000
        t = time.monotonic()
        self.start_server(users=[f"s:{max(ns)}:{BULK_PW}"], timeout=300)
        log(f"scale: work dir {self.work}; test bed with {max(ns)} accounts up "
            f"in {time.monotonic() - t:.1f} s")

        raw_cpu = [self.raw_login_cpu() for _ in range(reps)]
        self.add("raw_login_cpu", median(raw_cpu) * 1000)
        acc = {}
        for n in ns:
            for r in range(reps if n < 1000 else 1):
                res = self.accounts_round(n, idle_s)
                log(f"scale: {n} accounts: online in {res['online']:.2f} s, "
                    f"CPU {res['cpu'] * 1000:.0f} ms, RSS {res['rss'] / 1024:.1f} MB, "
                    f"idle {res['idle']:.1f} ms/min, latency "
                    f"{res['lat'] * 1000:.1f} ms")
                acc.setdefault(n, []).append(res)
        raw_lat = median([self.raw_latency() for _ in range(reps)])

        # one account with big logs, for the flood and the reads
        data = self.work / "reads-data"
        data.mkdir()
        t = time.monotonic()
        self.make_reads(data, n_big, n_conv, n_ls)
        log(f"scale: logs written ({time.monotonic() - t:.1f} s)")
        mnt, proc, _ = self.mount("reads", {"alice@localhost": USERS["alice"]},
                                  data=data)
        self.all_online(mnt, ["alice@localhost"], 30)
        floods = [self.flood(n_flood, data) for _ in range(reps)]
        mc = mnt / "alice@localhost" / "contacts"
        dc = data / "alice@localhost" / "contacts"
        reads = {}
        for r in range(reps):
            for what, cmd in (("cat", ["cat", "big@localhost/log"]),
                              ("wc", ["wc", "-l", "big@localhost/log"]),
                              ("grep", ["sh", "-c", "grep -c needle c*/log"]),
                              ("ls", ["ls", "-l", "."])):
                order = (mc, dc) if r % 2 == 0 else (dc, mc)
                for where in order:
                    side = "x" if where == mc else "d"
                    reads.setdefault((what, side), []).append(
                        self.timed(cmd, cwd=where))
        self.unmount(mnt, proc)
        self.report(ns, acc, raw_lat, floods, reads, n_flood, n_big, idle_s,
                    reps)

    def report(self, ns, acc, raw_lat, floods, reads, n_flood, n_big, idle_s,
               reps):
        rows = []
        raw_cpu = self.results["raw_login_cpu"][0]
        base = median([a["rss"] for a in acc[ns[0]]])
        for n in ns:
            a = acc[n]
            on = median([x["online"] for x in a])
            cpu = median([x["cpu"] for x in a]) * 1000 / n
            rss_per = (median([x["rss"] for x in a]) - base) / max(1, n - ns[0])
            rows.append((f"{n:,} accounts: spawn to all online (s)", f"{on:.2f}",
                         "", "", ""))
            rows.append((f"{n:,} accounts: CPU per login (ms)", f"{cpu:.1f}",
                         f"{raw_cpu:.1f}", f"{cpu / raw_cpu:.2f}", "<= 5"))
            if n != ns[0]:
                rows.append((f"{n:,} accounts: RSS per account (KB)",
                             f"{rss_per:.0f}", "", "", "<= 200"))
            rows.append((f"{n:,} accounts: idle CPU (ms/min)",
                         f"{median([x['idle'] for x in a]):.1f}", "", "",
                         "< 100" if n == 1000 else ""))
            lat = median([x["lat"] for x in a]) * 1000
            rows.append((f"{n:,} accounts: one message to the log (ms)",
                         f"{lat:.1f}", f"{raw_lat * 1000:.1f}",
                         f"{lat / (raw_lat * 1000):.2f}", ""))
        fx = median([f[0] for f in floods])
        fr = median([f[1] for f in floods])
        rows.append((f"incoming flood, {n_flood:,} messages (s)", f"{fx:.2f}",
                     f"{fr:.2f}", f"{fx / fr:.2f}", "<= 1.11"))
        names = {"cat": f"cat of a {n_big:,}-record log (ms)",
                 "wc": f"wc -l of a {n_big:,}-record log (ms)",
                 "grep": "grep over 2,000 logs of 500 records (ms)",
                 "ls": "ls -l contacts/, 5,000 entries (ms)"}
        targets = {"cat": "<= 1.5", "wc": "<= 1.5", "grep": "<= 3", "ls": "<= 3"}
        for what in ("cat", "wc", "grep", "ls"):
            x = median(reads[(what, "x")]) * 1000
            d = median(reads[(what, "d")]) * 1000
            rows.append((names[what], f"{x:.1f}", f"{d:.1f}", f"{x / d:.2f}",
                         targets[what]))
        print_table(f"xmppfs at scale: medians of {reps} rounds (1,000 "
                    f"accounts: one) ({time.strftime('%Y-%m-%d')}, "
                    f"{os.cpu_count()} CPUs, "
                    f"{time.monotonic() - self.t0:.0f} s)",
                    ("measure", "xmppfs", "baseline", "ratio", "target"), rows)
        print("baselines: CPU per login: tests/bench/rawclient login, one "
              "process per login (libstrophe alone, same TLS set-up); one "
              "message: a raw receiver (send to receipt; xmppfs: send to the "
              "record on disk); flood: the same messages to a raw receiver; "
              "reads: the same files in the data directory.  The flood's "
              "target is a rate at least 0.9 times the raw receiver's.  RSS "
              "per account "
              f"is the growth from the {ns[0]}-account mount; idle CPU over "
              f"{idle_s:g} s, two seconds after all were online.")
        print("all rounds: " + "; ".join(
            f"{n} accounts " + " ".join(
                f"[on {x['online']:.2f}s cpu {x['cpu'] * 1000:.0f}ms rss "
                f"{x['rss'] / 1024:.1f}MB idle {x['idle']:.1f} wake "
                f"{x['wakeups']:.0f}/min]" for x in acc[n]) for n in ns))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", action="store_true")
    return bench.run_main(Scale, ap.parse_args(), "scale")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    sys.exit(main())
