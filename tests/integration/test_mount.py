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

from xfstest import (Mount, TestFailure, is_mounted, note, pid_alive,
                     run_xmppfs, wait_until, xmppfs_binary)

A = "alice@localhost"


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
    assert "fuse.xmppfs" in open("/proc/mounts").read()
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
