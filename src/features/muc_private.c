/* muc_private.c - private messages with a room's occupants, in
 * rooms/ROOM/private/NICK/, and invitations to rooms (see muc_int.h). */
#include "features/muc.h"
#include "features/mam_int.h"
#include "features/muc_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/text.h"
#include "xmpp/pool.h"

/* invitations' passwords kept for a mkdir */
#define INVITE_PASSWORDS_MAX 256

HistSet *muc_private_hists(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	HistSet *s;

	g_mutex_lock(&mu->privates_lock);
	s = g_hash_table_lookup(mu->privates, room);
	if (!s) {
		g_autoptr(GError) err = NULL;
		g_autofree char *dir =
			g_build_filename(mu->dir, room, "private", NULL);
		s = hist_set_new(dir, &err);
		if (s)
			g_hash_table_insert(mu->privates, g_strdup(room), s);
		else
			xfs_warn("%s: %s", acct_cfg(a)->jid, err->message);
	}
	g_mutex_unlock(&mu->privates_lock);
	return s;
}

/* A record in the private conversation with @nick in @room. */
static void private_record(Account *a, const char *room, const char *nick,
			   gint64 t, const char *sender, const char *text,
			   const char *mid)
{
	MamSeen *ms = mam_seen_of(a);
	g_autofree char *name = jid_to_filename(nick);
	g_autoptr(GString) rec = g_string_new(NULL);
	g_autoptr(GString) ids = g_string_new(NULL);
	g_autoptr(GError) err = NULL;
	g_autofree char *who = record_escape_sender(sender);
	HistSet *s = muc_private_hists(a, room);
	Hist *h = s && name ? hist_set_get(s, name, true, &err) : NULL;

	g_autofree char *where = g_strdup_printf("%s/%s", room, nick);
	int ret;

	if (a->log_gap_since && !ms->replaying) {
		/* after one that could not be logged: in order, later */
		mam_log_failed(a, where, 0);
		return;
	}
	if (!h) {
		xfs_warn("%s: private message with %s not logged: %s",
			 acct_cfg(a)->jid, where, err ? err->message : "");
		mam_log_failed(a, where, acct_errno_of(err));
		return;
	}
	record_append(rec, t, who, text);
	record_append_ids(ids, text, mid, "message", NULL, NULL, NULL);
	if ((ret = hist_append_ids(h, rec->str, rec->len, ids->str, ids->len,
				   NULL)))
		mam_log_failed(a, where, -ret);
}

int muc_send_private(Account *a, const char *room, const char *nick,
		     const char *const *bodies, guint n, guint64 *seq)
{
	Muc *mu = muc_of(a);
	g_autofree char *esc = g_uri_escape_string(nick, NULL, FALSE);
	g_autofree char *to = g_strdup_printf("%s/%s", room, esc);
	g_autofree char *mine = rooms_nick(mu->rooms, room);
	g_autofree char *name = jid_to_filename(nick);
	g_autofree char *who = NULL;
	g_autoptr(GError) err = NULL;
	HistSet *s;
	Hist *h;

	if (!mine)
		return -ENOTCONN; /* not in the room: nobody to send as */
	s = muc_private_hists(a, room);
	h = s && name ? hist_set_get(s, name, true, &err) : NULL;
	if (!h) {
		xfs_warn("%s: private conversation with %s/%s: %s",
			 acct_cfg(a)->jid, room, nick,
			 err ? err->message : "no log");
		return -acct_errno_of(err);
	}
	who = record_escape_sender(mine);
	return acct_accept(a, to, OUTBOX_TYPE_PRIVATE, NULL, bodies, n, h, who, seq);
}

/* A chat message (or an error) from ROOM/NICK, which came at @t: a record
 * and an event, once.  The server archives private messages as it does
 * chats (mam.c brings those that came while we were away, or to another
 * client of ours): one already logged from there, or live, is not
 * logged again. */
