/* outbox.c - see outbox.h.
 *
 * The file is a journal of two kinds of entries:
 *   "+ ID TO TYPE LEN\n" then LEN bytes of body and "\n"   (accepted)
 *   "- ID\n"                                              (acknowledged)
 * TYPE is "chat", or for a message of a kind "chat;KIND;REF;REF_TO" with
 * REF and REF_TO URI-escaped (no space, no ";"), or for one that goes out
 * encrypted "chat;KIND;REF;REF_TO;ENC" (KIND empty for a plain message).
 * Opening replays it and writes back only what is still pending (to a
 * temporary file renamed over the old one).  The same happens while
 * mounted once the file is past OUTBOX_COMPACT_MIN and four times what is
 * pending, so a mount that runs for months keeps a small file.  Entries
 * are appended with one write(2), so a crash can only cut the last entry
 * short, and a short entry is ignored. */
#include "store/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "store/fdcache.h"

#define OUTBOX_COMPACT_MIN (256 * 1024)

struct Outbox {
	GMutex lock;
	char *path;
	FdFile *file;      /* the journal, opened while used (fdcache.h) */
	GQueue items;     /* of OutboxItem*, oldest first, protected by lock */
	GHashTable *by_id; /* id -> GList* in items, protected by lock */
	guint64 next_seq;  /* protected by lock */
	GList *watches;    /* of Watch*, protected by lock */
	guint64 next_token;
	goffset bytes;        /* of the file, protected by lock */
	goffset pending_bytes; /* of the entries still pending, likewise */
	GQueue failed;        /* of Failure, the last OUTBOX_FAILURES_KEPT,
			       * oldest first; protected by lock */
};

/* A message that could never go out, remembered for an fsync that comes
 * after it left (outbox_failed). */
typedef struct {
	guint64 seq;
	char *to;
	int err;
} Failure;

#define OUTBOX_FAILURES_KEPT 256

static void failure_free(gpointer p)
{
	Failure *f = p;

	g_free(f->to);
	g_free(f);
}

typedef struct {
	guint64 token;
	guint64 upto;
	char *to; /* the destination watched */
	void (*fn)(void *data, int err);
	void *data;
	int err;  /* the first of its messages that failed: its errno */
} Watch;

static void watch_free(gpointer p)
{
	Watch *w = p;

	g_free(w->to);
	g_free(w);
}

gint64 outbox_item_time(const OutboxItem *it)
{
	const char *p = it->id;
	char *end;
	gint64 t;

	if (!g_str_has_prefix(p, "xfs-") || !g_ascii_isdigit(p[4]))
		return 0;
	t = g_ascii_strtoll(p + 4, &end, 10);
	/* an older id is "xfs-" and a UUID, whose first group (8 hex
	 * digits) may be all decimal: no time before 2001 */
	return *end == '-' && t >= 1000000000 ? t : 0;
}

void outbox_item_free(OutboxItem *it)
{
	if (!it)
		return;
	g_free(it->id);
	g_free(it->to);
	g_free(it->type);
	g_free(it->body);
	g_free(it->kind);
	g_free(it->ref);
	g_free(it->ref_to);
	g_free(it->enc);
	g_free(it);
}

static OutboxItem *item_copy(const OutboxItem *it)
{
	OutboxItem *c = g_new0(OutboxItem, 1);

	c->id = g_strdup(it->id);
	c->to = g_strdup(it->to);
	c->type = g_strdup(it->type);
	c->body = g_strdup(it->body);
	c->kind = g_strdup(it->kind);
	c->ref = g_strdup(it->ref);
	c->ref_to = g_strdup(it->ref_to);
	c->enc = g_strdup(it->enc);
	c->seq = it->seq;
	return c;
}

