/* rooms.c - see rooms.h.  The file has one line per room, ROOM<TAB>NICK
 * (neither holds a TAB or LF: both are validated JID parts).  An older
 * xmppfs wrote a GKeyFile ([rooms] ROOM=NICK), which cannot hold a room
 * whose name starts with '#' or holds '=', '[' or ']' (IRC gateways'
 * rooms do); it is still read. */
#include "store/rooms.h"

#include <string.h>

#include "base/util.h"

typedef struct {
	char *role;
	char *affiliation;
	char *jid;
} Occupant;

typedef struct {
	char *nick;
	char *subject;
	bool joined;           /* the room confirmed us on this stream */
	GHashTable *occupants; /* nick -> Occupant* */
} Room;

struct Rooms {
	GMutex lock;
	char *path;
	GHashTable *rooms; /* room JID -> Room*, protected by lock */
};

static void occupant_free(gpointer p)
{
	Occupant *o = p;

	g_free(o->role);
	g_free(o->affiliation);
	g_free(o->jid);
	g_free(o);
}

static void room_free(gpointer p)
{
	Room *rm = p;

	g_free(rm->nick);
	g_free(rm->subject);
	g_hash_table_unref(rm->occupants);
	g_free(rm);
}

static Room *room_new(const char *nick)
{
	Room *rm = g_new0(Room, 1);

	rm->nick = g_strdup(nick);
	rm->occupants = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      occupant_free);
	return rm;
}

/* With the lock held. */
static void save(Rooms *r)
{
	GString *out = g_string_new(NULL);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, r->rooms);
	while (g_hash_table_iter_next(&it, &k, &v))
		g_string_append_printf(out, "%s\t%s\n", (char *)k,
				       ((Room *)v)->nick);
	/* private like every file of the data directory */
	g_file_set_contents_full(r->path, out->str, out->len,
				 G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL);
	g_string_free(out, TRUE);
}

/* The format of an older xmppfs: [rooms] ROOM=NICK. */
static void load_keyfile(Rooms *r, const char *data, gsize len)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_auto(GStrv) keys = NULL;

	if (g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, NULL))
		keys = g_key_file_get_keys(kf, "rooms", NULL, NULL);
	for (char **k = keys; k && *k; k++) {
		g_autofree char *nick = g_key_file_get_string(kf, "rooms", *k,
							      NULL);
		if (nick && *nick)
			g_hash_table_insert(r->rooms, g_strdup(*k),
					    room_new(nick));
	}
}

Rooms *rooms_new(const char *path)
{
	Rooms *r = g_new0(Rooms, 1);
	g_autofree char *data = NULL;
	gsize len = 0;

	g_mutex_init(&r->lock);
	r->path = g_strdup(path);
	r->rooms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 room_free);
	if (!g_file_get_contents(path, &data, &len, NULL))
		return r;
	if (g_str_has_prefix(data, "[rooms]")) {
		load_keyfile(r, data, len);
		return r;
	}
	{
		g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
		for (char **l = lines; *l; l++) {
			char *tab = strchr(*l, '\t');
			if (!tab || tab == *l || !tab[1])
				continue;
			*tab = '\0';
			g_hash_table_insert(r->rooms, g_strdup(*l),
					    room_new(tab + 1));
		}
	}
	return r;
}

void rooms_free(Rooms *r)
{
	if (!r)
		return;
	g_hash_table_unref(r->rooms);
	g_free(r->path);
	g_mutex_clear(&r->lock);
	g_free(r);
}

GPtrArray *rooms_list(Rooms *r)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k;

	g_mutex_lock(&r->lock);
	g_hash_table_iter_init(&it, r->rooms);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(out, g_strdup(k));
	g_mutex_unlock(&r->lock);
	g_ptr_array_sort(out, util_cmp_strp);
	return out;
}

bool rooms_has(Rooms *r, const char *room)
{
	bool has;

	g_mutex_lock(&r->lock);
	has = g_hash_table_contains(r->rooms, room);
	g_mutex_unlock(&r->lock);
	return has;
}

void rooms_set(Rooms *r, const char *room, const char *nick)
{
	g_mutex_lock(&r->lock);
	if (nick)
		g_hash_table_replace(r->rooms, g_strdup(room), room_new(nick));
	else
		g_hash_table_remove(r->rooms, room);
	save(r);
	g_mutex_unlock(&r->lock);
}

