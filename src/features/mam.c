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
 * While mounted, carbons (XEP-0280, at the end of this file) bring what
 * our other clients get and send as it happens; the archive ids they
 * carry keep the next catch-up from logging it again.
 *
 * Part of the account layer (account_int.h): pool thread only.  Groupchat
 * is not here: a room sends its history at the join (muc.c). */
#include "features/featureset.h"
#include "xmpp/account_int.h"
#include "xmpp/dispatch.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/util.h"
#include "store/fdcache.h"
#include "store/outbox.h"
#include "xmpp/pool.h"

#define NS_RSM "http://jabber.org/protocol/rsm"
#define MAM_PAGE "100"
/* live messages logged since the last catch-up or checkpoint that make
 * it worth moving the position (see checkpoint) */
#define MAM_LIVE_BATCH 500
/* without carbons: the archive is asked again after a batch, at most
 * this often */
#define MAM_REASK_S 60
#define MAM_FROM_START "*"
/* how often a catch-up is tried again while a message could not be
 * logged (a full disk) */
#define MAM_RETRY_S 5

static int query_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud);
static int check_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud);
static void check_result(Account *a, xmpp_stanza_t *res);
static void check_clear(Account *a);

static void add_field(Account *a, xmpp_stanza_t *form, const char *var,
		      const char *value)
{
	xmpp_stanza_t *f = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(f, "field");
	xmpp_stanza_set_attribute(f, "var", var);
	acct_add_text_child(a, f, "value", value);
	xmpp_stanza_add_child_ex(form, f, 0);
}

char *mam_send_query(Account *a, const char *to, const char *start,
		     const char *after, const char *before, const char *max,
		     xmpp_handler answer)
{
	char *id = acct_next_id(a);
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", id);
	xmpp_stanza_t *q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *set = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, NS_MAM);
	xmpp_stanza_set_attribute(q, "queryid", id);
	if (start) {
		xmpp_stanza_t *form = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(form, "x");
		xmpp_stanza_set_ns(form, "jabber:x:data");
		xmpp_stanza_set_type(form, "submit");
		add_field(a, form, "FORM_TYPE", NS_MAM);
		add_field(a, form, "start", start);
		xmpp_stanza_add_child_ex(q, form, 0);
	}
	xmpp_stanza_set_name(set, "set");
	xmpp_stanza_set_ns(set, NS_RSM);
	acct_add_text_child(a, set, "max", max);
	if (before && !*before) {
		xmpp_stanza_t *b = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(b, "before"); /* the last page */
		xmpp_stanza_add_child_ex(set, b, 0);
	} else if (before) {
		acct_add_text_child(a, set, "before", before);
	} else if (after) {
		acct_add_text_child(a, set, "after", after);
	}
	xmpp_stanza_add_child_ex(q, set, 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	if (to)
		xmpp_stanza_set_to(iq, to);
	xmpp_id_handler_add(a->conn, answer, id, a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	return id;
}

/* An archive id we may write to the file and send back: printable ASCII
 * without XML's specials. */
static bool id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 256)
		return false;
	for (const char *p = id; *p; p++)
		if (*p <= ' ' || *p > '~' || strchr("<>&'\"", *p))
			return false;
	return true;
}

/* Load and free the archive state (@dir: DATA/JID).  The file: "last ID"
 * (or "last *": from the start of the archive), then "seen ID" for each
 * message logged since, live or from the archive. */
static void mam_init(Account *a, const char *dir)
{
	g_autofree char *text = NULL;
	struct stat st;

	a->mam_path = g_build_filename(dir, "mam", NULL);
	a->mam_file = fdfile_new(a->mam_path, O_WRONLY | O_APPEND | O_CREAT,
				 0600);
	a->mam_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    NULL);
	a->mam_returned = g_hash_table_new_full(g_str_hash, g_str_equal,
						g_free, NULL);
	g_queue_init(&a->mam_held);
	if (!g_file_get_contents(a->mam_path, &text, NULL, NULL))
		return;
	if (stat(a->mam_path, &st) == 0)
		a->mam_stamp = st.st_mtime;
	{
		g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
		for (char **l = lines; *l; l++) {
			if (g_str_has_prefix(*l, "last ") &&
			    (id_ok(*l + 5) || !strcmp(*l + 5, MAM_FROM_START))) {
				g_free(a->mam_last);
				a->mam_last = g_strdup(*l + 5);
			} else if (g_str_has_prefix(*l, "seen ") && id_ok(*l + 5)) {
				g_hash_table_add(a->mam_seen, g_strdup(*l + 5));
			}
		}
	}
}