/* The TYPE field of the journal. */
static char *type_field(const OutboxItem *it)
{
	g_autofree char *ref = NULL, *to = NULL;

	if (!it->kind && !it->enc)
		return g_strdup(it->type);
	ref = g_uri_escape_string(it->ref ? it->ref : "", NULL, FALSE);
	to = g_uri_escape_string(it->ref_to ? it->ref_to : "", NULL, FALSE);
	if (it->enc)
		return g_strdup_printf("%s;%s;%s;%s;%s", it->type,
				       it->kind ? it->kind : "", ref, to,
				       it->enc);
	return g_strdup_printf("%s;%s;%s;%s", it->type, it->kind, ref, to);
}

/* Back from the TYPE field into @it. */
static void parse_type(OutboxItem *it, const char *field)
{
	g_auto(GStrv) f = g_strsplit(field, ";", 5);
	guint n = g_strv_length(f);

	it->type = g_strdup(f[0]);
	if (n != 4 && n != 5)
		return;
	it->kind = *f[1] ? g_strdup(f[1]) : NULL;
	it->ref = it->kind ? g_uri_unescape_string(f[2], NULL) : NULL;
	it->ref_to = *f[3] ? g_uri_unescape_string(f[3], NULL) : NULL;
	it->enc = n == 5 && *f[4] ? g_strdup(f[4]) : NULL;
}

/* What @it takes in the file: its "+" entry and its "-" entry. */
static goffset entry_bytes(const OutboxItem *it)
{
	return 32 + 2 * strlen(it->id) + strlen(it->to) + strlen(it->type) +
	       strlen(it->body) +
	       (it->kind ? 3 * (strlen(it->kind) + strlen(it->ref ? it->ref : "") +
				strlen(it->ref_to ? it->ref_to : "")) : 0) +
	       (it->enc ? 16 + strlen(it->enc) : 0);
}

static void items_add(Outbox *o, OutboxItem *it)
{
	o->pending_bytes += entry_bytes(it);
	it->seq = ++o->next_seq;
	g_queue_push_tail(&o->items, it);
	g_hash_table_insert(o->by_id, it->id, o->items.tail);
}

static void items_remove(Outbox *o, const char *id)
{
	GList *l = g_hash_table_lookup(o->by_id, id);

	if (!l)
		return;
	g_hash_table_remove(o->by_id, id);
	o->pending_bytes -= entry_bytes(l->data);
	outbox_item_free(l->data);
	g_queue_delete_link(&o->items, l);
}

/* Replay @data; stops at the first entry that is cut short. */
static void replay(Outbox *o, const char *data, gsize len)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		if (!nl)
			return;
		g_autofree char *head = g_strndup(p, nl - p);
		g_auto(GStrv) f = g_strsplit(head, " ", 0);
		p = nl + 1;
		if (f[0] && !strcmp(f[0], "-") && f[1]) {
			items_remove(o, f[1]);
			continue;
		}
		if (g_strv_length(f) != 5 || strcmp(f[0], "+"))
			return;
		guint64 blen = g_ascii_strtoull(f[4], NULL, 10);
		if (blen > (guint64)(end - p) || (guint64)(end - p) < blen + 1 ||
		    p[blen] != '\n')
			return;
		OutboxItem *it = g_new0(OutboxItem, 1);
		it->id = g_strdup(f[1]);
		it->to = g_strdup(f[2]);
		parse_type(it, f[3]);
		it->body = g_strndup(p, blen);
		items_remove(o, it->id);
		items_add(o, it);
		p += blen + 1;
	}
}

static GString *entry_add(const OutboxItem *it)
{
	GString *s = g_string_new(NULL);
	g_autofree char *type = type_field(it);

	g_string_append_printf(s, "+ %s %s %s %zu\n", it->id, it->to, type,
			       strlen(it->body));
	g_string_append(s, it->body);
	g_string_append_c(s, '\n');
	return s;
}

/* Write what is pending to a new file and put it in place; its size in
 * *size. */
