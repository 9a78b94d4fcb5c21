/* muc_archive.c - the join's presence, and before it, for a rejoin, the
 * room's archive (XEP-0313); the archive again to fill a gap in a room's
 * log (see muc_int.h).
 *
 * A join's history holds only the room's last few messages (Prosody's
 * default: 20), so after a longer absence the rest would be lost.  Before
 * a rejoin (after a reconnect or a remount: the room stayed ours) of a
 * room whose log has records, we ask the room's archive for
 * everything since the second of the last record, page by page, and log
 * it (what the log has of that second is not written again); the join's
 * history then starts at the last message the archive gave.  A room
 * without an archive answers with an error, and the join's history is
 * all there is, as before.  Nobody else is in the room for us while this
 * runs, so no live message comes between. */
#include "features/featureset.h"
#include "features/muc_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"

#define ROOM_ARCHIVE_PAGE "100"
/* the wait for each page: an archive that does not answer must not keep
 * us out of the room */
#define ROOM_ARCHIVE_WAIT_S 10

static void archive_answer(Account *a, xmpp_stanza_t *iq, int err,
			   void *qid);

/* A query filling a room's gap (see "gaps" below). */
typedef struct {
	char *id;        /* the query's */
	guint failures;  /* of the room when it began */
	gint64 due;      /* monotonic µs: given up on then (asked again) */
} Fill;

/* Presence to ROOM/NICK with the MUC element and a history request that
 * fetches nothing already in the log. */
static void send_join(Account *a, const char *room, const char *nick)
{
	Muc *mu = muc_of(a);
	g_autofree char *to = g_strdup_printf("%s/%s", room, nick);
	xmpp_stanza_t *p = acct_own_presence(a, to);
	xmpp_stanza_t *x = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *hist = xmpp_stanza_new(a->ctx);
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						 NULL);
	gint64 last = muc_last_record_time(a, room, seen);
	const char *password = muc_room_password(a, room);

	xmpp_stanza_set_name(x, "x");
	xmpp_stanza_set_ns(x, NS_MUC);
	xmpp_stanza_set_name(hist, "history");
	/* from a second before the last record (muc_history_since): a
	 * message the room stamped in that second, or the one before, is
	 * not lost; those already in the log are in room_seen (or the
	 * room's ids) and are not written again (already_logged) */
	g_hash_table_replace(mu->seen, g_strdup(room), seen);
	if (last) {
		char since[RECORD_TIME_LEN + 1];
		muc_history_since(last, since);
		xmpp_stanza_set_attribute(hist, "since", since);
	} else {
		xmpp_stanza_set_attribute(hist, "maxstanzas", "50");
	}
	xmpp_stanza_add_child_ex(x, hist, 0);
	if (password)
		acct_add_text_child(a, x, "password", password);
	xmpp_stanza_add_child_ex(p, x, 0);
	sm_send(a, p);
	xmpp_stanza_release(p);
}

void muc_start_join(Account *a, const char *room, const char *nick,
		    RoomWait *w)
{
	Muc *mu = muc_of(a);
	GHashTable *seen;
	gint64 last;
	char since[RECORD_TIME_LEN + 1];

	/* a mkdir (after an rmdir) is no rejoin: what the room said while
	 * it was not ours is not missing; its history is enough (and
	 * send_join reads the end of the log itself) */
	if (w->req) {
		send_join(a, room, nick);
		return;
	}
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	last = muc_last_record_time(a, room, seen);
	if (!last) {
		g_hash_table_unref(seen);
		send_join(a, room, nick);
		return;
	}
	g_hash_table_replace(mu->seen, g_strdup(room), seen);
	muc_history_since(last, since);
	w->nick = g_strdup(nick);
	w->archive = mam_send_query(a, room, since, NULL, NULL,
				    ROOM_ARCHIVE_PAGE, archive_answer);
	w->head.deadline =
		g_get_monotonic_time() + ROOM_ARCHIVE_WAIT_S * G_USEC_PER_SEC;
}

void muc_archive_silent(Account *a, const char *room, RoomWait *w)
{
	xfs_warn("%s: %s: no answer from the room's archive in %d s; joining "
		 "with the room's history only", acct_cfg(a)->jid, room,
		 ROOM_ARCHIVE_WAIT_S);
	g_clear_pointer(&w->archive, g_free);
	w->head.deadline =
		g_get_monotonic_time() + ROOM_JOIN_TIMEOUT_S * G_USEC_PER_SEC;
	send_join(a, room, w->nick);
}

