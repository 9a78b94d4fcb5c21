/* receipts.c - whether a message arrived and was seen: delivery receipts
 * (XEP-0184) and chat markers (XEP-0333), both ways, in conversations.
 *
 * Ours: every chat message xmppfs sends asks for a receipt and is
 * markable; a receipt or a `received` marker that comes back sets the
 * conversation's `delivered` to that message's id, a `displayed` (or
 * `acknowledged`) marker its `displayed`, each with an event.  Theirs: a
 * message that asks for a receipt gets one once it is in the log (not
 * before: a receipt says it arrived), when the config allows (`receipts`)
 * and the sender may see our presence (XEP-0184 §8: a receipt tells that
 * we are online).
 *
 * The last ids are kept in DATA/ACCOUNT/contacts/JID/marks, so they
 * survive a remount.
 *
 * And what we read: each conversation's read position, an offset into
 * its log (DATA/ACCOUNT/read).  What lies after it is unread, counted in
 * records, so that tail -n "$(cat unread)" log shows exactly those.  A
 * write to `read` moves it (and tells the contact with a displayed marker
 * when their message was markable); so does a message of ours, written
 * here or by another client of ours; their record in a conversation that
 * had no position starts it just before that record.  A log from before
 * this counts as read.
 *
 * Pool thread, but the text functions and receipts_read (any thread); the
 * tables are under Account.lock. */
#include "features/receipts.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "store/history.h"
#include "store/roster.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"

#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_MARKERS "urn:xmpp:chat-markers:0"

typedef struct {
	char *delivered; /* the id of ours they last said arrived; or NULL */
	char *displayed; /* ... they last said they showed; or NULL */
} Marks;

/* A conversation's read position. */
typedef struct {
	goffset offset;   /* read up to here, in bytes of its log */
	goffset scanned;  /* the records after offset are counted to here */
	guint unread;     /* records in [offset, scanned) */
	char *markable;   /* the last markable message of theirs (this
			   * mount), not yet marked displayed; or NULL */
	goffset markable_end; /* where its records end in the log */
	char *pending_sid; /* read elsewhere up to a message not in our log
			    * yet (the catch-up brings it): or NULL */
} Reading;

/* What receipts.c keeps of each account (acct_state). */
typedef struct {
	/* bare JID -> Marks*, read from its file at first use; under
	 * Account.lock: the pool thread changes it, FUSE threads read it */
	GHashTable *marks;
	char *dir; /* DATA/ACCOUNT/contacts; immutable while attached */
	/* bare JID -> Reading*: the conversations with a position, and the
	 * rooms, from read_path at attach; under Account.lock */
	GHashTable *reading, *rooms_reading;
	char *read_path; /* DATA/ACCOUNT/read; immutable while attached */
	bool dirty;      /* reading changed since it was saved; under lock */
	gint64 dirty_at; /* monotonic µs it first did (0: clean); under lock */
} Receipts;

static Receipts *state(Account *a)
{
	return acct_state(a, &receipts_feature);
}

static void marks_free(gpointer p)
{
	Marks *m = p;

	g_free(m->delivered);
	g_free(m->displayed);
	g_free(m);
}

static void reading_free(gpointer p)
{
	Reading *rd = p;

	g_free(rd->markable);
	g_free(rd->pending_sid);
	g_free(rd);
}

static Reading *reading_new(goffset offset)
{
	Reading *rd = g_new0(Reading, 1);

	rd->offset = rd->scanned = offset;
	return rd;
}

/* The rooms' logs, which muc.c keeps (featureset.c says where). */
static HistSet *(*room_logs)(Account *a);

void receipts_on_room_logs(HistSet *(*fn)(Account *a))
{
	room_logs = fn;
}

/* The log of @jid: a room's or a conversation's; NULL for none yet. */
static Hist *log_of(Account *a, const char *jid, bool room)
{
	HistSet *s = room ? (room_logs ? room_logs(a) : NULL) : acct_hists(a);

	return s ? hist_set_get(s, jid, false, NULL) : NULL;
}

