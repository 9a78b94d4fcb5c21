/* bookmarks.c - the rooms the account is in, kept in step with its
 * other clients through bookmarks: XEP-0402 (items of the PEP node
 * urn:xmpp:bookmarks:1, one per room, its id the room's JID), or, where
 * the server has no PEP, XEP-0048's list in private storage (XEP-0049),
 * which has no notifications and is read at each connect.
 *
 * rooms/ shows the rooms with a bookmark that says autojoin:
 *   - mkdir publishes the room's bookmark (autojoin, our nick, the
 *     password we joined with); rmdir retracts it.
 *   - A bookmark with autojoin made elsewhere is joined (its nick and
 *     password), one retracted or with autojoin turned off elsewhere is
 *     left: at once by PEP notification, or at the next connect.
 *   - At each connect the bookmarks are fetched and compared with the
 *     rooms we keep.  A room of ours without a bookmark was either never
 *     bookmarked (joined before this feature, or its publish failed): it
 *     is published; or its bookmark was removed elsewhere while we were
 *     away: it is left.  Which one, the rooms we last knew bookmarked
 *     say (DATA/ACCOUNT/bookmarks.known, one room a line).
 * A room that puts us out (kick, ban, destroyed) keeps its bookmark: only
 * the user removes one.  Pool thread, but the [any] functions. */
#include "features/bookmarks.h"
#include "features/featureset.h"
#include "features/muc.h"
#include "features/pep.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/util.h"

#define NS_BOOKMARKS "urn:xmpp:bookmarks:1"
#define NS_PRIVATE "jabber:iq:private"
#define NS_LEGACY "storage:bookmarks"
#define PRIVATE_TIMEOUT_S 30
/* The most rooms bookmarks join (mkdir may join more) */
#define BOOKMARK_ROOMS_MAX 200

/* A bookmark as the server has it. */
typedef struct {
	bool autojoin;
	char *name, *nick, *password;
	char *id; /* the item's id as another client spelled the room's JID
		   * (Room@Conf...), NULL when it is the room as we have it:
		   * what we publish again and retract */
	xmpp_stanza_t *extensions; /* XEP-0402's, kept when we publish again */
} Mark;

/* Each account's (Feature.state_size); pool thread only. */
typedef struct {
	GHashTable *marks;   /* room -> Mark*, as last heard this connect */
	bool fetched;        /* marks holds the server's list */
	bool legacy;         /* no PEP: XEP-0048 in private storage */
	xmpp_stanza_t *storage; /* legacy: the list as fetched, to write
				 * back whole with what we change */
	char *known_path;    /* DATA/ACCOUNT/bookmarks.known */
	GHashTable *known;   /* room -> KNOWN_* */
	GHashTable *echoes;  /* room -> GQueue of Echo: our own changes,
			      * whose notifications come back to us */
} Bm;

/* A change of ours on its way: its notification is no news (a publish
 * echoed after a later rmdir must not join again), until @until. */
typedef struct {
	bool retract;
	gint64 until; /* monotonic µs; past it, taken as never coming */
} Echo;

#define ECHO_WAIT_US (30 * G_USEC_PER_SEC)

/* What the account last knew of a room's bookmark (.known: "ROOM" or
 * "-ROOM" lines). */
enum {
	KNOWN_NONE,   /* none known: a room of ours has never been published */
	KNOWN_MARKED, /* bookmarked (autojoin) */
	KNOWN_LEFT,   /* left here while offline: retracted at the connect */
};

const Feature bookmarks_feature;

static Bm *bm_of(Account *a)
{
	return acct_state(a, &bookmarks_feature);
}

static void mark_free(gpointer p)
{
	Mark *m = p;

	g_free(m->name);
	g_free(m->id);
	g_free(m->nick);
	cfg_password_free(m->password);
	if (m->extensions)
		xmpp_stanza_release(m->extensions);
	g_free(m);
}

