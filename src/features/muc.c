/* muc.c - group chat (XEP-0045): the rooms an account keeps, and the
 * requests that wait for a room's answer (rooms_feature).
 *
 * Part of the account layer (account_int.h): it runs on the pool thread
 * and calls libstrophe, except where a function says [any].  What FUSE
 * threads read of a room (Rooms, the logs) has locks of its own.
 *
 * A request to a room (join, leave, nick, subject: muc_request.c) waits
 * in room_waits, one per room, until the room answers with a presence
 * (muc_presence.c) or a message (muc_message.c), or its deadline passes;
 * muc_answered ends it.  A join is done when the room has sent its
 * history and subject after our presence (status 110), so that what we
 * said before is known by then.  At a connect, and on a backoff timer
 * while a room we keep does not have us, we join again.  The parts of
 * group chat are listed in muc_int.h. */
#include "features/muc_int.h"

#include "features/featureset.h"
#include "features/muc.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "xmpp/pool.h"

#define ROOM_LEAVE_TIMEOUT_S 5
#define ROOM_CHANGE_TIMEOUT_S 15
/* rooms kept but not joined are tried again after this, doubling */
#define ROOM_RETRY_MIN_S 5
#define ROOM_RETRY_MAX_S 600

static void room_wait_free(gpointer p)
{
	RoomWait *w = p;

	g_free(w->id);
	g_free(w->value);
	g_free(w->old);
	g_free(w->archive);
	g_free(w->nick);
	g_free(w);
}

/* Our presence changed: every room we are in hears it too (a presence
 * to the server reaches contacts, not rooms). */
static void muc_send_presence(Account *a)
{
	Muc *mu = muc_of(a);
	g_autoptr(GPtrArray) list = rooms_list(mu->rooms);

	for (guint i = 0; i < list->len; i++) {
		const char *room = g_ptr_array_index(list, i);
		g_autofree char *nick = rooms_nick(mu->rooms, room);
		g_autofree char *to = NULL;
		xmpp_stanza_t *p;
		RoomWait *w = g_hash_table_lookup(mu->waits, room);

		/* not to a room we are not in yet: a presence without the
		 * MUC element would be an old-style join */
		if (!nick || (w && w->op == ACCT_ROOM_LEAVE) ||
		    !rooms_joined(mu->rooms, room))
			continue;
		to = g_strdup_printf("%s/%s", room, nick);
		p = acct_own_presence(a, to);
		sm_send(a, p);
		xmpp_stanza_release(p);
	}
}

RoomWait *muc_room_wait(Account *a, const char *room, PoolReq *r,
			AcctRoomOp op)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_new0(RoomWait, 1);
	int secs = op == ACCT_ROOM_JOIN    ? ROOM_JOIN_TIMEOUT_S
		   : op == ACCT_ROOM_LEAVE ? ROOM_LEAVE_TIMEOUT_S
					   : ROOM_CHANGE_TIMEOUT_S;

	w->req = r;
	w->op = op;
	w->head.deadline = g_get_monotonic_time() + secs * G_USEC_PER_SEC;
	g_hash_table_replace(mu->waits, g_strdup(room), w);
	return w;
}

/* Unavailable presence to ROOM/NICK. */
void muc_send_leave(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	g_autofree char *nick = rooms_nick(mu->rooms, room);
	g_autofree char *to = NULL;
	xmpp_stanza_t *p;

	if (!nick)
		return;
	to = g_strdup_printf("%s/%s", room, nick);
	p = xmpp_presence_new(a->ctx);
	xmpp_stanza_set_type(p, "unavailable");
	xmpp_stanza_set_to(p, to);
	sm_send(a, p);
	xmpp_stanza_release(p);
}

/* A refusal that another try will not change: banned, members-only, a
 * wrong password, no such room. */
static bool refusal_is_final(int err)
{
	/* not a nick conflict: a server that has not yet seen our old
	 * session go may still hold the nick */
	return err == -EACCES || err == -ENOENT || err == -EPERM ||
	       err == -EINVAL;
}

/* A room stays ours but we are not in it: try again later.  Returns the
 * seconds until then. */