/* The positions of the rooms or of the conversations. */
static GHashTable *table_of(Receipts *r, bool room)
{
	return room ? r->rooms_reading : r->reading;
}

/* DATA/ACCOUNT/read: JID<TAB>OFFSET[<TAB>room] lines. */
static void load_reading(Receipts *r)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(r->read_path, &text, NULL, NULL))
		return;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char *tab = strchr(*l, '\t'), *end = NULL;
		Reading *rd;
		gint64 off;
		if (!tab)
			continue;
		*tab = '\0';
		off = g_ascii_strtoll(tab + 1, &end, 10);
		if (off < 0 || end == tab + 1)
			continue;
		rd = reading_new(off);
		g_hash_table_replace(!strcmp(end, "\troom") ? r->rooms_reading
							   : r->reading,
				     g_strdup(*l), rd);
	}
}

/* Write DATA/ACCOUNT/read if it changed (any thread). */
static void save_reading(Account *a)
{
	Receipts *r = state(a);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GError) err = NULL;
	GHashTableIter it;
	gpointer k, v;

	g_mutex_lock(&a->lock);
	if (!r->dirty) {
		g_mutex_unlock(&a->lock);
		return;
	}
	r->dirty = false;
	r->dirty_at = 0;
	for (int room = 0; room < 2; room++) {
		g_hash_table_iter_init(&it, room ? r->rooms_reading
						 : r->reading);
		while (g_hash_table_iter_next(&it, &k, &v))
			g_string_append_printf(
				text, "%s\t%" G_GINT64_FORMAT "%s\n", (char *)k,
				(gint64)((Reading *)v)->offset,
				room ? "\troom" : "");
	}
	g_mutex_unlock(&a->lock);
	if (!g_file_set_contents_full(r->read_path, text->str, text->len,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &err))
		xfs_warn("%s: %s", acct_cfg(a)->jid, err->message);
}

static void receipts_attach(Account *a, const char *dir)
{
	Receipts *r = state(a);

	r->marks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 marks_free);
	r->dir = g_build_filename(dir, "contacts", NULL);
	r->reading = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   reading_free);
	r->rooms_reading = g_hash_table_new_full(g_str_hash, g_str_equal,
						 g_free, reading_free);
	r->read_path = g_build_filename(dir, "read", NULL);
	load_reading(r);
}

static void receipts_detach(Account *a)
{
	Receipts *r = state(a);

	save_reading(a);
	g_clear_pointer(&r->marks, g_hash_table_unref);
	g_clear_pointer(&r->dir, g_free);
	g_clear_pointer(&r->reading, g_hash_table_unref);
	g_clear_pointer(&r->rooms_reading, g_hash_table_unref);
	g_clear_pointer(&r->read_path, g_free);
}

/* Saved within a second of a change: a flood of our own messages moves
 * the positions without a write each. */
static gint64 receipts_due(Account *a)
{
	Receipts *r = state(a);
	gint64 at;

	g_mutex_lock(&a->lock);
	at = r->dirty_at;
	g_mutex_unlock(&a->lock);
	return at ? at + G_USEC_PER_SEC : G_MAXINT64;
}

static void receipts_tick(Account *a, gint64 now)
{
	(void)now;
	save_reading(a);
}

static char *marks_path(Receipts *r, const char *jid)
{
	return g_build_filename(r->dir, jid, "marks", NULL);
}

/* With Account.lock held: @jid's marks, read from its file the first
 * time ("delivered ID" and "displayed ID" lines). */
static Marks *marks_of(Receipts *r, const char *jid)
{
	Marks *m = g_hash_table_lookup(r->marks, jid);
	g_autofree char *path = NULL, *text = NULL;

	if (m)
		return m;
	m = g_new0(Marks, 1);
	path = marks_path(r, jid);
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
		for (char **l = lines; *l; l++) {
			if (g_str_has_prefix(*l, "delivered ") && (*l)[10])
				m->delivered = g_strdup(*l + 10);
			else if (g_str_has_prefix(*l, "displayed ") && (*l)[10])
				m->displayed = g_strdup(*l + 10);
		}
	}
	g_hash_table_insert(r->marks, g_strdup(jid), m);
	return m;
}

