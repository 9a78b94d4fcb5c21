/* pool.c - the connection pool thread.
 *
 * DESIGN
 *
 * Threads and what they own:
 *
 *  - The pool thread (this file and account.c) owns libstrophe: every
 *    xmpp_ctx_t, xmpp_conn_t and stanza.  libstrophe has no locks, so no
 *    other thread ever calls an xmpp_* function; POOL_ASSERT() checks it
 *    in every function that does.  Each account has its own context (all
 *    owned by this one thread) because libstrophe's log and certificate
 *    callbacks name only a context, and they are where a refused login or
 *    certificate shows.
 *  - FUSE worker threads validate input and hand work to the pool as a
 *    PoolReq on Pool.queue, signal the eventfd, and, when they need the
 *    outcome, wait on Pool.done_cond with a deadline.  They never touch
 *    a socket.
 *  - Resolver threads (one short-lived thread per DNS lookup) run the
 *    blocking SRV and address lookups and post their answer as a PoolReq,
 *    so a slow DNS server cannot stall the other accounts.
 *  - The watchdog thread (watchdog.c) shuts a socket down when a login
 *    passes its deadline: libstrophe 0.12 can block inside the TLS
 *    handshake, and that is the only way to get the pool thread back.
 *
 * The loop: poll(2) on the eventfd and on every account's socket, with a
 * timeout only when something is due (a reconnect, libstrophe's own login
 * and close timers); then run the queued requests, the due timers, and
 * xmpp_run_once(ctx, 0) for each account.  Idle and online, the pool
 * sleeps in poll with no timeout and uses no CPU; a request wakes it at
 * once through the eventfd (xmpp_run's 1 s select would add half a second
 * to every send).
 *
 * The TLS handshake: libstrophe 0.12 runs it as a loop of SSL_connect and
 * select(2) inside xmpp_run_once, so a server that stalls there would hold
 * the pool thread, and every other account, until the watchdog cuts it
 * off.  xmppfs defines select() itself (below): when the caller is the
 * pool thread and the only descriptor is that of an account in its TLS
 * handshake, the pool goes on serving the other accounts and the queue
 * inside that call (pool_wait_nested) until the socket is ready.  This
 * nests the loop, never libstrophe: an account whose libstrophe call is
 * on the stack (acct_busy) is not run again until it returns, and
 * requests for it, and unmount, wait in the queue until then.
 *
 * The thread gets a large stack: libstrophe serialises every received
 * stanza recursively, and a deeply nested stanza from a hostile server
 * would otherwise overflow 8 MiB.
 *
 * Locks, in order (never take an earlier one while holding a later one):
 *   Pool.lock (queue, done flags)  ->  Account.lock (shared fields)
 * No lock is held while calling libstrophe or the kernel's FUSE notify
 * functions.
 *
 * What this design does not do: it does not parallelise libstrophe work
 * across cores (one thread serves every account; the server is the
 * bottleneck long before the client), and it does not free an Account
 * while a resolver thread may still post to it.
 */
#include "pool.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <strophe.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <unistd.h>

#include "log.h"

#define POOL_STACK_SIZE (256u << 20)
#define POOL_CALL_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define POOL_STOP_TIMEOUT_US (3 * G_USEC_PER_SEC)
#define POOL_TICK_MS 1000
#define POOL_STOP_TICK_MS 50

typedef enum {
	POOL_REQ_SHOW,
	POOL_REQ_RESOLVED,
	POOL_REQ_STOP,
} PoolReqKind;

typedef struct {
	PoolReqKind kind;
	Account *acct;
	AcctShow show;
	char *text;
	guint gen;
	GPtrArray *addrs;
	char *error;
	bool waited; /* a FUSE thread waits for done */
	bool done;   /* protected by Pool.lock */
} PoolReq;

struct Pool {
	GPtrArray *accounts; /* of Account*; fixed after pool_new */
	pthread_t thread;
	bool running;
	int wakefd;

	GMutex lock;
	GCond done_cond;
	GQueue queue; /* of PoolReq*, protected by lock */

	/* pool thread only */
	bool stopping;
	gint64 stop_deadline;
	GQueue deferred; /* requests that must wait for a nested wait's end */
};

static Pool *the_pool; /* the one pool, for select() */

static pthread_t pool_thread_id;
static bool pool_thread_set;

