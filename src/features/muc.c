/* muc.c - group chat (XEP-0045): joining and leaving rooms, their
 * messages, occupants, nick and subject, and being put out of a room.
 *
 * Part of the account layer (account_int.h): it runs on the pool thread
 * and calls libstrophe, except where a function says [any].  What FUSE
 * threads read of a room (Rooms, the logs) has locks of its own.
 *
 * A request to a room (join, leave, nick, subject) waits in room_waits,
 * one per room, until the room answers with a presence or a message, or
 * its deadline passes; a room that puts us out (kick, ban, destruction)
 * leaves rooms/ with an event.  A join is done when the room has sent its
 * history and subject after our presence (status 110), so that what we
 * said before is known by then.  The parts of group chat are listed in
 * muc_int.h. */
#include "features/muc_int.h"

#include "features/featureset.h"
#include "features/muc.h"
#include "xmpp/dispatch.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/text.h"
#include "xmpp/pool.h"

#define ROOM_LEAVE_TIMEOUT_S 5
#define ROOM_CHANGE_TIMEOUT_S 15
/* in a room (110), the wait for its history and subject */
#define ROOM_HISTORY_WAIT_S 5
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

/* @word when it is one of @words, else "none": what a hostile room puts
 * in a role or affiliation never reaches `occupants`. */
static const char *known_word(const char *word, const char *const *words)
{
	return word && g_strv_contains(words, word) ? word : "none";
}

static const char *const roles[] = {"moderator", "participant", "visitor",
				     "none", NULL};
static const char *const affiliations[] = {"owner",   "admin",  "member",
					    "outcast", "none", NULL};

/* Our presence changed: every room we are in hears it too (a presence
 * to the server reaches contacts, not rooms). */
static void muc_send_presence(Account *a)
{
	g_autoptr(GPtrArray) list = rooms_list(a->rooms);

	for (guint i = 0; i < list->len; i++) {
		const char *room = g_ptr_array_index(list, i);
		g_autofree char *nick = rooms_nick(a->rooms, room);
		g_autofree char *to = NULL;
		xmpp_stanza_t *p;
		RoomWait *w = g_hash_table_lookup(a->room_waits, room);

		/* not to a room we are not in yet: a presence without the
		 * MUC element would be an old-style join */
		if (!nick || (w && w->op == ACCT_ROOM_LEAVE) ||
		    !rooms_joined(a->rooms, room))
			continue;
		to = g_strdup_printf("%s/%s", room, nick);
		p = acct_own_presence(a, to);
		sm_send(a, p);
		xmpp_stanza_release(p);
	}
}

static RoomWait *room_wait(Account *a, const char *room, PoolReq *r,
			   AcctRoomOp op)
{
	RoomWait *w = g_new0(RoomWait, 1);
	int secs = op == ACCT_ROOM_JOIN    ? ROOM_JOIN_TIMEOUT_S
		   : op == ACCT_ROOM_LEAVE ? ROOM_LEAVE_TIMEOUT_S
					   : ROOM_CHANGE_TIMEOUT_S;

	w->req = r;
	w->op = op;
	w->head.deadline = g_get_monotonic_time() + secs * G_USEC_PER_SEC;
	g_hash_table_replace(a->room_waits, g_strdup(room), w);
	return w;
}

static bool room_waits_for(Account *a, const char *room, AcctRoomOp op)
{
	RoomWait *w = g_hash_table_lookup(a->room_waits, room);

	return w && w->op == op;
}