/* An id fit for a line of its own: no control characters, not empty,
 * not absurdly long. */
static bool id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 256 || !g_utf8_validate(id, -1, NULL))
		return false;
	for (const char *p = id; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Set @jid's @which ("delivered", "displayed") to @id, keep it on disk,
 * and say it in an event. */
static void mark(Account *a, const char *jid, const char *which,
		 const char *id)
{
	Receipts *r = state(a);
	g_autofree char *text = NULL, *path = NULL, *folder = NULL;
	g_autoptr(GError) err = NULL;
	Marks *m;

	g_mutex_lock(&a->lock);
	m = marks_of(r, jid);
	if (!strcmp(which, "delivered")) {
		g_free(m->delivered);
		m->delivered = g_strdup(id);
	} else {
		g_free(m->displayed);
		m->displayed = g_strdup(id);
	}
	text = g_strdup_printf("%s%s%s%s%s%s", m->delivered ? "delivered " : "",
			       m->delivered ? m->delivered : "",
			       m->delivered ? "\n" : "",
			       m->displayed ? "displayed " : "",
			       m->displayed ? m->displayed : "",
			       m->displayed ? "\n" : "");
	g_mutex_unlock(&a->lock);
	path = marks_path(r, jid);
	folder = g_path_get_dirname(path);
	if (g_mkdir_with_parents(folder, 0700) < 0 ||
	    !g_file_set_contents_full(path, text, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &err))
		xfs_warn("%s: %s: %s", acct_cfg(a)->jid, path,
			 err ? err->message : g_strerror(errno));
	acct_event(a, which, jid, id);
}

/* The first child of @msg named @name in @ns. */
static xmpp_stanza_t *child(xmpp_stanza_t *msg, const char *name,
			    const char *ns)
{
	return xmpp_stanza_get_child_by_name_and_ns(msg, name, ns);
}

/* A receipt or a marker from a contact: noted.  A message that is only
 * that ends here; one with a body goes on to the conversation. */
bool receipts_in(Account *a, const In *in)
{
	static const struct {
		const char *name, *ns, *which;
	} kinds[] = {
		{"received", NS_RECEIPTS, "delivered"},
		{"received", NS_MARKERS, "delivered"},
		{"displayed", NS_MARKERS, "displayed"},
		{"acknowledged", NS_MARKERS, "displayed"},
	};
	g_autofree char *bare = NULL;
	bool any = false;

	if (!g_strcmp0(in->type, "groupchat") || !g_strcmp0(in->type, "error"))
		return false;
	bare = jid_bare(in->jid);
	for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
		xmpp_stanza_t *c = child(in->st, kinds[i].name, kinds[i].ns);
		const char *id = c ? xmpp_stanza_get_attribute(c, "id") : NULL;
		if (!c)
			continue;
		any = true;
		if (!id_ok(id) || !strcmp(bare, acct_cfg(a)->jid))
			continue; /* (ours from another client: carbons.c) */
		mark(a, bare, kinds[i].which, id);
	}
	return any && !xmpp_stanza_get_child_by_name(in->st, "body");
}

/* May @bare see our presence (and so learn from a receipt that we are
 * online)? */
static bool sees_our_presence(Account *a, const char *bare)
{
	g_autoptr(RosterItem) it = roster_get(acct_roster(a), bare);

	return it && (!g_strcmp0(it->subscription, "from") ||
		      !g_strcmp0(it->subscription, "both"));
}

