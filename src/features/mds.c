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
#include "features/receipts.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "xmpp/await.h"
#include "xmpp/dispatch.h"

#define NS_MDS "urn:xmpp:mds:displayed:0"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_SID "urn:xmpp:sid:0"
#define MDS_TIMEOUT_S 30

static void add_field(Account *a, xmpp_stanza_t *x, const char *var,
		      const char *type, const char *value)
{
	xmpp_stanza_t *f = acct_add_child(a, x, "field", NULL), *v, *t;

	xmpp_stanza_set_attribute(f, "var", var);
	if (type)
		xmpp_stanza_set_attribute(f, "type", type);
	v = acct_add_child(a, f, "value", NULL);
	t = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_text(t, value);
	xmpp_stanza_add_child_ex(v, t, 0);
}

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

static void take_items(Account *a, xmpp_stanza_t *items)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(items); c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) &&
		    !strcmp(xmpp_stanza_get_name(c), "item"))
			take_item(a, c);
}

/* A notification of the node, from our own account's PEP service. */
bool mds_in(Account *a, const In *in)
{
	xmpp_stanza_t *ev = xmpp_stanza_get_child_by_name_and_ns(
		in->st, "event", NS_PUBSUB_EVENT);
	xmpp_stanza_t *items = ev ? xmpp_stanza_get_child_by_name(ev, "items")
				  : NULL;
	g_autofree char *bare = in->jid ? jid_bare(in->jid) : NULL;

	if (!items || g_strcmp0(xmpp_stanza_get_attribute(items, "node"),
				NS_MDS))
		return false;
	/* only our own service says what we read */
	if (bare && !strcmp(bare, acct_cfg(a)->jid))
		take_items(a, items);
	return true;
}

static void fetched(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	xmpp_stanza_t *ps = iq ? xmpp_stanza_get_child_by_name_and_ns(
					 iq, "pubsub", NS_PUBSUB)
			       : NULL;
	xmpp_stanza_t *items = ps ? xmpp_stanza_get_child_by_name(ps, "items")
				  : NULL;

	(void)err;
	(void)data;
	if (items)
		take_items(a, items); /* (none yet: item-not-found, fine) */
}

/* At each connect: what our other clients read meanwhile. */
static void mds_online(Account *a)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", NULL), *ps, *items;

	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	items = acct_add_child(a, ps, "items", NULL);
	xmpp_stanza_set_attribute(items, "node", NS_MDS);
	await_iq(a, iq, MDS_TIMEOUT_S, fetched, NULL, NULL);
	xmpp_stanza_release(iq);
}

static void published(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	const char *jid = data;
	int res = await_errno(iq, err);

	if (res && res != -ECONNRESET)
		xfs_info("%s: what was read in %s is not shared with the "
			 "account's other clients (XEP-0490: %s)",
			 acct_cfg(a)->jid, jid, g_strerror(-res));
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
	xmpp_stanza_t *iq, *ps, *pub, *item, *d, *sid, *opts, *x;

	if (!acct_is_online(a)) {
		pool_complete(r, 0); /* the next read publishes it */
		return;
	}
	iq = xmpp_iq_new(a->ctx, "set", NULL);
	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	pub = acct_add_child(a, ps, "publish", NULL);
	xmpp_stanza_set_attribute(pub, "node", NS_MDS);
	item = acct_add_child(a, pub, "item", NULL);
	xmpp_stanza_set_id(item, p->jid);
	d = acct_add_child(a, item, "displayed", NS_MDS);
	sid = acct_add_child(a, d, "stanza-id", NS_SID);
	xmpp_stanza_set_attribute(sid, "by", p->room ? p->jid : acct_cfg(a)->jid);
	xmpp_stanza_set_id(sid, p->sid);
	/* XEP-0490 §4: kept, as many as there are conversations, never
	 * sent on presence, and for our own clients only */
	opts = acct_add_child(a, ps, "publish-options", NULL);
	x = acct_add_child(a, opts, "x", "jabber:x:data");
	xmpp_stanza_set_attribute(x, "type", "submit");
	add_field(a, x, "FORM_TYPE", "hidden",
		  "http://jabber.org/protocol/pubsub#publish-options");
	add_field(a, x, "pubsub#persist_items", NULL, "true");
	add_field(a, x, "pubsub#max_items", NULL, "max");
	add_field(a, x, "pubsub#send_last_published_item", NULL, "never");
	add_field(a, x, "pubsub#access_model", NULL, "whitelist");
	await_iq(a, iq, MDS_TIMEOUT_S, published, g_strdup(p->jid), g_free);
	xmpp_stanza_release(iq);
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
