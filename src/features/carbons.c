/* carbons.c - carbons (XEP-0280): with them on, the server copies to us
 * what our other clients get (a message to the phone's full JID) and
 * send, as it happens; before, that reached the logs only at the next
 * catch-up.  The copies carry the archive id, so the catch-up (mam.c)
 * does not log them again; while it runs they wait in its hold.
 * Pool thread only (account_int.h). */
#include "features/featureset.h"
#include "features/mam_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "xmpp/dispatch.h"

#define NS_CARBONS "urn:xmpp:carbons:2"
#define CARBONS_TIMEOUT_S 30

/* The server's answer (await.c: from our own account); none (the
 * stream went, or no answer in time): carbons stay off. */
static void carbons_answer(Account *a, xmpp_stanza_t *iq, int err, void *d)
{
	MamRun *mr = mam_run_of(a);
	int res = await_errno(iq, err);

	mr->carbons_on = !res;
	if (res && res != -ECONNRESET)
		xfs_info("%s: the server does not copy our other clients' "
			 "messages to us (carbons: %s); they reach the logs "
			 "at the next catch-up", acct_cfg(a)->jid,
			 g_strerror(-res));
}

/* At a connect: ask the server to copy to us what our other clients get
 * and send (XEP-0280).  carbon_message takes such a copy. */
static void enable_carbons(Account *a)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL);
	xmpp_stanza_t *en = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(en, "enable");
	xmpp_stanza_set_ns(en, NS_CARBONS);
	xmpp_stanza_add_child(iq, en);
	xmpp_stanza_release(en);
	await_iq(a, iq, CARBONS_TIMEOUT_S, carbons_answer, NULL, NULL);
	xmpp_stanza_release(iq);
}

/* The stream is gone: the next one asks again (carbons_feature comes
 * before archive_feature, so this is still done before the catch-up's
 * hold is logged at a disconnect). */
static void carbons_off(Account *a)
{
	MamRun *mr = mam_run_of(a);

	mr->carbons_on = false;
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
		ifrom = acct_cfg(a)->jid;
	return ifrom ? jid_parse(ifrom, NULL) : NULL;
}

/* A carbon copy carbon_message checked, which came at @t. */
static void log_carbon(Account *a, xmpp_stanza_t *msg, gint64 t)
{
	MamSeen *ms = mam_seen_of(a);
	xmpp_stanza_t *wrap;
	bool sent = false;
	xmpp_stanza_t *inner = carbon_inner(msg, &wrap, &sent);
	g_autoptr(Jid) jid = inner ? carbon_sender(a, inner, sent) : NULL;

	if (!jid || mam_seen_live(a, inner))
		return;
	if (!mam_stanza_id(a, inner) && ms->last && !ms->off)
		return; /* without its archive id the next catch-up would log
			 * it again: that catch-up brings it */
	{
		guint failures = a->log_failures;
		mam_log_copy(a, inner, jid, t, mam_stanza_id(a, inner));
		if (a->log_failures == failures)
			mam_logged_live(a, inner);
	}
}

/* @msg is a carbon copy: handled (logged, held, or dropped), true. */
static bool carbon_message(Account *a, xmpp_stanza_t *msg)
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
	    strcmp((bare = jid_bare(outer)), acct_cfg(a)->jid)) {
		xfs_debug("%s: a carbon wrapper from '%s' ignored: only our "
			  "own account sends copies", acct_cfg(a)->jid,
			  from ? from : "");
		return false;
	}
	g_clear_pointer(&bare, g_free);
	if (!inner || !(jid = carbon_sender(a, inner, sent)))
		return true;
	/* a sent copy is ours, a received one another's */
	bare = jid_bare(jid);
	if (sent != !strcmp(bare, acct_cfg(a)->jid))
		return true;
	t = in_time(inner);
	if (!mam_hold(a, msg, t, log_carbon))
		log_carbon(a, msg, t);
	return true;
}

/* A carbon copy (XEP-0280) of what another client of ours got or sent. */
bool carbons_in(Account *a, const In *in)
{
	return carbon_message(a, in->st);
}

const Feature carbons_feature = {
	.name = "carbons (XEP-0280)",
	.online = enable_carbons,
	.offline = carbons_off,
};
