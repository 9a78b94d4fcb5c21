/* contacts.c - the roster, presence and subscriptions (RFC 6121): what
 * contacts/JID/{name,groups,subscription,presence} and the roster events
 * show, and mkdir and rmdir of contacts/JID.  The roster itself (and its
 * cache) is roster.c's. */
#include "features/contacts.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/text.h"
#include "features/featureset.h"
#include "store/roster.h"
#include "xmpp/await.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"

/* How long the roster and a change of it wait for the server's answer:
 * longer than a write waits (pool_call), so that a late answer still
 * changes our copy. */
#define CONTACTS_TIMEOUT_S 30

/* ---- roster (RFC 6121 §2) ---- */

static RosterItem *item_from_stanza(xmpp_stanza_t *item)
{
	const char *jid = xmpp_stanza_get_attribute(item, "jid");
	const char *name = xmpp_stanza_get_attribute(item, "name");
	const char *sub = xmpp_stanza_get_attribute(item, "subscription");
	const char *ask = xmpp_stanza_get_attribute(item, "ask");
	g_autofree char *bare = jid ? jid_normalize_bare(jid, NULL) : NULL;
	GPtrArray *groups = g_ptr_array_new();
	RosterItem *it;

	if (!bare)
		return NULL; /* never a file name */
	it = roster_item_new(bare);
	it->name = name && *name ? g_strdup(name) : NULL;
	g_free(it->subscription);
	it->subscription = g_strdup(sub ? sub : "none");
	it->ask = ask && !strcmp(ask, "subscribe");
	for (xmpp_stanza_t *g = xmpp_stanza_get_children(item); g;
	     g = xmpp_stanza_get_next(g)) {
		char *t;
		if (!xmpp_stanza_is_tag(g) ||
		    strcmp(xmpp_stanza_get_name(g), "group"))
			continue;
		t = xmpp_stanza_get_text(g);
		if (t && text_is_clean(t, strlen(t), false))
			g_ptr_array_add(groups, g_strdup(t));
		if (t)
			xmpp_free(xmpp_stanza_get_context(g), t);
	}
	g_ptr_array_add(groups, NULL);
	g_strfreev(it->groups);
	it->groups = (char **)g_ptr_array_free(groups, FALSE);
	return it;
}

static void roster_event(Account *a, const RosterItem *it, const char *jid)
{
	g_autofree char *text =
		it ? g_strdup_printf("set %s%s %s", it->subscription,
				     it->ask ? " pending-out" : "",
				     it->name ? it->name : "")
		   : g_strdup("remove");
	acct_event(a, "roster", it ? it->jid : jid, text);
}

/* A roster push: accepted only from our own account (RFC 6121 §2.1.6). */
static bool roster_push(Account *a, xmpp_stanza_t *iq)
{
	const char *from = xmpp_stanza_get_from(iq);
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_name_and_ns(
		iq, "query", XMPP_NS_ROSTER);
	xmpp_stanza_t *item = q ? xmpp_stanza_get_child_by_name(q, "item") : NULL;
	g_autofree char *from_bare = from ? jid_normalize_bare(from, NULL) : NULL;
	const char *ver = q ? xmpp_stanza_get_attribute(q, "ver") : NULL;
	RosterItem *it;

	if (!item ||
	    (from && (!from_bare || strcmp(from_bare, acct_cfg(a)->jid))))
		return false;
	if (!(it = item_from_stanza(item)))
		return true;
	if (!strcmp(it->subscription, "remove")) {
		g_autofree char *jid = g_strdup(it->jid);
		roster_item_free(it);
		roster_remove(a->roster, jid, ver);
		roster_event(a, NULL, jid);
		return true;
	}
	roster_event(a, it, NULL);
	roster_set(a->roster, it, ver);
	return true;
}

static void roster_result(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	xmpp_stanza_t *q = iq ? xmpp_stanza_get_child_by_name_and_ns(
					iq, "query", XMPP_NS_ROSTER)
			      : NULL;
	GPtrArray *items;

	if (!iq) {
		xfs_info("%s: no roster from the server: %s", acct_cfg(a)->jid,
			 g_strerror(-err));
		return;
	}
	if (!q)
		return; /* an empty result: our cached version is current */
	items = g_ptr_array_new_with_free_func((GDestroyNotify)roster_item_free);
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(q); c;
	     c = xmpp_stanza_get_next(c)) {
		RosterItem *it;
		if (xmpp_stanza_is_tag(c) &&
		    !strcmp(xmpp_stanza_get_name(c), "item") &&
		    (it = item_from_stanza(c)))
			g_ptr_array_add(items, it);
	}
	roster_replace(a->roster, items, xmpp_stanza_get_attribute(q, "ver"));
}

