/* test_history.c - conversation logs on disk, and forgetting one: the
 * folder moves to the trash, a reader holding the old log keeps reading
 * the moved file and its waiters wake to find it gone, what is appended
 * through the old log is kept (in the trash), and a new log of the name
 * starts empty; a reopened set knows only the new one. */
#include "store/history.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

static char *dir;

typedef struct {
	HistWaiter w;
	int woken;
} Waiter;

static void wake(HistWaiter *w)
{
	((Waiter *)w)->woken++;
}

static char *read_all(Hist *h)
{
	goffset size = hist_size(h);
	char *buf = g_malloc0(size + 1);

	g_assert_cmpint(hist_pread(h, buf, size, 0), ==, size);
	return buf;
}

static void append(Hist *h, const char *rec)
{
	g_assert_cmpint(hist_append(h, rec, strlen(rec)), ==, 0);
}

static void test_forget(void)
{
	g_autofree char *sets = g_build_filename(dir, "acct", "contacts", NULL);
	g_autoptr(GError) err = NULL;
	g_autofree char *moved = NULL, *old_text = NULL, *trashed = NULL;
	g_autofree char *moved_log = NULL;
	HistSet *s = hist_set_new(sets, &err);
	Waiter w = {.w.wake = wake};
	GPtrArray *names;
	Hist *old, *fresh;

	g_assert_no_error(err);
	old = hist_set_get(s, "typo@example.org", true, &err);
	g_assert_no_error(err);
	append(old, "T\ttypo@example.org\tfirst\n");
	g_assert_cmpint(hist_set_forget(s, "nobody@example.org", NULL, NULL),
			==, -ENOENT);

	/* a reader waits at the end of the log */
	g_assert_false(hist_wait(old, &w.w, hist_size(old)));
	g_assert_cmpint(hist_set_forget(s, "typo@example.org", &moved, &err),
			==, 0);
	g_assert_no_error(err);
	g_assert_cmpint(w.woken, ==, 1);
	g_assert_true(hist_gone(old));
	/* waiting on a gone log returns at once */
	g_assert_true(hist_wait(old, &w.w, hist_size(old)));
	g_assert_true(g_str_has_prefix(moved, dir));
	g_assert_nonnull(strstr(moved, "/acct/trash/contacts/typo@example.org."));

	/* the held log reads the moved file; an append through it lands there */
	append(old, "T\ttypo@example.org\tlate\n");
	old_text = read_all(old);
	g_assert_cmpstr(old_text, ==,
			"T\ttypo@example.org\tfirst\nT\ttypo@example.org\tlate\n");
	moved_log = g_build_filename(moved, "log", NULL);
	g_assert_true(g_file_get_contents(moved_log, &trashed, NULL, NULL));
	g_assert_cmpstr(trashed, ==, old_text);

	/* not known any more; a new one starts empty */
	names = hist_set_names(s);
	g_assert_cmpuint(names->len, ==, 0);
	g_ptr_array_unref(names);
	g_assert_null(hist_set_get(s, "typo@example.org", false, NULL));
	fresh = hist_set_get(s, "typo@example.org", true, &err);
	g_assert_no_error(err);
	g_assert_true(fresh != old);
	g_assert_cmpint(hist_size(fresh), ==, 0);
	g_assert_false(hist_gone(fresh));
	append(fresh, "T\ttypo@example.org\tagain\n");
	/* forgotten twice: two folders in the trash, both kept */
	{
		g_autofree char *again = NULL;
		g_assert_cmpint(hist_set_forget(s, "typo@example.org", &again,
						NULL), ==, 0);
		g_assert_cmpstr(again, !=, moved);
		g_assert_true(g_file_test(again, G_FILE_TEST_IS_DIR));
	}
	hist_set_free(s);

	/* a reopened set finds neither */
	s = hist_set_new(sets, &err);
	g_assert_no_error(err);
	names = hist_set_names(s);
	g_assert_cmpuint(names->len, ==, 0);
	g_ptr_array_unref(names);
	hist_set_free(s);
}

static char *ids_text(Hist *h)
{
	goffset size = hist_ids_size(h);
	char *buf = g_malloc0(size + 1);

	g_assert_cmpint(hist_ids_pread(h, buf, size, 0), ==, size);
	return buf;
}

/* log.ids line for line with the log: appended together, and brought in
 * line at the first use when they are not (a log from before log.ids, an
 * ids line whose record was cut off, half a line). */
static void test_ids(void)
{
	g_autofree char *sets = g_build_filename(dir, "ids", "contacts", NULL);
	g_autofree char *idpath = g_build_filename(sets, "bob@example.org",
						   "log.ids", NULL);
	g_autoptr(GError) err = NULL;
	g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL;
	HistSet *s = hist_set_new(sets, &err);
	Hist *h = hist_set_get(s, "bob@example.org", true, &err);
	const char *two = "T\tbob\ta\nT\tbob\tb\n";

	g_assert_no_error(err);
	/* two records without ids (an older xmppfs), then one with */
	append(h, two);
	g_assert_cmpint(hist_append_ids(h, "T\tbob\tc\n", 8, "X\tmessage\t-\n",
					12, NULL), ==, 0);
	t1 = ids_text(h);
	g_assert_cmpstr(t1, ==, "-\tmessage\t-\t-\n-\tmessage\t-\t-\nX\tmessage\t-\n");
	hist_set_free(s);

	/* an ids line without its record, and half a line: cut off */
	g_assert_true(g_file_set_contents(idpath,
		"-\tmessage\t-\t-\n-\tmessage\t-\t-\nX\tmessage\t-\nY\tmessage\t-\nZ\tme",
		-1, NULL));
	s = hist_set_new(sets, &err);
	h = hist_set_get(s, "bob@example.org", false, &err);
	g_assert_nonnull(h);
	t2 = ids_text(h);
	g_assert_cmpstr(t2, ==, t1);
	hist_set_free(s);

	/* half a line short of the records: padded */
	g_assert_true(g_file_set_contents(idpath, "-\tmessage\t-\t-\nX\tme", -1,
					  NULL));
	s = hist_set_new(sets, &err);
	h = hist_set_get(s, "bob@example.org", false, &err);
	t3 = ids_text(h);
	g_assert_cmpstr(t3, ==,
			"-\tmessage\t-\t-\n-\tmessage\t-\t-\n-\tmessage\t-\t-\n");
	hist_set_free(s);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	dir = g_dir_make_tmp("test-history-XXXXXX", NULL);
	g_assert_nonnull(dir);
	g_test_add_func("/history/forget", test_forget);
	g_test_add_func("/history/ids", test_ids);
	ret = g_test_run();
	{
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
		if (system(cmd) != 0)
			g_warning("could not remove %s", dir);
	}
	g_free(dir);
	return ret;
}
