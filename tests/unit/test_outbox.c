/* test_outbox.c - the persistent outbox: what is accepted survives a
 * reopen until it is acknowledged, in order; a journal cut short loses
 * only its last entry; watches fire once everything up to them is
 * acknowledged; and the file stays small however long the mount runs. */
#include "store/outbox.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

static char *dir;

static char *journal(const char *name)
{
	return g_build_filename(dir, name, NULL);
}

static Outbox *open_ok(const char *path)
{
	g_autoptr(GError) err = NULL;
	Outbox *o = outbox_open(path, &err);

	g_assert_no_error(err);
	g_assert_nonnull(o);
	return o;
}

static char *add(Outbox *o, const char *to, const char *body)
{
	g_autoptr(OutboxItem) it = NULL;

	g_assert_cmpint(outbox_add(o, to, "chat", body, &it), ==, 0);
	g_assert_cmpstr(it->body, ==, body);
	return g_strdup(it->id);
}

static goffset file_size(const char *path)
{
	struct stat st;

	g_assert_cmpint(g_stat(path, &st), ==, 0);
	return st.st_size;
}

/* Pending items come back after a reopen, in order, with their bodies
 * (newlines and all); acknowledged ones do not. */
/* The id says when the message was accepted; an older id says nothing. */
static void test_item_time(void)
{
	g_autofree char *path = journal("time");
	Outbox *o = open_ok(path);
	g_autoptr(OutboxItem) it = NULL;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	OutboxItem old = {.id = (char *)"xfs-2f1a-uuid"};
	OutboxItem odd = {.id = (char *)"xfs-12x-uuid"};
	OutboxItem uuid = {.id = (char *)"xfs-12345678-1234-4abc-8def-0123456789ab"};

	g_assert_cmpint(outbox_add(o, "b@x.org", "chat", "t", &it), ==, 0);
	g_assert_cmpint(outbox_item_time(it), >=, now);
	g_assert_cmpint(outbox_item_time(it), <=, now + 1);
	g_assert_cmpint(outbox_item_time(&old), ==, 0);
	g_assert_cmpint(outbox_item_time(&odd), ==, 0);
	g_assert_cmpint(outbox_item_time(&uuid), ==, 0);
	outbox_free(o);
}

static void test_survives_reopen(void)
{
	g_autofree char *path = journal("reopen");
	Outbox *o = open_ok(path);
	g_autofree char *a = add(o, "bob@example.org", "one");
	g_autofree char *b = add(o, "room@muc.example.org/N%20ick", "two\nlines");
	g_autofree char *c = add(o, "bob@example.org", "three");
	g_autoptr(GPtrArray) p = NULL;

	outbox_done(o, b);
	outbox_done(o, "no-such-id");
	g_assert_cmpuint(outbox_length(o), ==, 2);
	outbox_free(o);
	o = open_ok(path);
	p = outbox_pending(o);
	g_assert_cmpuint(p->len, ==, 2);
	g_assert_cmpstr(((OutboxItem *)p->pdata[0])->id, ==, a);
	g_assert_cmpstr(((OutboxItem *)p->pdata[0])->body, ==, "one");
	g_assert_cmpstr(((OutboxItem *)p->pdata[1])->id, ==, c);
	g_assert_cmpstr(((OutboxItem *)p->pdata[1])->to, ==, "bob@example.org");
	outbox_free(o);
}

/* A crash in the middle of an append: the cut entry is lost, the rest
 * is kept. */
static void test_cut_short(void)
{
	g_autofree char *path = journal("cut");
	Outbox *o = open_ok(path);
	g_autofree char *a = add(o, "bob@example.org", "kept");
	g_autoptr(GPtrArray) p = NULL;
	g_autofree char *data = NULL;
	gsize len;

	outbox_free(o);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	{
		g_autofree char *more = g_strconcat(
			data, "+ xfs-cut bob@example.org chat 10\nhalf", NULL);
		g_assert_true(g_file_set_contents(path, more, -1, NULL));
	}
	o = open_ok(path);
	p = outbox_pending(o);
	g_assert_cmpuint(p->len, ==, 1);
	g_assert_cmpstr(((OutboxItem *)p->pdata[0])->id, ==, a);
	outbox_free(o);
}