static void mam_free(Account *a)
{
	/* (mam_held is empty: acct_free called mam_disconnected while the
	 * stanzas' context and the logs were still there) */
	g_clear_pointer(&a->mam_file, fdfile_free);
	g_clear_pointer(&a->mam_path, g_free);
	g_clear_pointer(&a->mam_last, g_free);
	g_clear_pointer(&a->mam_query, g_free);
	g_clear_pointer(&a->mam_seen, g_hash_table_unref);
	g_clear_pointer(&a->mam_returned, g_hash_table_unref);
	check_clear(a);
	g_clear_pointer(&a->mam_sent, g_hash_table_unref);
}

/* Write the whole file (atomically: a crash leaves the old one). */
static void save(Account *a)
{
	GString *out = g_string_new(NULL);
	GHashTableIter it;
	gpointer k;

	if (a->mam_last)
		g_string_append_printf(out, "last %s\n", a->mam_last);
	g_hash_table_iter_init(&it, a->mam_seen);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_string_append_printf(out, "seen %s\n", (char *)k);
	if (!g_file_set_contents_full(a->mam_path, out->str, out->len,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      NULL))
		xfs_warn("%s: cannot write %s", a->cfg->jid, a->mam_path);
	a->mam_stamp = g_get_real_time() / G_USEC_PER_SEC;
	g_string_free(out, TRUE);
	/* the file was renamed over: later appends go to the new one */
	fdfile_reopen(a->mam_file);
}

/* A message with archive id @id is in its log now: remembered (appended
 * to the file) so that no later catch-up logs it again. */
static void note_logged(Account *a, const char *id)
{
	g_autofree char *line = NULL;
	int fd, ret = 0;

	if (!id_ok(id) || !g_hash_table_add(a->mam_seen, g_strdup(id)))
		return;
	line = g_strdup_printf("seen %s\n", id);
	if ((fd = fdfile_get(a->mam_file)) >= 0) {
		ret = util_write_all(fd, line, strlen(line));
		fdfile_put(a->mam_file);
	}
	if (fd < 0 || ret < 0)
		xfs_warn("%s: cannot write %s", a->cfg->jid, a->mam_path);
	a->mam_stamp = g_get_real_time() / G_USEC_PER_SEC;
}

/* One page of the catch-up after @after (NULL: from the start). */
static void catch_up(Account *a, const char *after, const char *start,
		     bool probe)
{
	/* what this one cannot log keeps the position where it is */
	a->mam_incomplete = false;
	g_free(a->mam_query);
	a->mam_query = mam_send_query(a, NULL, start, after, probe ? "" : NULL,
				      probe ? "1" : MAM_PAGE, query_answer);
	a->mam_probe = probe;
	a->mam_live_count = 0;
	a->mam_asked_at = g_get_monotonic_time();
}

static void catch_up_from_last(Account *a)
{
	char start[RECORD_TIME_LEN + 1];

	g_hash_table_remove_all(a->mam_returned);
	if (!a->mam_gap_by_time) {
		catch_up(a,
			 strcmp(a->mam_last, MAM_FROM_START) ? a->mam_last : NULL,
			 NULL, false);
		return;
	}
	/* a message that could not be logged before we had a position:
	 * from a minute before it, by time (what is logged since is in
	 * mam_seen) */
	record_format_time(MAX(a->log_gap_since - 60, (gint64)0), start);
	catch_up(a, NULL, start, false);
	a->mam_by_time = true;
}

/* ---- the hold ----
 *
 * The offline copies come right after our presence, before the answer
 * to the catch-up; logged at once, they would go before older messages
 * the archive returns (what the phone took).  So while the catch-up of a
 * connect runs, live chat messages wait, and are logged after it, those
 * the archive returned skipped.  Never longer than MAM_HOLD_TIMEOUT_US,
 * never more than MAM_HOLD_MAX of them. */

#define MAM_HOLD_TIMEOUT_US (20 * G_USEC_PER_SEC)
#define MAM_HOLD_MAX 10000

typedef struct {
	xmpp_stanza_t *msg;
	gint64 t;    /* when it came (unix s), for a message without delay */
	bool carbon; /* a carbon copy, else a chat message */
} Held;

static void log_carbon(Account *a, xmpp_stanza_t *msg, gint64 t);

