/* featureset.h - the features an account has, for featureset.c, which adds
 * them and declares the order of their hooks and of the stanza chain;
 * and what features use of each other.  Pool thread only. */
#pragma once

#include "xmpp/await.h"
#include "xmpp/dispatch.h"
#include "xmpp/feature.h"

typedef struct Account Account;
typedef struct HistSet HistSet;

/* Give @a every feature, in order (before the pool runs). */
void featureset_attach(Account *a);

/* ---- the features ---- */

extern const Feature client_feature;        /* client.c */
extern const Feature contacts_feature;      /* contacts.c */
extern const Feature block_feature;         /* block.c */
extern const Feature carbons_feature;       /* carbons.c */
extern const Feature archive_feature;       /* mam.c */
extern const Feature outbox_check_feature;  /* mam_check.c */
extern const Feature rooms_feature;         /* muc.c */
extern const Feature room_state_feature;    /* muc_log.c */
extern const Feature room_ping_feature;     /* muc_ping.c */
extern const Feature receipts_feature;      /* receipts.c */
extern const Feature kinds_feature;         /* kinds.c */
extern const Feature chatstates_feature;    /* chatstates.c */
extern const Feature mds_feature;           /* mds.c */
extern const Feature bookmarks_feature;     /* bookmarks.c */
extern const Feature profile_feature;       /* profile.c */
extern const Feature upload_feature;        /* upload.c */
extern const Feature files_feature;         /* files.c */
extern const Feature vcard_feature;         /* vcard.c */
extern const Feature omemo_feature;         /* omemo.c */

/* ---- the stanza chain's links (dispatch.h) ---- */

bool muc_archive_in(Account *a, const In *in);
bool mam_result_in(Account *a, const In *in);
bool carbons_in(Account *a, const In *in);
bool chat_bad_sender_in(Account *a, const In *in);
bool muc_message_in(Account *a, const In *in);
bool mds_in(Account *a, const In *in);
bool bookmarks_in(Account *a, const In *in);
bool profile_in(Account *a, const In *in);
bool profile_presence_in(Account *a, const In *in);
bool vcard_in(Account *a, const In *in);
bool omemo_in(Account *a, const In *in);
bool receipts_in(Account *a, const In *in);
bool chatstates_in(Account *a, const In *in);
bool mam_hold_in(Account *a, const In *in);
bool chat_in(Account *a, const In *in);

bool contacts_bad_sender_in(Account *a, const In *in);
bool muc_presence_in(Account *a, const In *in);
bool contacts_presence_in(Account *a, const In *in);

bool client_not_request_in(Account *a, const In *in);
bool contacts_push_in(Account *a, const In *in);
bool block_push_in(Account *a, const In *in);
bool client_answer_in(Account *a, const In *in);
bool client_unhandled_in(Account *a, const In *in);

/* ---- what features use of each other ---- */

/* How chat.c takes a received message (omemo_message_in). */
typedef enum {
	OMEMO_IN_PLAIN,     /* not encrypted */
	OMEMO_IN_DECRYPTED, /* its <body/> is now the plain text */
	OMEMO_IN_FAILED,    /* encrypted, not readable: *why says why */
	OMEMO_IN_NOTHING,   /* nothing to record: a key-transport or
			     * heartbeat message, or one decrypted before */
	OMEMO_IN_LATER,     /* not now: the store cannot be written (*err);
			     * the message is not used up, so it is not to
			     * be recorded but had again from the archive */
} OmemoIn;

/* omemo.c: [pool] @msg from @from (the sender's bare JID; ours for a copy of what
 * another client of ours sent): if it carries OMEMO, decrypt it. */
OmemoIn omemo_message_in(Account *a, xmpp_stanza_t *msg, const char *from,
			 char **why, int *err);
/* omemo.c: [pool] what omemo_message_in last decrypted is recorded: a
 * copy of it that comes again (a replay) is nothing to record. */
void omemo_message_logged(Account *a);