/* Unavailable presence to ROOM/NICK. */
static void send_leave(Account *a, const char *room)
{
	g_autofree char *nick = rooms_nick(a->rooms, room);
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
static int schedule_retry(Account *a)
{
	if (!a->room_retry_s)
		a->room_retry_s = ROOM_RETRY_MIN_S;
	if (!a->room_retry_at)
		a->room_retry_at = g_get_monotonic_time() +
				   (gint64)a->room_retry_s * G_USEC_PER_SEC;
	return (int)((a->room_retry_at - g_get_monotonic_time() +
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
				       schedule_retry(a));
		acct_event(a, "error", room, text);
	}
}

/* The server answered what @room waits for (or the wait ended). */
static void muc_answered(Account *a, const char *room, int err)
{
	RoomWait *w = g_hash_table_lookup(a->room_waits, room);

	if (!w)
		return;
	if (w->op == ACCT_ROOM_JOIN && w->archive && err == -ETIMEDOUT) {
		muc_archive_silent(a, room, w);
		return;
	}
	if (w->op == ACCT_ROOM_JOIN && w->in && err == -ETIMEDOUT) {
		/* the room let us in (110) but never answered the unlock, or
		 * sent no subject after its history: we are in all the same */
		xfs_warn("%s: %s: %s", a->cfg->jid, room,
			 w->id ? "no answer to accepting the new room's "
				 "configuration; it may stay locked to others"
			       : "the room sent no subject after its history");
		err = 0;
	}
	if (w->op == ACCT_ROOM_JOIN && !err)
		a->room_retry_s = ROOM_RETRY_MIN_S; /* rooms work again */
	/* left, or not in it after all; a failed nick or subject change
	 * leaves us where we were */
	if (w->op == ACCT_ROOM_JOIN && err == -ETIMEDOUT && acct_is_online(a))
		send_leave(a, room); /* should the room let us in after all */
	if (w->op == ACCT_ROOM_LEAVE || (w->op == ACCT_ROOM_JOIN && err && w->req))
		muc_forget(a, room);
	else if (w->op == ACCT_ROOM_JOIN && err)
		rejoin_failed(a, room, err);
	if (w->req)
		pool_complete(w->req, w->op == ACCT_ROOM_LEAVE ? 0 : err);
	if (w->op == ACCT_ROOM_JOIN && !err) {
		g_hash_table_remove(a->room_waits, room);
		muc_release(a, room); /* what waited for the room goes out */
		return;
	}
	g_hash_table_remove(a->room_waits, room);
}

/* A join goes on until the room has sent our presence, opened a new room
 * to others and sent its history and subject. */
static void join_progress(Account *a, const char *room, RoomWait *w)
{
	if (w->in && !w->id && w->history)
		muc_answered(a, room, 0);
}

static void room_join(Account *a, const char *room, PoolReq *r)
{
	const CfgRoom *cr = cfg_room(a->cfg, room);
	const char *nick = cr && cr->nick ? cr->nick : a->cfg->nick;

	if (rooms_has(a->rooms, room)) {
		pool_complete(r, -EEXIST);
		return;
	}
	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	rooms_set(a->rooms, room, nick);
	muc_start_join(a, room, nick, room_wait(a, room, r, ACCT_ROOM_JOIN));
}

static void room_leave(Account *a, const char *room, PoolReq *r)
{
	if (!acct_is_online(a) || (!rooms_joined(a->rooms, room) &&
				   !g_hash_table_contains(a->room_waits, room))) {
		/* not in it (offline, or a rejoin waits for its retry):
		 * nothing to tell the room */
		muc_forget(a, room);
		pool_complete(r, 0);
		return;
	}
	/* the room stays known until the server confirms (muc_answered):
	 * its confirmation is a presence from the room */
	send_leave(a, room);
	room_wait(a, room, r, ACCT_ROOM_LEAVE);
}

/* A nick change is a presence to the new ROOM/NICK; the server answers
 * with our presence under the new nick, or an error from it. */
static void room_nick(Account *a, const char *room, const char *old,
		      const char *nick, PoolReq *r)
{
	g_autofree char *to = g_strdup_printf("%s/%s", room, nick);
	xmpp_stanza_t *p;
	RoomWait *w;

	if (!strcmp(old, nick)) {
		pool_complete(r, 0);
		return;
	}
	p = acct_own_presence(a, to);
	sm_send(a, p);
	xmpp_stanza_release(p);
	w = room_wait(a, room, r, ACCT_ROOM_NICK);
	w->value = g_strdup(nick);
	w->old = g_strdup(old);
}

/* A subject change is a groupchat message with only a <subject/>; the
 * room answers by sending it to everyone, us too, or with an error. */
static void room_subject(Account *a, const char *room, const char *subject,
			 PoolReq *r)
{
	g_autofree char *now = rooms_subject(a->rooms, room);
	g_autofree char *shown = muc_one_line(subject);
	g_autofree char *id = acct_next_id(a);
	xmpp_stanza_t *msg;
	RoomWait *w;

	/* Prosody sends nothing for a change that changes nothing */
	if (!g_strcmp0(now ? now : "", shown)) {
		pool_complete(r, 0);
		return;
	}
	msg = xmpp_message_new(a->ctx, "groupchat", room, id);
	acct_add_text_child(a, msg, "subject", subject);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
	w = room_wait(a, room, r, ACCT_ROOM_SUBJECT);
	w->id = g_steal_pointer(&id);
	w->value = g_steal_pointer(&shown);
}

/* Split "FIRST<sep>REST" at the first of @seps: FIRST (new), and REST
 * (in @line; NULL when there is none or it is empty). */
static char *split_line(const char *line, const char *seps, const char **rest)
{
	size_t n = strcspn(line, seps);

	*rest = line[n] && line[n + 1] ? line + n + 1 : NULL;
	return g_strndup(line, n);
}

/* The room's answer to a kick or a ban: the write that asked gets it. */
static int admin_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *id = xmpp_stanza_get_id(iq);
	const char *from = xmpp_stanza_get_from(iq);
	ChangeWait *w = id ? g_hash_table_lookup(a->iq_waits, id) : NULL;
	const char *type = xmpp_stanza_get_type(iq);
	g_autoptr(Jid) fj = from ? jid_parse(from, NULL) : NULL;
	g_autofree char *fbare = fj && !fj->resource ? jid_bare(fj) : NULL;

	(void)conn;
	/* from the room itself (an id handler fires for any stanza with
	 * the id, from anyone) */
	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !w ||
	    g_strcmp0(fbare, w->jid) ||
	    (g_strcmp0(type, "result") && g_strcmp0(type, "error")))
		return 1;
	pool_complete(w->req, !strcmp(type, "result")
				      ? 0 : -acct_error_errno(iq));
	g_hash_table_remove(a->iq_waits, id);
	return 0;
}