static int compact(Outbox *o, goffset *size)
{
	g_autofree char *tmp = g_strconcat(o->path, ".new", NULL);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret = 0;

	*size = 0;
	if (fd < 0)
		return -errno;
	for (GList *l = o->items.head; l && !ret; l = l->next) {
		g_autoptr(GString) e = entry_add(l->data);
		ret = util_write_all(fd, e->str, e->len);
		*size += e->len;
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, o->path) < 0)
		ret = -errno;
	return ret;
}

/* With the lock held: append @len bytes to the journal; 0 or -errno. */
static int journal_write(Outbox *o, const char *data, gsize len)
{
	int fd = fdfile_get(o->file), ret;

	if (fd < 0)
		return fd;
	ret = util_write_all(fd, data, len);
	fdfile_put(o->file);
	return ret;
}

/* With the lock held: cut the journal to @size bytes; 0 or -errno. */
static int journal_cut(Outbox *o, goffset size)
{
	int fd = fdfile_get(o->file), ret = 0;

	if (fd < 0)
		return fd;
	if (ftruncate(fd, size) < 0)
		ret = -errno;
	fdfile_put(o->file);
	return ret;
}

/* With the lock held: a file mostly of entries that cancel out is
 * written again with only what is pending.  On failure the old file
 * stays in use (it is still right, only larger). */
static void compact_if_worth_it(Outbox *o)
{
	goffset size;

	if (o->bytes < OUTBOX_COMPACT_MIN || o->bytes < 4 * o->pending_bytes)
		return;
	if (compact(o, &size) < 0)
		return;
	fdfile_reopen(o->file); /* the next append goes to the new file */
	o->bytes = size;
}

Outbox *outbox_open(const char *path, GError **err)
{
	Outbox *o = g_new0(Outbox, 1);
	g_autofree char *data = NULL;
	gsize len = 0;
	int ret;

	g_mutex_init(&o->lock);
	o->path = g_strdup(path);
	o->by_id = g_hash_table_new(g_str_hash, g_str_equal);
	g_queue_init(&o->items);
	o->file = fdfile_new(path, O_WRONLY | O_APPEND, 0600);
	if (g_file_get_contents(path, &data, &len, NULL))
		replay(o, data, len);
	ret = compact(o, &o->bytes);
	if (!ret && (ret = fdfile_get(o->file)) >= 0) {
		fdfile_put(o->file);
		ret = 0;
	}
	if (ret) {
		int e = -ret;
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
			    "%s: %s", path, g_strerror(e));
		outbox_free(o);
		return NULL;
	}
	return o;
}

void outbox_free(Outbox *o)
{
	if (!o)
		return;
	fdfile_free(o->file);
	g_hash_table_unref(o->by_id);
	g_queue_clear_full(&o->items, (GDestroyNotify)outbox_item_free);
	g_list_free_full(o->watches, watch_free);
	g_queue_clear_full(&o->failed, failure_free);
	g_mutex_clear(&o->lock);
	g_free(o->path);
	g_free(o);
}

static OutboxItem *item_new(const char *to, const char *type,
			    const char *body)
{
	OutboxItem *it = g_new0(OutboxItem, 1);
	g_autofree char *uuid = g_uuid_string_random();

	/* the time in the id lets a later mount look for the message in the
	 * server's archive (mam.c) without another field in the journal */
	it->id = g_strdup_printf("xfs-%" G_GINT64_FORMAT "-%s",
				 g_get_real_time() / G_USEC_PER_SEC, uuid);
	it->to = g_strdup(to);
	it->type = g_strdup(type);
	it->body = g_strdup(body);
	return it;
}

