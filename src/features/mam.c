/* mam.c - catching up from the server's archive (XEP-0313), so that a
 * message that arrived while the mount was offline or unmounted is in its
 * conversation's log even when another client of the account took it
 * (SPEC "Nothing is lost").
 *
 * The id of the last archived message we logged is kept in DATA/JID/mam.
 * At a connect, right after the initial presence, we ask for everything
 * after it, page by page.  The presence first, so that the server hands
 * us its offline messages and deletes them: Prosody neither sends nor
 * deletes them for a session that queried the archive before its
 * presence, so its offline store would grow for ever, and a message it
 * stored but did not archive (a no-store hint, an archiving preference)
 * would never reach us.  The offline copies come before the query's
 * answer and carry their archive id (<stanza-id/>), as live messages do,
 * so the catch-up does not log them again.  With no id yet (the first
 * mount) nothing old is fetched: we only learn the newest id.
 *
 * While mounted, carbons (XEP-0280, carbons.c) bring what our other
 * clients get and send as it happens; the archive ids they carry keep the
 * next catch-up from logging it again (mam_seen.c keeps those ids).
 *
 * The archive's other files are listed in mam_int.h.  Part of the account
 * layer (account_int.h): pool thread only.  Groupchat is not here: a room
 * sends its history at the join (muc_message.c), and its archive is asked
 * before a rejoin (muc_archive.c). */
#include "features/featureset.h"
#include "features/mam_int.h"
#include "xmpp/dispatch.h"

#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "xmpp/pool.h"

/* live messages logged since the last catch-up or checkpoint that make
 * it worth moving the position (see checkpoint) */
#define MAM_LIVE_BATCH 500
/* without carbons: the archive is asked again after a batch, at most
 * this often */
#define MAM_REASK_S 60
/* how often a catch-up is tried again while a message could not be
 * logged (a full disk) */
#define MAM_RETRY_S 5

static void query_answer(Account *a, xmpp_stanza_t *iq, int err,
			 void *qid);

/* The catch-up's state; its file is mam_seen.c's (archive_ids_feature). */
static void mam_init(Account *a, const char *dir)
{
	MamRun *mr = mam_run_of(a);

	(void)dir;
	mr->returned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					     NULL);
	g_queue_init(&mr->held);
}

static void mam_free(Account *a)
{
	MamRun *mr = mam_run_of(a);

	/* (mam_held is empty: acct_free called mam_disconnected while the
	 * stanzas' context and the logs were still there) */
	g_clear_pointer(&mr->query, g_free);
	g_clear_pointer(&mr->returned, g_hash_table_unref);
}

/* One page of the catch-up after @after (NULL: from the start). */
static void catch_up(Account *a, const char *after, const char *start,
		     bool probe)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);

	/* what this one cannot log keeps the position where it is */
	ms->incomplete = false;
	g_free(mr->query);
	mr->query = mam_send_query(a, NULL, start, after, probe ? "" : NULL,
				   probe ? "1" : MAM_PAGE, query_answer);
	ms->probe = probe;
	mr->live_count = 0;
	mr->asked_at = g_get_monotonic_time();
}

static void catch_up_from_last(Account *a)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);
	char start[RECORD_TIME_LEN + 1];

	g_hash_table_remove_all(mr->returned);
	if (!ms->gap_by_time) {
		catch_up(a,
			 strcmp(ms->last, MAM_FROM_START) ? ms->last : NULL,
			 NULL, false);
		return;
	}
	/* a message that could not be logged before we had a position:
	 * from a minute before it, by time (what is logged since is in
	 * mam_seen) */
	record_format_time(MAX(a->log_gap_since - 60, (gint64)0), start);
	catch_up(a, NULL, start, false);
	mr->by_time = true;
}

/* ---- the hold ----
 *
 * The offline copies come right after our presence, before the answer
 * to the catch-up; logged at once, they would go before older messages
 * the archive returns (what the phone took).  So while the catch-up of a
 * connect runs, live chat messages wait, and are logged after it, those
 * the archive returned skipped.  Never longer than MAM_HOLD_TIMEOUT_US
 * without a page of the catch-up (each page moves the deadline on: a
 * long catch-up from a slow archive kept coming, and releasing the live
 * messages before its end put them out of order, once in the soak), nor
 * MAM_HOLD_LIMIT_US in all, nor more than MAM_HOLD_MAX of them. */