static void known_load(Bm *b)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(b->known_path, &text, NULL, NULL))
		return; /* none yet: every room of ours is published once */
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++)
		if (**l == '-' && (*l)[1])
			g_hash_table_replace(b->known, g_strdup(*l + 1),
					     GINT_TO_POINTER(KNOWN_LEFT));
		else if (**l)
			g_hash_table_replace(b->known, g_strdup(*l),
					     GINT_TO_POINTER(KNOWN_MARKED));
}

static void known_save(Account *a)
{
	Bm *b = bm_of(a);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GError) err = NULL;
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, b->known);
	while (g_hash_table_iter_next(&it, &k, &v))
		g_string_append_printf(text, "%s%s\n",
				       GPOINTER_TO_INT(v) == KNOWN_LEFT ? "-"
									: "",
				       (char *)k);
	if (!g_file_set_contents(b->known_path, text->str, text->len, &err))
		xfs_warn("%s: %s", acct_cfg(a)->jid, err->message);
}

static int known_get(Account *a, const char *room)
{
	return GPOINTER_TO_INT(g_hash_table_lookup(bm_of(a)->known, room));
}

static void known_set(Account *a, const char *room, int state)
{
	Bm *b = bm_of(a);

	if (known_get(a, room) == state)
		return;
	if (state == KNOWN_NONE)
		g_hash_table_remove(b->known, room);
	else
		g_hash_table_replace(b->known, g_strdup(room),
				     GINT_TO_POINTER(state));
	known_save(a);
}

static void echo_expect(Account *a, const char *room, bool retract)
{
	Bm *b = bm_of(a);
	GQueue *q = g_hash_table_lookup(b->echoes, room);
	Echo *e = g_new(Echo, 1);

	if (!q) {
		q = g_queue_new();
		g_hash_table_insert(b->echoes, g_strdup(room), q);
	}
	e->retract = retract;
	e->until = g_get_monotonic_time() + ECHO_WAIT_US;
	g_queue_push_tail(q, e);
}

/* Whether a notification (@retract or an item) of @room is the echo of a
 * change of ours; those before it that did not come never will. */
static bool echo_take(Account *a, const char *room, bool retract)
{
	Bm *b = bm_of(a);
	GQueue *q = g_hash_table_lookup(b->echoes, room);
	gint64 now = g_get_monotonic_time();
	Echo *e;

	while (q && (e = g_queue_peek_head(q)) && e->until < now)
		g_free(g_queue_pop_head(q));
	for (guint i = 0; q && i < q->length; i++) {
		e = g_queue_peek_nth(q, i);
		if (e->retract != retract)
			continue;
		while (i-- > 0)
			g_free(g_queue_pop_head(q));
		g_free(g_queue_pop_head(q));
		if (!q->length)
			g_hash_table_remove(b->echoes, room);
		return true;
	}
	if (q && !q->length)
		g_hash_table_remove(b->echoes, room);
	return false;
}

/* A change of ours the server refused: its echo will never come, and
 * must not swallow another client's like change in the meantime.  (The
 * server notifies before it answers, so the echoes of our earlier
 * changes that it took are in by now: the first of the kind is this.) */
static void echo_drop(Account *a, const char *room, bool retract)
{
	GQueue *q = g_hash_table_lookup(bm_of(a)->echoes, room);

	for (GList *l = q ? q->head : NULL; l; l = l->next) {
		Echo *e = l->data;
		if (e->retract != retract)
			continue;
		g_free(e);
		g_queue_delete_link(q, l);
		break;
	}
	if (q && !q->length)
		g_hash_table_remove(bm_of(a)->echoes, room);
}

/* What the answer to a publish or a retraction of ours needs. */
typedef struct {
	char *room, *what;
	bool retract;
} Change;

static Change *change_new(const char *room, bool retract, char *what)
{
	Change *c = g_new0(Change, 1);

	c->room = g_strdup(room);
	c->retract = retract;
	c->what = what;
	return c;
}

static void change_free(gpointer p)
{
	Change *c = p;

	g_free(c->room);
	g_free(c->what);
	g_free(c);
}

