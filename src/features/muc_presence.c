/* muc_presence.c - presences from rooms (XEP-0045): an occupant comes,
 * goes or changes; our own (status 110) moves a join or a nick change
 * on; an error answers a request; a room that puts us out (kick, ban,
 * destruction) leaves rooms/ with an event; a room we made is unlocked.
 * Above muc.c, whose waits it answers (see muc_int.h). */
#include "features/featureset.h"
#include "features/muc_int.h"
#include "xmpp/await.h"
#include "xmpp/dispatch.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"

/* in a room (110), the wait for its history and subject */
#define ROOM_HISTORY_WAIT_S 5
/* How long the unlock of a room we made waits for the room's answer (the
 * join's own wait ends the mkdir sooner). */
#define MUC_UNLOCK_TIMEOUT_S 30

/* @word when it is one of @words, else "none": what a hostile room puts
 * in a role or affiliation never reaches `occupants`. */
static const char *known_word(const char *word, const char *const *words)
{
	return word && g_strv_contains(words, word) ? word : "none";
}

static const char *const roles[] = {"moderator", "participant", "visitor",
				    "none", NULL};
static const char *const affiliations[] = {"owner",   "admin", "member",
					   "outcast", "none",  NULL};

static bool room_waits_for(Account *a, const char *room, AcctRoomOp op)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

	return w && w->op == op;
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
	Muc *mu = muc_of(a);
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
		if (!rooms_has(mu->rooms, room))
			return; /* a mkdir in flight: it failed, no room */
		rooms_set_joined(mu->rooms, room, false);
		g_string_append_printf(text, "%sthe room's service %s; trying "
				       "again in %d s",
				       text->len ? "; " : "",
				       has_status(x, "332") ? "shuts down"
							    : "failed",
				       muc_schedule_retry(a));
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
	g_hash_table_remove(mu->invite_passwords, room);
	muc_answered(a, room, -ECONNRESET); /* a join or change in flight */
	muc_forget(a, room);
	acct_event(a, kind, room, text->str);
}

/* The room's answer to unlock_new_room (await.c takes it only from the
 * room): the join it completes is done.  None (a deadline, the stream
 * gone): the join's own wait ends it. */
static void unlock_answer(Account *a, xmpp_stanza_t *iq, int err, void *room)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

	if (!iq)
		return;
	if (w && w->op == ACCT_ROOM_JOIN &&
	    !g_strcmp0(w->id, xmpp_stanza_get_id(iq))) {
		if (!g_strcmp0(xmpp_stanza_get_type(iq), "error"))
			xfs_warn("%s: %s: the new room refused its default "
				 "configuration (%s); it may stay locked to "
				 "others", acct_cfg(a)->jid, (char *)room,
				 g_strerror(acct_error_errno(iq)));
		g_clear_pointer(&w->id, g_free); /* we are in, either way */
		muc_join_progress(a, room, w);
	}
}

/* We made the room (201): accept the default configuration, so that a
 * server that locks new rooms (XEP-0045 §10.1.2) opens it to others.
 * Returns the request's id; unlock_answer completes the join then, so
 * that others can join once mkdir returns. */
static char *unlock_new_room(Account *a, const char *room)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL);
	char *id;
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
	await_iq(a, iq, MUC_UNLOCK_TIMEOUT_S, unlock_answer, g_strdup(room),
		 g_free);
	id = g_strdup(xmpp_stanza_get_id(iq));
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
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);
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
	Muc *mu = muc_of(a);
	const char *type = xmpp_stanza_get_type(p);
	xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(p, "x",
								NS_MUC_USER);
	xmpp_stanza_t *item = x ? xmpp_stanza_get_child_by_name(x, "item") : NULL;
	g_autofree char *mine = rooms_nick(mu->rooms, room);
	/* before we are in, an occupant may hold the nick we asked for (the
	 * room then gives us another, 210): only 110 says it is us */
	bool self = has_status(x, "110") ||
		    (rooms_joined(mu->rooms, room) && !g_strcmp0(mine, nick));
	RoomWait *w;

	if (type && !strcmp(type, "error")) {
		presence_error(a, room, p);
		return;
	}
	if (type && !strcmp(type, "unavailable")) {
		rooms_occupant(mu->rooms, room, nick, NULL, NULL, NULL);
		if (has_status(x, "303")) {
			/* a nick change: the presence of the new nick follows */
			g_autofree char *to = jid_normalize_resource(
				item ? xmpp_stanza_get_attribute(item, "nick")
				     : NULL,
				NULL);
			if (self && to)
				rooms_rename(mu->rooms, room, to);
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
			mu->rooms, room, nick,
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
	rooms_rename(mu->rooms, room, nick);
	rooms_set_joined(mu->rooms, room, true);
	w = g_hash_table_lookup(mu->waits, room);
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
		muc_join_progress(a, room, w);
	} else if (w && w->op == ACCT_ROOM_NICK && g_strcmp0(nick, w->old)) {
		/* not a presence under the old nick; the room may have
		 * changed the new one (rooms_rename above has its word) */
		muc_answered(a, room, 0);
	} else if (has_status(x, "201")) {
		g_free(unlock_new_room(a, room));
	}
}

/* A presence from @bare (a room when rooms_has) with @resource (the nick,
 * or NULL); false when it is not about a room. */
static bool muc_presence_from(Account *a, xmpp_stanza_t *p,
			      const char *bare, const char *resource)
{
	Muc *mu = muc_of(a);
	const char *type = xmpp_stanza_get_type(p);

	if (!rooms_has(mu->rooms, bare))
		return false;
	muc_heard(a, bare, p);
	if (resource)
		muc_presence(a, p, bare, resource);
	else if (type && !strcmp(type, "error"))
		presence_error(a, bare, p);
	else
		return false;
	return true;
}

/* A presence from a room we are in (an occupant's, or the room's error). */
bool muc_presence_in(Account *a, const In *in)
{
	return muc_presence_from(a, in->st, in->bare, in->jid->resource);
}
