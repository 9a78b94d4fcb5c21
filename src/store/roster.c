/* roster.c - see roster.h.  The cache is a GKeyFile: group [roster] with
 * the version, then one group per item. */
#include "store/roster.h"

#include <string.h>

typedef struct {
	char *show; /* available|chat|away|xa|dnd */
	int priority;
	char *status;
} Pres;

struct Roster {
	GMutex lock;
	char *path;
	char *ver;            /* protected by lock */
	GHashTable *items;    /* jid -> RosterItem*, protected by lock */
	GHashTable *pending;  /* jid -> TRUE: their request waits */
	GHashTable *presence; /* jid -> (resource -> Pres*) */
	bool dirty;           /* the cache file is behind */
};

RosterItem *roster_item_new(const char *jid)
{
	RosterItem *it = g_new0(RosterItem, 1);

	it->jid = g_strdup(jid);
	it->groups = g_new0(char *, 1);
	it->subscription = g_strdup("none");
	return it;
}

void roster_item_free(RosterItem *it)
{
	if (!it)
		return;
	g_free(it->jid);
	g_free(it->name);
	g_strfreev(it->groups);
	g_free(it->subscription);
	g_free(it);
}

static RosterItem *item_copy(const RosterItem *it)
{
	RosterItem *c = roster_item_new(it->jid);

	c->name = g_strdup(it->name);
	g_strfreev(c->groups);
	c->groups = g_strdupv(it->groups);
	g_free(c->subscription);
	c->subscription = g_strdup(it->subscription);
	c->ask = it->ask;
	return c;
}

static void pres_free(gpointer p)
{
	Pres *pr = p;

	g_free(pr->show);
	g_free(pr->status);
	g_free(pr);
}

static void load(Roster *r)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_auto(GStrv) groups = NULL;

	if (!g_key_file_load_from_file(kf, r->path, G_KEY_FILE_NONE, NULL))
		return;
	r->ver = g_key_file_get_string(kf, "roster", "ver", NULL);
	groups = g_key_file_get_groups(kf, NULL);
	for (char **g = groups; *g; g++) {
		if (!strchr(*g, '@') && !strchr(*g, '.'))
			continue; /* [roster] */
		RosterItem *it = roster_item_new(*g);
		it->name = g_key_file_get_string(kf, *g, "name", NULL);
		g_strfreev(it->groups);
		it->groups = g_key_file_get_string_list(kf, *g, "groups", NULL,
							NULL);
		if (!it->groups)
			it->groups = g_new0(char *, 1);
		g_free(it->subscription);
		it->subscription =
			g_key_file_get_string(kf, *g, "subscription", NULL);
		if (!it->subscription)
			it->subscription = g_strdup("none");
		it->ask = g_key_file_get_boolean(kf, *g, "ask", NULL);
		g_hash_table_replace(r->items, it->jid, it);
	}
}

/* With the lock held. */
static void save_locked(Roster *r)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	GHashTableIter iter;
	gpointer v;

	if (r->ver)
		g_key_file_set_string(kf, "roster", "ver", r->ver);
	g_hash_table_iter_init(&iter, r->items);
	while (g_hash_table_iter_next(&iter, NULL, &v)) {
		RosterItem *it = v;
		if (it->name)
			g_key_file_set_string(kf, it->jid, "name", it->name);
		g_key_file_set_string_list(kf, it->jid, "groups",
					   (const char *const *)it->groups,
					   g_strv_length(it->groups));
		g_key_file_set_string(kf, it->jid, "subscription",
				      it->subscription);
		g_key_file_set_boolean(kf, it->jid, "ask", it->ask);
	}
	{
		/* private like every file of the data directory */
		gsize len;
		g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
		g_file_set_contents_full(r->path, data, len,
					 G_FILE_SET_CONTENTS_CONSISTENT, 0600,
					 NULL);
	}
	r->dirty = false;
}

void roster_save(Roster *r)
{
	g_mutex_lock(&r->lock);
	if (r->dirty)
		save_locked(r);
	g_mutex_unlock(&r->lock);
}

Roster *roster_new(const char *path)
{
	Roster *r = g_new0(Roster, 1);

	g_mutex_init(&r->lock);
	r->path = g_strdup(path);
	r->items = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					 (GDestroyNotify)roster_item_free);
	r->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   NULL);
	r->presence = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    (GDestroyNotify)g_hash_table_unref);
	load(r);
	return r;
}

void roster_free(Roster *r)
{
	if (!r)
		return;
	roster_save(r);
	g_hash_table_unref(r->items);
	g_hash_table_unref(r->pending);
	g_hash_table_unref(r->presence);
	g_free(r->ver);
	g_free(r->path);
	g_mutex_clear(&r->lock);
	g_free(r);
}

char *roster_version(Roster *r)
{
	char *v;

	g_mutex_lock(&r->lock);
	v = g_strdup(r->ver);
	g_mutex_unlock(&r->lock);
	return v;
}

static void set_ver(Roster *r, const char *ver)
{
	if (ver) {
		g_free(r->ver);
		r->ver = g_strdup(ver);
	}
}

