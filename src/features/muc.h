/* muc.h - group chat (XEP-0045), as rooms/ shows and changes it (muc.c,
 * muc_request.c, muc_out.c, muc_private.c; the parts: muc_int.h). */
#pragma once

#include <glib.h>

#include "store/history.h"
#include "store/rooms.h"
#include "xmpp/pool.h"

/* What a request to a room does. */
typedef enum {
	ACCT_ROOM_JOIN,    /* -EEXIST if in it, -ENOTCONN offline */
	ACCT_ROOM_LEAVE,
	ACCT_ROOM_NICK,    /* @value: the new nick (a valid resourcepart) */
	ACCT_ROOM_SUBJECT, /* @value: the subject ("" clears it) */
	ACCT_ROOM_INVITE,  /* @value: "JID[ REASON]" (XEP-0249); done once
			    * sent */
	ACCT_ROOM_KICK,    /* @value: "NICK[<TAB>REASON]"; done when the
			    * room answered */
	ACCT_ROOM_BAN,     /* @value: "JID[ REASON]"; likewise */
	ACCT_ROOM_MODERATE, /* @value: "SID[<TAB>REASON]": a moderator
			     * retracts that message (XEP-0425); likewise */
} AcctRoomOp;

/* [any] Act on @room and wait for the server.  Not in the room: -ENOENT;
 * another change of it waiting: -EBUSY; else 0 or the server's error. */
int muc_request(Pool *p, Account *a, const char *room, AcctRoomOp op,
		const char *value);
/* [any] A line written to `moderate`: "ID[<TAB>REASON]", the ID or SID
 * of someone's message in @room's log: it is retracted for everyone.  0,
 * -ENOENT (no such message), -EINVAL, -EACCES (not a moderator),
 * -EOPNOTSUPP (the room has no moderation), or the room's error. */
int muc_moderate(Pool *p, Account *a, const char *room, const char *line);
/* [pool] A room the account's bookmarks say to be in (bookmarks.c):
 * joined as with mkdir, but nobody waits (a refusal for good is a
 * `removed` event); @nick (NULL: the config's) and @password (NULL: none)
 * are the bookmark's.  Nothing when in it already, or offline. */
void muc_join_bookmarked(Account *a, const char *room, const char *nick,
			 const char *password);
/* [pool] Whether a mkdir's join of @room waits for the room now. */
bool muc_join_asked(Account *a, const char *room);
/* [pool] A room whose bookmark went (another client left it): left as
 * with rmdir, nobody waits. */
void muc_leave_unbookmarked(Account *a, const char *room);
/* [pool] The password to join @room with (the config's, its bookmark's,
 * an invitation's), or NULL. */
const char *muc_room_password(Account *a, const char *room);
/* [any] The rooms and their logs. */
Rooms *muc_rooms(Account *a);
HistSet *muc_room_hists(Account *a);
/* [any] Private conversations in @room, DATA/JID/rooms/ROOM/private/NICK
 * with NICK as jid_to_filename gives it (NULL if it cannot be made). */
HistSet *muc_private_hists(Account *a, const char *room);
/* [any] Accept groupchat messages (as chat_send; the record comes with
 * the room's reflection of each). */
int muc_send(Account *a, const char *room, const char *const *bodies,
	     guint n, guint64 *seq);
/* [any] A message of ours about an earlier one in @room (kinds_about:
 * @kind correction, retraction, reaction or reply), accepted as muc_send;
 * -ENOTCONN when not in the room. */
int muc_about(Account *a, const char *room, const char *kind,
	      const char *v);
/* [any] Accept private messages to @nick in @room (as chat_send);
 * -ENOTCONN when not in the room. */
int muc_send_private(Account *a, const char *room, const char *nick,
		     const char *const *bodies, guint n, guint64 *seq);
