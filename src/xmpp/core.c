/* core.c - the core put together: an account made (its stores, its
 * stanza chain, its connection's fields) and freed, and the pool made
 * with the table of the account's functions by which it runs accounts
 * (PoolOps), so the pool names none of them.
 *
 * The core's files call one way only (tests/unit/layers.py checks that
 * no call cycle is left), each only files listed before it:
 *   pool.c        the runner: thread, epoll, coroutines, requests
 *   account.c     state, events, stanza helpers, the features' hooks
 *   sm.c          the one way out, XEP-0198 counts
 *   await.c       an iq and its answer (the features', not the core's)
 *   outgoing.c    messages, presence and `raw` on their way out
 *   login.c       one attempt's connection, its deadlines
 *   keepalive.c   pings, the stanza size limit
 *   resolve.c     the address lookup (reports through the pool)
 *   strophe012.c  what libstrophe 0.12 tells only in its log
 *   guard.c       reads checked before libstrophe sees them
 *   conn.c        the connection's life
 *   core.c        this file
 * dispatch.c and watchdog.c call none of them.
 *
 * acct_new runs before the pool thread starts, acct_free on it at
 * unmount (or without it when it never started). */
#include "xmpp/account_int.h"

#include <errno.h>
#include <unistd.h>

#include "base/log.h"
#include "store/history.h"
#include "store/outbox.h"
#include "store/roster.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"

Account *acct_new(const CfgAccount *cfg, Pool *pool, const char *data_dir,
		  GError **err)
{
	g_autofree char *dir = g_build_filename(data_dir, cfg->jid, NULL);
	g_autofree char *contacts = g_build_filename(dir, "contacts", NULL);
	g_autofree char *outbox = g_build_filename(dir, "outbox", NULL);
	HistSet *hists = hist_set_new(contacts, err);
	Outbox *o = hists ? outbox_open(outbox, err) : NULL;
	Account *a;

	if (!o) {
		hist_set_free(hists);
		return NULL;
	}
	a = g_new0(Account, 1);
	a->hists = hists;
	a->outbox = o;
	{
		g_autofree char *rpath = g_build_filename(dir, "roster", NULL);
		a->roster = roster_new(rpath);
	}
	a->events = hist_open(dir, "events", err);
	g_mutex_init(&a->events_lock);
	a->events_backlog = g_string_new(NULL);
	{
		/* raw is for readers of this mount only: start it empty */
		g_autofree char *raw = g_build_filename(dir, "raw", "log", NULL);
		if (truncate(raw, 0) < 0 && errno != ENOENT)
			xfs_warn("%s: %s", raw, g_strerror(errno));
	}
	a->raw = a->events ? hist_open(dir, "raw", err) : NULL;
	if (!a->raw) {
		g_string_free(a->events_backlog, TRUE);
		hist_close(a->events);
		roster_free(a->roster);
		outbox_free(o);
		hist_set_free(hists);
		g_free(a);
		return NULL;
	}
	a->features = g_ptr_array_new();
	a->states = g_ptr_array_new_with_free_func(g_free);
	a->dispatch = dispatch_new();
	a->dir = g_strdup(dir);
	g_queue_init(&a->outq);
	g_queue_init(&a->inflight);
	g_queue_init(&a->held);
	{
		/* what an earlier mount accepted and never saw acknowledged:
		 * held until the archive shows which the server has (a
		 * feature may take its own, as rooms do, at its attach) */
		g_autoptr(GPtrArray) pending = outbox_pending(o);
		for (guint i = 0; i < pending->len; i++) {
			OutMsg *m = g_new0(OutMsg, 1);
			m->item = g_steal_pointer(&pending->pdata[i]);
			g_queue_push_tail(&a->held, m);
		}
	}

	a->cfg = cfg;
	a->pool = pool;
	g_mutex_init(&a->lock);
	a->state = ACCT_OFFLINE;
	a->since = g_get_real_time() / G_USEC_PER_SEC;
	a->show = ACCT_SHOW_AVAILABLE;
	a->want_online = true;
	acct_conn_init(a);
	return a;
}

void acct_free(Account *a)
{
	g_assert(!a->ctx || pool_on_thread());
	/* what the features still hold is logged, not lost (while the
	 * stanzas' context and the logs are still there) */
	acct_features_offline(a);
	acct_conn_free(a);
	for (guint i = a->features->len; i-- > 0;) {
		const Feature *f = g_ptr_array_index(a->features, i);
		if (f->detach)
			f->detach(a);
	}
	g_ptr_array_unref(a->features);
	g_ptr_array_unref(a->states);
	dispatch_free(a->dispatch);
	g_free(a->dir);
	g_clear_pointer(&a->addrs, g_ptr_array_unref);
	g_queue_clear_full(&a->outq, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&a->held, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&a->inflight, (GDestroyNotify)acct_outmsg_free);
	g_clear_pointer(&a->hists, hist_set_free);
	g_clear_pointer(&a->outbox, outbox_free);
	g_clear_pointer(&a->roster, roster_free);
	g_clear_pointer(&a->events, hist_close);
	g_mutex_clear(&a->events_lock);
	g_string_free(a->events_backlog, TRUE);
	g_clear_pointer(&a->raw, hist_close);
	g_free(a->bound_jid);
	g_free(a->server);
	g_free(a->tls_desc);
	g_free(a->error);
	g_free(a->show_text);
	g_free(a->cert_error);
	g_free(a->auth_error);
	a->cert_error = a->auth_error = NULL;
	/* a resolver thread still running will post to this account: keep it */
	if (!a->resolving) {
		g_mutex_clear(&a->lock);
		g_free(a);
	}
}

static const PoolOps core_ops = {
	.attach = acct_attach,
	.connect = acct_connect,
	.tick = acct_tick,
	.run = acct_run,
	.deadline = acct_deadline,
	.wants_run = acct_wants_run,
	.pollfd = acct_pollfd,
	.conn_serial = acct_conn_serial,
	.abort = acct_abort,
	.shutdown = acct_shutdown,
	.closed = acct_closed,
	.free = acct_free,
	.send_raw = acct_send_raw,
	.set_show = acct_set_show,
	.resolved = acct_resolved,
	.queue_message = acct_queue_message,
};

Pool *pool_new(const CfgFile *cfg, const char *data_dir, GError **err)
{
	Pool *p = pool_create(&core_ops);

	for (guint i = 0; i < cfg->accounts->len; i++) {
		Account *a = acct_new(g_ptr_array_index(cfg->accounts, i), p,
				      data_dir, err);
		if (!a) {
			pool_free(p);
			return NULL;
		}
		pool_add_account(p, a);
	}
	return p;
}