static void release_held(Account *a)
{
	Held *h;

	a->mam_hold_due = 0;
	/* what these log must not start a catch-up (the batch of 500)
	 * while caught_up still has the ids of this one to forget */
	a->mam_releasing = true;
	while ((h = g_queue_pop_head(&a->mam_held))) {
		const char *from = xmpp_stanza_get_from(h->msg);
		g_autoptr(Jid) jid = from ? jid_parse(from, NULL) : NULL;
		if (h->carbon)
			log_carbon(a, h->msg, h->t);
		else if (jid) /* (checked before it was held) */
			chat_live(a, h->msg, jid, h->t);
		xmpp_stanza_release(h->msg);
		g_free(h);
	}
	a->mam_releasing = false;
}

/* A live chat message (@carbon: a carbon copy) while the catch-up of a
 * connect runs: kept with @t, the time it came (true), and logged once the
 * catch-up is done, so that the log keeps the order of arrival (the
 * offline copies come before the query's answer).  mam_disconnected
 * logs them at once. */
static bool mam_hold(Account *a, xmpp_stanza_t *msg, bool carbon, gint64 t)
{
	Held *h;

	/* also while a message could not be logged: the next ones wait for
	 * the catch-up that brings it, so that the log keeps their order */
	if (!a->mam_hold_due && !a->log_gap_since)
		return false;
	h = g_new0(Held, 1);
	h->msg = xmpp_stanza_clone(msg);
	h->carbon = carbon;
	h->t = t;
	g_queue_push_tail(&a->mam_held, h);
	if (a->mam_held.length >= MAM_HOLD_MAX)
		release_held(a);
	return true;
}

static void mam_disconnected(Account *a)
{
	a->carbons_on = false;
	a->mam_stream_caught_up = false;
	release_held(a);
}

/* At a connect, right after the initial presence (which brings the
 * offline messages): fetch what the archive has after the last message
 * we saw; when we know of none yet, only learn the archive's newest id. */
static void mam_after_presence(Account *a)
{
	POOL_ASSERT();
	g_clear_pointer(&a->mam_query, g_free); /* the link's that went */
	if (a->mam_off)
		return;
	if (a->mam_last) {
		catch_up_from_last(a);
		a->mam_hold_due = g_get_monotonic_time() + MAM_HOLD_TIMEOUT_US;
	} else {
		catch_up(a, NULL, NULL, true);
	}
}

/* The catch-up reached the end: everything up to @last is in the logs;
 * of the ids seen, only those it did not return can be newer. */
static void caught_up(Account *a, const char *last)
{
	GHashTableIter it;
	gpointer k;
	bool by_time = a->mam_by_time;

	a->mam_by_time = false;
	/* first, while the ids it returned are still in mam_seen */
	release_held(a);
	if (a->mam_incomplete) {
		/* something could not be logged: the position stays where it
		 * was, so the next catch-up brings it again; what was logged
		 * stays in mam_seen, so it is not logged twice */
		g_hash_table_remove_all(a->mam_returned);
		if (!a->mam_last || a->mam_probe) {
			a->mam_gap_by_time = true;
			g_free(a->mam_last);
			a->mam_last = g_strdup(last ? last : MAM_FROM_START);
		}
		save(a);
		return;
	}
	a->mam_stream_caught_up = true;
	if (by_time)
		a->mam_gap_by_time = false;
	if (last) {
		g_free(a->mam_last);
		a->mam_last = g_strdup(last);
	} else if (!a->mam_last) {
		a->mam_last = g_strdup(MAM_FROM_START); /* an empty archive */
	}
	g_hash_table_iter_init(&it, a->mam_returned);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_hash_table_remove(a->mam_seen, k);
	g_hash_table_remove_all(a->mam_returned);
	/* what stays is newer than @last, or older (logged before the first
	 * catch-up): never returned again; a bound keeps the file small */
	if (g_hash_table_size(a->mam_seen) > 5 * MAM_LIVE_BATCH &&
	    !a->log_gap_since)
		g_hash_table_remove_all(a->mam_seen);
	save(a);
	if (a->log_gap_since && !a->mam_gap_by_time) {
		a->log_gap_since = 0;
		if (!muc_gaps(a))
			acct_log_clear(a);
	}
}

/* Our id fell out of the archive (expired): ask for what came since the
 * file was last written instead. */
static void restart_by_time(Account *a)
{
	char start[RECORD_TIME_LEN + 1];

	record_format_time(MAX(a->mam_stamp, (gint64)60) - 60, start);
	g_clear_pointer(&a->mam_last, g_free);
	g_hash_table_remove_all(a->mam_returned);
	xfs_info("%s: the archive no longer has our last message; asking for "
		 "everything since %s", a->cfg->jid, start);
	catch_up(a, NULL, start, false);
	a->mam_restarted = true;
}