/* chat.c: a message (or a bounce) from @jid as a record in its
 * conversation at @t, and an event; @copy: a copy (from our archive or
 * a carbon), where what we sent from another client is ours (recorded,
 * no event); @archive_id: the id our archive gave it, for log.ids (NULL:
 * none known); true when a record was written.  chat_live: a live one,
 * unless the archive gave it already (mam_seen_live), with its receipt. */
bool chat_log(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t,
	      bool copy, const char *archive_id);
void chat_live(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t);
/* receipts.c: a live message from @from, in its log: its receipt, if it
 * asks for one and may have it. */
void receipts_answer(Account *a, xmpp_stanza_t *msg, const Jid *from);
/* receipts.c: records of @jid's conversation written at [@from, @to) of
 * its log, @theirs (else ours, from another client): unread, or the
 * conversation read; @live: the message as it came (NULL for a copy),
 * which may be markable; @sid: the id our archive gave it, or NULL. */
void receipts_logged(Account *a, const char *jid, bool theirs, goffset from,
		     goffset to, xmpp_stanza_t *live, const char *sid);
/* receipts.c: the same for a room's records (@theirs: not our nick's). */
void receipts_room_logged(Account *a, const char *room, bool theirs,
			  goffset from, goffset to, const char *sid);
/* receipts.c: where the rooms' logs are (muc.c's), for their positions. */
void receipts_on_room_logs(HistSet *(*fn)(Account *a));
/* muc_out.c: a room's message leaving the queue (rooms_feature). */
bool muc_outgoing(Account *a, OutMsg *m);

/* mam_query.c and mam_seen.c: */

/* <iq type='set' to=@to><query xmlns='urn:xmpp:mam:2' queryid=ID>[a form
 * with start]<set>max, after or before</set></query></iq> to the archive
 * (@before "": the last page; else the page before that id)
 * of @to (NULL: our own); returns ID (new).  Its answer goes to @answer
 * (await.c: only from @to, or our own account) with ID as its data, or
 * none (NULL) at MAM_QUERY_TIMEOUT_S or when the stream goes: the
 * callers' own timers act before that. */
#define MAM_QUERY_TIMEOUT_S 120
char *mam_send_query(Account *a, const char *to, const char *start,
		     const char *after, const char *before, const char *max,
		     AwaitFn answer);
/* The message a <result/> of an archive forwards (NULL for none, or one
 * without a valid sender), its sender in @from (new), and in @t its time:
 * the <delay/>'s stamp, else its own or now. */
xmpp_stanza_t *mam_forwarded(xmpp_stanza_t *res, gint64 *t, Jid **from);
/* The end of a page (the answer's <fin/>): the last id on it (new; NULL
 * for none or one we would not keep), and whether the archive has no
 * more. */
char *mam_page_end(xmpp_stanza_t *iq, bool *complete);
/* A live message: true when the archive gave it to us already (not to be
 * logged twice).  Once logged, mam_logged_live notes its archive id. */
bool mam_seen_live(Account *a, xmpp_stanza_t *msg);
void mam_logged_live(Account *a, xmpp_stanza_t *msg);

/* A received message could not be logged in @where (a conversation) for
 * @err (0: held back behind one that could not): it is not taken as
 * handled; the account shows it (`error:` in connection, an error event)
 * and the archive is asked again until it is logged. */
void mam_log_failed(Account *a, const char *where, int err);

/* muc_log.c, muc_archive.c and muc_private.c: */

/* Ask the archive of every room with a gap (muc_log_failed) again;
 * true while any room has one. */
bool muc_fill_gaps(Account *a);
/* Some room has a gap. */
bool muc_gaps(Account *a);

/* An archived message (or a carbon) from @from, of time @t, that belongs
 * to rooms or is an invitation: true, and it is no conversation's.  A
 * private message from an occupant of a room we are or were in is logged
 * in its private conversation (once: see mam_seen_live); an invitation
 * is an event; a room's error bounce is dropped. */
bool muc_archived(Account *a, xmpp_stanza_t *msg, const Jid *from,
		  gint64 t);
/* @bare is a room we are or were in. */
bool muc_known_room(Account *a, const char *bare);