static void count(void *data, int err)
{
	g_assert_cmpint(err, ==, 0);
	(*(int *)data)++;
}

static void note_err(void *data, int err)
{
	*(int *)data = err ? err : -1;
}

/* A watch fires once every item up to it left the outbox, and only
 * then; an unwatched one never. */
static void test_watches(void)
{
	g_autofree char *path = journal("watch");
	Outbox *o = open_ok(path);
	g_autoptr(OutboxItem) i1 = NULL, i2 = NULL;
	guint64 t1, t2;
	int fired = 0, never = 0;

	g_assert_cmpint(outbox_add(o, "b@x.org", "chat", "1", &i1), ==, 0);
	g_assert_cmpint(outbox_add(o, "b@x.org", "chat", "2", &i2), ==, 0);
	g_assert_true(outbox_watch(o, i2->seq, count, &fired, &t1));
	g_assert_true(outbox_watch(o, i2->seq, count, &never, &t2));
	outbox_unwatch(o, t2);
	outbox_done(o, i2->id); /* out of order: i1 still waits */
	g_assert_cmpint(fired, ==, 0);
	outbox_done(o, i1->id);
	g_assert_cmpint(fired, ==, 1);
	g_assert_cmpint(never, ==, 0);
	g_assert_false(outbox_watch(o, i2->seq, count, &fired, &t1));
	outbox_free(o);
}

/* An older message to another destination (a room waiting to have us)
 * does not hold a watch; one to the same destination does. */
static void test_watch_per_destination(void)
{
	g_autofree char *path = journal("watchto");
	Outbox *o = open_ok(path);
	g_autoptr(OutboxItem) room = NULL, c1 = NULL, c2 = NULL;
	guint64 t;
	int fired = 0;

	g_assert_cmpint(outbox_add(o, "r@muc.x.org", "groupchat", "0", &room), ==, 0);
	g_assert_cmpint(outbox_add(o, "b@x.org", "chat", "1", &c1), ==, 0);
	g_assert_cmpint(outbox_add(o, "b@x.org", "chat", "2", &c2), ==, 0);
	g_assert_true(outbox_watch(o, c2->seq, count, &fired, &t));
	outbox_done(o, c2->id);
	g_assert_cmpint(fired, ==, 0); /* c1 still waits */
	outbox_done(o, c1->id);
	g_assert_cmpint(fired, ==, 1); /* the room's message does not count */
	g_assert_false(outbox_watch(o, c1->seq, count, &fired, &t));
	g_assert_true(outbox_watch(o, room->seq, count, &fired, &t));
	outbox_done(o, room->id);
	g_assert_cmpint(fired, ==, 2);
	outbox_free(o);
}

/* A long mount: 20,000 messages of 200 bytes go through (4 MB of
 * journal); the file stays under a megabyte and still holds what is
 * pending. */
static void test_stays_small(void)
{
	g_autofree char *path = journal("small");
	g_autofree char *body = g_strnfill(200, 'x');
	Outbox *o = open_ok(path);
	g_autofree char *keep = add(o, "bob@example.org", "the one left");
	goffset largest = 0;
	g_autoptr(GPtrArray) p = NULL;

	for (int i = 0; i < 20000; i++) {
		g_autofree char *id = add(o, "bob@example.org", body);
		outbox_done(o, id);
		largest = MAX(largest, file_size(path));
	}
	g_test_message("largest journal: %" G_GOFFSET_FORMAT " bytes", largest);
	g_assert_cmpint(largest, <, 1024 * 1024);
	outbox_free(o);
	o = open_ok(path);
	p = outbox_pending(o);
	g_assert_cmpuint(p->len, ==, 1);
	g_assert_cmpstr(((OutboxItem *)p->pdata[0])->id, ==, keep);
	g_assert_cmpstr(((OutboxItem *)p->pdata[0])->body, ==, "the one left");
	outbox_free(o);
}

/* Several messages with one write: all in the journal and in order, with
 * consecutive seqs; cancelled (nothing written since), the journal is cut
 * back to what it was; cancelled after another entry, the cancellation
 * is written, and a reopen has neither. */