int muc_schedule_retry(Account *a)
{
	Muc *mu = muc_of(a);

	if (!mu->retry_s)
		mu->retry_s = ROOM_RETRY_MIN_S;
	if (!mu->retry_at)
		mu->retry_at = g_get_monotonic_time() +
			       (gint64)mu->retry_s * G_USEC_PER_SEC;
	return (int)((mu->retry_at - g_get_monotonic_time() +
		      G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

/* A rejoin failed: a final refusal puts the room out of rooms/ (as a kick
 * would); anything else (no answer, the service down, the nick still
 * taken) keeps it, to be tried again on a backoff timer and at the next
 * connect. */
static void rejoin_failed(Account *a, const char *room, int err)
{
	g_autofree char *text = NULL;

	if (refusal_is_final(err)) {
		text = g_strdup_printf("rejoin refused: %s", g_strerror(-err));
		muc_forget(a, room);
		acct_event(a, "removed", room, text);
	} else if (err != -ECONNRESET) {
		text = g_strdup_printf("rejoin failed: %s; trying again in "
				       "%d s", g_strerror(-err),
				       muc_schedule_retry(a));
		acct_event(a, "error", room, text);
	}
}

/* The server answered what @room waits for (or the wait ended). */
void muc_answered(Account *a, const char *room, int err)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

	if (!w)
		return;
	if (w->op == ACCT_ROOM_JOIN && w->archive && err == -ETIMEDOUT) {
		muc_archive_silent(a, room, w);
		return;
	}
	if (w->op == ACCT_ROOM_JOIN && w->in && err == -ETIMEDOUT) {
		/* the room let us in (110) but never answered the unlock, or
		 * sent no subject after its history: we are in all the same */
		xfs_warn("%s: %s: %s", acct_cfg(a)->jid, room,
			 w->id ? "no answer to accepting the new room's "
				 "configuration; it may stay locked to others"
			       : "the room sent no subject after its history");
		err = 0;
	}
	if (w->op == ACCT_ROOM_JOIN && !err)
		mu->retry_s = ROOM_RETRY_MIN_S; /* rooms work again */
	/* left, or not in it after all; a failed nick or subject change
	 * leaves us where we were */
	if (w->op == ACCT_ROOM_JOIN && err == -ETIMEDOUT && acct_is_online(a))
		/* should the room let us in after all */
		muc_send_leave(a, room);
	if (w->op == ACCT_ROOM_LEAVE || (w->op == ACCT_ROOM_JOIN && err && w->req))
		muc_forget(a, room);
	else if (w->op == ACCT_ROOM_JOIN && err)
		rejoin_failed(a, room, err);
	if (w->req)
		pool_complete(w->req, w->op == ACCT_ROOM_LEAVE ? 0 : err);
	if (w->op == ACCT_ROOM_JOIN && !err) {
		g_hash_table_remove(mu->waits, room);
		muc_release(a, room); /* what waited for the room goes out */
		return;
	}
	g_hash_table_remove(mu->waits, room);
}

/* A join goes on until the room has sent our presence, opened a new room
 * to others and sent its history and subject. */
void muc_join_progress(Account *a, const char *room, RoomWait *w)
{
	if (w->in && !w->id && w->history)
		muc_answered(a, room, 0);
}

/* Join every room we are not in and not already joining or leaving. */
void muc_rejoin_missing(Account *a)
{
	Muc *mu = muc_of(a);
	g_autoptr(GPtrArray) list = rooms_list(mu->rooms);

	for (guint i = 0; i < list->len; i++) {
		const char *room = g_ptr_array_index(list, i);
		g_autofree char *nick = rooms_nick(mu->rooms, room);
		if (!nick || rooms_joined(mu->rooms, room) ||
		    g_hash_table_contains(mu->waits, room))
			continue;
		muc_start_join(a, room, nick,
			       muc_room_wait(a, room, NULL, ACCT_ROOM_JOIN));
	}
}

/* At a connect: back into every room we were in. */
static void muc_rejoin(Account *a)
{
	Muc *mu = muc_of(a);

	mu->retry_at = 0;
	mu->retry_s = ROOM_RETRY_MIN_S;
	muc_drop_strays(a);
	muc_rejoin_missing(a);
}

/* Rooms kept but not joined while online (the service shut down, a
 * rejoin that failed for now) are tried again on a backoff timer: when it
 * is due (G_MAXINT64: never), and the try. */
static gint64 muc_due(Account *a)
{
	Muc *mu = muc_of(a);

	return mu->retry_at ? mu->retry_at : G_MAXINT64;
}

static void muc_tick(Account *a, gint64 now)
{
	Muc *mu = muc_of(a);

	if (!mu->retry_at || now < mu->retry_at)
		return;
	mu->retry_at = 0;
	if (!acct_is_online(a))
		return; /* the connect rejoins them all */
	/* the next failure waits twice as long */
	mu->retry_s = MIN(mu->retry_s * 2, ROOM_RETRY_MAX_S);
	muc_rejoin_missing(a);
}

/* End the rooms' waits past their deadline (@all: every one). */
static void muc_expire_waits(Account *a, gint64 now, bool all)
{
	Muc *mu = muc_of(a);
	g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, mu->waits);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (all || now >= ((RoomWait *)v)->head.deadline)
			g_ptr_array_add(due, g_strdup(k));
	for (guint i = 0; i < due->len; i++)
		muc_answered(a, g_ptr_array_index(due, i),
			     all ? -ECONNRESET : -ETIMEDOUT);
}

bool muc_join_asked(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

	return w && w->op == ACCT_ROOM_JOIN && w->req;
}

Rooms *muc_rooms(Account *a)
{
	Muc *mu = muc_of(a);

	return mu->rooms;
}

HistSet *muc_room_hists(Account *a)
{
	Muc *mu = muc_of(a);

	return mu->hists;
}

static void muc_init(Account *a, const char *dir)
{
	Muc *mu = muc_of(a);
	g_autofree char *list = g_build_filename(dir, "rooms.list", NULL);

	mu->waits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  room_wait_free);
	mu->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 (GDestroyNotify)g_hash_table_unref);
	mu->ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					(GDestroyNotify)roomids_free);
	mu->gaps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	mu->fills = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  muc_fill_free);
	mu->invite_passwords =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
				      (GDestroyNotify)cfg_password_free);
	mu->bookmark_passwords = g_hash_table_new_full(
		g_str_hash, g_str_equal, g_free,
		(GDestroyNotify)cfg_password_free);
	mu->privates = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     (GDestroyNotify)hist_set_free);
	mu->heard = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					  g_free);
	g_queue_init(&mu->outq);
	g_queue_init(&mu->sent);
	g_mutex_init(&mu->privates_lock);
	mu->dir = g_build_filename(dir, "rooms", NULL);
	mu->rooms = rooms_new(list);
	mu->hists = hist_set_new(mu->dir, NULL);
	/* what an earlier mount accepted for rooms waits for the room's
	 * history (or archive) to show what it has (muc_out.c) */
	for (GList *l = a->held.head, *next; l; l = next) {
		OutMsg *m = l->data;
		next = l->next;
		if (!strcmp(m->item->type, "groupchat")) {
			g_queue_delete_link(&a->held, l);
			g_queue_push_tail(&mu->outq, m);
		}
	}
}

