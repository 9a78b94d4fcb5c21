/* muc_message.c - messages from rooms and their occupants (XEP-0045):
 * a groupchat line becomes a record (muc_log.c) and takes one of ours
 * out of the outbox (muc_out.c); a subject changes `subject` and ends a
 * join's history or answers our change; a private message or an
 * invitation goes to muc_private.c, an error to muc_out.c.  Above
 * muc.c, whose waits it answers (see muc_int.h). */
#include "features/featureset.h"
#include "features/muc_int.h"
#include "features/kinds.h"
#include "xmpp/dispatch.h"

#include <string.h>

/* A groupchat message: a record in the room's log, with the nick; or a
 * subject. */
static void room_message(Account *a, xmpp_stanza_t *msg, const char *room,
			 const char *nick)
{
	Muc *mu = muc_of(a);
	xmpp_stanza_t *subj = xmpp_stanza_get_child_by_name(msg, "subject");
	g_autofree char *body = muc_body(a, msg);
	g_autofree char *mine = NULL;

	if (subj && !body) {
		char *t = xmpp_stanza_get_text(subj);
		g_autofree char *subject = muc_one_line(t ? t : "");
		if (t)
			xmpp_free(a->ctx, t);
		RoomWait *w = g_hash_table_lookup(mu->waits, room);
		rooms_set_subject(mu->rooms, room, subject);
		mine = rooms_nick(mu->rooms, room);
		/* ours comes back from our nick (Prosody) or, from a server
		 * that sends it as the room's, with our text */
		if (w && w->op == ACCT_ROOM_SUBJECT &&
		    ((nick && !g_strcmp0(nick, mine)) ||
		     !g_strcmp0(subject, w->value))) {
			muc_answered(a, room, 0);
		} else if (w && w->op == ACCT_ROOM_JOIN && w->in) {
			/* the subject ends the history of a join */
			w->history = true;
			muc_join_progress(a, room, w);
		}
		return;
	}
	muc_reflected(a, room, msg);
	if (!nick) {
		/* the room's own word: a moderator retracted a message
		 * (XEP-0425), a record under the moderator's nick */
		g_auto(MsgKind) k = {0};
		if (kinds_of(a, msg, &k) && !strcmp(k.kind, "moderation"))
			muc_record(a, room, k.by ? k.by : room, msg, in_time(msg),
				   false, muc_stanza_id(msg, room));
		return;
	}
	muc_record(a, room, nick, msg, in_time(msg),
		   xmpp_stanza_get_child_by_name_and_ns(msg, "delay",
							"urn:xmpp:delay"),
		   muc_stanza_id(msg, room));
}

/* An error that answers our subject change (Prosody's keeps only the
 * id). */
static bool subject_refused(Account *a, const char *room, xmpp_stanza_t *msg)
{
	Muc *mu = muc_of(a);
	RoomWait *w = g_hash_table_lookup(mu->waits, room);

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

/* A message from @bare/@resource: true when it was a room's (groupchat,
 * private, subject, error) or an invitation, and is handled. */
static bool muc_message_from(Account *a, xmpp_stanza_t *msg,
			     const char *bare, const char *resource,
			     const char *from)
{
	Muc *mu = muc_of(a);
	const char *type = xmpp_stanza_get_type(msg);

	if (rooms_has(mu->rooms, bare)) {
		muc_heard(a, bare, msg);
		muc_stanza(a, msg, bare, resource);
		return true;
	}
	if (type && !strcmp(type, "groupchat"))
		return true; /* from a room we are not in */
	if (resource &&
	    xmpp_stanza_get_child_by_name_and_ns(msg, "x", NS_MUC_USER) &&
	    hist_set_get(mu->hists, bare, false, NULL)) {
		/* a private message from a room we left (one we were in: not
		 * anyone's chat message dressed up as a room's) */
		muc_private_message(a, msg, bare, resource, in_time(msg));
		return true;
	}
	return (!type || strcmp(type, "error")) &&
	       muc_invitation(a, msg, from);
}

/* A message from a room or an occupant, or an invitation. */
bool muc_message_in(Account *a, const In *in)
{
	return muc_message_from(a, in->st, in->bare, in->jid->resource,
				in->from);
}
