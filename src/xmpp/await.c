/* await.c - see await.h. */
#include "xmpp/await.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "xmpp/account_int.h"
#include "xmpp/pool.h"
#include "xmpp/sm.h"

typedef struct {
	gint64 deadline; /* monotonic µs */
	char *to;        /* the request's `to`, normalised; NULL: none */
	AwaitFn fn;
	void *data;
	GDestroyNotify free_data;
} Await;

/* What the engine keeps of each account (acct_state): pool thread only. */
typedef struct {
	GHashTable *waits; /* iq id -> Await */
} Awaits;

static GHashTable *waits(Account *a)
{
	Awaits *s = acct_state(a, &await_feature);

	return s ? s->waits : NULL;
}

static void await_free(gpointer p)
{
	Await *w = p;

	if (w->free_data)
		w->free_data(w->data);
	g_free(w->to);
	g_free(w);
}

/* @jid normalised (full, or bare, as given); NULL when invalid. */
static char *normal(const char *jid)
{
	g_autoptr(Jid) j = jid ? jid_parse(jid, NULL) : NULL;

	return j ? jid_full(j) : NULL;
}

/* Whether the sender of @in may answer a request sent to @to. */
static bool from_addressee(const char *to, const char *own, const In *in)
{
	g_autofree char *f = NULL;

	if (!to || !strcmp(to, own))
		return in->from_self;
	f = in->jid ? jid_full(in->jid) : NULL;
	return f && !strcmp(f, to);
}

/* Take @id's wait out of the table (the caller calls and frees it). */
static Await *take(Account *a, const char *id)
{
	gpointer key = NULL, w = NULL;

	if (!waits(a) || !g_hash_table_steal_extended(waits(a), id, &key, &w))
		return NULL;
	g_free(key);
	return w;
}

static void finish(Account *a, Await *w, xmpp_stanza_t *answer, int err)
{
	w->fn(a, answer, err, w->data);
	await_free(w);
}

bool await_in(Account *a, const In *in)
{
	Await *w;

	if (!in->id || !in->type ||
	    (strcmp(in->type, "result") && strcmp(in->type, "error")) ||
	    !waits(a) || !(w = g_hash_table_lookup(waits(a), in->id)))
		return false;
	if (!from_addressee(w->to, a->cfg->jid, in)) {
		xfs_debug("%s: not the answer to %s (from '%s'): ignored",
			  a->cfg->jid, in->id, in->from ? in->from : "");
		return false; /* keep waiting for the real one */
	}
	finish(a, take(a, in->id), in->st, 0);
	return true;
}

void await_iq(Account *a, xmpp_stanza_t *iq, guint timeout_s, AwaitFn fn,
	      void *data, GDestroyNotify free_data)
{
	g_autofree char *id = acct_next_id(a);
	const char *to = xmpp_stanza_get_to(iq);
	Await *w = g_new0(Await, 1);

	POOL_ASSERT();
	w->deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;
	w->to = to ? normal(to) : NULL;
	if (to && !w->to)
		w->to = g_strdup(to); /* no answer can match: the deadline */
	w->fn = fn;
	w->data = data;
	w->free_data = free_data;
	xmpp_stanza_set_id(iq, id);
	g_hash_table_replace(waits(a), g_strdup(id), w);
	sm_send(a, iq);
}

int await_errno(xmpp_stanza_t *answer, int err)
{
	if (!answer)
		return err;
	if (!g_strcmp0(xmpp_stanza_get_type(answer), "result"))
		return 0;
	return -acct_error_errno(answer);
}

guint await_count(Account *a)
{
	return waits(a) ? g_hash_table_size(waits(a)) : 0;
}

/* End the waits past their deadline (@all: every one) with @err. */
static void expire(Account *a, gint64 now, bool all, int err)
{
	g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;

	/* collected first: a callback may start a new wait */
	g_hash_table_iter_init(&it, waits(a));
	while (g_hash_table_iter_next(&it, &k, &v))
		if (all || now >= ((Await *)v)->deadline)
			g_ptr_array_add(ids, g_strdup(k));
	for (guint i = 0; i < ids->len; i++) {
		const char *id = ids->pdata[i];
		Await *w = take(a, id);
		if (w)
			finish(a, w, NULL, err);
	}
}

static void await_attach(Account *a, const char *dir)
{
	Awaits *s = acct_state(a, &await_feature);

	(void)dir;
	s->waits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 await_free);
}

static void await_detach(Account *a)
{
	/* the stream's end (offline, run before detach) ended them; and if
	 * not, each still gets its one call */
	Awaits *s = acct_state(a, &await_feature);

	expire(a, 0, true, -ECONNRESET);
	g_clear_pointer(&s->waits, g_hash_table_unref);
}

static void await_offline(Account *a)
{
	expire(a, 0, true, -ECONNRESET);
}

static gint64 await_due(Account *a)
{
	GHashTableIter it;
	gpointer v;
	gint64 due = G_MAXINT64;

	g_hash_table_iter_init(&it, waits(a));
	while (g_hash_table_iter_next(&it, NULL, &v))
		due = MIN(due, ((Await *)v)->deadline);
	return due;
}

static void await_tick(Account *a, gint64 now)
{
	expire(a, now, false, -ETIMEDOUT);
}

const Feature await_feature = {
	.name = "the answers awaited (await.c)",
	.state_size = sizeof(Awaits),
	.attach = await_attach,
	.detach = await_detach,
	.offline = await_offline,
	.due = await_due,
	.tick = await_tick,
};