static void changed(Account *a, xmpp_stanza_t *answer, int err, void *data)
{
	Change *c = data;
	int res = await_errno(answer, err);

	if (!res || res == -ECONNRESET)
		return; /* (offline forgets every echo) */
	echo_drop(a, c->room, c->retract);
	xfs_info("%s: %s is not shared with the account's other clients: %s",
		 acct_cfg(a)->jid, c->what, g_strerror(-res));
}

static void echoes_free(gpointer q)
{
	g_queue_free_full(q, g_free);
}

/* The text of @el's child @name, NULL when none or empty. */
static char *child_text(xmpp_stanza_t *el, const char *name)
{
	char *t = acct_text(xmpp_stanza_get_child_by_name(el, name));

	if (t && !*t)
		g_clear_pointer(&t, g_free);
	return t;
}

/* A <conference/> of either form: the room's JID (XEP-0402: the item's
 * id; XEP-0048: its jid attribute) and what it says. */
static Mark *mark_parse(xmpp_stanza_t *conf)
{
	Mark *m = g_new0(Mark, 1);
	const char *aj = xmpp_stanza_get_attribute(conf, "autojoin");
	const char *name = xmpp_stanza_get_attribute(conf, "name");
	xmpp_stanza_t *ext = xmpp_stanza_get_child_by_name(conf, "extensions");

	m->autojoin = aj && (!strcmp(aj, "true") || !strcmp(aj, "1"));
	m->name = name && *name ? g_strdup(name) : NULL;
	m->nick = child_text(conf, "nick");
	m->password = child_text(conf, "password");
	m->extensions = ext ? xmpp_stanza_copy(ext) : NULL;
	/* a nick that is no valid resourcepart is the config's instead */
	if (m->nick) {
		char *n = jid_normalize_resource(m->nick, NULL);
		g_free(m->nick);
		m->nick = n;
	}
	return m;
}

/* What the rooms do about a bookmark that came (@m; NULL: it went):
 * join or leave, with an event saying why. */
static void apply(Account *a, const char *room, const Mark *m)
{
	Rooms *rooms = muc_rooms(a);
	bool in = rooms_has(rooms, room);

	if (m && m->autojoin) {
		g_autoptr(GPtrArray) all = in ? NULL : rooms_list(rooms);
		known_set(a, room, KNOWN_MARKED);
		if (all && all->len >= BOOKMARK_ROOMS_MAX) {
			/* a list of thousands (ours to write, but a bug of
			 * another client's may make one) is not thousands of
			 * joins and logs */
			acct_event(a, "bookmark", room,
				   "added by another client: not joined, already "
				   "in " G_STRINGIFY(BOOKMARK_ROOMS_MAX) " rooms");
			return;
		}
		if (!in)
			acct_event(a, "bookmark", room,
				   "added by another client: joining");
		muc_join_bookmarked(a, room, m->nick, m->password);
		return;
	}
	known_set(a, room, KNOWN_NONE);
	if (!in)
		return;
	acct_event(a, "bookmark", room,
		   m ? "autojoin turned off by another client: leaving"
		     : "removed by another client: leaving");
	muc_leave_unbookmarked(a, room);
}

/* The room of a bookmark by its JID as given, normalized; NULL when it
 * names no room. */
static char *room_of(const char *jid)
{
	char *room = jid ? jid_normalize_bare(jid, NULL) : NULL;

	if (room && !strchr(room, '@'))
		g_clear_pointer(&room, g_free);
	return room;
}

/* ---- publishing ours ---- */

static xmpp_stanza_t *conference_new(Account *a, const char *ns,
				     const char *room, const Mark *m)
{
	xmpp_stanza_t *c = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(c, "conference");
	if (ns)
		xmpp_stanza_set_ns(c, ns);
	else
		xmpp_stanza_set_attribute(c, "jid", room);
	xmpp_stanza_set_attribute(c, "autojoin", m->autojoin ? "true" : "false");
	if (m->name)
		xmpp_stanza_set_attribute(c, "name", m->name);
	if (m->nick)
		acct_add_text_child(a, c, "nick", m->nick);
	if (m->password)
		acct_add_text_child(a, c, "password", m->password);
	if (ns && m->extensions) /* (a stanza has one parent: a copy) */
		xmpp_stanza_add_child_ex(c, xmpp_stanza_copy(m->extensions), 0);
	return c;
}

