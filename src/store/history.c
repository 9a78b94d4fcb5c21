/* history.c - see history.h.  Records are appended with one write(2) on
 * an O_APPEND descriptor under the log's lock, so a record is never torn
 * and the size every reader sees only grows by whole records.
 *
 * A log's file is opened only while it is used (fdcache.c), and a set of
 * logs knows its names from the directory without opening any: an account
 * with 100,000 conversations holds no descriptor for them. */
#include "store/history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "store/fdcache.h"

struct Hist {
	GMutex lock;
	FdFile *file;
	goffset size;    /* protected by lock */
	gint64 mtime;    /* protected by lock */
	GList *waiters;  /* of HistWaiter*, protected by lock */
	/* hist_observe's, protected by lock */
	void (*observer)(void *data, goffset from, goffset to);
	void *observer_data;
	bool gone;       /* forgotten by its set; protected by lock */
	/* log.ids beside the log (conversations only, else NULL): one line
	 * per record.  Opened and brought in line with the log at its first
	 * use in a mount (ids_align); protected by lock. */
	char *ids_path;  /* immutable */
	FdFile *ids;
	goffset ids_size;
};

struct HistSet {
	char *dir;
	GMutex lock;
	GHashTable *logs; /* name -> Hist* (NULL: on disk, not used yet),
			   * protected by lock */
	GSList *gone;     /* of Hist*: forgotten, perhaps still held by a
			   * reader; freed with the set; protected by lock */
};

/* DIR/NAME/log, made when missing (with @create), its size and time;
 * with @ids, DIR/NAME/log.ids is its companion. */
static Hist *hist_load(const char *dir, const char *name, bool create,
		       bool ids, GError **err)
{
	g_autofree char *sub = g_build_filename(dir, name, NULL);
	g_autofree char *path = g_build_filename(sub, "log", NULL);
	struct stat st;
	Hist *h;

	if (create) {
		int fd;
		if (g_mkdir_with_parents(sub, 0700) < 0 ||
		    (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			       0600)) < 0)
			goto fail;
		close(fd);
	}
	if (stat(path, &st) < 0)
		goto fail;
	h = g_new0(Hist, 1);
	g_mutex_init(&h->lock);
	h->file = fdfile_new(path, O_RDWR | O_APPEND, 0600);
	h->size = st.st_size;
	h->mtime = st.st_mtime;
	if (ids)
		h->ids_path = g_build_filename(sub, "log.ids", NULL);
	return h;
fail:
	g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s",
		    path, g_strerror(errno));
	return NULL;
}

Hist *hist_open(const char *dir, const char *name, GError **err)
{
	return hist_load(dir, name, true, false, err);
}

static void hist_free(gpointer data)
{
	Hist *h = data;

	if (!h)
		return;
	fdfile_free(h->file);
	if (h->ids)
		fdfile_free(h->ids);
	g_free(h->ids_path);
	g_list_free(h->waiters);
	g_mutex_clear(&h->lock);
	g_free(h);
}

void hist_close(Hist *h)
{
	hist_free(h);
}

HistSet *hist_set_new(const char *dir, GError **err)
{
	HistSet *s;
	GDir *d;
	const char *name;

	if (g_mkdir_with_parents(dir, 0700) < 0) {
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "%s: %s", dir, g_strerror(errno));
		return NULL;
	}
	s = g_new0(HistSet, 1);
	s->dir = g_strdup(dir);
	g_mutex_init(&s->lock);
	s->logs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					hist_free);
	d = g_dir_open(dir, 0, NULL);
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *log = g_build_filename(dir, name, "log", NULL);
		if (g_file_test(log, G_FILE_TEST_IS_REGULAR))
			g_hash_table_insert(s->logs, g_strdup(name), NULL);
	}
	if (d)
		g_dir_close(d);
	return s;
}

void hist_set_free(HistSet *s)
{
	if (!s)
		return;
	g_hash_table_unref(s->logs);
	g_slist_free_full(s->gone, hist_free);
	g_mutex_clear(&s->lock);
	g_free(s->dir);
	g_free(s);
}