/* A kick (@value "NICK[<TAB>REASON]": its role becomes none) or a ban
 * (@value "JID[ REASON]": its affiliation becomes outcast), XEP-0045
 * §8.2 and §9.1; @r is completed with the room's answer. */
static void room_admin(Account *a, const char *room, AcctRoomOp op,
		       const char *value, PoolReq *r)
{
	const char *reason;
	g_autofree char *who = split_line(value, op == ACCT_ROOM_KICK
							 ? "\t" : " \t",
					  &reason);
	g_autofree char *nick = NULL, *bare = NULL, *id = NULL;
	xmpp_stanza_t *iq, *q, *item;
	ChangeWait *w;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	if (op == ACCT_ROOM_KICK)
		nick = jid_normalize_resource(who, NULL);
	else
		bare = jid_normalize_bare(who, NULL);
	if (!nick && !bare) {
		pool_complete(r, -EINVAL);
		return;
	}
	id = acct_next_id(a);
	iq = xmpp_iq_new(a->ctx, "set", id);
	xmpp_stanza_set_to(iq, room);
	q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, "http://jabber.org/protocol/muc#admin");
	item = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(item, "item");
	if (nick) {
		xmpp_stanza_set_attribute(item, "nick", nick);
		xmpp_stanza_set_attribute(item, "role", "none");
	} else {
		xmpp_stanza_set_attribute(item, "jid", bare);
		xmpp_stanza_set_attribute(item, "affiliation", "outcast");
	}
	if (reason)
		acct_add_text_child(a, item, "reason", reason);
	xmpp_stanza_add_child_ex(q, item, 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	w = g_new0(ChangeWait, 1);
	w->req = r;
	w->jid = g_strdup(room); /* who answers */
	w->block = -1;
	g_hash_table_insert(a->iq_waits, g_strdup(id), w);
	xmpp_id_handler_add(a->conn, admin_answer, id, a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
}

/* A direct invitation (XEP-0249) to @value, "JID[ REASON]", with the
 * room's password when we have one, and a body for clients that do not
 * know invitations.  0 or -EINVAL. */
static int room_invite(Account *a, const char *room, const char *value)
{
	const char *reason;
	g_autofree char *who = split_line(value, " \t", &reason);
	g_autoptr(Jid) jid = jid_parse(who, NULL);
	g_autofree char *to = jid ? jid_full(jid) : NULL;
	g_autofree char *body = NULL;
	const char *password = muc_room_password(a, room);
	xmpp_stanza_t *msg, *x;

	if (!jid)
		return -EINVAL;
	msg = xmpp_message_new(a->ctx, NULL, to, NULL);
	body = g_strdup_printf("%s invites you to %s%s%s", a->cfg->jid, room,
			       reason ? ": " : "", reason ? reason : "");
	xmpp_message_set_body(msg, body);
	x = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(x, "x");
	xmpp_stanza_set_ns(x, NS_CONFERENCE);
	xmpp_stanza_set_attribute(x, "jid", room);
	if (reason)
		xmpp_stanza_set_attribute(x, "reason", reason);
	if (password)
		xmpp_stanza_set_attribute(x, "password", password);
	xmpp_stanza_add_child_ex(msg, x, 0);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
	return 0;
}

static void room_op(Account *a, const char *room, AcctRoomOp op,
		    const char *value, PoolReq *r)
{
	g_autofree char *nick = NULL;
	RoomWait *w;

	POOL_ASSERT();
	if (op == ACCT_ROOM_JOIN) {
		room_join(a, room, r);
		return;
	}
	nick = rooms_nick(a->rooms, room);
	if (!nick) {
		pool_complete(r, -ENOENT);
		return;
	}
	if (op == ACCT_ROOM_INVITE) {
		pool_complete(r, acct_is_online(a) ? room_invite(a, room, value)
						   : -ENOTCONN);
		return;
	}
	if (op == ACCT_ROOM_KICK || op == ACCT_ROOM_BAN) {
		room_admin(a, room, op, value, r);
		return;
	}
	w = g_hash_table_lookup(a->room_waits, room);
	if (w && (w->req || op != ACCT_ROOM_LEAVE)) {
		/* one change at a time; a leave replaces a rejoin */
		pool_complete(r, -EBUSY);
		return;
	}
	if (op == ACCT_ROOM_LEAVE) {
		room_leave(a, room, r);
		return;
	}
	if (!acct_is_online(a) || !rooms_joined(a->rooms, room)) {
		/* not in the room: nobody to answer (and a presence to it
		 * without the MUC element would be an old-style join) */
		pool_complete(r, -ENOTCONN);
		return;
	}
	if (op == ACCT_ROOM_NICK)
		room_nick(a, room, nick, value, r);
	else
		room_subject(a, room, value, r);
}

/* Join every room we are not in and not already joining or leaving. */
void muc_rejoin_missing(Account *a)
{
	g_autoptr(GPtrArray) list = rooms_list(a->rooms);

	for (guint i = 0; i < list->len; i++) {
		const char *room = g_ptr_array_index(list, i);
		g_autofree char *nick = rooms_nick(a->rooms, room);
		if (!nick || rooms_joined(a->rooms, room) ||
		    g_hash_table_contains(a->room_waits, room))
			continue;
		muc_start_join(a, room, nick,
			       room_wait(a, room, NULL, ACCT_ROOM_JOIN));
	}
}

/* At a connect: back into every room we were in. */
static void muc_rejoin(Account *a)
{
	a->room_retry_at = 0;
	a->room_retry_s = ROOM_RETRY_MIN_S;
	muc_drop_strays(a);
	muc_rejoin_missing(a);
}

/* Rooms kept but not joined while online (the service shut down, a
 * rejoin that failed for now) are tried again on a backoff timer: when it
 * is due (G_MAXINT64: never), and the try. */
static gint64 muc_due(Account *a)
{
	return a->room_retry_at ? a->room_retry_at : G_MAXINT64;
}

static void muc_tick(Account *a, gint64 now)
{
	if (!a->room_retry_at || now < a->room_retry_at)
		return;
	a->room_retry_at = 0;
	if (!acct_is_online(a))
		return; /* the connect rejoins them all */
	/* the next failure waits twice as long */
	a->room_retry_s = MIN(a->room_retry_s * 2, ROOM_RETRY_MAX_S);
	muc_rejoin_missing(a);
}

/* End the rooms' waits past their deadline (@all: every one). */
static void muc_expire_waits(Account *a, gint64 now, bool all)
{
	g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, a->room_waits);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (all || now >= ((RoomWait *)v)->head.deadline)
			g_ptr_array_add(due, g_strdup(k));
	for (guint i = 0; i < due->len; i++)
		muc_answered(a, g_ptr_array_index(due, i),
			      all ? -ECONNRESET : -ETIMEDOUT);
}