/* The @which ("first" or "last") id on a page (new; NULL for none or one
 * we would not keep), and the answer's <fin/> in @fin (NULL: none). */
static char *page_id(xmpp_stanza_t *iq, const char *which,
		     xmpp_stanza_t **fin)
{
	xmpp_stanza_t *set;
	char *id;

	*fin = xmpp_stanza_get_child_by_name_and_ns(iq, "fin", NS_MAM);
	set = *fin ? xmpp_stanza_get_child_by_name_and_ns(*fin, "set", NS_RSM)
		   : NULL;
	id = set ? acct_child_text(set, which) : NULL;
	if (id && !id_ok(id))
		g_clear_pointer(&id, g_free);
	return id;
}

char *mam_page_end(xmpp_stanza_t *iq, bool *complete)
{
	xmpp_stanza_t *fin;
	char *last = page_id(iq, "last", &fin);

	*complete = !fin || !g_strcmp0(xmpp_stanza_get_attribute(fin, "complete"),
				       "true");
	return last;
}

/* The end of a page: the next one, or done. */
static int query_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *type = xmpp_stanza_get_type(iq);
	bool complete;
	g_autofree char *last = mam_page_end(iq, &complete);
	bool probe = a->mam_probe;

	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !acct_from_self(a, iq))
		return 1; /* not the answer: keep waiting for it */
	if (g_strcmp0(xmpp_stanza_get_id(iq), a->mam_query))
		return 0; /* of an earlier stream */
	g_clear_pointer(&a->mam_query, g_free);
	if (!type || strcmp(type, "result")) {
		int err = acct_error_errno(iq);
		g_autofree char *ev = acct_error_event_text(iq, "archive");
		if (err == ENOENT && !probe && !a->mam_restarted) {
			restart_by_time(a);
			return 0;
		}
		/* no archive here (or not for us): live and offline
		 * messages are all there is, this time */
		a->mam_off = err == ENOSYS || err == EHOSTUNREACH;
		release_held(a);
		if (a->mam_off)
			xfs_info("%s: the server keeps no archive for us: "
				 "messages another client took while we were "
				 "away are not fetched", a->cfg->jid);
		else
			acct_event(a, "error", a->cfg->jid, ev);
		return 0;
	}
	if (probe) {
		caught_up(a, last);
		return 0;
	}
	if (last && !complete) {
		catch_up(a, last, NULL, false);
		return 0;
	}
	a->mam_restarted = false;
	caught_up(a, last);
	return 0;
}

/* The archive id the server gave a live message, when it is ours. */
static const char *stanza_id(Account *a, xmpp_stanza_t *msg)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(msg); c;
	     c = xmpp_stanza_get_next(c)) {
		const char *by;
		g_autofree char *bare = NULL;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "stanza-id") ||
		    g_strcmp0(xmpp_stanza_get_ns(c), NS_SID))
			continue;
		by = xmpp_stanza_get_attribute(c, "by");
		bare = by ? jid_normalize_bare(by, NULL) : NULL;
		if (bare && !strcmp(bare, a->cfg->jid))
			return xmpp_stanza_get_attribute(c, "id");
	}
	return NULL;
}

bool mam_seen_live(Account *a, xmpp_stanza_t *msg)
{
	const char *id = stanza_id(a, msg);

	return id && g_hash_table_contains(a->mam_seen, id);
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
	g_free(a->mam_last);
	a->mam_last = g_strdup(id);
	g_hash_table_remove_all(a->mam_seen);
	a->mam_live_count = 0;
	save(a);
}

void mam_logged_live(Account *a, xmpp_stanza_t *msg)
{
	const char *id = stanza_id(a, msg);

	if (!id)
		return;
	note_logged(a, id);
	if (++a->mam_live_count < MAM_LIVE_BATCH || !a->mam_last ||
	    a->mam_off || a->mam_query || a->mam_releasing || a->mam_hold_due ||
	    a->log_gap_since || a->mam_gap_by_time || !a->mam_stream_caught_up)
		return;
	if (a->carbons_on) {
		checkpoint(a, id);
		return;
	}
	/* without carbons, what went only to our other clients (a message
	 * to the phone's full JID, one we sent from it) is in the archive
	 * only: asked for now and then */
	if (g_get_monotonic_time() - a->mam_asked_at >=
	    MAM_REASK_S * G_USEC_PER_SEC)
		catch_up_from_last(a);
}