static void muc_free(Account *a)
{
	Muc *mu = muc_of(a);

	g_clear_pointer(&mu->waits, g_hash_table_unref);
	g_clear_pointer(&mu->seen, g_hash_table_unref);
	g_clear_pointer(&mu->ids, g_hash_table_unref);
	g_clear_pointer(&mu->gaps, g_hash_table_unref);
	g_clear_pointer(&mu->fills, g_hash_table_unref);
	g_clear_pointer(&mu->invite_passwords, g_hash_table_unref);
	g_clear_pointer(&mu->bookmark_passwords, g_hash_table_unref);
	g_clear_pointer(&mu->privates, g_hash_table_unref);
	g_clear_pointer(&mu->heard, g_hash_table_unref);
	g_mutex_clear(&mu->privates_lock);
	g_clear_pointer(&mu->rooms, rooms_free);
	g_clear_pointer(&mu->hists, hist_set_free);
	g_clear_pointer(&mu->dir, g_free);
	g_queue_clear_full(&mu->outq, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&mu->sent, (GDestroyNotify)acct_outmsg_free);
}

static void muc_disconnected(Account *a)
{
	Muc *mu = muc_of(a);

	muc_expire_waits(a, 0, true);
	g_hash_table_remove_all(mu->fills); /* the next fill asks again */
	rooms_clear_occupants(mu->rooms);
	muc_unreflected_back(a, NULL);
}

static gint64 rooms_due(Account *a)
{
	Muc *mu = muc_of(a);

	return MIN(acct_waits_due(mu->waits), muc_due(a));
}

static void rooms_tick(Account *a, gint64 now)
{
	muc_expire_waits(a, now, false);
	muc_tick(a, now);
}

const Feature rooms_feature = {
	.name = "group chat (XEP-0045)",
	.attach = muc_init,
	.detach = muc_free,
	.online = muc_rejoin,
	.offline = muc_disconnected,
	.due = rooms_due,
	.tick = rooms_tick,
	.presence_changed = muc_send_presence,
	.outgoing = muc_outgoing,
};