static void test_many_and_cancel(void)
{
	g_autofree char *path = journal("many");
	Outbox *o = open_ok(path);
	const char *bodies[] = {"one", "two", "three"};
	g_autoptr(GPtrArray) items = NULL, more = NULL, p = NULL;
	OutboxSpan span, span2;
	goffset before = file_size(path);
	g_autofree char *keep = NULL;

	g_assert_cmpint(outbox_add_many(o, "b@x.org", "chat", NULL, bodies, 3,
					&items, &span), ==, 0);
	g_assert_cmpuint(items->len, ==, 3);
	for (guint i = 0; i < 3; i++)
		g_assert_cmpstr(((OutboxItem *)items->pdata[i])->body, ==,
				bodies[i]);
	g_assert_cmpuint(((OutboxItem *)items->pdata[2])->seq, ==,
			 ((OutboxItem *)items->pdata[0])->seq + 2);
	g_assert_cmpuint(outbox_length(o), ==, 3);
	outbox_cancel(o, items, &span);
	g_assert_cmpuint(outbox_length(o), ==, 0);
	g_assert_cmpint(file_size(path), ==, before);
	g_assert_cmpint(outbox_add_many(o, "b@x.org", "chat", NULL, bodies, 2,
					&more, &span2), ==, 0);
	keep = add(o, "b@x.org", "kept");
	outbox_cancel(o, more, &span2);
	g_assert_cmpint(file_size(path), >, before);
	outbox_free(o);
	o = open_ok(path);
	p = outbox_pending(o);
	g_assert_cmpuint(p->len, ==, 1);
	g_assert_cmpstr(((OutboxItem *)p->pdata[0])->id, ==, keep);
	outbox_free(o);
}

/* A message that can never go out ends the watches that cover it with
 * its error, not with success. */
static void test_fail_tells_the_watch(void)
{
	g_autofree char *path = journal("fail");
	Outbox *o = open_ok(path);
	g_autoptr(OutboxItem) i1 = NULL, i2 = NULL;
	guint64 t;
	int got = 0;

	g_assert_cmpint(outbox_add(o, "r@muc.x.org", "groupchat", "1", &i1), ==, 0);
	g_assert_cmpint(outbox_add(o, "r@muc.x.org", "groupchat", "2", &i2), ==, 0);
	g_assert_true(outbox_watch(o, i2->seq, note_err, &got, &t));
	outbox_fail(o, i1->id, 107 /* ENOTCONN */);
	g_assert_cmpint(got, ==, 0); /* i2 still waits */
	outbox_done(o, i2->id);
	g_assert_cmpint(got, ==, 107);
	outbox_free(o);
}

/* An fsync that comes after the failure still hears of it, for the
 * messages it covers, to its destination. */
static void test_failed_before_the_watch(void)
{
	g_autofree char *path = journal("failed-before");
	Outbox *o = open_ok(path);
	g_autoptr(OutboxItem) i1 = NULL, i2 = NULL, i3 = NULL, i4 = NULL;
	guint64 t;
	int got = -1;

	g_assert_cmpint(outbox_add(o, "r@muc.x.org", "groupchat", "1", &i1), ==, 0);
	g_assert_cmpint(outbox_add(o, "r@muc.x.org", "groupchat", "2", &i2), ==, 0);
	g_assert_cmpint(outbox_add(o, "b@x.org", "chat", "3", &i3), ==, 0);
	outbox_fail(o, i2->id, 13 /* EACCES */);
	outbox_done(o, i1->id);
	/* gone: the watch has nothing to wait for; the failure is kept */
	g_assert_false(outbox_watch(o, i2->seq, note_err, &got, &t));
	g_assert_cmpint(outbox_failed(o, "r@muc.x.org", 0, i2->seq), ==, 13);
	/* not before @after, not after @upto, not another destination */
	g_assert_cmpint(outbox_failed(o, "r@muc.x.org", i2->seq, i3->seq), ==, 0);
	g_assert_cmpint(outbox_failed(o, "r@muc.x.org", 0, i1->seq), ==, 0);
	g_assert_cmpint(outbox_failed(o, "b@x.org", 0, i3->seq), ==, 0);
	/* acknowledged is no failure */
	outbox_done(o, i3->id);
	g_assert_cmpint(outbox_failed(o, "b@x.org", 0, i3->seq), ==, 0);
	/* only the last few hundred are kept */
	for (guint i = 0; i < 300; i++) {
		g_autoptr(OutboxItem) it = NULL;
		g_assert_cmpint(outbox_add(o, "c@x.org", "chat", "x", &it), ==, 0);
		outbox_fail(o, it->id, 5);
	}
	g_assert_cmpint(outbox_failed(o, "r@muc.x.org", 0, i2->seq), ==, 0);
	g_assert_cmpint(outbox_add(o, "c@x.org", "chat", "y", &i4), ==, 0);
	g_assert_cmpint(outbox_failed(o, "c@x.org", 0, i4->seq), ==, 5);
	g_assert_cmpint(got, ==, -1); /* the watch that was refused: no call */
	outbox_free(o);
}

