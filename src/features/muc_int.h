/* muc_int.h - what the parts of group chat share.  All of it runs on
 * the pool thread, as the rest of the account layer (account_int.h).
 * Lowest first; each calls only those above it in this list:
 *
 *   muc_log.c      a room's line as a record, once; a log's gaps; text
 *                  from the wire as one line
 *   muc_out.c      room messages on their way: held until the room has
 *                  us, out of the outbox at their reflection
 *   muc_private.c  private messages with occupants, invitations
 *   muc_archive.c  the join's presence, and the room's archive (XEP-0313)
 *                  before a rejoin and to fill a gap
 *   muc.c          the rooms kept, the requests waiting for them,
 *                  rejoins (rooms_feature)
 *   muc_presence.c presences from rooms: occupants, ours, errors, being
 *                  put out
 *   muc_message.c  messages from rooms: lines, subjects, and to the
 *                  files above, what is private, an invitation, an error
 *   muc_request.c  what a file operation on rooms/ asks (muc_request)
 *   muc_ping.c     self-ping (XEP-0410): whether a quiet room still has
 *                  us, and a rejoin when not (room_ping_feature) */
#pragma once

#include "features/muc.h"
#include "store/roomids.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#define ROOM_JOIN_TIMEOUT_S 15

/* What the room files keep of each account: the state of
 * room_state_feature (muc_log.c, the lowest of them, so that every room
 * file may read it), which rooms_feature (muc.c) fills at its attach and
 * empties at its detach.  Pool thread only, but where said. */
typedef struct {
	Rooms *rooms;        /* the rooms kept; its own lock: any thread */
	HistSet *hists;      /* their logs; any thread */
	char *dir;           /* DATA/JID/rooms */
	GMutex privates_lock; /* any thread; only around privates */
	GHashTable *privates; /* room -> HistSet* of its private
			       * conversations, under privates_lock */
	GHashTable *waits;   /* room -> RoomWait* (muc.c): joins, leaves,
			      * changes */
	GHashTable *seen;    /* room -> set of the log's last-second lines */
	GHashTable *ids;     /* room -> RoomIds* (muc_log.c), loaded on use */
	GHashTable *gaps;    /* room -> a record could not be written */
	GHashTable *fills;   /* room -> Fill* (muc_archive.c): the query
			      * filling it */
	guint fill_failures; /* log_failures when those began */
	GHashTable *invite_passwords; /* room -> password of an invitation */
	GHashTable *bookmark_passwords; /* room -> password of its bookmark */
	gint64 retry_at;     /* monotonic µs: rejoin the rooms we are not in
			      * (0: none due) */
	int retry_s;         /* the next wait after that (backoff) */
	GQueue outq;         /* OutMsg* for rooms that do not have us yet
			      * (muc_out.c), in the order of acceptance */
	GQueue sent;         /* room messages sent, until the room reflects
			      * them (muc_out.c) */
	GHashTable *heard;   /* room -> gint64*: monotonic µs when anything
			      * but an error last came from it (muc_heard);
			      * muc_ping.c reads and empties it */
} Muc;

static inline Muc *muc_of(Account *a)
{
	return acct_state(a, &room_state_feature);
}

/* One request per room waits for the server at a time. */
typedef struct {
	WaitHead head;
	PoolReq *req;  /* NULL: a rejoin nobody waits for */
	AcctRoomOp op;
	char *id;      /* subject: the message's id, which an error keeps;
			* join: the unlock request's, while it is pending */
	char *value;   /* nick: the new nick; subject: the subject as shown */
	char *old;     /* nick: the nick before */
	char *archive; /* join: our query of the room's archive, while it
			* runs (the join's presence follows it) */
	char *nick;    /* join: the nick to join with after it */
	bool in;       /* join: the room sent our presence (110) */
	bool history;  /* join: ... and its history and subject after it */
} RoomWait;

/* ---- muc_log.c (and muc_known_room, muc_gaps: account_int.h) ---- */

/* Text from the wire for one line of `events` or `subject`: every
 * control character (TAB, CR, LF, the C1 ones) becomes a space; NULL
 * stays NULL. */
char *muc_one_line(const char *s);
/* The text of @el's child @name on one line, NULL for none or empty. */
char *muc_child_line(xmpp_stanza_t *el, const char *name);
/* A JID from an attribute in its normalized form, or NULL. */
char *muc_valid_jid(const char *s);
/* The body of @msg, NULL for none (newly allocated). */
char *muc_body(Account *a, xmpp_stanza_t *msg);
/* The time of the last record in @room's log (0 if none), and in @seen
 * (if not NULL) the lines of that second. */
