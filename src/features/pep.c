/* pep.c - the account's own PEP service (XEP-0163): fetch, publish and
 * retract items of a node, and the notifications of it (pep.h).
 * Pool thread only. */
#include "features/pep.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"

#define PEP_TIMEOUT_S 30

void pep_add_field(Account *a, xmpp_stanza_t *x, const char *var,
		   const char *type, const char *value)
{
	xmpp_stanza_t *f = acct_add_child(a, x, "field", NULL);

	xmpp_stanza_set_attribute(f, "var", var);
	if (type)
		xmpp_stanza_set_attribute(f, "type", type);
	acct_add_text_child(a, f, "value", value);
}

void pep_fetch(Account *a, const char *node, AwaitFn fn, void *data,
	       GDestroyNotify free_data)
{
	pep_fetch_from(a, NULL, node, fn, data, free_data);
}

void pep_fetch_from(Account *a, const char *jid, const char *node,
		    AwaitFn fn, void *data, GDestroyNotify free_data)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", NULL), *ps, *items;

	if (jid)
		xmpp_stanza_set_to(iq, jid);
	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	items = acct_add_child(a, ps, "items", NULL);
	xmpp_stanza_set_attribute(items, "node", node);
	await_iq(a, iq, PEP_TIMEOUT_S, fn, data, free_data);
	xmpp_stanza_release(iq);
}

xmpp_stanza_t *pep_items(xmpp_stanza_t *answer)
{
	xmpp_stanza_t *ps = answer ? xmpp_stanza_get_child_by_name_and_ns(
					     answer, "pubsub", NS_PUBSUB)
				   : NULL;

	return ps ? xmpp_stanza_get_child_by_name(ps, "items") : NULL;
}

xmpp_stanza_t *pep_first_item(xmpp_stanza_t *answer)
{
	xmpp_stanza_t *items = pep_items(answer);

	return items ? xmpp_stanza_get_child_by_name(items, "item") : NULL;
}

/* Where no caller waits: a refusal is worth a line in the log, since
 * our other clients will not see what changed. */
static void logged(Account *a, xmpp_stanza_t *answer, int err, void *data)
{
	int res = await_errno(answer, err);

	if (res && res != -ECONNRESET)
		xfs_info("%s: %s is not shared with the account's other "
			 "clients: %s", acct_cfg(a)->jid, (char *)data,
			 g_strerror(-res));
}

/* A publish on its way: what it takes to send it again without the
 * options, should the node have others. */
typedef struct {
	char *node, *id, *what;
	xmpp_stanza_t *payload;
	PepAccess access;
	bool plain; /* sent without publish-options (the node's own) */
	AwaitFn fn;
	void *data;
	GDestroyNotify free_data;
} Publish;

static void publish_free(void *p)
{
	Publish *pub = p;

	g_free(pub->node);
	g_free(pub->id);
	g_free(pub->what);
	xmpp_stanza_release(pub->payload);
	if (pub->free_data)
		pub->free_data(pub->data);
	g_free(pub);
}

static void publish_send(Account *a, Publish *pub);

static void published(Account *a, xmpp_stanza_t *answer, int err, void *p)
{
	Publish *pub = p;

	/* precondition-not-met (a conflict): another client made the node
	 * with options of its own; the item goes in with the node's */
	if (!pub->plain && await_errno(answer, err) == -EEXIST) {
		Publish *again = g_new0(Publish, 1);
		again->node = g_strdup(pub->node);
		again->id = g_strdup(pub->id);
		again->what = g_strdup(pub->what);
		again->payload = xmpp_stanza_copy(pub->payload);
		again->plain = true;
		again->access = pub->access;
		again->fn = pub->fn;
		again->data = pub->data;
		again->free_data = pub->free_data;
		pub->free_data = NULL; /* (again's now) */
		publish_send(a, again);
		return;
	}
	if (pub->fn)
		pub->fn(a, answer, err, pub->data);
	else
		logged(a, answer, err, pub->what);
}

