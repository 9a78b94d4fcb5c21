/* fdcache.h - files opened on demand, with a bound on how many are open.
 *
 * xmppfs keeps a log per conversation, and an account has its outbox and
 * archive state besides.  Holding a descriptor for each for the life of
 * the mount ran out of descriptors (1,015 conversations), and pushed
 * libstrophe's sockets past 1023, where its select() aborts the process
 * (FD_SETSIZE).  So a file here is opened when it is used, and the least
 * recently used are closed when more than the capacity are open; and
 * every descriptor opened here is moved to 1024 or above when the limit
 * allows (fdcache_high), which keeps the range below for sockets.  Any
 * thread; one lock inside, never held while the caller uses the
 * descriptor. */
#pragma once

#include <glib.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct FdFile FdFile;

/* A file at @path, opened with @flags (O_CLOEXEC is added) and @mode when
 * it is used; nothing is opened yet. */
FdFile *fdfile_new(const char *path, int flags, mode_t mode);
/* Closes it if open; the caller must not hold it (fdfile_get). */
void fdfile_free(FdFile *f);
/* Its descriptor, opened if need be (closing the least recently used
 * other file when the capacity is reached): a descriptor to use until
 * fdfile_put, or -errno (EMFILE when nothing could be closed). */
int fdfile_get(FdFile *f);
void fdfile_put(FdFile *f);
/* The file at the path was replaced (renamed over): the next get opens
 * the new one. */
void fdfile_reopen(FdFile *f);
/* The file was moved to @path (the same file: a descriptor open on it
 * stays right); the next open uses @path. */
void fdfile_moved(FdFile *f, const char *path);

/* How many files may be open at once (default 256). */
void fdcache_set_capacity(guint n);

/* @fd moved to a number of 1024 or above (close-on-exec), the original
 * closed; @fd itself when that is not possible (a limit of 1024). */
int fdcache_high(int fd);
/* Raise the soft limit on descriptors to the hard one; the soft limit
 * after. */
rlim_t fdcache_raise_limit(void);
