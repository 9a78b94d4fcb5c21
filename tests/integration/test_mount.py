"""mount(8), fstab and the -o options, as an sshfs user would use them
(issue 14): mount.fuse3 calls a helper as `PROGRAM SOURCE MOUNTPOINT -o
OPTIONS`, with the config as the source and config=, data_dir=, uid=,
gid=, umask= among the options.

mount(8) runs its helpers with a PATH of its own (/usr/local/bin and the
system's), so `-t fuse.xmppfs` finds an installed xmppfs only; the binary
under test is named by mount.fuse3's other form, `-t fuse` with the source
`PROGRAM#SOURCE`, which calls it the same way."""

import os
import stat
import subprocess
from pathlib import Path

from xfstest import (Mount, Peer, TestFailure, config_text, is_mounted, note,
                     pid_alive, run_xmppfs, wait_until, xmppfs_binary)

A = "alice@localhost"
B = "bob@localhost"


def files(tmp, server, name, **keys):
    """A config (as the source), a data dir and a mountpoint for alice."""
    m = Mount(tmp, {A: server.account("alice", resource=name, **keys)},
              name=name)
    m.mnt.mkdir()
    m.cfg.write_text(m.text)
    os.chmod(m.cfg, 0o600)
    return m


def daemon_of(m):
    return int((m.data / A / "lock").read_text().split()[0])


