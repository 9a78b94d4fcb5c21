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
#include <string.h>
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
	a->cfg_latest = cfg;
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
	.reconfigure = acct_reconfigure,
};

Pool *pool_new(const CfgFile *cfg, const char *data_dir, GError **err)
{
	Pool *p = pool_create(&core_ops, cfg->path);

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

/* ---- reloading the config (pool.h) ---- */

/* The file did not load: nothing changes.  One line for the log, and an
 * `error` event where a user of the account looks. */
static void reload_refused(Pool *p, Account *only, const char *why)
{
	g_autofree char *text = g_strdup_printf(
		"config not reloaded, the settings in use stay: %s", why);

	xfs_warn("%s", text);
	for (guint i = 0; i < pool_n_accounts(p); i++) {
		Account *a = pool_account(p, i);
		if (!only || a == only)
			acct_event(a, "error", a->cfg_latest->jid, text);
	}
}

#define GONE_TEXT                                                             \
	"config reloaded: this account was removed from it; it stays "     \
	"mounted, with the settings in use, until a remount"

/* Accounts in @cfg that the mount has not, and mounted accounts @cfg has
 * not: a mounted tree cannot grow or lose an account's folder.  One line
 * for each kind; an event in the events of each account gone. */
static void reload_tell_membership(Pool *p, const CfgFile *cfg,
				   GHashTable *mounted)
{
	g_autoptr(GString) added = g_string_new(NULL);
	g_autoptr(GString) gone = g_string_new(NULL);
	guint n_added = 0, n_gone = 0;

	for (guint i = 0; i < cfg->accounts->len; i++) {
		const CfgAccount *ac = g_ptr_array_index(cfg->accounts, i);
		if (g_hash_table_contains(mounted, ac->jid))
			continue;
		g_string_append_printf(added, "%s%s", n_added++ ? ", " : "",
				       ac->jid);
	}
	for (guint i = 0; i < pool_n_accounts(p); i++) {
		Account *a = pool_account(p, i);
		const char *jid = a->cfg_latest->jid;
		if (cfg_account_of(cfg, jid))
			continue;
		g_string_append_printf(gone, "%s%s", n_gone++ ? ", " : "", jid);
		acct_event(a, "error", jid, GONE_TEXT);
	}
	if (n_added)
		xfs_warn("%s: added account%s %s need%s a remount", cfg->path,
			 n_added > 1 ? "s" : "", added->str,
			 n_added > 1 ? "" : "s");
	if (n_gone)
		xfs_warn("%s: account%s %s removed from it stay%s mounted, "
			 "with the settings in use, until a remount",
			 cfg->path, n_gone > 1 ? "s" : "", gone->str,
			 n_gone > 1 ? "" : "s");
}

/* Hand @a its settings from @cfg when they changed; true then. */
static bool reload_account(Pool *p, Account *a, CfgFile *cfg)
{
	CfgAccount *ac = cfg_account_of(cfg, a->cfg_latest->jid);

	if (!ac || cfg_account_same(ac, a->cfg_latest))
		return false;
	a->cfg_latest = ac;
	xfs_info("%s: new settings in %s: reconnecting", ac->jid, cfg->path);
	acct_event(a, "connection", ac->jid,
		   "config reloaded: new settings, reconnecting with them");
	pool_post_config(p, a, ac);
	return true;
}

bool pool_reload(Pool *p, Account *only)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GHashTable) mounted =
		g_hash_table_new(g_str_hash, g_str_equal);
	const char *path;
	CfgFile *cfg;
	guint changed = 0;

	g_assert(!pool_on_thread()); /* password commands block */
	path = pool_reload_begin(p);
	cfg = cfg_load(path, &err);
	if (!cfg) {
		reload_refused(p, only, err->message);
		pool_reload_end(p, NULL);
		return false;
	}
	for (guint i = 0; i < pool_n_accounts(p); i++) {
		Account *a = pool_account(p, i);
		g_hash_table_add(mounted, (char *)a->cfg_latest->jid);
		if (!only || a == only)
			changed += reload_account(p, a, cfg);
	}
	if (!only) {
		reload_tell_membership(p, cfg, mounted);
	} else if (!cfg_account_of(cfg, only->cfg_latest->jid)) {
		xfs_warn("%s: %s was removed from it: it stays mounted, with "
			 "the settings in use, until a remount", path,
			 only->cfg_latest->jid);
		acct_event(only, "error", only->cfg_latest->jid, GONE_TEXT);
	}
	if (!changed) {
		xfs_info("%s: reloaded; no settings changed", path);
		cfg_free(g_steal_pointer(&cfg));
	}
	/* kept when an account was given settings of it */
	pool_reload_end(p, cfg);
	return true;
}