static void stored(Account *a, xmpp_stanza_t *answer, int err, void *data)
{
	int res = await_errno(answer, err);

	(void)data;
	if (res && res != -ECONNRESET)
		xfs_info("%s: the bookmarks are not saved for the account's "
			 "other clients (XEP-0048: %s)", acct_cfg(a)->jid,
			 g_strerror(-res));
}

/* XEP-0048: the whole list goes back, with what we do not know of
 * (other rooms, URLs) as it came. */
static void legacy_store(Account *a)
{
	Bm *b = bm_of(a);
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL), *q, *st;
	GHashTableIter it;
	gpointer k, v;

	q = acct_add_child(a, iq, "query", NS_PRIVATE);
	st = acct_add_child(a, q, "storage", NS_LEGACY);
	for (xmpp_stanza_t *c = b->storage ? xmpp_stanza_get_children(b->storage)
					   : NULL;
	     c; c = xmpp_stanza_get_next(c)) {
		g_autofree char *room = NULL;
		if (!xmpp_stanza_is_tag(c))
			continue;
		room = !strcmp(xmpp_stanza_get_name(c), "conference")
			       ? room_of(xmpp_stanza_get_attribute(c, "jid"))
			       : NULL;
		if (room)
			continue; /* the rooms come from marks, below */
		xmpp_stanza_add_child_ex(st, xmpp_stanza_copy(c), 0);
	}
	g_hash_table_iter_init(&it, b->marks);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		xmpp_stanza_t *c = conference_new(a, NULL, k, v);
		xmpp_stanza_add_child_ex(st, c, 0);
	}
	await_iq(a, iq, PRIVATE_TIMEOUT_S, stored, NULL, NULL);
	xmpp_stanza_release(iq);
}

/* Our own bookmark of @room, as mkdir joined it. */
static void publish(Account *a, const char *room)
{
	Bm *b = bm_of(a);
	Mark *old = g_hash_table_lookup(b->marks, room), *m = g_new0(Mark, 1);
	const char *pw = muc_room_password(a, room);
	char *what;

	m->autojoin = true;
	m->nick = rooms_nick(muc_rooms(a), room);
	m->password = pw ? g_strdup(pw) : NULL;
	if (old) { /* what another client named it, and its extensions */
		m->name = g_strdup(old->name);
		m->id = g_strdup(old->id);
		m->extensions = old->extensions ? xmpp_stanza_copy(
							  old->extensions)
						: NULL;
	}
	g_hash_table_replace(b->marks, g_strdup(room), m);
	known_set(a, room, KNOWN_MARKED);
	if (b->legacy) {
		legacy_store(a);
		return;
	}
	what = g_strdup_printf("the bookmark of %s (XEP-0402)", room);
	echo_expect(a, room, false);
	xmpp_stanza_t *c = conference_new(a, NS_BOOKMARKS, room, m);
	pep_publish(a, NS_BOOKMARKS, m->id ? m->id : room, c, PEP_PRIVATE,
		    what, changed, change_new(room, false, what), change_free);
	xmpp_stanza_release(c);
}

static void retract(Account *a, const char *room)
{
	Bm *b = bm_of(a);
	Mark *m = g_hash_table_lookup(b->marks, room);
	char *what;
	g_autofree char *id = g_strdup(m && m->id ? m->id : room);

	g_hash_table_remove(b->marks, room);
	known_set(a, room, KNOWN_NONE);
	if (b->legacy) {
		legacy_store(a);
		return;
	}
	what = g_strdup_printf("leaving %s (XEP-0402)", room);
	echo_expect(a, room, true);
	pep_retract(a, NS_BOOKMARKS, id, what, changed,
		    change_new(room, true, what), change_free);
}

/* ---- what the server has ---- */