static bool has_status(xmpp_stanza_t *x, const char *code)
{
	for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) &&
		    !strcmp(xmpp_stanza_get_name(c), "status") &&
		    !g_strcmp0(xmpp_stanza_get_attribute(c, "code"), code))
			return true;
	return false;
}

/* "by NICK: REASON", "REASON", "by NICK" or "" from an <item/> or a
 * <destroy/>. */
static char *reason_text(xmpp_stanza_t *el)
{
	xmpp_stanza_t *actor = el ? xmpp_stanza_get_child_by_name(el, "actor")
				  : NULL;
	g_autofree char *by = muc_one_line(
		actor ? xmpp_stanza_get_attribute(actor, "nick") : NULL);
	g_autofree char *why = muc_child_line(el, "reason");

	return g_strdup_printf("%s%s%s%s", by ? "by " : "", by ? by : "",
			       by && why ? ": " : "", why ? why : "");
}

/* Why the room put us out, after the reason. */
static const char *removal_cause(xmpp_stanza_t *x)
{
	if (has_status(x, "321"))
		return "affiliation changed";
	if (has_status(x, "322"))
		return "the room is members-only now";
	return NULL;
}

/* The room put us out (kick, ban, destruction, ...): it is gone from
 * rooms/, with an event that says why.  Its log stays. */