/* A copy of a message one of our other clients got or sent (@from: its
 * sender), from the archive or a carbon: logged as if it had come here,
 * but what belongs to rooms is nobody's conversation. */
static void log_copy(Account *a, xmpp_stanza_t *inner, const Jid *from,
		     gint64 t)
{
	g_autofree char *bare = jid_bare(from);

	if (!strcmp(bare, a->cfg->jid)) {
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
	chat_log(a, inner, from, t, true);
}

xmpp_stanza_t *mam_forwarded(xmpp_stanza_t *res, gint64 *t, Jid **from)
{
	xmpp_stanza_t *fwd =
		xmpp_stanza_get_child_by_name_and_ns(res, "forwarded", NS_FORWARD);
	xmpp_stanza_t *inner =
		fwd ? xmpp_stanza_get_child_by_name(fwd, "message") : NULL;
	const char *ifrom = inner ? xmpp_stanza_get_from(inner) : NULL;
	xmpp_stanza_t *delay;

	*from = ifrom ? jid_parse(ifrom, NULL) : NULL;
	if (!*from)
		return NULL;
	delay = xmpp_stanza_get_child_by_name_and_ns(fwd, "delay",
						     "urn:xmpp:delay");
	if (!delay || !record_parse_stamp(
			      xmpp_stanza_get_attribute(delay, "stamp"), t))
		*t = in_time(inner);
	return inner;
}

/* @msg is a result of our query: handled, true. */
static bool mam_message(Account *a, xmpp_stanza_t *msg)
{
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
	if (a->mam_check &&
	    !g_strcmp0(xmpp_stanza_get_attribute(res, "queryid"), a->mam_check)) {
		check_result(a, res);
		return true;
	}
	if (!a->mam_query ||
	    g_strcmp0(xmpp_stanza_get_attribute(res, "queryid"), a->mam_query))
		return true;
	id = xmpp_stanza_get_attribute(res, "id");
	if (!id_ok(id) || a->mam_probe)
		return true;
	g_hash_table_add(a->mam_returned, g_strdup(id));
	if (g_hash_table_contains(a->mam_seen, id))
		return true; /* logged already, live or by an earlier page */
	inner = mam_forwarded(res, &t, &jid);
	if (!inner)
		return true;
	{
		/* what xmppfs sent is in the log since it was written */
		g_autofree char *bare = jid_bare(jid);
		if (!strcmp(bare, a->cfg->jid) &&
		    g_str_has_prefix(xmpp_stanza_get_id(inner) ?: "", "xfs-"))
			return true;
	}
	{
		guint failures = a->log_failures;
		a->mam_replaying = true;
		log_copy(a, inner, jid, t);
		a->mam_replaying = false;
		if (a->log_failures == failures)
			note_logged(a, id);
	}
	return true;
}

/* ---- the outbox check ----
 *
 * What a lost stream sent and never saw acknowledged (or what an earlier
 * mount left) may have reached the server all the same.  Before it is
 * sent again, our archive is asked which of it the server has: newest
 * first (RSM <before/>), back to when the oldest of it was sent (for an
 * earlier mount's: accepted, as its id says) less MAM_CHECK_SKEW_S.
 *
 * This mount sends one message only once every message sent before it
 * was acknowledged or sorted by such a check (acct_flush_outq holds the
 * rest meanwhile), and a server handles a stream's stanzas in order: so
 * the server has handled our messages in the order we sent them
 * (OutMsg.sent_no), and its archive holds them in that order.  The first
 * of this mount's messages the check meets on its way back is the last
 * one the server handled: those sent before it reached the server (as an
 * acknowledgement of it would have said), those after it did not.  So
 * the check usually ends on its first page.  An earlier mount's messages
 * carry no such number: each is looked for by its id (or origin-id). */

#define MAM_CHECK_TIMEOUT_US (20 * G_USEC_PER_SEC)
#define MAM_CHECK_SKEW_S 120 /* the server's clock against ours */

static void check_done(Account *a, bool told)
{
	/* what the newest one found says of those sent before it */
	for (GList *l = told ? a->held.head : NULL; l; l = l->next) {
		const OutMsg *m = l->data;
		if (m->sent_no && m->sent_no <= a->mam_check_newest)
			g_hash_table_add(a->mam_sent, g_strdup(m->item->id));
	}
	/* (the id table points into held: cleared before it is released) */
	check_clear(a);
	acct_release_held(a, told ? a->mam_sent : NULL);
	if (a->mam_sent)
		g_hash_table_remove_all(a->mam_sent);
}

/* When the oldest held message went out (0: none tells). */
static gint64 held_since(Account *a)
{
	gint64 t = G_MAXINT64;

	for (GList *l = a->held.head; l; l = l->next) {
		const OutMsg *m = l->data;
		gint64 it = m->sent_at ? m->sent_at : outbox_item_time(m->item);
		if (it)
			t = MIN(t, it);
	}
	return t == G_MAXINT64 ? 0 : t;
}

static void check_page(Account *a, const char *before)
{
	char start[RECORD_TIME_LEN + 1];

	record_format_time(MAX(held_since(a) - MAM_CHECK_SKEW_S, (gint64)0),
			   start);
	g_free(a->mam_check);
	a->mam_check = mam_send_query(a, NULL, start, NULL, before, MAM_PAGE,
				      check_answer);
	a->mam_check_due = g_get_monotonic_time() + MAM_CHECK_TIMEOUT_US;
}

/* Every held message is found, or its fate known (see above). */
static bool check_resolved(Account *a)
{
	for (GList *l = a->held.head; l; l = l->next) {
		const OutMsg *m = l->data;
		if (!g_hash_table_contains(a->mam_sent, m->item->id) &&
		    !(m->sent_no && a->mam_check_newest))
			return false;
	}
	return true;
}

/* At a connect: ask the archive which of the held messages (a->held)
 * the server already has, then acct_release_held.  At once when it
 * cannot tell. */
static void mam_check_outbox(Account *a)
{
	POOL_ASSERT();
	check_clear(a);
	if (!a->held.length)
		return;
	if (a->mam_off || !held_since(a)) {
		xfs_warn("%s: %u unacknowledged messages are sent again without "
			 "asking the archive (%s): the server may get some "
			 "twice", a->cfg->jid, a->held.length,
			 a->mam_off ? "the server keeps none for us"
				    : "they carry no time");
		acct_release_held(a, NULL);
		return;
	}
	if (!a->mam_sent)
		a->mam_sent = g_hash_table_new_full(g_str_hash, g_str_equal,
						    g_free, NULL);
	g_hash_table_remove_all(a->mam_sent);
	a->mam_check_ids = g_hash_table_new(g_str_hash, g_str_equal);
	a->mam_check_newest = 0;
	for (GList *l = a->held.head; l; l = l->next) {
		OutMsg *m = l->data;
		g_hash_table_insert(a->mam_check_ids, m->item->id, m);
	}
	check_page(a, "");
}

/* One of ours in the archive: its id, or its origin-id (XEP-0359). */
static const OutMsg *held_of(Account *a, xmpp_stanza_t *inner)
{
	xmpp_stanza_t *oid =
		xmpp_stanza_get_child_by_name_and_ns(inner, "origin-id", NS_SID);
	const char *ids[] = {xmpp_stanza_get_id(inner),
			     oid ? xmpp_stanza_get_attribute(oid, "id") : NULL};
	const OutMsg *m;

	for (guint i = 0; i < G_N_ELEMENTS(ids); i++)
		if (ids[i] && (m = g_hash_table_lookup(a->mam_check_ids, ids[i])))
			return m;
	return NULL;
}

static void check_result(Account *a, xmpp_stanza_t *res)
{
	xmpp_stanza_t *fwd =
		xmpp_stanza_get_child_by_name_and_ns(res, "forwarded", NS_FORWARD);
	xmpp_stanza_t *inner = fwd ? xmpp_stanza_get_child_by_name(fwd, "message")
				   : NULL;
	const char *from = inner ? xmpp_stanza_get_from(inner) : NULL;
	g_autoptr(Jid) jid = from ? jid_parse(from, NULL) : NULL;
	g_autofree char *bare = jid ? jid_bare(jid) : NULL;
	const OutMsg *m;

	if (!bare || strcmp(bare, a->cfg->jid) || !(m = held_of(a, inner)))
		return;
	g_hash_table_add(a->mam_sent, g_strdup(m->item->id));
	a->mam_check_newest = MAX(a->mam_check_newest, m->sent_no);
}

static int check_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *type = xmpp_stanza_get_type(iq);
	bool complete;
	xmpp_stanza_t *fin;
	g_autofree char *last = mam_page_end(iq, &complete);
	g_autofree char *first = page_id(iq, "first", &fin);

	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !acct_from_self(a, iq))
		return 1; /* not the answer: keep waiting for it */
	if (g_strcmp0(xmpp_stanza_get_id(iq), a->mam_check))
		return 0; /* of an earlier stream, or given up on */
	if (!type || strcmp(type, "result")) {
		check_done(a, false);
		return 0;
	}
	if (first && !complete && !check_resolved(a)) {
		check_page(a, first);
		return 0;
	}
	check_done(a, true);
	return 0;
}