void receipts_answer(Account *a, xmpp_stanza_t *msg, const Jid *from)
{
	const char *id = xmpp_stanza_get_id(msg);
	const char *type = xmpp_stanza_get_type(msg);
	g_autofree char *bare = NULL, *full = NULL, *mid = NULL;
	xmpp_stanza_t *reply, *rcv;

	if (!acct_cfg(a)->receipts || !child(msg, "request", NS_RECEIPTS) ||
	    !id_ok(id) || (type && strcmp(type, "chat") && strcmp(type, "normal")))
		return;
	bare = jid_bare(from);
	if (!strcmp(bare, acct_cfg(a)->jid) || !sees_our_presence(a, bare))
		return;
	full = jid_full(from);
	mid = acct_next_id(a);
	reply = xmpp_message_new(a->ctx, NULL, full, mid);
	rcv = acct_add_child(a, reply, "received", NS_RECEIPTS);
	xmpp_stanza_set_attribute(rcv, "id", id);
	/* kept for them while they are offline, as their message was */
	acct_add_child(a, reply, "store", NS_HINTS);
	sm_send(a, reply);
	xmpp_stanza_release(reply);
}

/* Ours: ask for a receipt, and let them mark it (chat messages only: a
 * room gives its own reflection, and anonymous rooms' occupants are no
 * one's contacts). */
static bool receipts_own_message(Account *a, xmpp_stanza_t *msg,
				 const OutboxItem *it)
{
	/* a reaction or a retraction is no message to mark */
	if (g_strcmp0(it->type, "chat") ||
	    (it->kind && (!strcmp(it->kind, "reaction") ||
			  !strcmp(it->kind, "retraction"))))
		return false;
	acct_add_child(a, msg, "request", NS_RECEIPTS);
	acct_add_child(a, msg, "markable", NS_MARKERS);
	return false;
}

/* With Account.lock held: the positions changed; saved within a second. */
static void set_dirty(Receipts *r)
{
	if (!r->dirty_at)
		r->dirty_at = g_get_monotonic_time();
	r->dirty = true;
}

static void logged(Account *a, const char *jid, bool room, bool theirs,
		   goffset from, goffset to, xmpp_stanza_t *live,
		   const char *sid)
{
	Receipts *r = state(a);
	GHashTable *t = table_of(r, room);
	Reading *rd;

	g_mutex_lock(&a->lock);
	rd = g_hash_table_lookup(t, jid);
	if (!theirs) {
		/* we spoke: all before is read */
		if (!rd)
			g_hash_table_insert(t, g_strdup(jid),
					    rd = reading_new(to));
		rd->offset = rd->scanned = MAX(rd->offset, to);
		rd->unread = 0;
		g_clear_pointer(&rd->markable, g_free);
		set_dirty(r);
	} else if (!rd) {
		g_hash_table_insert(t, g_strdup(jid), rd = reading_new(from));
		set_dirty(r);
	}
	if (theirs && live && child(live, "markable", NS_MARKERS) &&
	    id_ok(xmpp_stanza_get_id(live))) {
		g_free(rd->markable);
		rd->markable = g_strdup(xmpp_stanza_get_id(live));
		rd->markable_end = to;
	}
	if (sid && rd->pending_sid && !strcmp(rd->pending_sid, sid)) {
		/* the message another client read, brought by the catch-up */
		g_clear_pointer(&rd->pending_sid, g_free);
		if (to > rd->offset) {
			rd->offset = rd->scanned = to;
			rd->unread = 0;
			set_dirty(r);
		}
	}
	g_mutex_unlock(&a->lock);
}

void receipts_logged(Account *a, const char *jid, bool theirs, goffset from,
		     goffset to, xmpp_stanza_t *live, const char *sid)
{
	logged(a, jid, false, theirs, from, to, live, sid);
}

void receipts_room_logged(Account *a, const char *room, bool theirs,
			  goffset from, goffset to, const char *sid)
{
	logged(a, room, true, theirs, from, to, NULL, sid);
}

void receipts_sent(Account *a, const char *jid, goffset end)
{
	logged(a, jid, false, false, end, end, NULL, NULL);
}

/* The LFs of @h's log in [@from, @to), or -errno. */
static gint64 count_records(Hist *h, goffset from, goffset to)
{
	char buf[65536];
	gint64 n = 0;

	while (from < to) {
		gssize got = hist_pread(h, buf,
					MIN((goffset)sizeof buf, to - from), from);
		if (got <= 0)
			return got < 0 ? got : n;
		for (gssize i = 0; i < got; i++)
			n += buf[i] == '\n';
		from += got;
	}
	return n;
}

