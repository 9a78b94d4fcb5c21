/* mam_check.c - what a lost stream left in the outbox, checked against
 * our archive (XEP-0313) before it goes out again (outbox_check_feature).
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
 * carry no such number: each is looked for by its id (or origin-id).
 *
 * The check's results reach it through the catch-up's link of the
 * stanza chain (mam.c), which it lies below.  Pool thread only
 * (account_int.h). */
#include "features/featureset.h"
#include "features/mam_int.h"

#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "store/outbox.h"
#include "xmpp/pool.h"

#define MAM_CHECK_TIMEOUT_US (20 * G_USEC_PER_SEC)
#define MAM_CHECK_SKEW_S 120 /* the server's clock against ours */

static void check_answer(Account *a, xmpp_stanza_t *iq, int err,
			 void *qid);
static void check_clear(Account *a);

static void check_done(Account *a, bool told)
{
	MamCheck *mc = mam_check_of(a);

	/* what the newest one found says of those sent before it */
	for (GList *l = told ? a->held.head : NULL; l; l = l->next) {
		const OutMsg *m = l->data;
		if (m->sent_no && m->sent_no <= mc->newest)
			g_hash_table_add(mc->sent, g_strdup(m->item->id));
	}
	/* (the id table points into held: cleared before it is released) */
	check_clear(a);
	acct_release_held(a, told ? mc->sent : NULL);
	if (mc->sent)
		g_hash_table_remove_all(mc->sent);
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
	MamCheck *mc = mam_check_of(a);
	char start[RECORD_TIME_LEN + 1];

	record_format_time(MAX(held_since(a) - MAM_CHECK_SKEW_S, (gint64)0),
			   start);
	g_free(mc->query);
	mc->query = mam_send_query(a, NULL, start, NULL, before, MAM_PAGE,
				   check_answer);
	mc->due = g_get_monotonic_time() + MAM_CHECK_TIMEOUT_US;
}

/* Every held message is found, or its fate known (see above). */
static bool check_resolved(Account *a)
{
	MamCheck *mc = mam_check_of(a);

	for (GList *l = a->held.head; l; l = l->next) {
		const OutMsg *m = l->data;
		if (!g_hash_table_contains(mc->sent, m->item->id) &&
		    !(m->sent_no && mc->newest))
			return false;
	}
	return true;
}

/* At a connect: ask the archive which of the held messages (a->held)
 * the server already has, then acct_release_held.  At once when it
 * cannot tell. */
static void mam_check_outbox(Account *a)
{
	MamSeen *ms = mam_seen_of(a);
	MamCheck *mc = mam_check_of(a);

	POOL_ASSERT();
	check_clear(a);
	if (!a->held.length)
		return;
	if (ms->off || !held_since(a)) {
		xfs_warn("%s: %u unacknowledged messages are sent again without "
			 "asking the archive (%s): the server may get some "
			 "twice", acct_cfg(a)->jid, a->held.length,
			 ms->off ? "the server keeps none for us"
				 : "they carry no time");
		acct_release_held(a, NULL);
		return;
	}
	if (!mc->sent)
		mc->sent = g_hash_table_new_full(g_str_hash, g_str_equal,
						 g_free, NULL);
	g_hash_table_remove_all(mc->sent);
	mc->ids = g_hash_table_new(g_str_hash, g_str_equal);
	mc->newest = 0;
	for (GList *l = a->held.head; l; l = l->next) {
		OutMsg *m = l->data;
		g_hash_table_insert(mc->ids, m->item->id, m);
	}
	check_page(a, "");
}

/* One of ours in the archive: its id, or its origin-id (XEP-0359). */
static const OutMsg *held_of(Account *a, xmpp_stanza_t *inner)
{
	MamCheck *mc = mam_check_of(a);
	xmpp_stanza_t *oid =
		xmpp_stanza_get_child_by_name_and_ns(inner, "origin-id", NS_SID);
	const char *ids[] = {xmpp_stanza_get_id(inner),
			     oid ? xmpp_stanza_get_attribute(oid, "id") : NULL};
	const OutMsg *m;

	for (guint i = 0; i < G_N_ELEMENTS(ids); i++)
		if (ids[i] && (m = g_hash_table_lookup(mc->ids, ids[i])))
			return m;
	return NULL;
}

void mam_check_result(Account *a, xmpp_stanza_t *res)
{
	MamCheck *mc = mam_check_of(a);
	xmpp_stanza_t *fwd =
		xmpp_stanza_get_child_by_name_and_ns(res, "forwarded", NS_FORWARD);
	xmpp_stanza_t *inner = fwd ? xmpp_stanza_get_child_by_name(fwd, "message")
				   : NULL;
	const char *from = inner ? xmpp_stanza_get_from(inner) : NULL;
	g_autoptr(Jid) jid = from ? jid_parse(from, NULL) : NULL;
	g_autofree char *bare = jid ? jid_bare(jid) : NULL;
	const OutMsg *m;

	if (!bare || strcmp(bare, acct_cfg(a)->jid) || !(m = held_of(a, inner)))
		return;
	g_hash_table_add(mc->sent, g_strdup(m->item->id));
	mc->newest = MAX(mc->newest, m->sent_no);
}

/* A page of the check's answer (await.c: from our own account). */
static void check_answer(Account *a, xmpp_stanza_t *iq, int err, void *qid)
{
	MamCheck *mc = mam_check_of(a);
	const char *type;
	bool complete;
	xmpp_stanza_t *fin;
	g_autofree char *last = NULL, *first = NULL;

	/* none: the check's own deadline (mam_check_due) acts */
	if (!iq || g_strcmp0(qid, mc->query))
		return; /* or of an earlier stream, or given up on */
	type = xmpp_stanza_get_type(iq);
	last = mam_page_end(iq, &complete);
	first = mam_page_id(iq, "first", &fin);
	if (!type || strcmp(type, "result")) {
		check_done(a, false);
		return;
	}
	if (first && !complete && !check_resolved(a)) {
		check_page(a, first);
		return;
	}
	check_done(a, true);
}

static void check_clear(Account *a)
{
	MamCheck *mc = mam_check_of(a);

	g_clear_pointer(&mc->query, g_free);
	mc->due = 0;
	g_clear_pointer(&mc->ids, g_hash_table_unref);
}

/* The check's deadline (G_MAXINT64: none), and its end when it passed:
 * the held messages go out unchecked rather than never. */
static gint64 check_due(Account *a)
{
	MamCheck *mc = mam_check_of(a);

	return mc->due ? mc->due : G_MAXINT64;
}

static void check_tick(Account *a, gint64 now)
{
	MamCheck *mc = mam_check_of(a);

	if (!mc->due || now < mc->due)
		return;
	if (!acct_is_online(a)) {
		check_clear(a); /* the link went: the next connect asks again */
		return;
	}
	xfs_warn("%s: the archive did not answer in time: %u unacknowledged "
		 "messages are sent again unchecked (the server may get some "
		 "twice)", acct_cfg(a)->jid, a->held.length);
	check_done(a, false);
}

static void check_free(Account *a)
{
	MamCheck *mc = mam_check_of(a);

	check_clear(a);
	g_clear_pointer(&mc->sent, g_hash_table_unref);
}

const Feature outbox_check_feature = {
	.name = "what a lost stream left in the outbox, checked (XEP-0313)",
	.state_size = sizeof(MamCheck),
	.detach = check_free,
	.online = mam_check_outbox,
	.due = check_due,
	.tick = check_tick,
};