/* The roster at login; with versioning only what changed (XEP-0237). */
static void roster_fetch(Account *a)
{
	POOL_ASSERT();
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_t *q = xmpp_stanza_new(a->ctx);
	g_autofree char *ver = a->rosterver ? roster_version(a->roster) : NULL;

	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
	if (a->rosterver)
		xmpp_stanza_set_attribute(q, "ver", ver ? ver : "");
	xmpp_stanza_add_child(iq, q);
	xmpp_stanza_release(q);
	await_iq(a, iq, CONTACTS_TIMEOUT_S, roster_result, NULL, NULL);
	xmpp_stanza_release(iq);
}

/* A roster change on its way: the write that waits for it, and the item
 * as it will be (NULL: a removal). */
typedef struct {
	PoolReq *req;
	RosterItem *item;
	char *jid;
} Pending;

static void pending_free(void *p)
{
	Pending *c = p;

	roster_item_free(c->item);
	g_free(c->jid);
	g_free(c);
}

/* The answer to a roster change: the waiting write gets its result, and
 * on success our copy changes at once, so a read right after the write
 * sees it (the server's push may come after its answer). */
static void change_answer(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	Pending *c = data;
	int res = await_errno(iq, err);

	if (!res && c->item)
		roster_set(a->roster, g_steal_pointer(&c->item), NULL);
	else if (!res)
		roster_remove(a->roster, c->jid, NULL);
	pool_complete(c->req, res);
}

/* What the item will be once the server accepted @c. */
static RosterItem *changed_item(Account *a, const RosterChange *c)
{
	RosterItem *it = c->remove ? NULL : roster_get(a->roster, c->jid);

	if (c->remove)
		return NULL;
	if (!it) {
		it = roster_item_new(c->jid);
		it->ask = c->add;
	}
	if (c->set_name) {
		g_free(it->name);
		it->name = c->name && *c->name ? g_strdup(c->name) : NULL;
	}
	if (c->set_groups) {
		g_strfreev(it->groups);
		it->groups = c->groups ? g_strdupv(c->groups) : g_new0(char *, 1);
	}
	return it;
}

static void send_subscription(Account *a, const char *jid, const char *type)
{
	xmpp_stanza_t *p = xmpp_presence_new(a->ctx);

	xmpp_stanza_set_type(p, type);
	xmpp_stanza_set_to(p, jid);
	sm_send(a, p);
	xmpp_stanza_release(p);
}

static xmpp_stanza_t *change_item(Account *a, const RosterChange *c)
{
	xmpp_stanza_t *item = xmpp_stanza_new(a->ctx);
	g_autoptr(RosterItem) old = roster_get(a->roster, c->jid);
	const char *name = c->set_name ? c->name : old ? old->name : NULL;
	char **groups = c->set_groups ? c->groups : old ? old->groups : NULL;

	xmpp_stanza_set_name(item, "item");
	xmpp_stanza_set_attribute(item, "jid", c->jid);
	if (c->remove) {
		xmpp_stanza_set_attribute(item, "subscription", "remove");
		return item;
	}
	if (name && *name)
		xmpp_stanza_set_attribute(item, "name", name);
	for (char **g = groups; g && *g; g++)
		acct_add_text_child(a, item, "group", *g);
	return item;
}

static void change(Account *a, const RosterChange *c, PoolReq *r)
{
	xmpp_stanza_t *iq, *q;
	Pending *w;

	POOL_ASSERT();
	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	iq = xmpp_iq_new(a->ctx, "set", NULL);
	q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
	xmpp_stanza_add_child_ex(q, change_item(a, c), 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	w = g_new0(Pending, 1);
	w->req = r;
	w->item = changed_item(a, c);
	w->jid = g_strdup(c->jid);
	await_iq(a, iq, CONTACTS_TIMEOUT_S, change_answer, w, pending_free);
	xmpp_stanza_release(iq);
	if (c->add)
		send_subscription(a, c->jid, "subscribe");
}

static int subscribe(Account *a, const char *jid, const char *word)
{
	static const struct {
		const char *word, *type;
	} words[] = {
		{"subscribe", "subscribe"},     {"approve", "subscribed"},
		{"deny", "unsubscribed"},       {"unsubscribe", "unsubscribe"},
		{"cancel", "unsubscribed"},
	};

	POOL_ASSERT();
	for (guint i = 0; i < G_N_ELEMENTS(words); i++) {
		if (strcmp(word, words[i].word))
			continue;
		if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead)
			return -ENOTCONN;
		send_subscription(a, jid, words[i].type);
		if (!strcmp(word, "approve") || !strcmp(word, "deny"))
			roster_set_pending_in(a->roster, jid, false);
		return 0;
	}
	return -EINVAL;
}

