/* datalock.h - one mount owns an account's data directory at a time
 * (SPEC "The data directory").  Two mounts writing the same logs and
 * outbox corrupt them: every record twice, one mount's outbox renamed
 * away under the other's feet.  So the first takes an flock(2) on
 * DIR/lock for as long as it lives, and writes its pid and mount point
 * there for the second to name.  The kernel drops the lock when the
 * process ends in any way (SIGKILL too): a stale file never blocks. */
#pragma once

#include <glib.h>

/* Lock @dir (an account's data directory) for the mount at @mountpoint:
 * the lock's descriptor (kept open for the life of the process), or -1
 * with @err saying who holds it. */
int datalock_take(const char *dir, const char *mountpoint, GError **err);
/* Write this process's pid again (after fuse_daemonize forked). */
void datalock_note_pid(int fd, const char *mountpoint);