bool pool_on_thread(void)
{
	return pool_thread_set && pthread_equal(pthread_self(), pool_thread_id);
}

Pool *pool_new(const CfgFile *cfg)
{
	Pool *p = g_new0(Pool, 1);

	p->accounts = g_ptr_array_new();
	for (guint i = 0; i < cfg->accounts->len; i++)
		g_ptr_array_add(p->accounts,
				acct_new(g_ptr_array_index(cfg->accounts, i),
					 p));
	g_mutex_init(&p->lock);
	g_cond_init(&p->done_cond);
	g_queue_init(&p->queue);
	p->wakefd = -1;
	return p;
}

guint pool_n_accounts(Pool *p)
{
	return p->accounts->len;
}

Account *pool_account(Pool *p, guint i)
{
	return g_ptr_array_index(p->accounts, i);
}

static void wake(Pool *p)
{
	uint64_t one = 1;

	if (write(p->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
		xfs_err("cannot wake the pool thread: %s", g_strerror(errno));
}

static void req_free(PoolReq *r)
{
	g_free(r->text);
	g_free(r->error);
	if (r->addrs)
		g_ptr_array_unref(r->addrs);
	g_free(r);
}

/* Queue @r; with @wait, block until the pool ran it (or the deadline). */
static int submit(Pool *p, PoolReq *r, bool wait)
{
	gint64 deadline = g_get_monotonic_time() + POOL_CALL_TIMEOUT_US;
	int ret = 0;

	r->waited = wait;
	g_mutex_lock(&p->lock);
	g_queue_push_tail(&p->queue, r);
	wake(p);
	if (!wait) {
		g_mutex_unlock(&p->lock);
		return 0;
	}
	while (!r->done)
		if (!g_cond_wait_until(&p->done_cond, &p->lock, deadline))
			break;
	if (r->done) {
		req_free(r);
	} else {
		r->waited = false; /* the pool frees it when it gets to it */
		ret = -ETIMEDOUT;
	}
	g_mutex_unlock(&p->lock);
	return ret;
}

int pool_set_show(Pool *p, Account *a, AcctShow show, const char *text)
{
	PoolReq *r = g_new0(PoolReq, 1);

	r->kind = POOL_REQ_SHOW;
	r->acct = a;
	r->show = show;
	r->text = g_strdup(text);
	return submit(p, r, true);
}

void pool_post_resolved(Pool *p, Account *a, guint gen, GPtrArray *addrs,
			const char *error)
{
	PoolReq *r = g_new0(PoolReq, 1);

	r->kind = POOL_REQ_RESOLVED;
	r->acct = a;
	r->gen = gen;
	r->addrs = addrs;
	r->error = g_strdup(error);
	submit(p, r, false);
}

static void run_req(Pool *p, PoolReq *r)
{
	switch (r->kind) {
	case POOL_REQ_SHOW:
		acct_set_show(r->acct, r->show, r->text);
		break;
	case POOL_REQ_RESOLVED:
		acct_resolved(r->acct, r->gen, g_steal_pointer(&r->addrs),
			      r->error);
		break;
	case POOL_REQ_STOP:
		p->stopping = true;
		p->stop_deadline = g_get_monotonic_time() + POOL_STOP_TIMEOUT_US;
		for (guint i = 0; i < p->accounts->len; i++)
			acct_shutdown(pool_account(p, i));
		break;
	}
}

/* Inside a nested wait, a request for an account whose libstrophe call is
 * on the stack, and unmount, must wait. */
static bool must_defer(const PoolReq *r, bool nested)
{
	return nested && (r->kind == POOL_REQ_STOP || acct_busy(r->acct));
}

static void run_queue(Pool *p, bool nested)
{
	uint64_t n;
	GQueue todo = G_QUEUE_INIT;

	if (read(p->wakefd, &n, sizeof n) < 0 && errno != EAGAIN)
		xfs_err("pool wake read: %s", g_strerror(errno));
	todo = p->deferred;
	g_queue_init(&p->deferred);
	g_mutex_lock(&p->lock);
	for (PoolReq *r; (r = g_queue_pop_head(&p->queue));)
		g_queue_push_tail(&todo, r);
	g_mutex_unlock(&p->lock);
	for (PoolReq *r; (r = g_queue_pop_head(&todo));) {
		if (must_defer(r, nested)) {
			g_queue_push_tail(&p->deferred, r);
			continue;
		}
		run_req(p, r);
		g_mutex_lock(&p->lock);
		r->done = true;
		bool waited = r->waited;
		if (waited)
			g_cond_broadcast(&p->done_cond);
		g_mutex_unlock(&p->lock);
		if (!waited)
			req_free(r);
	}
}

static bool all_closed(Pool *p)
{
	for (guint i = 0; i < p->accounts->len; i++)
		if (!acct_closed(pool_account(p, i)))
			return false;
	return true;
}

/* How long poll may sleep: until the earliest due timer, at most a tick
 * while libstrophe runs timers of its own, forever when idle. */
static int poll_timeout(Pool *p)
{
	gint64 now = g_get_monotonic_time(), due = G_MAXINT64;
	bool ticking = false;
	int ms;

	for (guint i = 0; i < p->accounts->len; i++)
		due = MIN(due, acct_deadline(pool_account(p, i), &ticking));
	if (due == G_MAXINT64)
		ms = -1;
	else
		ms = due <= now ? 0 : (int)MIN((due - now + 999) / 1000, 60000);
	if (ticking && (ms < 0 || ms > POOL_TICK_MS))
		ms = POOL_TICK_MS;
	if (p->stopping && (ms < 0 || ms > POOL_STOP_TICK_MS))
		ms = POOL_STOP_TICK_MS;
	return ms;
}

static void pool_loop(Pool *p)
{
	guint n = p->accounts->len;
	g_autofree struct pollfd *fds = g_new0(struct pollfd, n + 1);

	for (;;) {
		gint64 now = g_get_monotonic_time();
		guint nfds = 1;

		for (guint i = 0; i < n; i++)
			acct_tick(pool_account(p, i), now);
		for (guint i = 0; i < n; i++)
			acct_run(pool_account(p, i));
		if (p->stopping &&
		    (all_closed(p) || now > p->stop_deadline))
			return;
		fds[0] = (struct pollfd){.fd = p->wakefd, .events = POLLIN};
		for (guint i = 0; i < n; i++)
			if (acct_pollfd(pool_account(p, i), &fds[nfds]))
				nfds++;
		if (poll(fds, nfds, poll_timeout(p)) < 0 && errno != EINTR)
			xfs_err("poll: %s", g_strerror(errno));
		if (fds[0].revents || p->deferred.length)
			run_queue(p, false);
	}
}

/* Add the sockets of every account that may run now; returns the count. */
static guint add_account_fds(Pool *p, struct pollfd *fds, Account **owner)
{
	guint n = 0;

	for (guint i = 0; i < p->accounts->len; i++) {
		Account *a = pool_account(p, i);
		if (!acct_busy(a) && acct_pollfd(a, &fds[n]))
			owner[n++] = a;
	}
	return n;
}

/* One turn of the loop for everyone but the accounts on the stack. */
static void serve_others(Pool *p, struct pollfd *fds, Account **owner,
			 guint n)
{
	gint64 now = g_get_monotonic_time();

	for (guint i = 0; i < p->accounts->len; i++)
		if (!acct_busy(pool_account(p, i)))
			acct_tick(pool_account(p, i), now);
	for (guint i = 0; i < n; i++)
		if (fds[i].revents)
			acct_run(owner[i]);
}

/* select() for an account blocked in its TLS handshake: keep the rest of
 * the pool running until @fd is ready as asked, or @tv passes. */
static int pool_wait_nested(Pool *p, int fd, fd_set *rd, fd_set *wr,
			    struct timeval *tv)
{
	guint max = p->accounts->len + 2;
	g_autofree struct pollfd *fds = g_new0(struct pollfd, max);
	g_autofree Account **owner = g_new0(Account *, max);
	gint64 end = tv ? g_get_monotonic_time() + tv->tv_sec * G_USEC_PER_SEC +
				  tv->tv_usec
			: G_MAXINT64;
	short want = (rd && FD_ISSET(fd, rd) ? POLLIN : 0) |
		     (wr && FD_ISSET(fd, wr) ? POLLOUT : 0);

	for (;;) {
		gint64 now = g_get_monotonic_time();
		int ms = poll_timeout(p);
		if (end != G_MAXINT64) {
			int left = now >= end ? 0 : (int)((end - now + 999) / 1000);
			ms = ms < 0 ? left : MIN(ms, left);
		}
		fds[0] = (struct pollfd){.fd = fd, .events = want};
		fds[1] = (struct pollfd){.fd = p->wakefd, .events = POLLIN};
		guint n = add_account_fds(p, fds + 2, owner + 2);
		if (poll(fds, n + 2, ms) < 0 && errno != EINTR)
			return -1;
		if (fds[0].revents) {
			bool err = fds[0].revents & (POLLERR | POLLHUP | POLLNVAL);
			if (rd && !(err || (fds[0].revents & POLLIN)))
				FD_CLR(fd, rd);
			if (wr && !(err || (fds[0].revents & POLLOUT)))
				FD_CLR(fd, wr);
			return 1;
		}
		if (fds[1].revents)
			run_queue(p, true);
		serve_others(p, fds + 2, owner + 2, n);
		if (g_get_monotonic_time() >= end) {
			if (rd)
				FD_ZERO(rd);
			if (wr)
				FD_ZERO(wr);
			return 0;
		}
	}
}

/* The only descriptor in the sets, or -1. */
static int single_fd(int nfds, fd_set *rd, fd_set *wr, fd_set *ex)
{
	int found = -1;

	for (int fd = 0; fd < nfds; fd++) {
		bool in = (rd && FD_ISSET(fd, rd)) || (wr && FD_ISSET(fd, wr)) ||
			  (ex && FD_ISSET(fd, ex));
		if (!in)
			continue;
		if (found >= 0)
			return -1;
		found = fd;
	}
	return found;
}

static Account *account_in_tls(Pool *p, int fd)
{
	for (guint i = 0; p && fd >= 0 && i < p->accounts->len; i++)
		if (acct_tls_fd(pool_account(p, i)) == fd)
			return pool_account(p, i);
	return NULL;
}

typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

/* Overrides libc's select for libstrophe (see DESIGN above); every other
 * caller gets libc's. */
int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	static select_fn real_select;
	int fd;

	if (pool_on_thread() && !ex &&
	    (fd = single_fd(nfds, rd, wr, ex)) >= 0 &&
	    account_in_tls(the_pool, fd))
		return pool_wait_nested(the_pool, fd, rd, wr, tv);
	if (!real_select)
		real_select = (select_fn)dlsym(RTLD_NEXT, "select");
	return real_select(nfds, rd, wr, ex, tv);
}

static void *pool_main(void *data)
{
	Pool *p = data;

	pool_thread_id = pthread_self();
	pool_thread_set = true;
	for (guint i = 0; i < p->accounts->len; i++)
		acct_attach(pool_account(p, i));
	for (guint i = 0; i < p->accounts->len; i++)
		acct_connect(pool_account(p, i));
	pool_loop(p);
	if (!all_closed(p))
		xfs_warn("closing: some servers did not answer the stream "
			 "close in time; connections dropped");
	for (guint i = 0; i < p->accounts->len; i++)
		acct_free(pool_account(p, i));
	g_ptr_array_set_size(p->accounts, 0);
	return NULL;
}

int pool_start(Pool *p)
{
	pthread_attr_t attr;
	int err;

	p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wakefd < 0)
		return -errno;
	g_queue_init(&p->deferred);
	the_pool = p;
	xmpp_initialize();
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, POOL_STACK_SIZE);
	err = pthread_create(&p->thread, &attr, pool_main, p);
	pthread_attr_destroy(&attr);
	if (err)
		return -err;
	p->running = true;
	return 0;
}

void pool_stop(Pool *p)
{
	PoolReq *r;

	if (!p->running)
		return;
	r = g_new0(PoolReq, 1);
	r->kind = POOL_REQ_STOP;
	submit(p, r, false);
	pthread_join(p->thread, NULL);
	p->running = false;
	xmpp_shutdown();
}

void pool_free(Pool *p)
{
	/* accounts that never met the pool thread have no context yet */
	for (guint i = 0; i < p->accounts->len; i++)
		acct_free(pool_account(p, i));
	g_ptr_array_unref(p->accounts);
	if (p->wakefd >= 0)
		close(p->wakefd);
	g_mutex_clear(&p->lock);
	g_cond_clear(&p->done_cond);
	g_free(p);
}
