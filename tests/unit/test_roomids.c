/* test_roomids.c - the ids a room gave the records of its log. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>

#include "store/roomids.h"

static char *tmp_path(void)
{
	g_autofree char *dir = g_dir_make_tmp("roomids-XXXXXX", NULL);

	return g_build_filename(dir, "ids", NULL);
}

static void cleanup(const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_unlink(path);
	g_rmdir(dir);
}

static void test_empty(void)
{
	g_autofree char *path = tmp_path();
	RoomIds *r = roomids_open(path);

	g_assert_false(roomids_any(r));
	g_assert_false(roomids_has(r, "x"));
	g_assert_false(roomids_has(r, NULL));
	roomids_free(r);
	cleanup(path);
}

static void test_kept_across_opens(void)
{
	g_autofree char *path = tmp_path();
	RoomIds *r = roomids_open(path);

	g_assert_cmpint(roomids_add(r, "a1"), ==, 0);
	g_assert_cmpint(roomids_add(r, "b2"), ==, 0);
	g_assert_cmpint(roomids_add(r, "a1"), ==, 0); /* once */
	g_assert_true(roomids_any(r));
	roomids_free(r);
	r = roomids_open(path);
	g_assert_true(roomids_has(r, "a1"));
	g_assert_true(roomids_has(r, "b2"));
	g_assert_false(roomids_has(r, "c3"));
	roomids_free(r);
	{
		g_autofree char *text = NULL;
		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		g_assert_cmpstr(text, ==, "a1\nb2\n");
	}
	cleanup(path);
}

static void test_refuses_what_would_break_the_file(void)
{
	g_autofree char *path = tmp_path();
	RoomIds *r = roomids_open(path);

	g_assert_cmpint(roomids_add(r, ""), ==, 0);
	g_assert_cmpint(roomids_add(r, "two\nlines"), ==, 0);
	g_assert_cmpint(roomids_add(r, NULL), ==, 0);
	g_assert_false(roomids_any(r));
	roomids_free(r);
	cleanup(path);
}

/* The newest ROOMIDS_KEEP are remembered; a file much longer is written
 * back with those only. */
static void test_bounded(void)
{
	g_autofree char *path = tmp_path();
	RoomIds *r = roomids_open(path);
	guint n = 3 * ROOMIDS_KEEP;
	g_autofree char *text = NULL;
	gsize len;
	guint lines = 0;

	for (guint i = 0; i < n; i++) {
		char id[32];
		g_snprintf(id, sizeof id, "id%u", i);
		g_assert_cmpint(roomids_add(r, id), ==, 0);
	}
	g_assert_false(roomids_has(r, "id0"));
	g_assert_true(roomids_has(r, "id5999"));
	roomids_free(r);
	r = roomids_open(path); /* compacts */
	g_assert_true(roomids_has(r, "id5999"));
	g_assert_true(roomids_has(r, "id4000"));
	g_assert_false(roomids_has(r, "id3999"));
	roomids_free(r);
	g_assert_true(g_file_get_contents(path, &text, &len, NULL));
	for (gsize i = 0; i < len; i++)
		lines += text[i] == '\n';
	g_assert_cmpuint(lines, ==, ROOMIDS_KEEP);
	cleanup(path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/roomids/empty", test_empty);
	g_test_add_func("/roomids/kept-across-opens", test_kept_across_opens);
	g_test_add_func("/roomids/refuses-what-would-break-the-file",
			test_refuses_what_would_break_the_file);
	g_test_add_func("/roomids/bounded", test_bounded);
	return g_test_run();
}
