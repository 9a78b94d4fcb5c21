/* pool.h - the connection pool thread: the only caller of libstrophe.
 * See the DESIGN comment in pool.c. */
#pragma once

#include <glib.h>
#include <poll.h>
#include <stdbool.h>

#include "base/config.h"
#include "xmpp/account.h"

struct Pool;
/* A request from a FUSE thread; opaque outside pool.c. */
typedef struct PoolReq PoolReq;

/* Create one Account per configured account; nothing runs yet (core.c:
 * pool_create with the core's PoolOps, then pool_add_account).  @cfg
 * stays the caller's and must outlive the pool; its path is the file
 * pool_reload reads again. */
Pool *pool_new(const CfgFile *cfg, const char *data_dir, GError **err);
/* [any but the pool thread] Read the config file again, with the checks
 * of the mount (cfg_load; password commands run here, on the caller's
 * thread), and give each account whose settings changed the new ones:
 * they take effect at its next connection, which starts at once (a
 * reconnect).  @only: that account alone (`reconnect` written to its
 * status); NULL: all (SIGHUP), with one warning line for accounts
 * added to the file (a mounted tree cannot grow them) and one for
 * those gone from it (they keep their settings until a remount).  A
 * file that does not load changes nothing: one warning line names the
 * file and the reason, and an `error` event says so in the events of
 * each account concerned.  Reloads run one at a time.  False when the
 * file did not load. */
bool pool_reload(Pool *p, Account *only);

/* How the pool runs an account: the account's functions it calls, on the
 * pool thread, all required (account.h says what each does: attach is
 * acct_attach, tick acct_tick, and so on).  The pool names none of them
 * itself, so nothing below or beside it is called by name. */
typedef struct {
	void (*attach)(Account *a);
	void (*connect)(Account *a);
	void (*tick)(Account *a, gint64 now);
	void (*run)(Account *a);
	gint64 (*deadline)(Account *a, bool *ticking);
	bool (*wants_run)(Account *a);
	bool (*pollfd)(Account *a, struct pollfd *pfd);
	guint64 (*conn_serial)(Account *a);
	void (*abort)(Account *a);
	void (*shutdown)(Account *a);
	bool (*closed)(Account *a);
	void (*free)(Account *a);
	/* the requests of other threads (pool_send_raw, pool_set_show,
	 * pool_post_resolved, pool_post_message) */
	int (*send_raw)(Account *a, GPtrArray *stanzas);
	void (*set_show)(Account *a, AcctShow show, const char *text);
	void (*resolved)(Account *a, guint gen, GPtrArray *addrs,
			 const char *error);
	void (*queue_message)(Account *a, OutboxItem *item);
	/* pool_post_config's settings, for the next connection */
	void (*reconfigure)(Account *a, const CfgAccount *cfg);
} PoolOps;
/* An empty pool that runs its accounts with @ops (borrowed, for the
 * pool's life); pool_add_account adds them before pool_start.
 * @cfg_path: the config file a reload reads (copied). */
Pool *pool_create(const PoolOps *ops, const char *cfg_path);
void pool_add_account(Pool *p, Account *a);
guint pool_n_accounts(Pool *p);
Account *pool_account(Pool *p, guint i);
/* Start the thread and connect every account (after daemonizing). */
int pool_start(Pool *p);
/* Close every stream cleanly (bounded by a few seconds) and end the
 * thread.  Called once, after the FUSE loop ended. */
void pool_stop(Pool *p);
/* Free what pool_new made (after pool_stop, or if it never started). */
void pool_free(Pool *p);
/* True on the pool thread: asserted by every function that calls
 * libstrophe. */
bool pool_on_thread(void);
#define POOL_ASSERT() g_assert(pool_on_thread())

/* [any] The accounts' state changes (acct_set_state counts each):
 * how many so far, and a wait until the count is no longer @seen or
 * @deadline (monotonic µs) passed; false then.  pool_state_bump counts
 * one more, which also ends such a wait early (main.c, at unmount). */
guint64 pool_state_serial(Pool *p);
bool pool_state_wait(Pool *p, guint64 seen, gint64 deadline);
void pool_state_bump(Pool *p);

/* [pool] The account whose coroutine runs now, or NULL. */
Account *pool_current_account(void);

/* [any] Apply a `status` write on the pool thread; waits until applied.
 * 0 or -ETIMEDOUT. */
int pool_set_show(Pool *p, Account *a, AcctShow show, const char *text);
/* [pool] Finish a request whose answer came later (a roster change the
 * server answered): @result is 0 or -errno for the waiting thread. */
void pool_complete(PoolReq *r, int result);
/* A feature's work on the pool thread: @fn(@a, @data, @r) runs there and
 * calls pool_complete(@r, result) when done, at once or when the server
 * answered. */
typedef void (*PoolFn)(Account *a, void *data, PoolReq *r);
/* [any] Run @fn on the pool thread and wait for its pool_complete (or the
 * deadline: -ETIMEDOUT); @free_data(@data) afterwards.  0 or -errno. */
int pool_call(Pool *p, Account *a, PoolFn fn, void *data,
	      GDestroyNotify free_data);
/* [any] Send stanzas written to `raw` (taken); waits until sent.  0 or
 * -ENOTCONN. */
int pool_send_raw(Pool *p, Account *a, GPtrArray *stanzas);
/* [any] Hand an accepted message (taken) to the pool; does not wait. */
void pool_post_message(Pool *p, Account *a, OutboxItem *item);
/* [any] Config reloads (core.c's pool_reload), one at a time: begin
 * takes the pool's reload lock and returns the config file's path; end
 * keeps @keep (taken; NULL: none) until pool_free, since its accounts'
 * settings were handed out and any thread may hold them (acct_cfg),
 * and releases the lock. */
const char *pool_reload_begin(Pool *p);
void pool_reload_end(Pool *p, CfgFile *keep);
/* [any] Give @a new settings (borrowed from a file kept with
 * pool_reload_end) for its next connection; does not wait. */
void pool_post_config(Pool *p, Account *a, const CfgAccount *cfg);
/* [any] Hand the resolver's answer to the pool (takes @addrs). */
void pool_post_resolved(Pool *p, Account *a, guint gen, GPtrArray *addrs,
			const char *error);