Hist *hist_set_get(HistSet *s, const char *name, bool create, GError **err)
{
	gpointer v = NULL;
	bool known;
	Hist *h;

	g_mutex_lock(&s->lock);
	known = g_hash_table_lookup_extended(s->logs, name, NULL, &v);
	h = v;
	if (!h && (known || create) &&
	    (h = hist_load(s->dir, name, !known, true, err)))
		g_hash_table_replace(s->logs, g_strdup(name), h);
	g_mutex_unlock(&s->lock);
	return h;
}

/* With h->lock held: take the waiters to wake (after the unlock). */
static GList *take_waiters(Hist *h)
{
	GList *woken = h->waiters;

	h->waiters = NULL;
	for (GList *l = woken; l; l = l->next)
		((HistWaiter *)l->data)->queued = false;
	return woken;
}

static void wake_all(GList *woken)
{
	for (GList *l = woken; l; l = l->next)
		((HistWaiter *)l->data)->wake(l->data);
	g_list_free(woken);
}

/* DIR/../trash/BASENAME(DIR)/NAME.TIME, made unique with -N. */
static char *trash_path(const char *dir, const char *name, GError **err)
{
	g_autofree char *parent = g_path_get_dirname(dir);
	g_autofree char *base = g_path_get_basename(dir);
	g_autofree char *trash = g_build_filename(parent, "trash", base, NULL);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	char *path = NULL;

	if (g_mkdir_with_parents(trash, 0700) < 0) {
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "%s: %s", trash, g_strerror(errno));
		return NULL;
	}
	for (int i = 0; i < 1000; i++) {
		g_autofree char *leaf =
			i ? g_strdup_printf("%s.%s-%d", name, stamp, i)
			  : g_strdup_printf("%s.%s", name, stamp);
		g_free(path);
		path = g_build_filename(trash, leaf, NULL);
		if (!g_file_test(path, G_FILE_TEST_EXISTS))
			return path;
	}
	g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_EXIST,
		    "%s: no free name in the trash", path);
	g_free(path);
	return NULL;
}

int hist_set_forget(HistSet *s, const char *name, char **moved_to,
		    GError **err)
{
	g_autofree char *from = g_build_filename(s->dir, name, NULL);
	g_autofree char *to = NULL;
	gpointer key = NULL, v = NULL;
	GList *woken = NULL;
	Hist *h;

	g_mutex_lock(&s->lock);
	if (!g_hash_table_lookup_extended(s->logs, name, NULL, NULL)) {
		g_mutex_unlock(&s->lock);
		return -ENOENT;
	}
	if (!(to = trash_path(s->dir, name, err)) || rename(from, to) < 0) {
		int e = to ? errno : EIO;
		if (to)
			g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
				    "%s -> %s: %s", from, to, g_strerror(e));
		g_mutex_unlock(&s->lock);
		return -e;
	}
	g_hash_table_steal_extended(s->logs, name, &key, &v);
	g_free(key);
	if ((h = v)) {
		g_autofree char *log = g_build_filename(to, "log", NULL);
		g_mutex_lock(&h->lock);
		fdfile_moved(h->file, log);
		g_free(h->ids_path);
		h->ids_path = g_build_filename(to, "log.ids", NULL);
		if (h->ids)
			fdfile_moved(h->ids, h->ids_path);
		h->gone = true;
		woken = take_waiters(h);
		g_mutex_unlock(&h->lock);
		s->gone = g_slist_prepend(s->gone, h);
	}
	g_mutex_unlock(&s->lock);
	wake_all(woken);
	if (moved_to)
		*moved_to = g_steal_pointer(&to);
	return 0;
}

bool hist_gone(Hist *h)
{
	bool gone;

	g_mutex_lock(&h->lock);
	gone = h->gone;
	g_mutex_unlock(&h->lock);
	return gone;
}

GPtrArray *hist_set_names(HistSet *s)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer key;

	g_mutex_lock(&s->lock);
	g_hash_table_iter_init(&it, s->logs);
	while (g_hash_table_iter_next(&it, &key, NULL))
		g_ptr_array_add(names, g_strdup(key));
	g_mutex_unlock(&s->lock);
	g_ptr_array_sort(names, util_cmp_strp);
	return names;
}

