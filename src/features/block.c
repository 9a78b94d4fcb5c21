/* block.c - the server's blocklist (XEP-0191), so that a spammer is shut
 * out with one write: `echo yes > contacts/JID/blocked`.
 *
 * The list is fetched at each connect; after that the server pushes every
 * change, ours and our other clients'.  A change through the file waits
 * for the server's answer, and our copy of the list changes with it, so a
 * read right after the write sees it.  Each change is one `blocked`
 * event, whichever of answer and push brings it first; a fetch after a
 * reconnect reports what changed meanwhile.  The copy is read by FUSE
 * threads, under the account's lock.
 *
 * Part of the account layer (account_int.h): pool thread only, but for
 * the text functions at the end. */
#include "features/block.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"
#include "xmpp/dispatch.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/util.h"
#include "xmpp/await.h"
#include "xmpp/pool.h"

#define NS_BLOCKING "urn:xmpp:blocking"
/* How long the list and a change wait for the server: longer than a write
 * waits (pool_call), so that a late answer still changes our copy. */
#define BLOCK_TIMEOUT_S 30

/* What block.c keeps of each account (acct_state). */
typedef struct {
	GHashTable *blocked; /* the blocklist's JIDs; under Account.lock:
			      * the pool thread changes it, FUSE threads
			      * read it (block_text) */
	bool off;   /* pool thread: the server has no blocking (XEP-0191) */
	bool known; /* pool thread: the list was fetched on this mount */
} Block;

static Block *state(Account *a)
{
	return acct_state(a, &block_feature);
}

static GHashTable *new_list(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void block_init(Account *a, const char *dir)
{
	(void)dir;
	state(a)->blocked = new_list();
}

static void block_free(Account *a)
{
	g_clear_pointer(&state(a)->blocked, g_hash_table_unref);
}

/* The JID an <item/> names, normalized, or NULL. */
static char *item_jid(xmpp_stanza_t *item)
{
	const char *j = xmpp_stanza_get_attribute(item, "jid");
	g_autoptr(Jid) jid = j ? jid_parse(j, NULL) : NULL;

	return jid ? jid_full(jid) : NULL;
}

/* Add @jid to the list or take it out; true when that changed it. */
static bool set_blocked(Account *a, const char *jid, bool block)
{
	bool changed;

	g_mutex_lock(&a->lock);
	changed = block ? g_hash_table_add(state(a)->blocked, g_strdup(jid))
			: g_hash_table_remove(state(a)->blocked, jid);
	g_mutex_unlock(&a->lock);
	if (changed)
		acct_event(a, "blocked", jid, block ? "yes" : "no");
	return changed;
}

/* The JIDs of the <item/>s of @el, normalized and sorted; invalid ones
 * are left out.  *@any: there was an item at all. */
static GPtrArray *items(xmpp_stanza_t *el, bool *any)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

	*any = false;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(el); c;
	     c = xmpp_stanza_get_next(c)) {
		char *jid;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "item"))
			continue;
		*any = true;
		if ((jid = item_jid(c)))
			g_ptr_array_add(out, jid);
	}
	g_ptr_array_sort(out, util_cmp_strp);
	return out;
}

/* Our copy becomes @list (taken): one swap, so that a reader never sees
 * it half filled.  @event: an event for each JID that came or went (the
 * changes made while we were away). */
static void replace_list(Account *a, GHashTable *list, bool event)
{
	GHashTable *old;
	g_autoptr(GPtrArray) came = g_ptr_array_new();
	g_autoptr(GPtrArray) went = g_ptr_array_new();
	GHashTableIter it;
	gpointer k;

	g_mutex_lock(&a->lock);
	old = state(a)->blocked;
	state(a)->blocked = list;
	g_mutex_unlock(&a->lock);
	if (event) {
		g_hash_table_iter_init(&it, list);
		while (g_hash_table_iter_next(&it, &k, NULL))
			if (!g_hash_table_contains(old, k))
				g_ptr_array_add(came, k);
		g_hash_table_iter_init(&it, old);
		while (g_hash_table_iter_next(&it, &k, NULL))
			if (!g_hash_table_contains(list, k))
				g_ptr_array_add(went, k);
		g_ptr_array_sort(came, util_cmp_strp);
		g_ptr_array_sort(went, util_cmp_strp);
		for (guint i = 0; i < came->len; i++)
			acct_event(a, "blocked", came->pdata[i], "yes");
		for (guint i = 0; i < went->len; i++)
			acct_event(a, "blocked", went->pdata[i], "no");
	}
	g_hash_table_unref(old);
}

static void list_answer(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	xmpp_stanza_t *list;
	g_autoptr(GPtrArray) jids = NULL;
	GHashTable *fresh;
	bool any;

	list = iq ? xmpp_stanza_get_child_by_name_and_ns(iq, "blocklist",
							 NS_BLOCKING)
		  : NULL;
	if (!iq || g_strcmp0(xmpp_stanza_get_type(iq), "result") || !list) {
		if (iq)
			err = -acct_error_errno(iq);
		xfs_info("%s: no blocklist from the server: %s",
			 acct_cfg(a)->jid, g_strerror(-err));
		/* no such feature, as opposed to a failure this once (then
		 * the copy we have stays, to compare the next fetch with) */
		state(a)->off = iq && (err == -ENOSYS || err == -EHOSTUNREACH);
		if (state(a)->off) {
			replace_list(a, new_list(), false);
			state(a)->known = false;
		}
		return;
	}
	state(a)->off = false;
	fresh = new_list();
	jids = items(list, &any);
	for (guint i = 0; i < jids->len; i++)
		g_hash_table_add(fresh, g_strdup(jids->pdata[i]));
	replace_list(a, fresh, state(a)->known);
	state(a)->known = true;
}