static void subscription_presence(Account *a, const char *type,
				  const char *bare, xmpp_stanza_t *p)
{
	g_autofree char *status = acct_child_text(p, "status");

	if (!strcmp(type, "subscribe")) {
		if (acct_cfg(a)->auto_approve) {
			subscribe(a, bare, "approve");
		} else {
			roster_set_pending_in(a->roster, bare, true);
		}
	} else if (!strcmp(type, "unsubscribe")) {
		roster_set_pending_in(a->roster, bare, false);
	}
	acct_event(a, type, bare, status);
}

static void contact_presence(Account *a, const char *type, const Jid *jid,
			     xmpp_stanza_t *p)
{
	g_autofree char *bare = jid_bare(jid), *full = jid_full(jid);
	g_autofree char *show = acct_child_text(p, "show");
	g_autofree char *status = acct_child_text(p, "status");
	g_autofree char *prio = acct_child_text(p, "priority");
	const char *word = type ? "unavailable" : show ? show : "available";
	g_autofree char *ev = NULL;
	static const char *const shows[] = {"chat", "away", "xa", "dnd"};

	if (!type && show && !g_strv_contains(shows, show))
		word = "available";
	roster_presence(a->roster, bare, jid->resource ? jid->resource : "",
			type ? NULL : word, prio ? atoi(prio) : 0, status);
	ev = g_strdup_printf("%s%s%s", word, status ? " " : "",
			     status ? status : "");
	acct_event(a, "presence", full, ev);
}

/* A presence whose sender is no valid JID (or none): dropped. */
bool contacts_bad_sender_in(Account *a, const In *in)
{
	return !in->jid;
}

/* A contact's presence, a subscription request or answer, or an error:
 * what rooms did not take. */
bool contacts_presence_in(Account *a, const In *in)
{
	if (in->type && !strcmp(in->type, "error")) {
		g_autofree char *ev = acct_error_event_text(in->st, "presence");
		acct_event(a, "error", in->from, ev);
	} else if (in->type && strcmp(in->type, "unavailable")) {
		subscription_presence(a, in->type, in->bare, in->st);
	} else if (strcmp(in->bare, acct_cfg(a)->jid)) {
		contact_presence(a, in->type, in->jid, in->st);
	}
	return true;
}

/* A roster push (RFC 6121 §2.1.6), answered. */
bool contacts_push_in(Account *a, const In *in)
{
	xmpp_stanza_t *reply;

	if (g_strcmp0(in->type, "set") || !in->id ||
	    !xmpp_stanza_get_child_by_name_and_ns(in->st, "query",
						  XMPP_NS_ROSTER) ||
	    !roster_push(a, in->st))
		return false;
	reply = acct_answer(a, in->st, NULL);
	sm_send(a, reply);
	xmpp_stanza_release(reply);
	return true;
}

/* ---- from the files (fs/), through the pool ---- */

static void change_run(Account *a, void *data, PoolReq *r)
{
	change(a, data, r);
}

static void change_free(void *data)
{
	RosterChange *c = data;

	g_free(c->jid);
	g_free(c->name);
	g_strfreev(c->groups);
	g_free(c);
}

int contacts_change(Pool *p, Account *a, const RosterChange *c)
{
	RosterChange *copy = g_new0(RosterChange, 1);

	*copy = *c;
	copy->jid = g_strdup(c->jid);
	copy->name = g_strdup(c->name);
	copy->groups = g_strdupv(c->groups);
	return pool_call(p, a, change_run, copy, change_free);
}

typedef struct {
	char *jid;
	char *word;
} Subscription;

static void subscription_run(Account *a, void *data, PoolReq *r)
{
	Subscription *s = data;

	pool_complete(r, subscribe(a, s->jid, s->word));
}

static void subscription_free(void *data)
{
	Subscription *s = data;

	g_free(s->jid);
	g_free(s->word);
	g_free(s);
}

int contacts_subscription(Pool *p, Account *a, const char *jid,
			  const char *word)
{
	Subscription *s = g_new0(Subscription, 1);

	s->jid = g_strdup(jid);
	s->word = g_strdup(word);
	return pool_call(p, a, subscription_run, s, subscription_free);
}

static void contacts_offline(Account *a)
{
	roster_presence_clear(a->roster);
}

const Feature contacts_feature = {
	.name = "contacts (roster, presence, subscriptions)",
	.online = roster_fetch,
	.offline = contacts_offline,
};