void muc_private_message(Account *a, xmpp_stanza_t *msg, const char *room,
			 const char *nick, gint64 t)
{
	const char *type = xmpp_stanza_get_type(msg);
	g_autofree char *text = NULL, *full = NULL, *sender = NULL;

	if (type && !strcmp(type, "error"))
		text = acct_error_text(msg);
	else
		text = muc_body(a, msg);
	if (!text || mam_seen_live(a, msg))
		return; /* chat states and the like; or logged already */
	if (!text_is_clean(text, strlen(text), true))
		g_strdelimit(text, "\r\v\f", ' ');
	{
		guint failures = a->log_failures;
		private_record(a, room, nick, t, nick, text,
			       xmpp_stanza_get_id(msg));
		if (a->log_failures != failures)
			return; /* fetched again from the archive (mam.c) */
	}
	mam_logged_live(a, msg);
	sender = record_escape_sender(nick);
	full = g_strdup_printf("%s/%s", room, sender);
	acct_event(a, type && !strcmp(type, "error") ? "error" : "private",
		   full, text);
}

/* An invitation to a room (XEP-0249 direct, or XEP-0045 mediated):
 * an event; its password is kept for a mkdir of the room.  False when
 * @msg is none. */
bool muc_invitation(Account *a, xmpp_stanza_t *msg, const char *from)
{
	Muc *mu = muc_of(a);
	xmpp_stanza_t *direct =
		xmpp_stanza_get_child_by_name_and_ns(msg, "x", NS_CONFERENCE);
	xmpp_stanza_t *user =
		xmpp_stanza_get_child_by_name_and_ns(msg, "x", NS_MUC_USER);
	xmpp_stanza_t *inv = user ? xmpp_stanza_get_child_by_name(user, "invite")
				  : NULL;
	const char *roomattr;
	g_autofree char *room = NULL, *by = NULL, *why = NULL, *pw = NULL;
	g_autofree char *text = NULL;

	/* a mediated one first: Prosody adds an XEP-0249 element to it for
	 * old clients, without the inviter */
	if (inv) {
		roomattr = from;
		by = muc_valid_jid(xmpp_stanza_get_attribute(inv, "from"));
		why = muc_child_line(inv, "reason");
		pw = acct_child_text(user, "password");
	} else if (direct) {
		roomattr = xmpp_stanza_get_attribute(direct, "jid");
		by = muc_valid_jid(from);
		why = muc_one_line(xmpp_stanza_get_attribute(direct, "reason"));
		pw = g_strdup(xmpp_stanza_get_attribute(direct, "password"));
	} else {
		return false;
	}
	room = roomattr ? jid_normalize_bare(roomattr, NULL) : NULL;
	if (!room || !strchr(room, '@')) {
		xfs_info("%s: an invitation to no room from %s dropped",
			 acct_cfg(a)->jid, by ? by : "someone");
		return true;
	}
	text = g_strdup_printf("from %s%s%s", by ? by : "someone",
			       why && *why ? ": " : "", why && *why ? why : "");
	/* not for a room we are in: a stranger's invitation must not change
	 * the password we rejoin with; and only so many, as anyone may send
	 * invitations (the newest pushes out the others) */
	if (pw && *pw && !rooms_has(mu->rooms, room)) {
		GHashTable *kept = mu->invite_passwords;
		if (g_hash_table_size(kept) >= INVITE_PASSWORDS_MAX &&
		    !g_hash_table_contains(kept, room))
			g_hash_table_remove_all(kept);
		g_hash_table_replace(kept, g_strdup(room),
				     g_steal_pointer(&pw));
	}
	acct_event(a, "invite", room, text);
	return true;
}

bool muc_archived(Account *a, xmpp_stanza_t *msg, const Jid *from,
		  gint64 t)
{
	g_autofree char *bare = jid_bare(from);
	const char *type = xmpp_stanza_get_type(msg);
	bool error = type && !strcmp(type, "error");

	if (!error && muc_invitation(a, msg, xmpp_stanza_get_from(msg)))
		return true;
	if (!error && from->resource && muc_known_room(a, bare) &&
	    g_strcmp0(type, "groupchat")) {
		/* a private message from an occupant of a room we are or
		 * were in (not anyone's chat dressed up as a room's) */
		muc_private_message(a, msg, bare, from->resource, t);
		return true;
	}
	return muc_known_room(a, bare) ||
	       xmpp_stanza_get_child_by_name_and_ns(msg, "x", NS_MUC_USER);
}
