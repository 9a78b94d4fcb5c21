/* muc_out.c - room messages on their way (see muc_int.h).
 *
 * A groupchat message leaves the outbox when the room reflects it (its id
 * or origin-id comes back from the room), not at the server's XEP-0198
 * acknowledgement, which says nothing of whether the room let it in.
 * What is written for a room that does not have us (not joined yet, or
 * the join's history still coming) waits in room_outq; what was sent and
 * not reflected when the link went down goes back there, and the rejoin's
 * history (or the room's archive) shows which of those the room has
 * already (muc_reflected): only the rest goes out again. */
#include "features/featureset.h"
#include "features/muc.h"
#include "features/muc_int.h"
#include "features/kinds.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "xmpp/pool.h"

static bool is_room_item(const OutboxItem *it)
{
	return !strcmp(it->type, "groupchat") ||
	       !strcmp(it->type, OUTBOX_TYPE_PRIVATE);
}

/* The room of a groupchat (ROOM) or private (ROOM/NICK) item. */
static char *item_room(const OutboxItem *it)
{
	const char *slash = strchr(it->to, '/');

	return slash ? g_strndup(it->to, slash - it->to) : g_strdup(it->to);
}

static bool item_in(const OutboxItem *it, const char *room)
{
	g_autofree char *r = item_room(it);

	return !strcmp(r, room);
}

/* The room has us: joined, its history and subject in, not leaving. */
static bool room_ready(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

	return rooms_joined(mu->rooms, room) &&
	       !(w && (w->op == ACCT_ROOM_JOIN || w->op == ACCT_ROOM_LEAVE));
}

static gint by_seq(gconstpointer x, gconstpointer y, gpointer ud)
{
	guint64 p = ((const OutMsg *)x)->item->seq;
	guint64 q = ((const OutMsg *)y)->item->seq;

	(void)ud;
	return p < q ? -1 : p > q;
}

/* @m cannot reach its room: it leaves the outbox, with an event that
 * says so and what it said. */
static void drop_unsent(Account *a, OutMsg *m, const char *why, int err)
{
	g_autofree char *room = item_room(m->item);
	g_autofree char *body = muc_one_line(m->item->body);
	g_autofree char *text = g_strdup_printf("message not sent (%s): %s",
						why, body);

	outbox_fail(a->outbox, m->item->id, err);
	acct_event(a, "error", room, text);
	acct_outmsg_free(m);
}

/* The messages of @room in @q, taken out of it, in order. */
static GQueue *take_room_msgs(GQueue *q, const char *room)
{
	GQueue *out = g_queue_new();

	for (GList *l = q->head, *next; l; l = next) {
		next = l->next;
		if (item_in(((OutMsg *)l->data)->item, room)) {
			g_queue_push_tail(out, l->data);
			g_queue_delete_link(q, l);
		}
	}
	return out;
}

/* Every message of @room in @q is dropped (the room is no longer ours). */
static void drop_room_msgs(Account *a, GQueue *q, const char *room,
			   const char *why)
{
	GQueue *mine = take_room_msgs(q, room);
	OutMsg *m;

	while ((m = g_queue_pop_head(mine)))
		drop_unsent(a, m, why, ENOTCONN);
	g_queue_free(mine);
}

/* @room is no longer ours (left, put out, a join refused): what waited
 * for it cannot go out. */
void muc_forget(Account *a, const char *room)
{
	Muc *mu = muc_of(a);

	rooms_set(mu->rooms, room, NULL);
	drop_room_msgs(a, &mu->outq, room, "out of the room");
	drop_room_msgs(a, &mu->sent, room, "out of the room");
}

/* The join of @room is done: what waited for it goes out, in order. */
void muc_release(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	GQueue *mine = take_room_msgs(&mu->outq, room);
	bool any = mine->length > 0;
	OutMsg *m;

	while ((m = g_queue_pop_head(mine)))
		g_queue_insert_sorted(&a->outq, m, by_seq, NULL);
	g_queue_free(mine);
	if (any)
		acct_flush_outq(a);
}

/* What an earlier mount left for rooms we are no longer in (it left, or
 * was put out, before the outbox heard of the message) cannot go out. */
void muc_drop_strays(Account *a)
{
	Muc *mu = muc_of(a);

	for (GList *l = mu->outq.head, *next; l; l = next) {
		OutMsg *m = l->data;
		g_autofree char *room = item_room(m->item);
		next = l->next;
		if (!rooms_has(mu->rooms, room)) {
			g_queue_delete_link(&mu->outq, l);
			drop_unsent(a, m, "out of the room", ENOTCONN);
		}
	}
}

/* @m is for a room (groupchat or private) that does not have us yet: it
 * waits in room_outq (or, for a room we are out of, is dropped with an
 * event), true; false when it can go out now. */
static bool muc_hold(Account *a, OutMsg *m)
{
	Muc *mu = muc_of(a);
	g_autofree char *room = NULL;

	if (!is_room_item(m->item))
		return false;
	room = item_room(m->item);
	if (!rooms_has(mu->rooms, room)) {
		drop_unsent(a, m, "out of the room", ENOTCONN);
		return true;
	}
	if (room_ready(a, room))
		return false;
	g_queue_insert_sorted(&mu->outq, m, by_seq, NULL);
	return true;
}

/* The id (or origin-id, XEP-0359) of @msg is one of @q's groupchat
 * messages to @room: that one, taken out of @q; else NULL. */
