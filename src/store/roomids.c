/* roomids.c - see roomids.h. */
#include "store/roomids.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

struct RoomIds {
	char *path;
	GHashTable *set; /* id -> its link in order */
	GQueue order;    /* of char*, oldest first; owns the strings */
	bool any;
};

static void remember(RoomIds *r, const char *id)
{
	char *copy;

	if (g_hash_table_contains(r->set, id))
		return;
	copy = g_strdup(id);
	g_queue_push_tail(&r->order, copy);
	g_hash_table_insert(r->set, copy, r->order.tail);
	while (r->order.length > ROOMIDS_KEEP) {
		char *old = g_queue_pop_head(&r->order);
		g_hash_table_remove(r->set, old);
		g_free(old);
	}
	r->any = true;
}

/* Write back only what is remembered, when the file grew much larger. */
static void compact(RoomIds *r, gsize lines)
{
	GString *s;

	if (lines <= 2 * ROOMIDS_KEEP)
		return;
	s = g_string_new(NULL);
	for (GList *l = r->order.head; l; l = l->next)
		g_string_append_printf(s, "%s\n", (char *)l->data);
	g_file_set_contents_full(r->path, s->str, s->len,
				 G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL);
	g_string_free(s, TRUE);
}

RoomIds *roomids_open(const char *path)
{
	RoomIds *r = g_new0(RoomIds, 1);
	g_autofree char *text = NULL;
	gsize lines = 0;

	r->path = g_strdup(path);
	r->set = g_hash_table_new(g_str_hash, g_str_equal);
	g_queue_init(&r->order);
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		char *line = text, *nl;
		for (; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
			*nl = '\0';
			if (*line)
				remember(r, line);
		}
	}
	compact(r, lines);
	return r;
}

void roomids_free(RoomIds *r)
{
	if (!r)
		return;
	g_hash_table_unref(r->set);
	g_queue_clear_full(&r->order, g_free);
	g_free(r->path);
	g_free(r);
}

bool roomids_any(RoomIds *r)
{
	return r->any;
}

bool roomids_has(RoomIds *r, const char *id)
{
	return id && g_hash_table_contains(r->set, id);
}

int roomids_add(RoomIds *r, const char *id)
{
	g_autofree char *line = NULL;
	int fd, ret;

	if (!id || !*id || strchr(id, '\n') || g_hash_table_contains(r->set, id))
		return 0;
	remember(r, id);
	line = g_strdup_printf("%s\n", id);
	fd = open(r->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = util_write_all(fd, line, strlen(line));
	close(fd);
	return ret;
}