void roster_replace(Roster *r, GPtrArray *items, const char *ver)
{
	g_mutex_lock(&r->lock);
	g_hash_table_remove_all(r->items);
	for (guint i = 0; i < items->len; i++) {
		RosterItem *it = g_ptr_array_steal_index(items, i--);
		g_hash_table_replace(r->items, it->jid, it);
	}
	set_ver(r, ver);
	save_locked(r);
	g_mutex_unlock(&r->lock);
	g_ptr_array_unref(items);
}

void roster_set(Roster *r, RosterItem *it, const char *ver)
{
	g_mutex_lock(&r->lock);
	g_hash_table_replace(r->items, it->jid, it);
	set_ver(r, ver);
	r->dirty = true;
	g_mutex_unlock(&r->lock);
}

void roster_remove(Roster *r, const char *jid, const char *ver)
{
	g_mutex_lock(&r->lock);
	g_hash_table_remove(r->items, jid);
	set_ver(r, ver);
	r->dirty = true;
	g_mutex_unlock(&r->lock);
}

bool roster_has(Roster *r, const char *jid)
{
	bool has;

	g_mutex_lock(&r->lock);
	has = g_hash_table_contains(r->items, jid);
	g_mutex_unlock(&r->lock);
	return has;
}

RosterItem *roster_get(Roster *r, const char *jid)
{
	RosterItem *it;

	g_mutex_lock(&r->lock);
	it = g_hash_table_lookup(r->items, jid);
	it = it ? item_copy(it) : NULL;
	g_mutex_unlock(&r->lock);
	return it;
}

GPtrArray *roster_jids(Roster *r)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer k;

	g_mutex_lock(&r->lock);
	g_hash_table_iter_init(&iter, r->items);
	while (g_hash_table_iter_next(&iter, &k, NULL))
		g_ptr_array_add(out, g_strdup(k));
	g_mutex_unlock(&r->lock);
	return out;
}

void roster_set_pending_in(Roster *r, const char *jid, bool pending)
{
	g_mutex_lock(&r->lock);
	if (pending)
		g_hash_table_replace(r->pending, g_strdup(jid), GINT_TO_POINTER(1));
	else
		g_hash_table_remove(r->pending, jid);
	g_mutex_unlock(&r->lock);
}

void roster_presence(Roster *r, const char *jid, const char *resource,
		     const char *show, int priority, const char *status)
{
	GHashTable *res;

	g_mutex_lock(&r->lock);
	res = g_hash_table_lookup(r->presence, jid);
	if (!res && show) {
		res = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    pres_free);
		g_hash_table_insert(r->presence, g_strdup(jid), res);
	}
	if (show) {
		Pres *p = g_new0(Pres, 1);
		p->show = g_strdup(show);
		p->priority = priority;
		p->status = g_strdup(status);
		g_hash_table_replace(res, g_strdup(resource), p);
	} else if (res) {
		g_hash_table_remove(res, resource);
		if (g_hash_table_size(res) == 0)
			g_hash_table_remove(r->presence, jid);
	}
	g_mutex_unlock(&r->lock);
}

void roster_presence_clear(Roster *r)
{
	g_mutex_lock(&r->lock);
	g_hash_table_remove_all(r->presence);
	g_mutex_unlock(&r->lock);
}

char *roster_name_text(Roster *r, const char *jid)
{
	g_autoptr(RosterItem) it = roster_get(r, jid);

	return it && it->name ? g_strdup_printf("%s\n", it->name)
			      : g_strdup("");
}

char *roster_groups_text(Roster *r, const char *jid)
{
	g_autoptr(RosterItem) it = roster_get(r, jid);
	GString *s = g_string_new(NULL);

	for (char **g = it ? it->groups : NULL; g && *g; g++)
		g_string_append_printf(s, "%s\n", *g);
	return g_string_free(s, FALSE);
}

char *roster_subscription_text(Roster *r, const char *jid)
{
	g_autoptr(RosterItem) it = roster_get(r, jid);
	bool in;

	g_mutex_lock(&r->lock);
	in = g_hash_table_contains(r->pending, jid);
	g_mutex_unlock(&r->lock);
	return g_strdup_printf("%s%s%s\n", it ? it->subscription : "none",
			       it && it->ask ? " pending-out" : "",
			       in ? " pending-in" : "");
}

char *roster_presence_text(Roster *r, const char *jid)
{
	GString *s = g_string_new(NULL);
	GHashTable *res;

	g_mutex_lock(&r->lock);
	res = g_hash_table_lookup(r->presence, jid);
	if (res) {
		g_autoptr(GList) keys = g_hash_table_get_keys(res);
		keys = g_list_sort(keys, (GCompareFunc)strcmp);
		for (GList *l = keys; l; l = l->next) {
			Pres *p = g_hash_table_lookup(res, l->data);
			g_string_append_printf(s, "%s\t%s\t%d\t%s\n",
					       (char *)l->data, p->show,
					       p->priority,
					       p->status ? p->status : "");
		}
	}
	g_mutex_unlock(&r->lock);
	return g_string_free(s, FALSE);
}