#define MAM_HOLD_TIMEOUT_US (20 * G_USEC_PER_SEC)
#define MAM_HOLD_LIMIT_US (300 * G_USEC_PER_SEC)
#define MAM_HOLD_MAX 10000

typedef struct {
	xmpp_stanza_t *msg;
	gint64 t;       /* when it came (unix s), for one without delay */
	MamHeldLog log; /* how it is logged: a chat message, a carbon */
} Held;

static void release_held(Account *a)
{
	MamRun *mr = mam_run_of(a);
	Held *h;

	mr->hold_due = 0;
	/* what these log must not start a catch-up (the batch of 500)
	 * while caught_up still has the ids of this one to forget */
	mr->releasing = true;
	while ((h = g_queue_pop_head(&mr->held))) {
		h->log(a, h->msg, h->t);
		xmpp_stanza_release(h->msg);
		g_free(h);
	}
	mr->releasing = false;
}

bool mam_hold(Account *a, xmpp_stanza_t *msg, gint64 t, MamHeldLog log)
{
	MamRun *mr = mam_run_of(a);
	Held *h;

	/* also while a message could not be logged: the next ones wait for
	 * the catch-up that brings it, so that the log keeps their order */
	if (!mr->hold_due && !a->log_gap_since)
		return false;
	h = g_new0(Held, 1);
	h->msg = xmpp_stanza_clone(msg);
	h->log = log;
	h->t = t;
	g_queue_push_tail(&mr->held, h);
	if (mr->held.length >= MAM_HOLD_MAX)
		release_held(a);
	return true;
}

static void mam_disconnected(Account *a)
{
	MamRun *mr = mam_run_of(a);

	mr->stream_caught_up = false;
	release_held(a);
}

/* At a connect, right after the initial presence (which brings the
 * offline messages): fetch what the archive has after the last message
 * we saw; when we know of none yet, only learn the archive's newest id. */
static void mam_after_presence(Account *a)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);

	POOL_ASSERT();
	g_clear_pointer(&mr->query, g_free); /* the link's that went */
	if (ms->off)
		return;
	if (ms->last) {
		catch_up_from_last(a);
		mr->hold_began = g_get_monotonic_time();
		mr->hold_due = mr->hold_began + MAM_HOLD_TIMEOUT_US;
	} else {
		catch_up(a, NULL, NULL, true);
	}
}

/* The catch-up reached the end: everything up to @last is in the logs;
 * of the ids seen, only those it did not return can be newer. */
static void caught_up(Account *a, const char *last)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);
	GHashTableIter it;
	gpointer k;
	bool by_time = mr->by_time;

	mr->by_time = false;
	/* first, while the ids it returned are still in mam_seen */
	release_held(a);
	if (ms->incomplete) {
		/* something could not be logged: the position stays where it
		 * was, so the next catch-up brings it again; what was logged
		 * stays in mam_seen, so it is not logged twice */
		g_hash_table_remove_all(mr->returned);
		if (!ms->last || ms->probe) {
			ms->gap_by_time = true;
			g_free(ms->last);
			ms->last = g_strdup(last ? last : MAM_FROM_START);
		}
		mam_save(a);
		return;
	}
	mr->stream_caught_up = true;
	if (by_time)
		ms->gap_by_time = false;
	if (last) {
		g_free(ms->last);
		ms->last = g_strdup(last);
	} else if (!ms->last) {
		ms->last = g_strdup(MAM_FROM_START); /* an empty archive */
	}
	g_hash_table_iter_init(&it, mr->returned);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_hash_table_remove(ms->seen, k);
	g_hash_table_remove_all(mr->returned);
	/* what stays is newer than @last, or older (logged before the first
	 * catch-up): never returned again; a bound keeps the file small */
	if (g_hash_table_size(ms->seen) > 5 * MAM_LIVE_BATCH &&
	    !a->log_gap_since)
		g_hash_table_remove_all(ms->seen);
	mam_save(a);
	if (a->log_gap_since && !ms->gap_by_time) {
		a->log_gap_since = 0;
		if (!muc_gaps(a))
			acct_log_clear(a);
	}
}

/* Our id fell out of the archive (expired): ask for what came since the
 * file was last written instead. */
static void restart_by_time(Account *a)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);
	char start[RECORD_TIME_LEN + 1];

	record_format_time(MAX(ms->stamp, (gint64)60) - 60, start);
	g_clear_pointer(&ms->last, g_free);
	g_hash_table_remove_all(mr->returned);
	xfs_info("%s: the archive no longer has our last message; asking for "
		 "everything since %s", acct_cfg(a)->jid, start);
	catch_up(a, NULL, start, false);
	mr->restarted = true;
}