static void room_removed(Account *a, const char *room, xmpp_stanza_t *x,
			 xmpp_stanza_t *item)
{
	xmpp_stanza_t *destroy = x ? xmpp_stanza_get_child_by_name(x, "destroy")
				   : NULL;
	const char *kind = "removed", *more = NULL;
	g_autofree char *why = reason_text(destroy ? destroy : item);
	g_autofree char *alt = NULL;
	g_autoptr(GString) text = g_string_new(why);

	if (!destroy && (has_status(x, "332") || has_status(x, "333"))) {
		/* the service shuts down or failed: not the room's decision
		 * about us, so it stays ours and is tried again later */
		muc_answered(a, room, -ECONNRESET);
		if (!rooms_has(a->rooms, room))
			return; /* a mkdir in flight: it failed, no room */
		rooms_set_joined(a->rooms, room, false);
		g_string_append_printf(text, "%sthe room's service %s; trying "
				       "again in %d s",
				       text->len ? "; " : "",
				       has_status(x, "332") ? "shuts down"
							    : "failed",
				       schedule_retry(a));
		acct_event(a, "error", room, text->str);
		return;
	}
	if (destroy) {
		g_autoptr(Jid) j = jid_parse(
			xmpp_stanza_get_attribute(destroy, "jid") ?: "", NULL);
		kind = "destroyed";
		alt = j ? jid_bare(j) : NULL;
		more = alt ? "moved to " : NULL;
	} else if (has_status(x, "307")) {
		kind = "kicked";
	} else if (has_status(x, "301")) {
		kind = "banned";
	} else {
		more = removal_cause(x);
	}
	if (more)
		g_string_append_printf(text, "%s%s%s", text->len ? "; " : "",
				       more, alt ? alt : "");
	g_hash_table_remove(a->invite_passwords, room);
	muc_answered(a, room, -ECONNRESET); /* a join or change in flight */
	muc_forget(a, room);
	acct_event(a, kind, room, text->str);
}

/* The room's answer to unlock_new_room: the join it completes is done. */
static int unlock_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *from = xmpp_stanza_get_from(iq);
	const char *type = xmpp_stanza_get_type(iq);
	g_autoptr(Jid) j = from ? jid_parse(from, NULL) : NULL;
	g_autofree char *room = j && !j->resource ? jid_bare(j) : NULL;
	RoomWait *w = room ? g_hash_table_lookup(a->room_waits, room) : NULL;

	(void)conn;
	/* an id handler fires for any stanza with the id, from anyone: the
	 * answer comes from the room itself (an occupant's iq would carry
	 * a nick) */
	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !room ||
	    (g_strcmp0(type, "result") && g_strcmp0(type, "error")))
		return 1;
	if (w && w->op == ACCT_ROOM_JOIN &&
	    !g_strcmp0(w->id, xmpp_stanza_get_id(iq))) {
		if (!g_strcmp0(type, "error"))
			xfs_warn("%s: %s: the new room refused its default "
				 "configuration (%s); it may stay locked to "
				 "others", a->cfg->jid, room,
				 g_strerror(acct_error_errno(iq)));
		g_clear_pointer(&w->id, g_free); /* we are in, either way */
		join_progress(a, room, w);
	}
	return 0; /* the answer, whether a wait is left for it or not */
}

/* We made the room (201): accept the default configuration, so that a
 * server that locks new rooms (XEP-0045 §10.1.2) opens it to others.
 * Returns the request's id; unlock_answer completes the join then, so
 * that others can join once mkdir returns. */