static void block_fetch(Account *a)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", NULL);
	xmpp_stanza_t *q = xmpp_stanza_new(a->ctx);

	POOL_ASSERT();
	xmpp_stanza_set_name(q, "blocklist");
	xmpp_stanza_set_ns(q, NS_BLOCKING);
	xmpp_stanza_add_child_ex(iq, q, 0);
	await_iq(a, iq, BLOCK_TIMEOUT_S, list_answer, NULL, NULL);
	xmpp_stanza_release(iq);
}

static bool block_push(Account *a, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *b = xmpp_stanza_get_child_by_name_and_ns(iq, "block",
								NS_BLOCKING);
	xmpp_stanza_t *u = xmpp_stanza_get_child_by_name_and_ns(
		iq, "unblock", NS_BLOCKING);
	const char *from = xmpp_stanza_get_from(iq);
	g_autoptr(Jid) fj = from ? jid_parse(from, NULL) : NULL;
	g_autofree char *fbare = fj && !fj->resource ? jid_bare(fj) : NULL;
	g_autoptr(GPtrArray) jids = NULL;
	bool any;

	/* only our own account pushes (XEP-0191 §3.3): no 'from', or our
	 * bare JID; and one change at a time */
	if (!b == !u || (from && g_strcmp0(fbare, acct_cfg(a)->jid)))
		return false;
	jids = items(b ? b : u, &any);
	if (u && !any) {
		/* an unblock without items: everything */
		replace_list(a, new_list(), true);
		return true;
	}
	/* a push of our own change comes after its answer, which changed
	 * the list (and made the event) already */
	for (guint i = 0; i < jids->len; i++)
		set_blocked(a, jids->pdata[i], b != NULL);
	return true;
}

/* A change through the file on its way: the write that waits for it. */
typedef struct {
	PoolReq *req;
	char *jid;
	bool block;
} Pending;

static void pending_free(void *p)
{
	Pending *w = p;

	g_free(w->jid);
	g_free(w);
}

/* The server's answer to a change through the file. */
static void change_answer(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	Pending *w = data;
	int res = await_errno(iq, err);

	/* changed now, so that a read right after the write sees it */
	if (!res)
		set_blocked(a, w->jid, w->block);
	pool_complete(w->req, res);
}

static void block_now(Account *a, const char *jid, bool block, PoolReq *r)
{
	xmpp_stanza_t *iq, *q, *item;
	Pending *w;

	POOL_ASSERT();
	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	if (state(a)->off) {
		pool_complete(r, -EOPNOTSUPP);
		return;
	}
	iq = xmpp_iq_new(a->ctx, "set", NULL);
	q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(q, block ? "block" : "unblock");
	xmpp_stanza_set_ns(q, NS_BLOCKING);
	item = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(item, "item");
	xmpp_stanza_set_attribute(item, "jid", jid);
	xmpp_stanza_add_child_ex(q, item, 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	w = g_new0(Pending, 1);
	w->req = r;
	w->jid = g_strdup(jid);
	w->block = block;
	await_iq(a, iq, BLOCK_TIMEOUT_S, change_answer, w, pending_free);
	xmpp_stanza_release(iq);
}

/* ---- for FUSE threads ---- */

char *block_text(Account *a, const char *jid)
{
	bool yes;

	g_mutex_lock(&a->lock);
	yes = g_hash_table_contains(state(a)->blocked, jid);
	g_mutex_unlock(&a->lock);
	return g_strdup(yes ? "yes\n" : "no\n");
}

char *block_list_text(Account *a)
{
	g_autoptr(GPtrArray) jids = g_ptr_array_new_with_free_func(g_free);
	GString *s = g_string_new(NULL);
	GHashTableIter it;
	gpointer k;

	/* copied under the lock, sorted and written out of it: the pool
	 * thread waits for this lock */
	g_mutex_lock(&a->lock);
	g_hash_table_iter_init(&it, state(a)->blocked);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_ptr_array_add(jids, g_strdup(k));
	g_mutex_unlock(&a->lock);
	g_ptr_array_sort(jids, util_cmp_strp);
	for (guint i = 0; i < jids->len; i++)
		g_string_append_printf(s, "%s\n",
				       (char *)g_ptr_array_index(jids, i));
	return g_string_free(s, FALSE);
}

/* A blocklist push from our own account (a set), answered. */
bool block_push_in(Account *a, const In *in)
{
	xmpp_stanza_t *reply;

	if (g_strcmp0(in->type, "set") || !in->id || !block_push(a, in->st))
		return false;
	reply = acct_answer(a, in->st, NULL);
	sm_send(a, reply);
	xmpp_stanza_release(reply);
	return true;
}

typedef struct {
	char *jid;
	bool block;
} BlockJob;

static void block_run(Account *a, void *data, PoolReq *r)
{
	BlockJob *j = data;

	block_now(a, j->jid, j->block, r);
}

static void block_job_free(void *data)
{
	BlockJob *j = data;

	g_free(j->jid);
	g_free(j);
}

int block_set(Pool *p, Account *a, const char *jid, bool block)
{
	BlockJob *j = g_new0(BlockJob, 1);

	j->jid = g_strdup(jid);
	j->block = block;
	return pool_call(p, a, block_run, j, block_job_free);
}

const Feature block_feature = {
	.name = "blocking (XEP-0191)",
	.state_size = sizeof(Block),
	.attach = block_init,
	.detach = block_free,
	.online = block_fetch,
};