static int add_many(Outbox *o, const char *to, const char *type,
		    const OutboxKind *k, const char *const *bodies, guint n,
		    GPtrArray **items, OutboxSpan *span)
{
	g_autoptr(GPtrArray) made =
		g_ptr_array_new_with_free_func((GDestroyNotify)outbox_item_free);
	GString *all = g_string_new(NULL);
	int ret;

	for (guint i = 0; i < n; i++) {
		OutboxItem *it = item_new(to, type, bodies[i]);
		g_autoptr(GString) e = NULL;
		if (k) {
			it->kind = g_strdup(k->kind);
			it->ref = g_strdup(k->ref);
			it->ref_to = g_strdup(k->ref_to);
			it->enc = g_strdup(k->enc);
		}
		e = entry_add(it);
		g_string_append_len(all, e->str, e->len);
		g_ptr_array_add(made, it);
	}
	g_mutex_lock(&o->lock);
	/* one write for all: a full disk takes none of them */
	ret = journal_write(o, all->str, all->len);
	if (ret == 0) {
		span->start = o->bytes;
		o->bytes += all->len;
		span->end = o->bytes;
		*items = g_ptr_array_new_with_free_func(
			(GDestroyNotify)outbox_item_free);
		while (made->len) {
			OutboxItem *it = g_ptr_array_steal_index(made, 0);
			items_add(o, it);
			g_ptr_array_add(*items, item_copy(it));
		}
	} else if (journal_cut(o, o->bytes) < 0) {
		/* (a piece of an entry stays at the end, where replay stops;
		 * the next append fails the same way or goes after it, and
		 * compact() at the next open drops both) */
	}
	g_mutex_unlock(&o->lock);
	g_string_free(all, TRUE);
	return ret;
}

int outbox_add_many(Outbox *o, const char *to, const char *type,
		    const OutboxKind *k, const char *const *bodies, guint n,
		    GPtrArray **items, OutboxSpan *span)
{
	return add_many(o, to, type, k, bodies, n, items, span);
}

int outbox_add_kind(Outbox *o, const char *to, const char *type,
		    const OutboxKind *k, const char *body, GPtrArray **items,
		    OutboxSpan *span)
{
	const char *bodies[] = {body};

	return add_many(o, to, type, k, bodies, 1, items, span);
}

int outbox_add(Outbox *o, const char *to, const char *type, const char *body,
	       OutboxItem **item)
{
	g_autoptr(GPtrArray) items = NULL;
	OutboxSpan span;
	int ret = outbox_add_many(o, to, type, NULL, &body, 1, &items, &span);

	if (ret == 0)
		*item = g_ptr_array_steal_index(items, 0);
	return ret;
}

void outbox_cancel(Outbox *o, GPtrArray *items, const OutboxSpan *span)
{
	GString *minus = g_string_new(NULL);

	g_mutex_lock(&o->lock);
	for (guint i = 0; i < items->len; i++) {
		const OutboxItem *it = g_ptr_array_index(items, i);
		g_string_append_printf(minus, "- %s\n", it->id);
		items_remove(o, it->id);
	}
	/* nothing written since: cut the entries off (no space needed);
	 * else cancel them with entries of their own */
	if (o->bytes == span->end && journal_cut(o, span->start) == 0)
		o->bytes = span->start;
	else if (journal_write(o, minus->str, minus->len) == 0)
		o->bytes += minus->len;
	g_mutex_unlock(&o->lock);
	g_string_free(minus, TRUE);
}

/* With the lock held: an item to @to, number @upto or older, waits. */
static bool pending_to(Outbox *o, const char *to, guint64 upto)
{
	for (GList *l = o->items.head; l; l = l->next) {
		OutboxItem *it = l->data;
		if (it->seq > upto)
			break;
		if (!strcmp(it->to, to))
			return true;
	}
	return false;
}

/* With the lock held: the watches that are satisfied, taken out. */
static GList *take_done_watches(Outbox *o)
{
	GList *done = NULL;

	for (GList *l = o->watches, *next; l; l = next) {
		Watch *w = l->data;
		next = l->next;
		if (!pending_to(o, w->to, w->upto)) {
			o->watches = g_list_remove_link(o->watches, l);
			done = g_list_concat(done, l);
		}
	}
	return done;
}