def unmount_with_umount(m):
    """umount(8), as a user would; then the daemon must go."""
    pid = daemon_of(m)
    r = subprocess.run(["umount", str(m.mnt)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r
    assert not is_mounted(m.mnt)
    wait_until(lambda: not pid_alive(pid), timeout=15,
               what=f"the daemon {pid} to exit after umount")


def cleanup(m):
    if is_mounted(m.mnt):
        subprocess.run(["umount", str(m.mnt)], capture_output=True)
    if is_mounted(m.mnt):
        subprocess.run(["fusermount3", "-uz", str(m.mnt)], capture_output=True)


def test_mount_t_fuse_with_the_config_as_source(server, tmp, stack):
    m = files(tmp, server, "t-mount-t")
    stack.callback(cleanup, m)
    source = f"{xmppfs_binary()}#{m.cfg}"
    r = subprocess.run(["mount", "-t", "fuse", source, str(m.mnt),
                        "-o", f"data_dir={m.data}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert is_mounted(m.mnt)
    mine = [l.split() for l in open("/proc/mounts") if f" {m.mnt} " in l]
    assert mine and mine[0][2] == "fuse.xmppfs", mine
    m.wait_state(A, "online", timeout=10)
    note(f"mount -t fuse {source}: online; stderr {r.stderr.strip()!r}")
    unmount_with_umount(m)


def test_fstab_line_with_owner_and_umask(server, tmp, stack):
    """An fstab line (noauto,_netdev as a user's would have) with
    allow_other,uid=,gid=,umask=: the files are that user's, and group
    and others get the owner's bits but the mask."""
    m = files(tmp, server, "t-fstab")
    stack.callback(cleanup, m)
    fstab = m.dir / "fstab"
    fstab.write_text(f"{xmppfs_binary()}#{m.cfg} {m.mnt} fuse "
                     f"noauto,_netdev,allow_other,data_dir={m.data},"
                     f"uid=4242,gid=4343,umask=027 0 0\n")
    r = subprocess.run(["mount", "-T", str(fstab), str(m.mnt)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    m.wait_state(A, "online", timeout=10)
    want = {"": (stat.S_IFDIR, 0o750), A: (stat.S_IFDIR, 0o750),
            f"{A}/status": (stat.S_IFREG, 0o640),
            f"{A}/connection": (stat.S_IFREG, 0o440)}
    problems = []
    for rel, (kind, mode) in want.items():
        st = os.stat(m.path(rel) if rel else m.mnt)
        got = (st.st_uid, st.st_gid, stat.S_IFMT(st.st_mode),
               stat.S_IMODE(st.st_mode))
        if got != (4242, 4343, kind, mode):
            problems.append(f"{rel or '/'}: uid, gid, type, mode {got}, "
                            f"expected (4242, 4343, {kind}, {oct(mode)})")
    assert not problems, "\n".join(problems)
    unmount_with_umount(m)


def test_source_and_config_option_must_agree(server, tmp):
    m = files(tmp, server, "t-two-configs")
    r = run_xmppfs([m.cfg, m.mnt, "-o", f"config={m.dir / 'other'}"],
                   timeout=20)
    # a command line that cannot be right: status 2, as for no mountpoint
    assert r.returncode == 2 and "two configs" in r.stderr, r
    assert not is_mounted(m.mnt)
    r = run_xmppfs([m.cfg, m.mnt, "third"], timeout=20)
    assert r.returncode == 2 and "too many arguments" in r.stderr, r
    if is_mounted(m.mnt):
        subprocess.run(["fusermount3", "-uz", str(m.mnt)], capture_output=True)
        raise TestFailure("it mounted")


# --------------------------------------------------------------------------
# an ordinary user (issue 14): a mount of their own, and an fstab `user` line

NOBODY = 65534
FSTAB_MARK = "# xmppfs-test"


def as_user(argv, **kw):
    """@argv as uid/gid 65534 (nobody), with no supplementary groups."""
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", *argv], capture_output=True,
                          text=True, timeout=kw.pop("timeout", 30), **kw)


class UserFiles:
    """A folder the user may reach (the test's own is root's, 0700), with
    a copy of the binary, the server's CA, the user's config (theirs,
    0600), data dir and mountpoint.  On Debian udev makes /dev/fuse 0666;
    where it is not (a container), it is made so for the test and put
    back after, as fusermount3 needs it only to be setuid but libfuse
    opens it as the user first."""

    def __init__(self, server, res):
        import shutil
        import tempfile
        self.dir = Path(tempfile.mkdtemp(prefix="xmppfs-user-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.binary = self.dir / "xmppfs"
        shutil.copy(xmppfs_binary(), self.binary)
        ca = self.dir / "ca.pem"
        shutil.copy(server.ca_file, ca)
        os.chmod(ca, 0o644)
        self.mnt, self.data, home = (self.dir / "mnt", self.dir / "data",
                                     self.dir / "home")
        for d in (self.mnt, self.data, home):
            d.mkdir()
        self.cfg = self.dir / "config"
        self.cfg.write_text(config_text(
            {A: server.account("alice", resource=res, ca_file=str(ca))}))
        os.chmod(self.cfg, 0o600)
        for p in (self.mnt, self.data, home, self.cfg):
            os.chown(p, NOBODY, NOBODY)
        self.env = dict(os.environ, HOME=str(home))
        self.fuse_mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
        if self.fuse_mode & 0o006 != 0o006:
            note(f"/dev/fuse is {oct(self.fuse_mode)}: 0666 for the test")
            os.chmod("/dev/fuse", 0o666)

    def read(self, rel):
        r = as_user(["cat", str(self.mnt / rel)])
        return r.stdout if r.returncode == 0 else None

    def close(self):
        import shutil
        if is_mounted(self.mnt):
            as_user(["fusermount3", "-u", str(self.mnt)])
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-uz", str(self.mnt)],
                           capture_output=True)
        os.chmod("/dev/fuse", self.fuse_mode)
        shutil.rmtree(self.dir, ignore_errors=True)


def user_files(stack, server, res):
    u = UserFiles(server, res)
    stack.callback(u.close)
    return u


def check_user_mount(u, peer):
    """Mounted by the user (user_id=65534), online, and a line written by
    the user reaches the peer."""
    line = [l for l in open("/proc/self/mountinfo").read().splitlines()
            if f" {u.mnt} " in l]
    assert line and "user_id=65534" in line[0], line
    wait_until(lambda: (u.read(f"{A}/connection") or "").startswith("state: online"),
               timeout=15, what="the user's mount online")
    body = f"from an ordinary user {os.urandom(3).hex()}"
    r = as_user(["sh", "-c", f"echo '{body}' > '{u.mnt}/{A}/contacts/{B}/send'"])
    assert r.returncode == 0, r
    peer.wait_message(A, body)
    # root is not let in: the mount is the user's (no allow_other)
    try:
        os.listdir(u.mnt / A)
        raise TestFailure("root could read an ordinary user's mount")
    except PermissionError:
        pass


def test_ordinary_user_mounts_daemonizes_and_unmounts(server, tmp, stack):
    """`xmppfs CONFIG MNT` as an ordinary user: exit 0 once mounted (the
    daemon stays), the user's files, and fusermount3 -u by the user ends
    the daemon."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-user-peer"))
    u = user_files(stack, server, "t-user")
    r = as_user([str(u.binary), "--data-dir", str(u.data), str(u.cfg),
                 str(u.mnt)], env=u.env, cwd=str(u.dir))
    assert r.returncode == 0, r
    assert is_mounted(u.mnt)
    pid = int((u.data / A / "lock").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid == NOBODY
    check_user_mount(u, bob)
    r = as_user(["fusermount3", "-u", str(u.mnt)])
    assert r.returncode == 0, r
    wait_until(lambda: not pid_alive(pid), timeout=15,
               what="the user's daemon to exit after fusermount3 -u")


def test_fstab_user_line_mounted_by_an_ordinary_user(server, tmp, stack):
    """An fstab line with `user` (noauto,user,_netdev), mounted and
    unmounted by an ordinary user with plain `mount MNT` / `umount MNT`.
    Only root may give mount(8) another fstab, so the line goes into
    /etc/fstab for the test, marked, and /etc/fstab is put back."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-fstab-user-peer"))
    u = user_files(stack, server, "t-fstab-user")
    before = Path("/etc/fstab").read_text() if Path("/etc/fstab").exists() else None
    kept = "".join(l + "\n" for l in (before or "").splitlines()
                   if FSTAB_MARK not in l)   # a line a killed run left

    def put_back():
        if before is None:
            Path("/etc/fstab").unlink(missing_ok=True)
        else:
            Path("/etc/fstab").write_text(kept)
    stack.callback(put_back)
    Path("/etc/fstab").write_text(
        kept + f"{u.binary}#{u.cfg} {u.mnt} fuse "
        f"noauto,user,_netdev,data_dir={u.data} 0 0 {FSTAB_MARK}\n")
    r = as_user(["mount", str(u.mnt)], env=u.env, cwd=str(u.dir))
    assert r.returncode == 0, r
    pid = int((u.data / A / "lock").read_text().split()[0])
    check_user_mount(u, bob)
    r = as_user(["umount", str(u.mnt)])
    assert r.returncode == 0, r
    assert not is_mounted(u.mnt)
    wait_until(lambda: not pid_alive(pid), timeout=15,
               what="the user's daemon to exit after umount")
