/* mam_int.h - what the files of our archive (XEP-0313) and carbons
 * share.  Lowest first; each calls only those above it in this list (and
 * chat.c and the rooms' files, which call the first two):
 *
 *   mam_query.c  a query of an archive, ours or a room's, and its pages
 *   mam_seen.c   which archive ids are in the logs (DATA/JID/mam), and a
 *                message that could not be logged
 *   mam_check.c  what a lost stream left in the outbox, asked of the
 *                archive before it goes out again
 *   mam.c        the catch-up from our archive at a connect, and the hold
 *                of live messages while it runs
 *   carbons.c    copies of what our other clients get and send
 *
 * What the other features use of them is declared in featureset.h.
 * All of it runs on the pool thread, as the rest of the account layer. */
#pragma once

#include "features/featureset.h"
#include "xmpp/account_int.h"

/* What the archive's files keep of each account, each part in the state
 * of the lowest feature that reads it (acct_state), so that no file
 * reaches above itself for it.  Pool thread only. */

/* mam_seen.c's (archive_ids_feature): where the logs stand. */
typedef struct {
	char *path;     /* DATA/JID/mam: where the catch-up is */
	FdFile *file;   /* appends to it (fdcache.h) */
	char *last;     /* the position: NULL none yet */
	gint64 stamp;   /* when the file was last written (unix s) */
	GHashTable *seen; /* archive ids logged since last (in the file too) */
	bool probe;     /* the query running only learns the newest id */
	bool incomplete; /* the catch-up running could not log all */
	bool gap_by_time; /* the next catch-up goes by time, from
			   * log_gap_since (no position before the gap) */
	bool off;       /* the server has no archive for us */
	bool replaying; /* logging a result of our catch-up now */
} MamSeen;

/* mam_check.c's (outbox_check_feature): the check of what a lost stream
 * left in the outbox. */
typedef struct {
	char *query;        /* queryid of the check, or NULL */
	GHashTable *sent;   /* held ids the archive has */
	GHashTable *ids;    /* id -> OutMsg* in Account.held, while checking */
	guint64 newest;     /* the highest sent_no found by it */
	gint64 due;         /* monotonic µs; 0: no check running */
} MamCheck;

/* mam.c's (archive_feature): the catch-up and the hold. */
typedef struct {
	char *query;        /* queryid of the query in flight, or NULL */
	GHashTable *returned; /* ids the catch-up in flight returned */
	guint live_count;   /* live ids logged since the last catch-up or
			     * checkpoint */
	gint64 asked_at;    /* monotonic µs of the last catch-up query */
	bool stream_caught_up; /* this stream's catch-up is done */
	bool restarted;     /* the catch-up started over by time */
	bool by_time;       /* the one running goes by time */
	GQueue held;        /* Held*: live messages held (mam_hold) */
	bool releasing;     /* logging them: no catch-up starts */
	gint64 hold_due;    /* monotonic µs; 0: not holding */
	gint64 hold_began;  /* monotonic µs: when this hold began */
	bool carbons_on;    /* the server copies our other clients' (carbons.c
			     * sets it) */
} MamRun;

extern const Feature archive_ids_feature; /* mam_seen.c */

static inline MamSeen *mam_seen_of(Account *a)
{
	return acct_state(a, &archive_ids_feature);
}

static inline MamCheck *mam_check_of(Account *a)
{
	return acct_state(a, &outbox_check_feature);
}

static inline MamRun *mam_run_of(Account *a)
{
	return acct_state(a, &archive_feature);
}

#define MAM_PAGE "100"
/* the position "from the start of the archive" (the file's "last *") */
#define MAM_FROM_START "*"

/* ---- mam_query.c ---- */

/* An archive id we may write to the file and send back: printable ASCII
 * without XML's specials. */
bool mam_id_ok(const char *id);
/* The @which ("first" or "last") id on a page (new; NULL for none or one
 * we would not keep), and the answer's <fin/> in @fin (NULL: none). */
char *mam_page_id(xmpp_stanza_t *iq, const char *which, xmpp_stanza_t **fin);

/* ---- mam_seen.c ---- */

/* Load DATA/JID/mam (@dir: DATA/JID): the position and the seen set;
 * free them. */
/* Write the whole file (atomically: a crash leaves the old one). */
void mam_save(Account *a);
/* A message with archive id @id is in its log now: remembered (appended
 * to the file) so that no later catch-up logs it again. */
void mam_note_logged(Account *a, const char *id);
/* The archive id the server gave a live message, when it is ours. */
const char *mam_stanza_id(Account *a, xmpp_stanza_t *msg);
/* What mam_logged_live tells, after noting it, of a live message logged
 * with archive id @id: mam_live_logged, which featureset.c sets (before
 * the pool runs), so that this file calls nothing above it. */
typedef void (*MamLiveHook)(Account *a, const char *id);
void mam_seen_on_live(MamLiveHook fn);

/* ---- mam_check.c ---- */

/* A <result/> of the outbox check's query (its queryid is mam_check). */
void mam_check_result(Account *a, xmpp_stanza_t *res);

/* ---- mam.c ---- */

/* How a held message is logged once the catch-up is done (@t: when it
 * came). */
typedef void (*MamHeldLog)(Account *a, xmpp_stanza_t *msg, gint64 t);
/* A live message (a chat message, a carbon copy) while the catch-up of a
 * connect runs, or a log gap is open: kept with @t, the time it came
 * (true), and logged by @log once the catch-up is done, so that the log
 * keeps the order of arrival (the offline copies come before the query's
 * answer); at once at a disconnect. */
bool mam_hold(Account *a, xmpp_stanza_t *msg, gint64 t, MamHeldLog log);
/* A copy of a message one of our other clients got or sent (@from: its
 * sender), from the archive or a carbon: logged as if it had come here,
 * but what belongs to rooms is nobody's conversation.  @archive_id: the
 * id our archive gave it (NULL: none known). */
void mam_log_copy(Account *a, xmpp_stanza_t *inner, const Jid *from,
		  gint64 t, const char *archive_id);
/* A live message was logged with archive id @id (the hook of mam_seen.c):
 * now and then the position moves, or the archive is asked again. */
void mam_live_logged(Account *a, const char *id);