static void publish_send(Account *a, Publish *pub)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL), *ps, *p, *item;
	xmpp_stanza_t *opts, *x;

	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	p = acct_add_child(a, ps, "publish", NULL);
	xmpp_stanza_set_attribute(p, "node", pub->node);
	item = acct_add_child(a, p, "item", NULL);
	xmpp_stanza_set_id(item, pub->id);
	/* (a stanza has one parent: a copy, kept for a second try) */
	xmpp_stanza_add_child_ex(item, xmpp_stanza_copy(pub->payload), 0);
	if (!pub->plain) {
		opts = acct_add_child(a, ps, "publish-options", NULL);
		x = acct_add_child(a, opts, "x", "jabber:x:data");
		xmpp_stanza_set_attribute(x, "type", "submit");
		pep_add_field(a, x, "FORM_TYPE", "hidden",
			      "http://jabber.org/protocol/pubsub#publish-options");
		if (pub->access == PEP_OPEN) {
			/* anyone may read it, without a subscription
			 * (OMEMO's device list and bundles) */
			pep_add_field(a, x, "pubsub#access_model", NULL,
				      "open");
		} else {
			/* XEP-0223: kept, as many as there are, not sent
			 * again at each presence, and for our own clients
			 * only */
			pep_add_field(a, x, "pubsub#persist_items", NULL,
				      "true");
			pep_add_field(a, x, "pubsub#max_items", NULL, "max");
			pep_add_field(a, x, "pubsub#send_last_published_item",
				      NULL, "never");
			pep_add_field(a, x, "pubsub#access_model", NULL,
				      "whitelist");
		}
	}
	await_iq(a, iq, PEP_TIMEOUT_S, published, pub, publish_free);
	xmpp_stanza_release(iq);
}

void pep_publish(Account *a, const char *node, const char *id,
		 xmpp_stanza_t *payload, PepAccess access, const char *what,
		 AwaitFn fn, void *data, GDestroyNotify free_data)
{
	Publish *pub = g_new0(Publish, 1);

	pub->plain = access == PEP_CONTACTS;
	pub->access = access;
	pub->node = g_strdup(node);
	pub->id = g_strdup(id);
	pub->what = g_strdup(what);
	pub->payload = xmpp_stanza_copy(payload);
	pub->fn = fn;
	pub->data = data;
	pub->free_data = free_data;
	publish_send(a, pub);
}

void pep_retract(Account *a, const char *node, const char *id,
		 const char *what, AwaitFn fn, void *data,
		 GDestroyNotify free_data)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "set", NULL), *ps, *r, *item;

	ps = acct_add_child(a, iq, "pubsub", NS_PUBSUB);
	r = acct_add_child(a, ps, "retract", NULL);
	xmpp_stanza_set_attribute(r, "node", node);
	xmpp_stanza_set_attribute(r, "notify", "true");
	item = acct_add_child(a, r, "item", NULL);
	xmpp_stanza_set_id(item, id);
	if (fn)
		await_iq(a, iq, PEP_TIMEOUT_S, fn, data, free_data);
	else
		await_iq(a, iq, PEP_TIMEOUT_S, logged, g_strdup(what), g_free);
	xmpp_stanza_release(iq);
}

xmpp_stanza_t *pep_event_items(const In *in, const char *node)
{
	xmpp_stanza_t *ev = xmpp_stanza_get_child_by_name_and_ns(
		in->st, "event", NS_PUBSUB_EVENT);
	xmpp_stanza_t *items = ev ? xmpp_stanza_get_child_by_name(ev, "items")
				  : NULL;

	if (!items || g_strcmp0(xmpp_stanza_get_attribute(items, "node"), node))
		return NULL;
	return items;
}

bool pep_from_us(Account *a, const In *in)
{
	return !in->from || !strcmp(in->from, acct_cfg(a)->jid);
}

void pep_each(xmpp_stanza_t *parent, const char *name,
	      void (*fn)(Account *a, xmpp_stanza_t *el, void *data),
	      Account *a, void *data)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(parent); c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) &&
		    !strcmp(xmpp_stanza_get_name(c), name))
			fn(a, c, data);
}