static OutMsg *take_reflected(GQueue *q, const char *room, xmpp_stanza_t *msg)
{
	xmpp_stanza_t *oid =
		xmpp_stanza_get_child_by_name_and_ns(msg, "origin-id", NS_SID);
	const char *ids[] = {xmpp_stanza_get_id(msg),
			     oid ? xmpp_stanza_get_attribute(oid, "id") : NULL};

	for (GList *l = q->head; l; l = l->next) {
		OutMsg *m = l->data;
		for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
			if (ids[i] && !strcmp(ids[i], m->item->id) &&
			    !strcmp(m->item->type, "groupchat") &&
			    !strcmp(m->item->to, room)) {
				g_queue_delete_link(q, l);
				return m;
			}
		}
	}
	return NULL;
}

/* A groupchat message from @room (live, or history at a join): when it is
 * one of ours on its way, the room has it, and it leaves the outbox.  In
 * the history of a rejoin it is one whose reflection was lost (with the
 * link, or in a crash): not to be sent again. */
void muc_reflected(Account *a, const char *room, xmpp_stanza_t *msg)
{
	Muc *mu = muc_of(a);
	OutMsg *m = take_reflected(&mu->sent, room, msg);

	if (!m && (m = take_reflected(&mu->outq, room, msg)))
		xfs_info("%s: %s: %s is in the room's history: sent already",
			 acct_cfg(a)->jid, room, m->item->id);
	if (!m)
		return;
	outbox_done(a->outbox, m->item->id);
	acct_outmsg_free(m);
}

/* An error from @room: to one of our messages, or about something else
 * (an event).  Not an occupant (not-acceptable: the room lost us, as
 * after its restart): the message waits while we join again (true: the
 * caller rejoins).  Any other refusal (a visitor may not speak, ...) is
 * final: an event with the message, which leaves the outbox. */
bool muc_bounce(Account *a, const char *room, xmpp_stanza_t *msg)
{
	Muc *mu = muc_of(a);
	OutMsg *m = take_reflected(&mu->sent, room, msg);
	g_autofree char *ev = acct_error_event_text(msg, "message");
	xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(msg, "error");

	if (!m) {
		acct_event(a, "error", room, ev);
		return false;
	}
	if (e && xmpp_stanza_get_child_by_name(e, "not-acceptable")) {
		g_queue_insert_sorted(&mu->outq, m, by_seq, NULL);
		rooms_set_joined(mu->rooms, room, false);
		return true;
	}
	drop_unsent(a, m, ev, acct_error_errno(msg));
	return false;
}

/* The stanza of an outbox item of type groupchat, without its body. */
static xmpp_stanza_t *muc_room_stanza(Account *a, const OutboxItem *item)
{
	return acct_message_new(a, "groupchat", item->to, item->id);
}

/* "room@service/N%20ick" -> "room@service/N ick" */
static char *jid_unescape_nick(const char *to)
{
	const char *slash = strchr(to, '/');
	g_autofree char *nick =
		slash ? g_uri_unescape_string(slash + 1, NULL) : NULL;

	if (!nick)
		return g_strdup(to);
	return g_strdup_printf("%.*s/%s", (int)(slash - to), to, nick);
}

/* The stanza of an outbox item of type OUTBOX_TYPE_PRIVATE, without its
 * body. */
static xmpp_stanza_t *private_stanza(Account *a, const OutboxItem *item)
{
	g_autofree char *to = jid_unescape_nick(item->to);
	xmpp_stanza_t *msg = acct_message_new(a, "chat", to, item->id);
	xmpp_stanza_t *x = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(x, "x");
	xmpp_stanza_set_ns(x, NS_MUC_USER);
	xmpp_stanza_add_child_ex(msg, x, 0);
	return msg;
}

int muc_send(Account *a, const char *room, const char *const *bodies,
	     guint n, guint64 *seq)
{
	Muc *mu = muc_of(a);

	if (!rooms_has(mu->rooms, room))
		return -ENOTCONN; /* put out of it, or left */
	/* the record comes with the room's reflection */
	return acct_accept(a, room, "groupchat", NULL, bodies, n, NULL, NULL, seq);
}

int muc_about(Account *a, const char *room, const char *kind,
	      const char *v)
{
	Muc *mu = muc_of(a);
	g_autofree char *me = NULL;
	g_auto(About) m = {0};
	OutboxKind k;
	guint64 seq;
	int ret;

	if (!rooms_has(mu->rooms, room))
		return -ENOTCONN; /* put out of it, or left */
	me = rooms_nick(mu->rooms, room);
	ret = kinds_about(a, hist_set_get(mu->hists, room, false, NULL), me,
			  room, kind, v, &m);
	if (ret)
		return ret;
	k = (OutboxKind){m.kind, m.ref, m.ref_to};
	/* the record comes with the room's reflection, which says its kind */
	return acct_accept_kind(a, room, "groupchat", &k, m.body, NULL, NULL,
				&seq);
}

void muc_unreflected_back(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	GQueue *mine = room ? take_room_msgs(&mu->sent, room) : NULL;
	OutMsg *m;

	while ((m = g_queue_pop_head(mine ? mine : &mu->sent)))
		g_queue_insert_sorted(&mu->outq, m, by_seq, NULL);
	if (mine)
		g_queue_free(mine);
}

/* A message leaving the outbox queue: a room's (groupchat, or private to
 * an occupant) is held until the room has us, then sent; a groupchat
 * message waits for its reflection, a private one for the server's
 * acknowledgement (sm.c). */
bool muc_outgoing(Account *a, OutMsg *m)
{
	Muc *mu = muc_of(a);
	bool groupchat = !strcmp(m->item->type, "groupchat");

	if (!is_room_item(m->item))
		return false;
	if (muc_hold(a, m))
		return true;
	acct_send_message(a, groupchat ? muc_room_stanza(a, m->item)
				       : private_stanza(a, m->item),
			  m->item);
	if (groupchat)
		g_queue_push_tail(&mu->sent, m);
	else
		sm_track(a, m);
	return true;
}