static void check_clear(Account *a)
{
	g_clear_pointer(&a->mam_check, g_free);
	a->mam_check_due = 0;
	g_clear_pointer(&a->mam_check_ids, g_hash_table_unref);
}

/* The check's deadline (G_MAXINT64: none), and its end when it passed:
 * the held messages go out unchecked rather than never. */
static gint64 mam_due(Account *a)
{
	return MIN(MIN(a->mam_check_due ? a->mam_check_due : G_MAXINT64,
		       a->mam_hold_due ? a->mam_hold_due : G_MAXINT64),
		   a->log_retry_at ? a->log_retry_at : G_MAXINT64);
}

/* A message could not be logged: the catch-up running now must not move
 * the position past it; one runs again every MAM_RETRY_S until all is
 * logged. */
void mam_log_failed(Account *a, const char *where, int err)
{
	if (!a->log_gap_since)
		a->log_gap_since = g_get_real_time() / G_USEC_PER_SEC;
	acct_log_note(a, where, err);
	a->mam_incomplete = true;
	if (!a->mam_last || a->mam_probe)
		a->mam_gap_by_time = true;
}

/* Every MAM_RETRY_S while something could not be logged: the rooms'
 * archives (muc_archive.c) and ours are asked again. */
static void retry_missing(Account *a, gint64 now)
{
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
	if (!a->log_gap_since || !acct_is_online(a) || a->mam_off ||
	    a->mam_query || a->mam_hold_due || !a->mam_last)
		return;
	xfs_info("%s: asking the archive again for what could not be logged",
		 a->cfg->jid);
	catch_up_from_last(a);
}