/* The list fetched at a connect, against the rooms we keep. */
static void reconcile(Account *a)
{
	Bm *b = bm_of(a);
	g_autoptr(GPtrArray) mine = rooms_list(muc_rooms(a));
	g_autoptr(GPtrArray) left = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;

	b->fetched = true;
	/* what rmdir left while offline goes first */
	g_hash_table_iter_init(&it, b->known);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (GPOINTER_TO_INT(v) == KNOWN_LEFT)
			g_ptr_array_add(left, g_strdup(k));
	for (guint i = 0; i < left->len; i++) {
		const char *room = g_ptr_array_index(left, i);
		if (g_hash_table_contains(b->marks, room) &&
		    !rooms_has(muc_rooms(a), room))
			retract(a, room);
		else
			known_set(a, room, KNOWN_NONE);
	}
	g_hash_table_iter_init(&it, b->marks);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (((Mark *)v)->autojoin)
			apply(a, k, v);
	for (guint i = 0; i < mine->len; i++) {
		const char *room = g_ptr_array_index(mine, i);
		Mark *m = g_hash_table_lookup(b->marks, room);
		if ((m && m->autojoin) || muc_join_asked(a, room))
			continue; /* (a mkdir's: bookmarked once it is in) */
		if (known_get(a, room) == KNOWN_MARKED)
			apply(a, room, m); /* gone or turned off meanwhile */
		else
			publish(a, room); /* never bookmarked yet */
	}
}

static void take_item(Account *a, xmpp_stanza_t *item, void *data)
{
	Bm *b = bm_of(a);
	const char *id = xmpp_stanza_get_id(item);
	g_autofree char *room = room_of(id);
	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name_and_ns(
		item, "conference", NS_BOOKMARKS);
	Mark *m;

	if (!room || !c)
		return;
	if (data && echo_take(a, room, false))
		return; /* our own publish (marks has it) */
	m = mark_parse(c);
	if (strcmp(id, room))
		m->id = g_strdup(id);
	g_hash_table_replace(b->marks, g_strdup(room), m);
	if (data) /* a notification: at once */
		apply(a, room, g_hash_table_lookup(b->marks, room));
}

static void take_retract(Account *a, xmpp_stanza_t *r, void *data)
{
	Bm *b = bm_of(a);
	g_autofree char *room = room_of(xmpp_stanza_get_id(r));

	(void)data;
	if (!room || echo_take(a, room, true))
		return;
	g_hash_table_remove(b->marks, room);
	apply(a, room, NULL);
}

/* A notification of the node: another client (or we) changed one. */
bool bookmarks_in(Account *a, const In *in)
{
	xmpp_stanza_t *items = pep_event_items(in, NS_BOOKMARKS);

	if (!items)
		return false;
	if (pep_from_us(a, in)) { /* only our own service says what we keep */
		pep_each(items, "item", take_item, a, a);
		pep_each(items, "retract", take_retract, a, NULL);
	}
	return true;
}

static void legacy_take(Account *a, xmpp_stanza_t *c, void *data)
{
	Bm *b = bm_of(a);
	g_autofree char *room = room_of(xmpp_stanza_get_attribute(c, "jid"));

	(void)data;
	if (room)
		g_hash_table_replace(b->marks, g_strdup(room), mark_parse(c));
}

static void legacy_fetched(Account *a, xmpp_stanza_t *answer, int err,
			   void *data)
{
	Bm *b = bm_of(a);
	xmpp_stanza_t *q = answer ? xmpp_stanza_get_child_by_name_and_ns(
					    answer, "query", NS_PRIVATE)
				  : NULL;
	xmpp_stanza_t *st = q ? xmpp_stanza_get_child_by_name_and_ns(
					q, "storage", NS_LEGACY)
			      : NULL;
	int res = await_errno(answer, err);

	(void)data;
	if (res) {
		if (res != -ECONNRESET)
			xfs_info("%s: no bookmarks (XEP-0048: %s); rooms are "
				 "not shared with the account's other clients",
				 acct_cfg(a)->jid, g_strerror(-res));
		return;
	}
	if (b->storage)
		xmpp_stanza_release(b->storage);
	b->storage = st ? xmpp_stanza_copy(st) : NULL;
	if (st)
		pep_each(st, "conference", legacy_take, a, NULL);
	reconcile(a);
}