/* The join whose archive query has @id, and its room. */
static RoomWait *archive_wait(Account *a, const char *id, const char **room)
{
	Muc *mu = muc_of(a);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, mu->waits);
	while (id && g_hash_table_iter_next(&it, &k, &v)) {
		RoomWait *w = v;
		if (w->op == ACCT_ROOM_JOIN && !g_strcmp0(w->archive, id)) {
			*room = k;
			return w;
		}
	}
	return NULL;
}

/* @iq is the answer from @room (an id handler fires for any stanza with
 * the id, from anyone). */
/* The end of a page of the room's archive: the next page, or the join. */
static void archive_answer(Account *a, xmpp_stanza_t *iq, int err,
			   void *qid)
{
	const char *type;
	g_autofree char *room = NULL, *last = NULL;
	const char *key = NULL;
	RoomWait *w = archive_wait(a, qid, &key);
	bool complete;

	/* the join ended (rmdir, its timeout, the link), or no answer: the
	 * join's own deadline acts; await.c took it only from the room */
	if (!w || !iq)
		return;
	type = xmpp_stanza_get_type(iq);
	room = g_strdup(key);
	g_clear_pointer(&w->archive, g_free);
	if (!type || strcmp(type, "result")) {
		g_autofree char *why = acct_error_text(iq);
		xfs_info("%s: %s: no archive (%s): the join's history is all "
			 "there is", acct_cfg(a)->jid, room,
			 why ? why : "an error");
		send_join(a, room, w->nick);
		return;
	}
	last = mam_page_end(iq, &complete);
	if (last && !complete) {
		w->archive = mam_send_query(a, room, NULL, last, NULL,
					    ROOM_ARCHIVE_PAGE, archive_answer);
		w->head.deadline = g_get_monotonic_time() +
				   ROOM_ARCHIVE_WAIT_S * G_USEC_PER_SEC;
		return;
	}
	send_join(a, room, w->nick);
}

/* @msg is a page of a room's archive that a join asked for: logged (or
 * dropped), true. */
static bool muc_archive_message(Account *a, xmpp_stanza_t *msg)
{
	Muc *mu = muc_of(a);
	xmpp_stanza_t *res =
		xmpp_stanza_get_child_by_name_and_ns(msg, "result", NS_MAM);
	const char *from = xmpp_stanza_get_from(msg);
	g_autofree char *room = from && res ? jid_normalize_bare(from, NULL)
					    : NULL;
	RoomWait *w = room ? g_hash_table_lookup(mu->waits, room) : NULL;
	xmpp_stanza_t *inner;
	g_autoptr(Jid) sender = NULL;
	g_autofree char *sbare = NULL, *body = NULL;
	gint64 t;

	Fill *f = room ? g_hash_table_lookup(mu->fills, room) : NULL;
	const char *qid = res ? xmpp_stanza_get_attribute(res, "queryid") : NULL;

	if (!(f && !g_strcmp0(qid, f->id)) &&
	    (!w || w->op != ACCT_ROOM_JOIN || !w->archive ||
	     g_strcmp0(qid, w->archive)))
		return false;
	inner = mam_forwarded(res, &t, &sender);
	sbare = inner ? jid_bare(sender) : NULL;
	/* the room's own words (no nick) and what is not its are no record */
	if (!sbare || strcmp(sbare, room) || !sender->resource ||
	    g_strcmp0(xmpp_stanza_get_type(inner), "groupchat"))
		return true;
	/* ours, that the room has: not to be sent again */
	muc_reflected(a, room, inner);
	muc_record(a, room, sender->resource, inner, t, true,
		   xmpp_stanza_get_attribute(res, "id"));
	return true;
}

/* ---- gaps ----
 *
 * A record that could not be written (a full disk) leaves a gap in the
 * room's log; the live messages after it are held back too, so that the
 * log keeps the room's order.  Every few seconds (mam.c's retry) the
 * room's archive is asked for everything since the last record, which
 * logged_before (muc_log.c) keeps from being written twice; a fill during
 * which nothing of the room failed closes the gap. */