static void mam_tick(Account *a, gint64 now)
{
	retry_missing(a, now);
	if (a->mam_hold_due && now >= a->mam_hold_due) {
		xfs_warn("%s: the archive did not answer in time: live "
			 "messages are logged without waiting for it",
			 a->cfg->jid);
		release_held(a);
	}
	if (!a->mam_check_due || now < a->mam_check_due)
		return;
	if (!acct_is_online(a)) {
		check_clear(a); /* the link went: the next connect asks again */
		return;
	}
	xfs_warn("%s: the archive did not answer in time: %u unacknowledged "
		 "messages are sent again unchecked (the server may get some "
		 "twice)", a->cfg->jid, a->held.length);
	check_done(a, false);
}

/* ---- carbons (XEP-0280) ----
 *
 * With carbons on, the server copies to us what our other clients get
 * (a message to the phone's full JID) and send, as it happens; before,
 * that reached the logs only at the next catch-up.  The copies carry the
 * archive id, so the catch-up does not log them again. */

#define NS_CARBONS "urn:xmpp:carbons:2"

static int carbons_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;

	(void)conn;
	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !acct_from_self(a, iq))
		return 1; /* not the answer: keep waiting for it */
	a->carbons_on = !g_strcmp0(xmpp_stanza_get_type(iq), "result");
	if (!a->carbons_on)
		xfs_info("%s: the server does not copy our other clients' "
			 "messages to us (carbons: %s); they reach the logs "
			 "at the next catch-up", a->cfg->jid,
			 g_strerror(acct_error_errno(iq)));
	return 0;
}

/* At a connect: ask the server to copy to us what our other clients get
 * and send (XEP-0280).  mam_carbon takes such a copy: handled, true. */
static void mam_enable_carbons(Account *a)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", "xfs-carbons");
	xmpp_stanza_t *en = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(en, "enable");
	xmpp_stanza_set_ns(en, NS_CARBONS);
	xmpp_stanza_add_child(iq, en);
	xmpp_stanza_release(en);
	xmpp_id_handler_add(a->conn, carbons_answer, "xfs-carbons", a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
}

/* The copied message of a carbon (NULL if it has none); *@wrap: its
 * <received/> or <sent/> (NULL: @msg is no carbon), *@sent: which. */