void hist_observe(Hist *h, void (*fn)(void *data, goffset from, goffset to),
		  void *data)
{
	g_mutex_lock(&h->lock);
	h->observer = fn;
	h->observer_data = data;
	g_mutex_unlock(&h->lock);
}

/* In @fd's first @size bytes: how many lines (LF) there are, or @want
 * when there are that many, and the offset after the last one counted. */
static int count_lines(int fd, goffset size, goffset want, goffset *lines,
		       goffset *after)
{
	char buf[65536];
	goffset off = 0;

	*lines = 0;
	*after = 0;
	while (off < size && (want < 0 || *lines < want)) {
		ssize_t n = pread(fd, buf, MIN((goffset)sizeof buf, size - off),
				  off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n')
				continue;
			*after = off + i + 1;
			if (++*lines == want)
				break;
		}
		off += n;
	}
	return 0;
}

/* With h->lock held: log.ids open, one line per record of the log.  Done
 * once a mount: a log from before log.ids existed, or one whose ids a
 * crash or a full disk cut between the two writes, gets "-" lines for the
 * records without, and an ids line without its record is cut off. */
static int ids_align(Hist *h)
{
	static const char pad[] = "-\tmessage\t-\t-\n";
	g_autoptr(GString) more = NULL;
	goffset records, have, keep;
	struct stat st;
	FdFile *f;
	int fd, ret;

	if (h->ids)
		return 0;
	if (!h->ids_path)
		return -EINVAL;
	if ((fd = fdfile_get(h->file)) < 0)
		return fd;
	ret = count_lines(fd, h->size, -1, &records, &keep);
	fdfile_put(h->file);
	if (ret)
		return ret;
	f = fdfile_new(h->ids_path, O_RDWR | O_APPEND | O_CREAT, 0600);
	if ((fd = fdfile_get(f)) < 0) {
		fdfile_free(f);
		return fd;
	}
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	if (!ret)
		ret = count_lines(fd, st.st_size, records, &have, &keep);
	if (!ret && keep < st.st_size && ftruncate(fd, keep) < 0)
		ret = -errno;
	more = g_string_new(NULL);
	for (goffset i = have; !ret && i < records; i++)
		g_string_append_len(more, pad, sizeof pad - 1);
	if (!ret && more->len && (ret = util_write_all(fd, more->str,
						       more->len)))
		if (ftruncate(fd, keep) < 0) {
			/* the next mount aligns it again */
		}
	fdfile_put(f);
	if (ret) {
		fdfile_free(f);
		return ret;
	}
	h->ids = f;
	h->ids_size = keep + (goffset)more->len;
	return 0;
}

/* Append records, and with @ids their lines of log.ids: both or
 * neither. */
static int append(Hist *h, const char *data, gsize len, const char *ids,
		  gsize ids_len, goffset *at)
{
	GList *woken = NULL;
	int fd, ifd = -1, ret;
	goffset from = 0, to = 0;
	void (*observer)(void *, goffset, goffset) = NULL;
	void *observer_data = NULL;

	g_mutex_lock(&h->lock);
	if (ids && (ret = ids_align(h)))
		goto out_unlock;
	fd = fdfile_get(h->file);
	if (fd < 0) {
		ret = fd;
		goto out_unlock;
	}
	ret = util_write_all(fd, data, len);
	if (ret == 0 && ids) {
		ifd = fdfile_get(h->ids);
		ret = ifd < 0 ? ifd : util_write_all(ifd, ids, ids_len);
		if (ret && ifd >= 0 && ftruncate(ifd, h->ids_size) < 0) {
			/* aligned again at the next mount */
		}
		if (ifd >= 0)
			fdfile_put(h->ids);
	}
	if (ret == 0) {
		from = h->size;
		if (at)
			*at = from;
		h->size += len;
		to = h->size;
		if (ids)
			h->ids_size += ids_len;
		h->mtime = g_get_real_time() / G_USEC_PER_SEC;
		observer = h->observer;
		observer_data = h->observer_data;
	} else {
		/* a short write would leave half a record: cut it off */
		if (ftruncate(fd, h->size) < 0) {
			/* the size readers know stays h->size */
		}
	}
	fdfile_put(h->file);
	woken = take_waiters(h);
out_unlock:
	g_mutex_unlock(&h->lock);
	if (observer)
		observer(observer_data, from, to);
	wake_all(woken);
	return ret;
}