/* @jid's unread records (any thread): counted on from where the last
 * count ended, outside the lock. */
static guint unread_of(Account *a, const char *jid, bool room)
{
	Receipts *r = state(a);
	GHashTable *t = table_of(r, room);
	Hist *h = log_of(a, jid, room);
	goffset size = h ? hist_size(h) : 0, from, offset;
	Reading *rd;
	gint64 n;
	guint unread;

	g_mutex_lock(&a->lock);
	rd = g_hash_table_lookup(t, jid);
	if (!rd || !h) {
		g_mutex_unlock(&a->lock);
		return 0;
	}
	if (rd->offset > size) {
		/* the log was forgotten (rmdir) and begun anew */
		rd->offset = rd->scanned = 0;
		rd->unread = 0;
		set_dirty(r);
	}
	from = rd->scanned;
	offset = rd->offset;
	unread = rd->unread;
	g_mutex_unlock(&a->lock);
	if (from >= size)
		return unread;
	if ((n = count_records(h, from, size)) < 0)
		return unread;
	g_mutex_lock(&a->lock);
	/* unless someone moved it meanwhile */
	rd = g_hash_table_lookup(t, jid);
	if (rd && rd->offset == offset && rd->scanned == from) {
		rd->scanned = size;
		rd->unread += n;
	}
	unread = rd ? rd->unread : 0;
	g_mutex_unlock(&a->lock);
	return unread;
}

char *receipts_unread_text(Account *a, const char *jid)
{
	return g_strdup_printf("%u\n", unread_of(a, jid, false));
}

char *receipts_room_unread_text(Account *a, const char *room)
{
	return g_strdup_printf("%u\n", unread_of(a, room, true));
}

char *receipts_unread_total_text(Account *a, const char *jid)
{
	guint64 total = 0;

	(void)jid;
	for (int room = 0; room < 2; room++) {
		g_autoptr(GPtrArray) jids =
			g_ptr_array_new_with_free_func(g_free);
		GHashTableIter it;
		gpointer k;
		g_mutex_lock(&a->lock);
		g_hash_table_iter_init(&it, table_of(state(a), room));
		while (g_hash_table_iter_next(&it, &k, NULL))
			g_ptr_array_add(jids, g_strdup(k));
		g_mutex_unlock(&a->lock);
		for (guint i = 0; i < jids->len; i++)
			total += unread_of(a, jids->pdata[i], room);
	}
	return g_strdup_printf("%" G_GUINT64_FORMAT "\n", total);
}

/* @h's log.ids whole, NUL-terminated, or NULL. */
static char *all_ids(Hist *h, goffset *size)
{
	char *ids;

	*size = hist_ids_size(h);
	ids = g_malloc(*size + 1);
	if (hist_ids_pread(h, ids, *size, 0) != *size) {
		g_free(ids);
		return NULL;
	}
	ids[*size] = '\0';
	return ids;
}

/* The log.ids ID of record number @n (from 1) of @h, or NULL. */
static char *id_of_record(Hist *h, gint64 n)
{
	goffset size;
	g_autofree char *ids = n > 0 ? all_ids(h, &size) : NULL;
	char *line = ids, *tab;

	for (gint64 i = 1; line && i < n; i++)
		if ((line = strchr(line, '\n')))
			line++;
	if (!line || !(tab = strchr(line, '\t')))
		return NULL;
	return g_strndup(line, tab - line);
}

static char *read_text(Account *a, const char *jid, bool room)
{
	Hist *h = log_of(a, jid, room);
	Reading *rd;
	goffset offset = -1;
	g_autofree char *id = NULL;

	g_mutex_lock(&a->lock);
	if ((rd = g_hash_table_lookup(table_of(state(a), room), jid)))
		offset = rd->offset;
	g_mutex_unlock(&a->lock);
	if (!h || offset <= 0)
		return g_strdup("");
	id = id_of_record(h, count_records(h, 0, MIN(offset, hist_size(h))));
	return id ? g_strdup_printf("%s\n", id) : g_strdup("");
}