void muc_fill_free(gpointer p)
{
	Fill *f = p;

	g_free(f->id);
	g_free(f);
}

/* No gap is left, here or in the conversations: the error goes. */
static void logs_complete(Account *a)
{
	if (!a->log_gap_since && !muc_gaps(a))
		acct_log_clear(a);
}

static void fill_answer(Account *a, xmpp_stanza_t *iq, int err,
			void *qid);

/* The fill of @room whose query has @id, and the room as the table has
 * it. */
static Fill *fill_of(Account *a, const char *id, const char **room)
{
	Muc *mu = muc_of(a);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, mu->fills);
	while (id && g_hash_table_iter_next(&it, &k, &v)) {
		if (!g_strcmp0(((Fill *)v)->id, id)) {
			*room = k;
			return v;
		}
	}
	return NULL;
}

static void fill_page(Account *a, const char *room, Fill *f, const char *after)
{
	Muc *mu = muc_of(a);
	char since[RECORD_TIME_LEN + 1];
	const char *start = NULL;

	if (!after) {
		GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal,
							 g_free, NULL);
		gint64 last = muc_last_record_time(a, room, seen);
		g_hash_table_replace(mu->seen, g_strdup(room), seen);
		if (last) {
			muc_history_since(last, since);
			start = since;
		}
	}
	g_free(f->id);
	f->id = mam_send_query(a, room, start, after, NULL, ROOM_ARCHIVE_PAGE,
			       fill_answer);
	f->due = g_get_monotonic_time() + ROOM_ARCHIVE_WAIT_S * G_USEC_PER_SEC;
}

bool muc_fill_gaps(Account *a)
{
	Muc *mu = muc_of(a);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, mu->gaps);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		Fill *f;
		if (!rooms_has(mu->rooms, k)) {
			g_hash_table_iter_remove(&it); /* no longer ours */
			continue;
		}
		f = g_hash_table_lookup(mu->fills, k);
		if (f && g_get_monotonic_time() >= f->due)
			g_hash_table_remove(mu->fills, k); /* no answer */
		else if (f)
			continue;
		if (!acct_is_online(a) || !rooms_joined(mu->rooms, k) ||
		    g_hash_table_contains(mu->waits, k))
			continue;
		f = g_new0(Fill, 1);
		f->failures = GPOINTER_TO_UINT(v);
		g_hash_table_insert(mu->fills, g_strdup(k), f);
		fill_page(a, k, f, NULL);
	}
	if (!g_hash_table_size(mu->gaps))
		logs_complete(a);
	return g_hash_table_size(mu->gaps) > 0;
}

static void fill_answer(Account *a, xmpp_stanza_t *iq, int err, void *qid)
{
	Muc *mu = muc_of(a);
	const char *type;
	g_autofree char *room = NULL, *last = NULL;
	const char *key = NULL;
	Fill *f = fill_of(a, qid, &key);
	bool complete;

	/* the link went meanwhile, or no answer (await.c took it only from
	 * the room): the next fill asks again */
	if (!f || !iq)
		return;
	type = xmpp_stanza_get_type(iq);
	room = g_strdup(key);
	if (!type || strcmp(type, "result")) {
		err = acct_error_errno(iq);
		g_hash_table_remove(mu->fills, room);
		if (err == ENOSYS || err == EHOSTUNREACH || err == ENOENT) {
			xfs_warn("%s: %s keeps no archive: what it said while "
				 "its log could not be written is lost",
				 acct_cfg(a)->jid, room);
			g_hash_table_remove(mu->gaps, room);
			logs_complete(a);
		}
		return;
	}
	last = mam_page_end(iq, &complete);
	if (last && !complete) {
		fill_page(a, room, f, last);
		return;
	}
	if (GPOINTER_TO_UINT(g_hash_table_lookup(mu->gaps, room)) ==
	    f->failures) {
		g_hash_table_remove(mu->gaps, room);
		xfs_info("%s: %s: its log is complete again", acct_cfg(a)->jid,
			 room);
	}
	g_hash_table_remove(mu->fills, room);
	logs_complete(a);
}

/* A page of a room's archive that a join (or a gap's fill) asked for. */
bool muc_archive_in(Account *a, const In *in)
{
	return muc_archive_message(a, in->st);
}
