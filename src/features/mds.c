/* mds.c - displayed-sync (XEP-0490): what the user read, the same on
 * every client of the account, so the phone stops notifying about what
 * was read here, and the reverse.
 *
 * Each conversation's read position is an item of the PEP node
 * urn:xmpp:mds:displayed:0 (item id: the contact's bare JID), naming the
 * last message read by the stanza-id our archive gave it (log.ids SID);
 * a room's, by the id the room gave it.
 * A write to `read` publishes it (node private: whitelist access, items
 * kept); a notification from another client of ours, and the node's items
 * fetched at each connect, move our positions forward (receipts.c).
 * Pool thread, but mds_publish (any). */
#include "features/mds.h"
#include "features/featureset.h"
#include "features/pep.h"
#include "features/receipts.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "xmpp/await.h"
#include "xmpp/dispatch.h"

#define NS_MDS "urn:xmpp:mds:displayed:0"
#define NS_SID "urn:xmpp:sid:0"

/* An <item/> of the node: whose conversation, and the stanza-id of the
 * last message read in it, by our own account. */
static void take_item(Account *a, xmpp_stanza_t *item)
{
	const char *jid = xmpp_stanza_get_id(item);
	xmpp_stanza_t *d = xmpp_stanza_get_child_by_name_and_ns(item,
								"displayed",
								NS_MDS);
	xmpp_stanza_t *sid = d ? xmpp_stanza_get_child_by_name_and_ns(
					 d, "stanza-id", NS_SID)
			       : NULL;
	const char *by = sid ? xmpp_stanza_get_attribute(sid, "by") : NULL;
	g_autofree char *bare = jid ? jid_normalize_bare(jid, NULL) : NULL;
	g_autofree char *byb = by ? jid_normalize_bare(by, NULL) : NULL;

	if (!bare || !byb)
		return;
	/* a conversation's names the message by our archive's id, a room's
	 * by the room's */
	if (!strcmp(byb, acct_cfg(a)->jid))
		receipts_read_sid(a, bare, false,
				  xmpp_stanza_get_attribute(sid, "id"));
	else if (!strcmp(byb, bare))
		receipts_read_sid(a, bare, true,
				  xmpp_stanza_get_attribute(sid, "id"));
}

static void take_item_of(Account *a, xmpp_stanza_t *item, void *data)
{
	(void)data;
	take_item(a, item);
}

/* A notification of the node, from our own account's PEP service. */
bool mds_in(Account *a, const In *in)
{
	xmpp_stanza_t *items = pep_event_items(in, NS_MDS);

	if (!items)
		return false;
	/* only our own service says what we read */
	if (pep_from_us(a, in))
		pep_each(items, "item", take_item_of, a, NULL);
	return true;
}

static void fetched(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	xmpp_stanza_t *items = pep_items(iq);

	(void)err;
	(void)data;
	if (items) /* (none yet: item-not-found, fine) */
		pep_each(items, "item", take_item_of, a, NULL);
}

/* At each connect: what our other clients read meanwhile. */
static void mds_online(Account *a)
{
	pep_fetch(a, NS_MDS, fetched, NULL, NULL);
}

typedef struct {
	char *jid, *sid;
	bool room;
} Publish;

static void publish_free(void *data)
{
	Publish *p = data;

	g_free(p->jid);
	g_free(p->sid);
	g_free(p);
}

static void publish_run(Account *a, void *data, PoolReq *r)
{
	Publish *p = data;
	xmpp_stanza_t *d, *sid;
	g_autofree char *what = NULL;

	if (!acct_is_online(a)) {
		pool_complete(r, 0); /* the next read publishes it */
		return;
	}
	d = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(d, "displayed");
	xmpp_stanza_set_ns(d, NS_MDS);
	sid = acct_add_child(a, d, "stanza-id", NS_SID);
	xmpp_stanza_set_attribute(sid, "by", p->room ? p->jid : acct_cfg(a)->jid);
	xmpp_stanza_set_id(sid, p->sid);
	what = g_strdup_printf("what was read in %s (XEP-0490)", p->jid);
	pep_publish(a, NS_MDS, p->jid, d, PEP_PRIVATE, what, NULL, NULL, NULL);
	xmpp_stanza_release(d);
	pool_complete(r, 0);
}

int mds_publish(Pool *pool, Account *a, const char *jid, bool room)
{
	g_autofree char *sid = receipts_read_sid_of(a, jid, room);
	Publish *p;

	if (!sid)
		return 0; /* nothing read that our archive names */
	p = g_new0(Publish, 1);
	p->jid = g_strdup(jid);
	p->sid = g_steal_pointer(&sid);
	p->room = room;
	return pool_call(pool, a, publish_run, p, publish_free);
}

const Feature mds_feature = {
	.name = "displayed-sync (XEP-0490)",
	.online = mds_online,
};