char *receipts_read_text(Account *a, const char *jid)
{
	return read_text(a, jid, false);
}

char *receipts_room_read_text(Account *a, const char *room)
{
	return read_text(a, room, true);
}

/* Does field @k (from 0) of the log.ids line [@line, @nl) equal @v? */
static bool field_is(const char *line, const char *nl, int k, const char *v)
{
	gsize len = strlen(v);

	for (; k > 0; k--) {
		const char *tab = memchr(line, '\t', nl - line);
		if (!tab)
			return false;
		line = tab + 1;
	}
	return (gsize)(nl - line) >= len && !memcmp(line, v, len) &&
	       (line + len == nl || line[len] == '\t');
}

/* Where the last record whose log.ids field @k is @v ends in @h's log
 * (its line in log.ids is its number), or -1. */
static goffset end_of(Hist *h, int k, const char *v)
{
	goffset size, off = 0, lsize = hist_size(h);
	g_autofree char *ids = all_ids(h, &size);
	gint64 n = 0, want = -1;
	char buf[65536];

	for (char *line = ids, *nl; line && (nl = strchr(line, '\n'));
	     line = nl + 1) {
		n++;
		if (field_is(line, nl, k, v))
			want = n;
	}
	if (want < 0)
		return -1;
	for (n = 0; off < lsize;) {
		gssize got = hist_pread(h, buf, MIN((goffset)sizeof buf,
						    lsize - off), off);
		if (got <= 0)
			return -1;
		for (gssize i = 0; i < got; i++)
			if (buf[i] == '\n' && ++n == want)
				return off + i + 1;
		off += got;
	}
	return -1;
}

typedef struct {
	char *jid;
	goffset offset;
	bool room;
} ReadTo;

static void readto_free(void *data)
{
	ReadTo *rt = data;

	g_free(rt->jid);
	g_free(rt);
}

/* A displayed marker (XEP-0333) for their message @id. */
static void send_displayed(Account *a, const char *jid, const char *id)
{
	g_autofree char *mid = acct_next_id(a);
	xmpp_stanza_t *m = xmpp_message_new(a->ctx, "chat", jid, mid);
	xmpp_stanza_t *d = acct_add_child(a, m, "displayed", NS_MARKERS);

	xmpp_stanza_set_attribute(d, "id", id);
	acct_add_child(a, m, "store", NS_HINTS);
	sm_send(a, m);
	xmpp_stanza_release(m);
}

/* On the pool thread: the position moves to @rt->offset, and their last
 * markable message read gets its displayed marker. */
static void read_run(Account *a, void *data, PoolReq *req)
{
	ReadTo *rt = data;
	Receipts *r = state(a);
	g_autofree char *marker = NULL;
	Reading *rd;

	g_mutex_lock(&a->lock);
	if (!(rd = g_hash_table_lookup(table_of(r, rt->room), rt->jid)))
		g_hash_table_insert(table_of(r, rt->room), g_strdup(rt->jid),
				    rd = reading_new(rt->offset));
	rd->offset = rd->scanned = rt->offset;
	rd->unread = 0;
	if (rd->markable && rd->markable_end <= rt->offset)
		marker = g_steal_pointer(&rd->markable);
	set_dirty(r);
	g_mutex_unlock(&a->lock);
	/* (no markers in rooms: a room of hundreds would get one from
	 * every reader) */
	if (marker && !rt->room && acct_cfg(a)->receipts && acct_is_online(a))
		send_displayed(a, rt->jid, marker);
	pool_complete(req, 0);
}