/* With the lock held: the watches that cover @it learn it failed. */
static void fail_watches(Outbox *o, const OutboxItem *it, int err)
{
	for (GList *l = o->watches; l; l = l->next) {
		Watch *w = l->data;
		if (!w->err && it->seq <= w->upto && !strcmp(w->to, it->to))
			w->err = err;
	}
}

/* With the lock held: @it failed with @err; the watches that cover it
 * learn it now, an fsync that comes later from o->failed. */
static void remember_failure(Outbox *o, const OutboxItem *it, int err)
{
	Failure *f = g_new0(Failure, 1);

	fail_watches(o, it, err);
	f->seq = it->seq;
	f->to = g_strdup(it->to);
	f->err = err;
	g_queue_push_tail(&o->failed, f);
	if (g_queue_get_length(&o->failed) > OUTBOX_FAILURES_KEPT)
		failure_free(g_queue_pop_head(&o->failed));
}

int outbox_failed(Outbox *o, const char *to, guint64 after, guint64 upto)
{
	int err = 0;

	g_mutex_lock(&o->lock);
	for (GList *l = o->failed.head; l && !err; l = l->next) {
		Failure *f = l->data;
		if (f->seq > after && f->seq <= upto &&
		    (!to || !strcmp(f->to, to)))
			err = f->err;
	}
	g_mutex_unlock(&o->lock);
	return err;
}

void outbox_done(Outbox *o, const char *id)
{
	outbox_fail(o, id, 0);
}

void outbox_fail(Outbox *o, const char *id, int err)
{
	g_autofree char *e = g_strdup_printf("- %s\n", id);
	GList *done = NULL, *l;

	g_mutex_lock(&o->lock);
	if ((l = g_hash_table_lookup(o->by_id, id))) {
		if (err)
			remember_failure(o, l->data, err);
		items_remove(o, id);
		if (journal_write(o, e, strlen(e)) < 0) {
			/* it will be sent once more after a remount */
		}
		o->bytes += strlen(e);
		compact_if_worth_it(o);
		done = take_done_watches(o);
	}
	g_mutex_unlock(&o->lock);
	for (l = done; l; l = l->next) {
		Watch *w = l->data;
		w->fn(w->data, w->err);
	}
	g_list_free_full(done, watch_free);
}

bool outbox_watch(Outbox *o, guint64 upto, void (*fn)(void *data, int err),
		  void *data, guint64 *token)
{
	OutboxItem *it = NULL;
	Watch *w;

	g_mutex_lock(&o->lock);
	for (GList *l = o->items.head; l; l = l->next) {
		it = l->data;
		if (it->seq >= upto)
			break;
	}
	if (!it || it->seq != upto) {
		/* gone: and the older ones to its destination before it */
		g_mutex_unlock(&o->lock);
		return false;
	}
	w = g_new0(Watch, 1);
	w->token = *token = ++o->next_token;
	w->upto = upto;
	w->to = g_strdup(it->to);
	w->fn = fn;
	w->data = data;
	o->watches = g_list_append(o->watches, w);
	g_mutex_unlock(&o->lock);
	return true;
}

void outbox_unwatch(Outbox *o, guint64 token)
{
	g_mutex_lock(&o->lock);
	for (GList *l = o->watches; l; l = l->next) {
		Watch *w = l->data;
		if (w->token == token) {
			o->watches = g_list_delete_link(o->watches, l);
			watch_free(w);
			break;
		}
	}
	g_mutex_unlock(&o->lock);
}

GPtrArray *outbox_pending(Outbox *o)
{
	GPtrArray *out =
		g_ptr_array_new_with_free_func((GDestroyNotify)outbox_item_free);

	g_mutex_lock(&o->lock);
	for (GList *l = o->items.head; l; l = l->next)
		g_ptr_array_add(out, item_copy(l->data));
	g_mutex_unlock(&o->lock);
	return out;
}

guint outbox_length(Outbox *o)
{
	guint n;

	g_mutex_lock(&o->lock);
	n = o->items.length;
	g_mutex_unlock(&o->lock);
	return n;
}