/* The end of a page: the next one, or done. */
/* The end of a page of our archive (await.c: from our own account). */
static void query_answer(Account *a, xmpp_stanza_t *iq, int err, void *qid)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);
	const char *type;
	bool complete;
	g_autofree char *last = NULL;
	bool probe = ms->probe;

	/* none: the catch-up's own deadline (mam_tick) acts */
	if (!iq || g_strcmp0(qid, mr->query))
		return; /* or of an earlier stream */
	type = xmpp_stanza_get_type(iq);
	last = mam_page_end(iq, &complete);
	g_clear_pointer(&mr->query, g_free);
	if (!type || strcmp(type, "result")) {
		err = acct_error_errno(iq);
		g_autofree char *ev = acct_error_event_text(iq, "archive");
		if (err == ENOENT && !probe && !mr->restarted) {
			restart_by_time(a);
			return;
		}
		/* no archive here (or not for us): live and offline
		 * messages are all there is, this time */
		ms->off = err == ENOSYS || err == EHOSTUNREACH;
		release_held(a);
		if (ms->off)
			xfs_info("%s: the server keeps no archive for us: "
				 "messages another client took while we were "
				 "away are not fetched", acct_cfg(a)->jid);
		else
			acct_event(a, "error", acct_cfg(a)->jid, ev);
		return;
	}
	if (probe) {
		caught_up(a, last);
		return;
	}
	if (last && !complete) {
		catch_up(a, last, NULL, false);
		if (mr->hold_due) /* the archive answers: wait on for it */
			mr->hold_due = MIN(g_get_monotonic_time() +
						   MAM_HOLD_TIMEOUT_US,
					   mr->hold_began + MAM_HOLD_LIMIT_US);
		return;
	}
	mr->restarted = false;
	caught_up(a, last);
}

/* With carbons on and this stream's catch-up done, every message of the
 * account reaches us as it comes: after MAM_LIVE_BATCH of them the
 * position moves to the newest, and the ids noted before it are
 * forgotten, so that the state file stays small, without asking the
 * archive (on Prosody's file store every query reads the whole archive:
 * asking after every 500 messages made an incoming flood 18 times
 * slower, and slowed the server for everyone). */
static void checkpoint(Account *a, const char *id)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);

	g_free(ms->last);
	ms->last = g_strdup(id);
	g_hash_table_remove_all(ms->seen);
	mr->live_count = 0;
	mam_save(a);
}

void mam_live_logged(Account *a, const char *id)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);

	if (++mr->live_count < MAM_LIVE_BATCH || !ms->last ||
	    ms->off || mr->query || mr->releasing || mr->hold_due ||
	    a->log_gap_since || ms->gap_by_time || !mr->stream_caught_up)
		return;
	if (mr->carbons_on) {
		checkpoint(a, id);
		return;
	}
	/* without carbons, what went only to our other clients (a message
	 * to the phone's full JID, one we sent from it) is in the archive
	 * only: asked for now and then */
	if (g_get_monotonic_time() - mr->asked_at >=
	    MAM_REASK_S * G_USEC_PER_SEC)
		catch_up_from_last(a);
}

void mam_log_copy(Account *a, xmpp_stanza_t *inner, const Jid *from,
		  gint64 t, const char *archive_id)
{
	g_autofree char *bare = jid_bare(from);

	if (!strcmp(bare, acct_cfg(a)->jid)) {
		/* our own words: to a room or an occupant, they are no
		 * conversation, and an invitation we sent is no event */
		const char *to = xmpp_stanza_get_to(inner);
		g_autoptr(Jid) tj = to ? jid_parse(to, NULL) : NULL;
		g_autofree char *peer = tj ? jid_bare(tj) : NULL;
		if (!peer || muc_known_room(a, peer) ||
		    xmpp_stanza_get_child_by_name_and_ns(inner, "x",
							 NS_MUC_USER))
			return;
	} else if (muc_archived(a, inner, from, t)) {
		return; /* a room's, or an invitation (an event) */
	}
	chat_log(a, inner, from, t, true, archive_id);
}