static char *unlock_new_room(Account *a, const char *room)
{
	char *id = acct_next_id(a);
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", id);
	xmpp_stanza_t *q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *form = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_to(iq, room);
	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, "http://jabber.org/protocol/muc#owner");
	xmpp_stanza_set_name(form, "x");
	xmpp_stanza_set_ns(form, "jabber:x:data");
	xmpp_stanza_set_type(form, "submit");
	xmpp_stanza_add_child_ex(q, form, 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	xmpp_id_handler_add(a->conn, unlock_answer, id, a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	return id;
}

/* The errno of an error that answers a join.  A room that does not exist
 * and may not be made (XEP-0045 §10.1.1: not-allowed) is ENOENT, as one
 * that does not exist (item-not-found) is; EPERM would read as if the
 * room were there and closed to us. */
static int join_errno(xmpp_stanza_t *p)
{
	xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(p, "error");

	if (e && xmpp_stanza_get_child_by_name(e, "not-allowed"))
		return ENOENT;
	return acct_error_errno(p);
}

/* A presence error from @room or one of its nicks: the answer to our
 * join, nick change or leave when one waits (a subject change is
 * answered by a message); else an event. */
static void presence_error(Account *a, const char *room, xmpp_stanza_t *p)
{
	RoomWait *w = g_hash_table_lookup(a->room_waits, room);
	g_autofree char *ev = NULL;

	if (w && w->op == ACCT_ROOM_JOIN) {
		muc_answered(a, room, -join_errno(p));
	} else if (w && (w->op == ACCT_ROOM_NICK || w->op == ACCT_ROOM_LEAVE)) {
		muc_answered(a, room, -acct_error_errno(p));
	} else {
		ev = acct_error_event_text(p, "presence");
		acct_event(a, "error", room, ev);
	}
}

/* Presence from ROOM/NICK: an occupant, or ourselves. */
static void muc_presence(Account *a, xmpp_stanza_t *p, const char *room,
			  const char *nick)
{
	const char *type = xmpp_stanza_get_type(p);
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(p, "x",
								NS_MUC_USER);
	xmpp_stanza_t *item = x ? xmpp_stanza_get_child_by_name(x, "item") : NULL;
	g_autofree char *mine = rooms_nick(a->rooms, room);
	/* before we are in, an occupant may hold the nick we asked for (the
	 * room then gives us another, 210): only 110 says it is us */
	bool self = has_status(x, "110") ||
		    (rooms_joined(a->rooms, room) && !g_strcmp0(mine, nick));
	RoomWait *w;

	if (type && !strcmp(type, "error")) {
		presence_error(a, room, p);
		return;
	}
	if (type && !strcmp(type, "unavailable")) {
		rooms_occupant(a->rooms, room, nick, NULL, NULL, NULL);
		if (has_status(x, "303")) {
			/* a nick change: the presence of the new nick follows */
			g_autofree char *to = jid_normalize_resource(
				item ? xmpp_stanza_get_attribute(item, "nick")
				     : NULL,
				NULL);
			if (self && to)
				rooms_rename(a->rooms, room, to);
			return;
		}
		if (!self)
			return;
		if (room_waits_for(a, room, ACCT_ROOM_LEAVE))
			muc_answered(a, room, 0);
		else if (!a->going_offline)
			room_removed(a, room, x, item);
		/* else the echo of our going offline: we come back */
		return;
	}
	{
		g_autofree char *jid = muc_valid_jid(
			item ? xmpp_stanza_get_attribute(item, "jid") : NULL);
		rooms_occupant(
			a->rooms, room, nick,
			known_word(item ? xmpp_stanza_get_attribute(item, "role")
					: NULL,
				   roles),
			known_word(item ? xmpp_stanza_get_attribute(
						  item, "affiliation")
					: NULL,
				   affiliations),
			jid);
	}
	if (!has_status(x, "110"))
		return;
	/* the server may give us another nick than we asked for (210) */
	rooms_rename(a->rooms, room, nick);
	rooms_set_joined(a->rooms, room, true);
	w = g_hash_table_lookup(a->room_waits, room);
	if (w && w->op == ACCT_ROOM_JOIN) {
		/* the rest (history, subject, the unlock) follows at once; a
		 * room that sends no subject (older than XEP-0045 1.25) must
		 * not hold mkdir for the whole join timeout */
		if (!w->in)
			w->head.deadline = g_get_monotonic_time() +
					   ROOM_HISTORY_WAIT_S * G_USEC_PER_SEC;
		w->in = true;
		if (has_status(x, "201")) {
			/* done when the room is open to others too */
			g_free(w->id);
			w->id = unlock_new_room(a, room);
		}
		join_progress(a, room, w);
	} else if (w && w->op == ACCT_ROOM_NICK && g_strcmp0(nick, w->old)) {
		/* not a presence under the old nick; the room may have
		 * changed the new one (rooms_rename above has its word) */
		muc_answered(a, room, 0);
	} else if (has_status(x, "201")) {
		g_free(unlock_new_room(a, room));
	}
}

/* A groupchat message: a record in the room's log, with the nick; or a
 * subject. */
static void room_message(Account *a, xmpp_stanza_t *msg, const char *room,
			 const char *nick)
{
	xmpp_stanza_t *subj = xmpp_stanza_get_child_by_name(msg, "subject");
	g_autofree char *body = muc_body(a, msg);
	g_autofree char *mine = NULL;

	if (subj && !body) {
		char *t = xmpp_stanza_get_text(subj);
		g_autofree char *subject = muc_one_line(t ? t : "");
		if (t)
			xmpp_free(a->ctx, t);
		RoomWait *w = g_hash_table_lookup(a->room_waits, room);
		rooms_set_subject(a->rooms, room, subject);
		mine = rooms_nick(a->rooms, room);
		/* ours comes back from our nick (Prosody) or, from a server
		 * that sends it as the room's, with our text */
		if (w && w->op == ACCT_ROOM_SUBJECT &&
		    ((nick && !g_strcmp0(nick, mine)) ||
		     !g_strcmp0(subject, w->value))) {
			muc_answered(a, room, 0);
		} else if (w && w->op == ACCT_ROOM_JOIN && w->in) {
			/* the subject ends the history of a join */
			w->history = true;
			join_progress(a, room, w);
		}
		return;
	}
	muc_reflected(a, room, msg);
	if (!body || !nick)
		return;
	muc_record(a, room, nick, body, in_time(msg),
		   xmpp_stanza_get_child_by_name_and_ns(msg, "delay",
							"urn:xmpp:delay"),
		   muc_stanza_id(msg, room));
}

/* An error that answers our subject change (Prosody's keeps only the
 * id). */
static bool subject_refused(Account *a, const char *room, xmpp_stanza_t *msg)
{
	RoomWait *w = g_hash_table_lookup(a->room_waits, room);

	return w && w->op == ACCT_ROOM_SUBJECT &&
	       !g_strcmp0(w->id, xmpp_stanza_get_id(msg));
}

/* A message from a room we are in, or from one of its occupants. */
static void muc_stanza(Account *a, xmpp_stanza_t *msg, const char *room,
			const char *nick)
{
	const char *type = xmpp_stanza_get_type(msg);
	bool error = type && !strcmp(type, "error");

	if (type && !strcmp(type, "groupchat")) {
		room_message(a, msg, room, nick);
	} else if (error && subject_refused(a, room, msg)) {
		muc_answered(a, room, -acct_error_errno(msg));
	} else if (nick) {
		muc_private_message(a, msg, room, nick, in_time(msg));
	} else if (error) {
		if (muc_bounce(a, room, msg))
			muc_rejoin_missing(a); /* the room lost us */
	} else {
		muc_invitation(a, msg, room);
	}
}

Rooms *muc_rooms(Account *a)
{
	return a->rooms;
}

HistSet *muc_room_hists(Account *a)
{
	return a->room_hists;
}

static void muc_init(Account *a, const char *dir)
{
	g_autofree char *list = g_build_filename(dir, "rooms.list", NULL);

	a->room_waits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      room_wait_free);
	a->room_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     (GDestroyNotify)g_hash_table_unref);
	a->room_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    (GDestroyNotify)roomids_free);
	a->room_gaps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     NULL);
	a->room_fills = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      muc_fill_free);
	a->invite_passwords = g_hash_table_new_full(
		g_str_hash, g_str_equal, g_free, (GDestroyNotify)cfg_password_free);
	a->privates = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    (GDestroyNotify)hist_set_free);
	g_mutex_init(&a->privates_lock);
	a->rooms_dir = g_build_filename(dir, "rooms", NULL);
	a->rooms = rooms_new(list);
	a->room_hists = hist_set_new(a->rooms_dir, NULL);
	/* what an earlier mount accepted for rooms waits for the room's
	 * history (or archive) to show what it has (muc_out.c) */
	for (GList *l = a->held.head, *next; l; l = next) {
		OutMsg *m = l->data;
		next = l->next;
		if (!strcmp(m->item->type, "groupchat")) {
			g_queue_delete_link(&a->held, l);
			g_queue_push_tail(&a->room_outq, m);
		}
	}
}