int hist_append(Hist *h, const char *data, gsize len)
{
	return append(h, data, len, NULL, 0, NULL);
}

int hist_append_ids(Hist *h, const char *data, gsize len, const char *ids,
		    gsize ids_len, goffset *at)
{
	return append(h, data, len, ids, ids_len, at);
}

goffset hist_ids_size(Hist *h)
{
	goffset size;

	g_mutex_lock(&h->lock);
	size = ids_align(h) ? 0 : h->ids_size;
	g_mutex_unlock(&h->lock);
	return size;
}

gssize hist_ids_pread(Hist *h, void *buf, gsize len, goffset off)
{
	goffset size;
	ssize_t n;
	int fd, ret;

	g_mutex_lock(&h->lock);
	ret = ids_align(h);
	size = h->ids_size;
	g_mutex_unlock(&h->lock);
	if (ret)
		return ret;
	if (off >= size)
		return 0;
	len = MIN(len, (gsize)(size - off));
	if ((fd = fdfile_get(h->ids)) < 0)
		return fd;
	do
		n = pread(fd, buf, len, off);
	while (n < 0 && errno == EINTR);
	fdfile_put(h->ids);
	return n < 0 ? -errno : n;
}

GPtrArray *hist_lines(Hist *h, bool ids)
{
	goffset size = ids ? hist_ids_size(h) : hist_size(h);
	g_autofree char *buf = g_malloc(size + 1);
	GPtrArray *lines;
	gssize got = 0;
	char *p, *nl;

	while (got < size) {
		gssize n = ids ? hist_ids_pread(h, buf + got, size - got, got)
			       : hist_pread(h, buf + got, size - got, got);
		if (n <= 0)
			return NULL;
		got += n;
	}
	buf[size] = '\0';
	lines = g_ptr_array_new_with_free_func(g_free);
	for (p = buf; (nl = strchr(p, '\n')); p = nl + 1)
		g_ptr_array_add(lines, g_strndup(p, nl - p));
	return lines;
}

goffset hist_size(Hist *h)
{
	goffset size;

	g_mutex_lock(&h->lock);
	size = h->size;
	g_mutex_unlock(&h->lock);
	return size;
}

gint64 hist_mtime(Hist *h)
{
	gint64 t;

	g_mutex_lock(&h->lock);
	t = h->mtime;
	g_mutex_unlock(&h->lock);
	return t;
}

gssize hist_pread(Hist *h, void *buf, gsize len, goffset off)
{
	goffset size = hist_size(h);
	ssize_t n;
	int fd;

	/* never past the last whole record, even while one is being written */
	if (off >= size)
		return 0;
	len = MIN(len, (gsize)(size - off));
	if ((fd = fdfile_get(h->file)) < 0)
		return fd;
	do
		n = pread(fd, buf, len, off);
	while (n < 0 && errno == EINTR);
	fdfile_put(h->file);
	return n < 0 ? -errno : n;
}

bool hist_wait(Hist *h, HistWaiter *w, goffset cursor)
{
	bool ready;

	g_mutex_lock(&h->lock);
	ready = h->size > cursor || h->gone;
	if (!ready && !w->queued) {
		h->waiters = g_list_prepend(h->waiters, w);
		w->queued = true;
	}
	g_mutex_unlock(&h->lock);
	return ready;
}

bool hist_unwait(Hist *h, HistWaiter *w)
{
	bool was;

	g_mutex_lock(&h->lock);
	was = w->queued;
	if (was) {
		h->waiters = g_list_remove(h->waiters, w);
		w->queued = false;
	}
	g_mutex_unlock(&h->lock);
	return was;
}