/* @msg is a result of our query: handled, true. */
static bool mam_message(Account *a, xmpp_stanza_t *msg)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);
	MamCheck *mc = mam_check_of(a);
	xmpp_stanza_t *res = xmpp_stanza_get_child_by_name_and_ns(msg, "result",
								  NS_MAM);
	xmpp_stanza_t *inner;
	const char *id;
	g_autoptr(Jid) jid = NULL;
	gint64 t;

	if (!res)
		return false;
	/* only our own archive answers our query; anything else claiming
	 * to be a result is dropped */
	if (!acct_from_self(a, msg))
		return true;
	if (mc->query &&
	    !g_strcmp0(xmpp_stanza_get_attribute(res, "queryid"), mc->query)) {
		mam_check_result(a, res);
		return true;
	}
	if (!mr->query ||
	    g_strcmp0(xmpp_stanza_get_attribute(res, "queryid"), mr->query))
		return true;
	id = xmpp_stanza_get_attribute(res, "id");
	if (!mam_id_ok(id) || ms->probe)
		return true;
	g_hash_table_add(mr->returned, g_strdup(id));
	if (g_hash_table_contains(ms->seen, id))
		return true; /* logged already, live or by an earlier page */
	inner = mam_forwarded(res, &t, &jid);
	if (!inner)
		return true;
	{
		/* what xmppfs sent is in the log since it was written */
		g_autofree char *bare = jid_bare(jid);
		if (!strcmp(bare, acct_cfg(a)->jid) &&
		    g_str_has_prefix(xmpp_stanza_get_id(inner) ?: "", "xfs-"))
			return true;
	}
	{
		guint failures = a->log_failures;
		ms->replaying = true;
		mam_log_copy(a, inner, jid, t, id);
		ms->replaying = false;
		if (a->log_failures == failures)
			mam_note_logged(a, id);
	}
	return true;
}

/* The hold's deadline and the retry's (G_MAXINT64: none). */
static gint64 mam_due(Account *a)
{
	MamRun *mr = mam_run_of(a);

	return MIN(mr->hold_due ? mr->hold_due : G_MAXINT64,
		   a->log_retry_at ? a->log_retry_at : G_MAXINT64);
}

/* Every MAM_RETRY_S while something could not be logged: the rooms'
 * archives (muc_archive.c) and ours are asked again. */
static void retry_missing(Account *a, gint64 now)
{
	MamSeen *ms = mam_seen_of(a);
	MamRun *mr = mam_run_of(a);
	bool rooms;

	if (!a->log_retry_at || now < a->log_retry_at)
		return;
	rooms = muc_fill_gaps(a);
	if (!a->log_gap_since && !rooms) {
		a->log_retry_at = 0;
		return;
	}
	a->log_retry_at = now + MAM_RETRY_S * G_USEC_PER_SEC;
	/* offline, the connect's catch-up does it; one at a time */
	if (!a->log_gap_since || !acct_is_online(a) || ms->off ||
	    mr->query || mr->hold_due || !ms->last)
		return;
	xfs_info("%s: asking the archive again for what could not be logged",
		 acct_cfg(a)->jid);
	catch_up_from_last(a);
}

static void mam_tick(Account *a, gint64 now)
{
	MamRun *mr = mam_run_of(a);

	retry_missing(a, now);
	if (mr->hold_due && now >= mr->hold_due) {
		xfs_warn("%s: the archive did not answer in time: live "
			 "messages are logged without waiting for it",
			 acct_cfg(a)->jid);
		release_held(a);
	}
}

/* ---- the stanza chain's links and the feature (featureset.c) ---- */

/* A result of one of our archive queries (the catch-up; the outbox
 * check's go to mam_check.c). */
bool mam_result_in(Account *a, const In *in)
{
	return mam_message(a, in->st);
}

/* A chat message held while the catch-up runs: logged as a live one. */
static void log_held_chat(Account *a, xmpp_stanza_t *msg, gint64 t)
{
	const char *from = xmpp_stanza_get_from(msg);
	g_autoptr(Jid) jid = from ? jid_parse(from, NULL) : NULL;

	if (jid) /* (checked before it was held) */
		chat_live(a, msg, jid, t);
}

/* A chat message that came while the catch-up runs (or a log gap is
 * open): kept, and logged after it, in order. */
bool mam_hold_in(Account *a, const In *in)
{
	return mam_hold(a, in->st, in->time, log_held_chat);
}

const Feature archive_feature = {
	.name = "the catch-up from our archive (XEP-0313)",
	.state_size = sizeof(MamRun),
	.attach = mam_init,
	.detach = mam_free,
	.online = mam_after_presence,
	.offline = mam_disconnected,
	.due = mam_due,
	.tick = mam_tick,
};