static void muc_free(Account *a)
{
	g_clear_pointer(&a->room_waits, g_hash_table_unref);
	g_clear_pointer(&a->room_seen, g_hash_table_unref);
	g_clear_pointer(&a->room_ids, g_hash_table_unref);
	g_clear_pointer(&a->room_gaps, g_hash_table_unref);
	g_clear_pointer(&a->room_fills, g_hash_table_unref);
	g_clear_pointer(&a->invite_passwords, g_hash_table_unref);
	g_clear_pointer(&a->privates, g_hash_table_unref);
	g_mutex_clear(&a->privates_lock);
	g_clear_pointer(&a->rooms, rooms_free);
	g_clear_pointer(&a->room_hists, hist_set_free);
	g_clear_pointer(&a->rooms_dir, g_free);
}

static void muc_disconnected(Account *a)
{
	muc_expire_waits(a, 0, true);
	g_hash_table_remove_all(a->room_fills); /* the next fill asks again */
	rooms_clear_occupants(a->rooms);
	muc_unreflected_back(a);
}

/* A presence from @bare (a room when rooms_has) with @resource (the nick,
 * or NULL); false when it is not about a room. */
static bool muc_presence_from(Account *a, xmpp_stanza_t *p,
			      const char *bare, const char *resource)
{
	const char *type = xmpp_stanza_get_type(p);

	if (!rooms_has(a->rooms, bare))
		return false;
	if (resource)
		muc_presence(a, p, bare, resource);
	else if (type && !strcmp(type, "error"))
		presence_error(a, bare, p);
	else
		return false;
	return true;
}