char *rooms_nick(Rooms *r, const char *room)
{
	Room *rm;
	char *nick;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	nick = rm ? g_strdup(rm->nick) : NULL;
	g_mutex_unlock(&r->lock);
	return nick;
}

void rooms_rename(Rooms *r, const char *room, const char *nick)
{
	Room *rm;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	if (rm && strcmp(rm->nick, nick)) {
		g_free(rm->nick);
		rm->nick = g_strdup(nick);
		save(r);
	}
	g_mutex_unlock(&r->lock);
}

GPtrArray *rooms_occupant_nicks(Rooms *r, const char *room)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k;
	Room *rm;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	if (rm) {
		g_hash_table_iter_init(&it, rm->occupants);
		while (g_hash_table_iter_next(&it, &k, NULL))
			g_ptr_array_add(out, g_strdup(k));
	}
	g_mutex_unlock(&r->lock);
	g_ptr_array_sort(out, util_cmp_strp);
	return out;
}

char *rooms_subject(Rooms *r, const char *room)
{
	Room *rm;
	char *out;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	out = rm && rm->subject && *rm->subject ? g_strdup(rm->subject) : NULL;
	g_mutex_unlock(&r->lock);
	return out;
}

void rooms_occupant(Rooms *r, const char *room, const char *nick,
		    const char *role, const char *affiliation, const char *jid)
{
	Room *rm;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	if (rm && role) {
		Occupant *o = g_new0(Occupant, 1);
		o->role = g_strdup(role);
		o->affiliation = g_strdup(affiliation ? affiliation : "none");
		o->jid = g_strdup(jid);
		g_hash_table_replace(rm->occupants, g_strdup(nick), o);
	} else if (rm) {
		g_hash_table_remove(rm->occupants, nick);
	}
	g_mutex_unlock(&r->lock);
}

void rooms_clear_occupants(Rooms *r)
{
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&r->lock);
	g_hash_table_iter_init(&it, r->rooms);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		g_hash_table_remove_all(((Room *)v)->occupants);
		((Room *)v)->joined = false;
	}
	g_mutex_unlock(&r->lock);
}

void rooms_set_joined(Rooms *r, const char *room, bool joined)
{
	Room *rm;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	if (rm) {
		rm->joined = joined;
		if (!joined)
			g_hash_table_remove_all(rm->occupants);
	}
	g_mutex_unlock(&r->lock);
}

bool rooms_joined(Rooms *r, const char *room)
{
	Room *rm;
	bool joined;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	joined = rm && rm->joined;
	g_mutex_unlock(&r->lock);
	return joined;
}

void rooms_set_subject(Rooms *r, const char *room, const char *subject)
{
	Room *rm;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	if (rm) {
		g_free(rm->subject);
		rm->subject = g_strdup(subject);
	}
	g_mutex_unlock(&r->lock);
}

char *rooms_nick_text(Rooms *r, const char *room)
{
	g_autofree char *nick = rooms_nick(r, room);

	return nick ? g_strdup_printf("%s\n", nick) : g_strdup("");
}

char *rooms_subject_text(Rooms *r, const char *room)
{
	Room *rm;
	char *out;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	out = rm && rm->subject && *rm->subject
		      ? g_strdup_printf("%s\n", rm->subject)
		      : g_strdup("");
	g_mutex_unlock(&r->lock);
	return out;
}

char *rooms_occupants_text(Rooms *r, const char *room)
{
	GString *s = g_string_new(NULL);
	Room *rm;

	g_mutex_lock(&r->lock);
	rm = g_hash_table_lookup(r->rooms, room);
	if (rm) {
		g_autoptr(GList) nicks = g_hash_table_get_keys(rm->occupants);
		nicks = g_list_sort(nicks, (GCompareFunc)strcmp);
		for (GList *l = nicks; l; l = l->next) {
			Occupant *o = g_hash_table_lookup(rm->occupants, l->data);
			g_string_append_printf(s, "%s\t%s\t%s\t%s\n",
					       (char *)l->data, o->role,
					       o->affiliation,
					       o->jid ? o->jid : "");
		}
	}
	g_mutex_unlock(&r->lock);
	return g_string_free(s, FALSE);
}