static int read_to(Pool *p, Account *a, const char *jid, bool room,
		   const char *line)
{
	Hist *h = log_of(a, jid, room);
	ReadTo *rt;
	goffset offset;
	int ret;

	if (!*line || !strcmp(line, "all")) {
		offset = h ? hist_size(h) : 0;
	} else {
		if (!id_ok(line))
			return -EINVAL;
		/* its ID, or its SID (what a room's messages are named by) */
		if (!h || ((offset = end_of(h, 0, line)) < 0 &&
			   (offset = end_of(h, 3, line)) < 0))
			return -ENOENT;
	}
	rt = g_new0(ReadTo, 1);
	rt->jid = g_strdup(jid);
	rt->offset = offset;
	rt->room = room;
	ret = pool_call(p, a, read_run, rt, readto_free);
	save_reading(a);
	return ret;
}

int receipts_read(Pool *p, Account *a, const char *jid, const char *line)
{
	return read_to(p, a, jid, false, line);
}

int receipts_room_read(Pool *p, Account *a, const char *room,
		       const char *line)
{
	return read_to(p, a, room, true, line);
}

void receipts_read_sid(Account *a, const char *jid, bool room,
		       const char *sid)
{
	Receipts *r = state(a);
	GHashTable *t = table_of(r, room);
	Hist *h = log_of(a, jid, room);
	goffset offset = h && id_ok(sid) ? end_of(h, 3, sid) : -1;
	Reading *rd;

	if (!id_ok(sid))
		return;
	g_mutex_lock(&a->lock);
	if (!(rd = g_hash_table_lookup(t, jid)))
		g_hash_table_insert(t, g_strdup(jid),
				    rd = reading_new(offset >= 0 ? offset
						     : h ? hist_size(h) : 0));
	if (offset < 0) {
		/* not in our log yet: the catch-up may bring it
		 * (receipts_logged looks out for it) */
		if (g_strcmp0(rd->pending_sid, sid)) {
			g_free(rd->pending_sid);
			rd->pending_sid = g_strdup(sid);
		}
		g_mutex_unlock(&a->lock);
		return;
	}
	g_clear_pointer(&rd->pending_sid, g_free);
	if (offset > rd->offset) {
		rd->offset = rd->scanned = offset;
		rd->unread = 0;
		if (rd->markable && rd->markable_end <= offset)
			g_clear_pointer(&rd->markable, g_free);
		set_dirty(r);
	}
	g_mutex_unlock(&a->lock);
}

char *receipts_read_sid_of(Account *a, const char *jid, bool room)
{
	Hist *h = log_of(a, jid, room);
	g_autoptr(GPtrArray) ids = NULL;
	goffset offset = -1;
	gint64 n;
	Reading *rd;

	g_mutex_lock(&a->lock);
	if ((rd = g_hash_table_lookup(table_of(state(a), room), jid)))
		offset = rd->offset;
	g_mutex_unlock(&a->lock);
	if (!h || offset <= 0 || (n = count_records(h, 0, offset)) <= 0 ||
	    !(ids = hist_lines(h, true)))
		return NULL;
	for (gint64 i = MIN(n, (gint64)ids->len) - 1; i >= 0; i--) {
		g_auto(GStrv) f = g_strsplit(ids->pdata[i], "\t", 5);
		if (g_strv_length(f) >= 4 && strcmp(f[3], "-"))
			return g_strdup(f[3]);
	}
	return NULL;
}

static char *mark_text(Account *a, const char *jid, bool delivered)
{
	Marks *m;
	char *text;

	g_mutex_lock(&a->lock);
	m = marks_of(state(a), jid);
	text = delivered ? m->delivered : m->displayed;
	text = text ? g_strdup_printf("%s\n", text) : g_strdup("");
	g_mutex_unlock(&a->lock);
	return text;
}

char *receipts_delivered_text(Account *a, const char *jid)
{
	return mark_text(a, jid, true);
}

char *receipts_displayed_text(Account *a, const char *jid)
{
	return mark_text(a, jid, false);
}

const Feature receipts_feature = {
	.name = "receipts and chat markers (XEP-0184, XEP-0333)",
	.state_size = sizeof(Receipts),
	.attach = receipts_attach,
	.detach = receipts_detach,
	.due = receipts_due,
	.tick = receipts_tick,
	.own_message = receipts_own_message,
};