/* A message from @bare/@resource: true when it was a room's (groupchat,
 * private, subject, error) or an invitation, and is handled. */
static bool muc_message_from(Account *a, xmpp_stanza_t *msg,
			     const char *bare, const char *resource,
			     const char *from)
{
	const char *type = xmpp_stanza_get_type(msg);

	if (rooms_has(a->rooms, bare)) {
		muc_stanza(a, msg, bare, resource);
		return true;
	}
	if (type && !strcmp(type, "groupchat"))
		return true; /* from a room we are not in */
	if (resource &&
	    xmpp_stanza_get_child_by_name_and_ns(msg, "x", NS_MUC_USER) &&
	    hist_set_get(a->room_hists, bare, false, NULL)) {
		/* a private message from a room we left (one we were in: not
		 * anyone's chat message dressed up as a room's) */
		muc_private_message(a, msg, bare, resource, in_time(msg));
		return true;
	}
	return (!type || strcmp(type, "error")) &&
	       muc_invitation(a, msg, from);
}

/* ---- the feature (featureset.c) ---- */

/* A presence from a room we are in (an occupant's, or the room's error). */
bool muc_presence_in(Account *a, const In *in)
{
	return muc_presence_from(a, in->st, in->bare, in->jid->resource);
}

/* A message from a room or an occupant, or an invitation. */
bool muc_message_in(Account *a, const In *in)
{
	return muc_message_from(a, in->st, in->bare, in->jid->resource,
				in->from);
}

typedef struct {
	char *room;
	AcctRoomOp op;
	char *value;
} RoomJob;

static void room_run(Account *a, void *data, PoolReq *r)
{
	RoomJob *j = data;

	room_op(a, j->room, j->op, j->value, r);
}

static void room_job_free(void *data)
{
	RoomJob *j = data;

	g_free(j->room);
	g_free(j->value);
	g_free(j);
}

int muc_request(Pool *p, Account *a, const char *room, AcctRoomOp op,
		const char *value)
{
	RoomJob *j = g_new0(RoomJob, 1);

	j->room = g_strdup(room);
	j->op = op;
	j->value = g_strdup(value);
	return pool_call(p, a, room_run, j, room_job_free);
}

static gint64 rooms_due(Account *a)
{
	return MIN(acct_waits_due(a->room_waits), muc_due(a));
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