/* How a message goes out (omemo) and its kind survive a reopen, with and
 * without a kind; a plain message stays plain. */
static void test_enc_survives_reopen(void)
{
	g_autofree char *path = journal("enc");
	Outbox *o = open_ok(path);
	const char *bodies[] = {"secret one", "secret two"};
	OutboxKind plain_enc = {NULL, NULL, NULL, "omemo"};
	OutboxKind corr = {"correction", "xfs-1-a", NULL, "auto"};
	g_autoptr(GPtrArray) items = NULL, more = NULL, p = NULL;
	OutboxSpan span;
	g_autofree char *clear = NULL;

	g_assert_cmpint(outbox_add_many(o, "b@x.org", "chat", &plain_enc,
					bodies, 2, &items, &span), ==, 0);
	g_assert_cmpstr(((OutboxItem *)items->pdata[0])->enc, ==, "omemo");
	g_assert_null(((OutboxItem *)items->pdata[0])->kind);
	g_assert_cmpint(outbox_add_kind(o, "b@x.org", "chat", &corr, "fixed",
					&more, &span), ==, 0);
	clear = add(o, "b@x.org", "clear");
	outbox_free(o);
	o = open_ok(path);
	p = outbox_pending(o);
	g_assert_cmpuint(p->len, ==, 4);
	for (guint i = 0; i < 2; i++) {
		OutboxItem *it = p->pdata[i];
		g_assert_cmpstr(it->body, ==, bodies[i]);
		g_assert_cmpstr(it->enc, ==, "omemo");
		g_assert_null(it->kind);
		g_assert_null(it->ref);
		g_assert_cmpstr(it->type, ==, "chat");
	}
	g_assert_cmpstr(((OutboxItem *)p->pdata[2])->kind, ==, "correction");
	g_assert_cmpstr(((OutboxItem *)p->pdata[2])->ref, ==, "xfs-1-a");
	g_assert_cmpstr(((OutboxItem *)p->pdata[2])->enc, ==, "auto");
	g_assert_cmpstr(((OutboxItem *)p->pdata[3])->id, ==, clear);
	g_assert_null(((OutboxItem *)p->pdata[3])->enc);
	outbox_free(o);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	dir = g_dir_make_tmp("test-outbox-XXXXXX", NULL);
	g_assert_nonnull(dir);
	g_test_add_func("/outbox/survives-reopen", test_survives_reopen);
	g_test_add_func("/outbox/item-time", test_item_time);
	g_test_add_func("/outbox/cut-short", test_cut_short);
	g_test_add_func("/outbox/watches", test_watches);
	g_test_add_func("/outbox/many-and-cancel", test_many_and_cancel);
	g_test_add_func("/outbox/enc-survives-reopen", test_enc_survives_reopen);
	g_test_add_func("/outbox/fail-tells-the-watch", test_fail_tells_the_watch);
	g_test_add_func("/outbox/watch-per-destination", test_watch_per_destination);
	g_test_add_func("/outbox/stays-small", test_stays_small);
	g_test_add_func("/outbox/failed-before-the-watch",
			test_failed_before_the_watch);
	ret = g_test_run();
	{
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			g_warning("could not remove %s", dir);
	}
	g_free(dir);
	return ret;
}