static xmpp_stanza_t *carbon_inner(xmpp_stanza_t *msg, xmpp_stanza_t **wrap,
				   bool *sent)
{
	xmpp_stanza_t *fwd;

	*wrap = NULL;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(msg); c && !*wrap;
	     c = xmpp_stanza_get_next(c)) {
		const char *name = xmpp_stanza_get_name(c);
		if (xmpp_stanza_is_tag(c) &&
		    !g_strcmp0(xmpp_stanza_get_ns(c), NS_CARBONS) &&
		    (!strcmp(name, "received") || !strcmp(name, "sent"))) {
			*wrap = c;
			*sent = !strcmp(name, "sent");
		}
	}
	fwd = *wrap ? xmpp_stanza_get_child_by_name_and_ns(*wrap, "forwarded",
							   NS_FORWARD)
		    : NULL;
	return fwd ? xmpp_stanza_get_child_by_name(fwd, "message") : NULL;
}

/* The sender of a carbon's message (a sent one may leave it out). */
static Jid *carbon_sender(Account *a, xmpp_stanza_t *inner, bool sent)
{
	const char *ifrom = xmpp_stanza_get_from(inner);

	if (!ifrom && sent)
		ifrom = a->cfg->jid;
	return ifrom ? jid_parse(ifrom, NULL) : NULL;
}

static bool mam_carbon(Account *a, xmpp_stanza_t *msg)
{
	const char *from = xmpp_stanza_get_from(msg);
	xmpp_stanza_t *wrap, *inner;
	g_autoptr(Jid) outer = from ? jid_parse(from, NULL) : NULL;
	g_autoptr(Jid) jid = NULL;
	g_autofree char *bare = NULL;
	bool sent = false;
	gint64 t;

	inner = carbon_inner(msg, &wrap, &sent);
	if (!wrap)
		return false;
	/* only our own account copies to us (XEP-0280 §11): anyone else's
	 * "copy" would forge a message from whoever it names.  Their
	 * message is theirs, handled as such; the wrapper means nothing. */
	if (!outer || outer->resource ||
	    strcmp((bare = jid_bare(outer)), a->cfg->jid)) {
		xfs_debug("%s: a carbon wrapper from '%s' ignored: only our "
			  "own account sends copies", a->cfg->jid,
			  from ? from : "");
		return false;
	}
	g_clear_pointer(&bare, g_free);
	if (!inner || !(jid = carbon_sender(a, inner, sent)))
		return true;
	/* a sent copy is ours, a received one another's */
	bare = jid_bare(jid);
	if (sent != !strcmp(bare, a->cfg->jid))
		return true;
	t = in_time(inner);
	if (!mam_hold(a, msg, true, t))
		log_carbon(a, msg, t);
	return true;
}

/* A carbon copy mam_carbon checked, which came at @t. */
static void log_carbon(Account *a, xmpp_stanza_t *msg, gint64 t)
{
	xmpp_stanza_t *wrap;
	bool sent = false;
	xmpp_stanza_t *inner = carbon_inner(msg, &wrap, &sent);
	g_autoptr(Jid) jid = inner ? carbon_sender(a, inner, sent) : NULL;

	if (!jid || mam_seen_live(a, inner))
		return;
	if (!stanza_id(a, inner) && a->mam_last && !a->mam_off)
		return; /* without its archive id the next catch-up would log
			 * it again: that catch-up brings it */
	{
		guint failures = a->log_failures;
		log_copy(a, inner, jid, t);
		if (a->log_failures == failures)
			mam_logged_live(a, inner);
	}
}

/* ---- the features (featureset.c) ---- */

/* A result of one of our archive queries (the catch-up, the outbox
 * check). */
bool mam_result_in(Account *a, const In *in)
{
	return mam_message(a, in->st);
}

/* A carbon copy (XEP-0280) of what another client of ours got or sent. */
bool carbons_in(Account *a, const In *in)
{
	return mam_carbon(a, in->st);
}

/* A chat message that came while the catch-up runs (or a log gap is
 * open): kept, and logged after it, in order. */
bool mam_hold_in(Account *a, const In *in)
{
	return mam_hold(a, in->st, false, in->time);
}

const Feature carbons_feature = {
	.name = "carbons (XEP-0280)",
	.online = mam_enable_carbons,
};

const Feature archive_feature = {
	.name = "the catch-up from our archive (XEP-0313)",
	.attach = mam_init,
	.detach = mam_free,
	.online = mam_after_presence,
	.offline = mam_disconnected,
	.due = mam_due,
	.tick = mam_tick,
};

const Feature outbox_check_feature = {
	.name = "what a lost stream left in the outbox, checked (XEP-0313)",
	.online = mam_check_outbox,
};