gint64 muc_last_record_time(Account *a, const char *room, GHashTable *seen);
/* The time to ask a room's history or archive from, after a log whose
 * last record is of @last: into @since (RECORD_TIME_LEN + 1 bytes). */
void muc_history_since(gint64 last, char *since);
/* The id @room gave @msg (XEP-0359 <stanza-id by=ROOM/>), or NULL. */
const char *muc_stanza_id(xmpp_stanza_t *msg, const char *room);
/* What @nick said in @room at @t (@msg: a message, a correction, a
 * reaction... kinds.c): a record, and unless it is ours an event.
 * @delayed: history or the archive's, which may be in the log already
 * (@sid: the id the room gave it, NULL for none; log.ids names it so, or
 * by its own id when the room gives none).  A record that cannot be
 * written starts a gap (below). */
void muc_record(Account *a, const char *room, const char *nick,
		xmpp_stanza_t *msg, gint64 t, bool delayed, const char *sid);
/* A record of @room could not be written (@err; 0: a live message held
 * back behind one that could not): the room has a gap, which
 * muc_fill_gaps (muc_archive.c) fills from its archive once records can
 * be written. */
void muc_log_failed(Account *a, const char *room, int err);
bool muc_gap(Account *a, const char *room);
/* @st came from @room or one of its occupants (NULL: we know otherwise
 * that the room has us): unless it is an error, the room still has us,
 * and its quiet starts again (the self-ping, muc_ping.c, waits for it). */
void muc_heard(Account *a, const char *room, xmpp_stanza_t *st);

/* ---- muc_out.c ---- */

/* @room is no longer ours (left, put out, a join refused): it leaves
 * rooms/, and what waited for it cannot go out (error events). */
void muc_forget(Account *a, const char *room);
/* The join of @room is done: what waited for it goes out, in order. */
void muc_release(Account *a, const char *room);
/* A groupchat message from @room (live, history or archive): one of ours
 * on its way leaves the outbox. */
void muc_reflected(Account *a, const char *room, xmpp_stanza_t *msg);
/* An error from @room without a nick: a refusal of one of our messages,
 * or an event.  True when the room lost us: the caller rejoins it. */
bool muc_bounce(Account *a, const char *room, xmpp_stanza_t *msg);
/* At a connect: what an earlier mount left for rooms no longer ours is
 * dropped. */
void muc_drop_strays(Account *a);
/* The link went down (@room NULL), or @room lost us: what was sent to it
 * and not reflected waits again. */
void muc_unreflected_back(Account *a, const char *room);

/* ---- muc_private.c ---- */

/* A chat message (or an error) from ROOM/NICK, which came at @t: a
 * record in the private conversation and an event, once. */
void muc_private_message(Account *a, xmpp_stanza_t *msg, const char *room,
			 const char *nick, gint64 t);
/* An invitation to a room (XEP-0249 direct, or XEP-0045 mediated) from
 * @from: an event; false when @msg is none. */
bool muc_invitation(Account *a, xmpp_stanza_t *msg, const char *from);

/* ---- muc_archive.c ---- */

/* Join @room as @nick for @w (a join's wait): first, for a rejoin of a
 * room whose log has records, what its archive has since the last. */
void muc_start_join(Account *a, const char *room, const char *nick,
		    RoomWait *w);
/* @w's archive query got no answer in time: the join goes on without
 * it (the room's history only), with a deadline of its own. */
void muc_archive_silent(Account *a, const char *room, RoomWait *w);
/* Frees a value of Account.room_fills. */
void muc_fill_free(gpointer p);

/* ---- muc.c ---- */

/* A wait of @op for @room (@r: the request that waits; NULL: a rejoin),
 * with the deadline of its kind, in room_waits (replacing any). */
RoomWait *muc_room_wait(Account *a, const char *room, PoolReq *r,
			AcctRoomOp op);
/* The server answered what @room waits for (or the wait ended, @err
 * -ETIMEDOUT or -ECONNRESET): the request completes, a join's room is
 * forgotten or tried again, what waited for the room goes out. */
void muc_answered(Account *a, const char *room, int err);
/* A join goes on until the room has sent our presence, opened a new room
 * to others and sent its history and subject. */
void muc_join_progress(Account *a, const char *room, RoomWait *w);
/* Unavailable presence to ROOM/NICK. */
void muc_send_leave(Account *a, const char *room);
/* A room stays ours but we are not in it: try again later.  Returns the
 * seconds until then. */
int muc_schedule_retry(Account *a);
/* Join every room we are not in and not already joining or leaving. */
void muc_rejoin_missing(Account *a);