static void fetched(Account *a, xmpp_stanza_t *answer, int err, void *data)
{
	Bm *b = bm_of(a);
	xmpp_stanza_t *items = pep_items(answer);
	int res = await_errno(answer, err);
	xmpp_stanza_t *iq, *q;

	(void)data;
	if (res == -ENOSYS || res == -EHOSTUNREACH || res == -EOPNOTSUPP) {
		/* no PEP: the old list in private storage */
		b->legacy = true;
		iq = xmpp_iq_new(a->ctx, "get", NULL);
		q = acct_add_child(a, iq, "query", NS_PRIVATE);
		acct_add_child(a, q, "storage", NS_LEGACY);
		await_iq(a, iq, PRIVATE_TIMEOUT_S, legacy_fetched, NULL, NULL);
		xmpp_stanza_release(iq);
		return;
	}
	if (res && res != -ENOENT) { /* (item-not-found: none yet) */
		if (res != -ECONNRESET)
			xfs_info("%s: the bookmarks could not be read (%s); "
				 "trying again at the next connect",
				 acct_cfg(a)->jid, g_strerror(-res));
		return;
	}
	if (items)
		pep_each(items, "item", take_item, a, NULL);
	reconcile(a);
}

static void bm_online(Account *a)
{
	Bm *b = bm_of(a);

	g_hash_table_remove_all(b->marks);
	b->fetched = false;
	b->legacy = false;
	pep_fetch(a, NS_BOOKMARKS, fetched, NULL, NULL);
}

static void bm_attach(Account *a, const char *dir)
{
	Bm *b = bm_of(a);

	b->marks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 mark_free);
	b->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 NULL);
	b->echoes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  echoes_free);
	b->known_path = g_build_filename(dir, "bookmarks.known", NULL);
	known_load(b);
}

/* The stream is gone (and once more before detach, while the context
 * that made the stanzas kept here still is): what we heard is heard
 * again at the next connect. */
static void bm_offline(Account *a)
{
	Bm *b = bm_of(a);

	g_hash_table_remove_all(b->marks);
	g_hash_table_remove_all(b->echoes);
	b->fetched = false;
	if (b->storage)
		xmpp_stanza_release(b->storage);
	b->storage = NULL;
}

static void bm_detach(Account *a)
{
	Bm *b = bm_of(a);

	g_clear_pointer(&b->marks, g_hash_table_unref);
	g_clear_pointer(&b->known, g_hash_table_unref);
	g_clear_pointer(&b->echoes, g_hash_table_unref);
	g_clear_pointer(&b->known_path, g_free);
}

/* ---- what mkdir and rmdir ask ---- */

static void joined_run(Account *a, void *data, PoolReq *r)
{
	if (acct_is_online(a))
		publish(a, data);
	else /* published at the next connect (not known yet) */
		known_set(a, data, KNOWN_NONE);
	pool_complete(r, 0);
}

static void left_run(Account *a, void *data, PoolReq *r)
{
	if (acct_is_online(a))
		retract(a, data);
	else /* the next connect retracts it */
		known_set(a, data, KNOWN_LEFT);
	pool_complete(r, 0);
}

int bookmarks_joined(Pool *p, Account *a, const char *room)
{
	return pool_call(p, a, joined_run, g_strdup(room), g_free);
}

int bookmarks_left(Pool *p, Account *a, const char *room)
{
	return pool_call(p, a, left_run, g_strdup(room), g_free);
}

const Feature bookmarks_feature = {
	.name = "bookmarks (XEP-0402, XEP-0048)",
	.state_size = sizeof(Bm),
	.attach = bm_attach,
	.detach = bm_detach,
	.online = bm_online,
	.offline = bm_offline,
};
