/* fdcache.c - see fdcache.h. */
#include "store/fdcache.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#define FDCACHE_DEFAULT 256
/* libstrophe 0.12's select() takes descriptors below FD_SETSIZE only */
#define FD_LOW_END 1024

struct FdFile {
	char *path;
	int flags;
	mode_t mode;
	/* protected by cache_lock: */
	int fd;      /* -1 when closed */
	guint users; /* fdfile_get without fdfile_put: not to be closed */
	GList link;  /* in open_files while open (data: this) */
	bool stale;  /* renamed over: closed once nobody uses it (callers
		      * keep a reopen from overlapping their own use) */
};

static GMutex cache_lock;
static GQueue open_files = G_QUEUE_INIT; /* least recently used first */
static guint capacity = FDCACHE_DEFAULT;

int fdcache_high(int fd)
{
	int high;

	if (fd < 0 || fd >= FD_LOW_END)
		return fd;
	high = fcntl(fd, F_DUPFD_CLOEXEC, FD_LOW_END);
	if (high < 0)
		return fd;
	close(fd);
	return high;
}

rlim_t fdcache_raise_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

void fdcache_set_capacity(guint n)
{
	g_mutex_lock(&cache_lock);
	capacity = MAX(n, 4);
	g_mutex_unlock(&cache_lock);
}

FdFile *fdfile_new(const char *path, int flags, mode_t mode)
{
	FdFile *f = g_new0(FdFile, 1);

	f->path = g_strdup(path);
	f->flags = flags | O_CLOEXEC;
	f->mode = mode;
	f->fd = -1;
	f->link.data = f;
	return f;
}

/* With cache_lock held. */
static void close_file(FdFile *f)
{
	g_queue_unlink(&open_files, &f->link);
	close(f->fd);
	f->fd = -1;
	f->stale = false;
}

/* With cache_lock held: close the least recently used file nobody
 * holds; false when every open one is held. */
static bool evict_one(void)
{
	for (GList *l = open_files.head; l; l = l->next) {
		FdFile *v = l->data;
		if (!v->users) {
			close_file(v);
			return true;
		}
	}
	return false;
}

int fdfile_get(FdFile *f)
{
	int fd, ret;

	g_mutex_lock(&cache_lock);
	if (f->fd >= 0) {
		g_queue_unlink(&open_files, &f->link);
		g_queue_push_tail_link(&open_files, &f->link);
		f->users++;
		ret = f->fd;
		goto out_unlock;
	}
	while (open_files.length >= capacity && evict_one())
		;
	fd = open(f->path, f->flags, f->mode);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && evict_one())
		fd = open(f->path, f->flags, f->mode);
	if (fd < 0) {
		ret = -errno;
		goto out_unlock;
	}
	f->fd = fdcache_high(fd);
	g_queue_push_tail_link(&open_files, &f->link);
	f->users = 1;
	ret = f->fd;
out_unlock:
	g_mutex_unlock(&cache_lock);
	return ret;
}

void fdfile_put(FdFile *f)
{
	g_mutex_lock(&cache_lock);
	g_assert(f->users > 0);
	if (--f->users == 0 && f->stale)
		close_file(f);
	g_mutex_unlock(&cache_lock);
}

void fdfile_reopen(FdFile *f)
{
	g_mutex_lock(&cache_lock);
	if (f->fd >= 0 && !f->users)
		close_file(f);
	else if (f->fd >= 0)
		f->stale = true;
	g_mutex_unlock(&cache_lock);
}

void fdfile_moved(FdFile *f, const char *path)
{
	g_mutex_lock(&cache_lock);
	g_free(f->path);
	f->path = g_strdup(path);
	g_mutex_unlock(&cache_lock);
}

void fdfile_free(FdFile *f)
{
	if (!f)
		return;
	g_mutex_lock(&cache_lock);
	g_assert(!f->users);
	if (f->fd >= 0)
		close_file(f);
	g_mutex_unlock(&cache_lock);
	g_free(f->path);
	g_free(f);
}
