/* pool.c - the connection pool thread.
 *
 * DESIGN
 *
 * Threads and what they own:
 *
 *  - The pool thread (this file and the account layer) owns libstrophe: every
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
 *  - A config reload (core.c's pool_reload: main.c's SIGHUP thread, or a
 *    FUSE thread that wrote `reconnect` to a status file) reads the file
 *    on its own thread, since password commands block, and hands each
 *    changed account its new settings as a PoolReq.  The account takes
 *    them when its next connection starts (acct_connect), the one moment
 *    no attempt uses the old ones; the files they came from stay until
 *    pool_free, so a thread that still holds old settings reads valid
 *    memory.
 *  - The watchdog thread (watchdog.c) shuts a socket down when a login
 *    passes its deadline: libstrophe 0.12 can block inside the TLS
 *    handshake, and that is the only way to get the pool thread back.
 *
 * The loop: epoll_wait on the eventfd and on every account's socket, with
 * a timeout only when something is due (a keep-alive, a reconnect,
 * libstrophe's own login and close timers); then run, each in its
 * coroutine, only the accounts that have something to do: a ready
 * socket, a queued request, a due timer (their requests, timers and
 * xmpp_run_once(ctx, 0)).  An account's epoll registration and next
 * deadline are updated after it runs, the only time they change, so a
 * turn costs what its ready accounts cost, plus a comparison per
 * account.  Idle and online, the pool sleeps with no timeout; a request
 * wakes it at once through the eventfd (xmpp_run's 1 s select would add
 * half a second to every send).
 *
 * Blocking inside libstrophe: 0.12 runs the TLS handshake (and the TLS
 * shutdown) as loops of SSL calls and select(2), so a server that stalls
 * there would hold the pool thread and every other account.  Each account
 * therefore does its libstrophe work (requests, timers, xmpp_run_once) in
 * a coroutine of its own on the pool thread (coro.c), and xmppfs defines
 * select() itself: a select with a timeout made from inside an account's
 * coroutine records what it waits for and yields to the loop, which polls
 * those descriptors with everything else and resumes the coroutine when
 * one is ready or the timeout passed.  So libstrophe still runs on one
 * thread only, and never waits there.  A coroutine that yielded is inside
 * a libstrophe call: its account is not run again until it is resumed.
 *
 * Each coroutine stack is 256 MiB of reserved (not committed) memory:
 * libstrophe serialises every received stanza recursively, and a deeply
 * nested stanza from a hostile server would overflow an 8 MiB stack.
 *
 * Locks, in order (never take an earlier one while holding a later one):
 *   Pool.reload_lock (a config reload)  ->  Pool.lock (queue, done
 *   flags)  ->  Account.lock (shared fields)
 * and Pool.state_lock, a leaf: nothing is taken while it is held.
 * No lock is held while calling libstrophe or the kernel's FUSE notify
 * functions.
 *
 * The pool knows its accounts only through the PoolOps table it is made
 * with (core.c gives it): it runs them, hands them requests and frees
 * them by those pointers and names none of their functions, so the
 * account's files can call the pool (pool_on_thread, pool_complete,
 * pool_post_*) without a call cycle between them.
 *
 * What this design does not do: it does not parallelise libstrophe work
 * across cores (one thread serves every account; the server is the
 * bottleneck long before the client), and it does not free an Account
 * while a resolver thread may still post to it.
 */
#include "xmpp/pool.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <strophe.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <unistd.h>

#include "base/coro.h"
#include "base/log.h"
#include "store/fdcache.h"

#define CORO_STACK_SIZE ((size_t)256 << 20)
#define POOL_CALL_TIMEOUT_US (20 * G_USEC_PER_SEC)
#define POOL_STOP_TIMEOUT_US (3 * G_USEC_PER_SEC)
#define POOL_TICK_MS 1000 /* libstrophe's timers during a login, a close */
#define POOL_STOP_TICK_MS 50
#define WAIT_FDS_MAX 8

typedef enum {
	POOL_REQ_SHOW,
	POOL_REQ_RESOLVED,
	POOL_REQ_MESSAGE,
	POOL_REQ_RAW,
	POOL_REQ_CALL, /* a feature's (pool_call) */
	POOL_REQ_CONFIG, /* a reload's new settings (pool_post_config) */
	POOL_REQ_STOP,
} PoolReqKind;

struct PoolReq {
	PoolReqKind kind;
	Account *acct;
	AcctShow show;
	char *text;
	guint gen;
	GPtrArray *addrs;
	char *error;
	OutboxItem *item;
	GPtrArray *stanzas;
	PoolFn fn;           /* POOL_REQ_CALL */
	void *data;
	GDestroyNotify free_data;
	const CfgAccount *cfg; /* POOL_REQ_CONFIG: kept by the pool */
	int result;  /* 0 or -errno, for the waiting thread */
	bool waited; /* a FUSE thread waits for done */
	bool done;   /* protected by Pool.lock */
};

/* One account as the loop sees it.  Pool thread only. */
typedef struct {
	Account *acct;
	Coro *coro;
	GQueue pending;   /* PoolReq* for this account, run in its coroutine */
	bool stop;        /* unmount: ops->shutdown at the next run */
	/* what the coroutine's select() waits for while it is suspended */
	struct pollfd wait[WAIT_FDS_MAX];
	guint nwait;
	gint64 wait_until; /* monotonic µs, G_MAXINT64 for none */
	/* when it must run again without its socket or a request asking:
	 * its timers (ops->deadline, kept from its last run, which is the
	 * only place they change) and libstrophe's own during a login or a
	 * close (about once a second) */
	gint64 due;        /* monotonic µs, G_MAXINT64 for none */
	bool again;        /* run at the next turn (first turn, work left) */
	/* what the pool's epoll set holds for it (slot_register), and what
	 * the last wait said of those descriptors */
	struct pollfd reg[WAIT_FDS_MAX];
	guint nreg;
	guint64 reg_conn;  /* ops->conn_serial when registered */
	bool ready;        /* one of them is ready */
} Slot;

struct Pool {
	const PoolOps *ops;  /* how to run an account; immutable */
	GPtrArray *accounts; /* of Account*; fixed after pool_new */
	pthread_t thread;
	bool running;
	int wakefd;
	int epfd;     /* pool thread: the accounts' descriptors, wakefd */

	GMutex lock;
	GCond done_cond;
	GQueue queue; /* of PoolReq*, protected by lock */

	GMutex state_lock;
	GCond state_cond;
	guint64 state_serial; /* protected by state_lock */

	/* config reloads (core.c's pool_reload) run one at a time under
	 * reload_lock, held from reading the file to handing out its
	 * settings; taken before lock, never inside it */
	GMutex reload_lock;
	char *cfg_path;     /* immutable */
	/* every config file read since the mount whose settings an account
	 * was given: any thread may hold a CfgAccount of one (acct_cfg),
	 * so none is freed before pool_free; protected by reload_lock */
	GPtrArray *configs;

	/* pool thread only */
	Slot *slots;
	bool stopping;
	gint64 stop_deadline;
};

static Pool *the_pool;   /* the one pool, for select() */
static Slot *cur_slot;   /* the slot whose coroutine runs now */
static pthread_t pool_thread_id;
static bool pool_thread_set;

bool pool_on_thread(void)
{
	return pool_thread_set && pthread_equal(pthread_self(), pool_thread_id);
}

Pool *pool_create(const PoolOps *ops, const char *cfg_path)
{
	Pool *p = g_new0(Pool, 1);

	p->ops = ops;
	g_mutex_init(&p->reload_lock);
	p->cfg_path = g_strdup(cfg_path);
	p->configs = g_ptr_array_new_with_free_func((GDestroyNotify)cfg_free);
	p->accounts = g_ptr_array_new();
	g_mutex_init(&p->lock);
	g_cond_init(&p->done_cond);
	g_queue_init(&p->queue);
	g_mutex_init(&p->state_lock);
	g_cond_init(&p->state_cond);
	p->wakefd = -1;
	p->epfd = -1;
	return p;
}

void pool_add_account(Pool *p, Account *a)
{
	g_ptr_array_add(p->accounts, a);
}

guint pool_n_accounts(Pool *p)
{
	return p->accounts->len;
}

Account *pool_account(Pool *p, guint i)
{
	return g_ptr_array_index(p->accounts, i);
}

/* ---- requests from other threads ---- */

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
	outbox_item_free(r->item);
	if (r->stanzas)
		g_ptr_array_unref(r->stanzas);
	if (r->free_data)
		r->free_data(r->data);
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
		ret = r->result;
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

int pool_call(Pool *p, Account *a, PoolFn fn, void *data,
	      GDestroyNotify free_data)
{
	PoolReq *r = g_new0(PoolReq, 1);

	r->kind = POOL_REQ_CALL;
	r->acct = a;
	r->fn = fn;
	r->data = data;
	r->free_data = free_data;
	return submit(p, r, true);
}

int pool_send_raw(Pool *p, Account *a, GPtrArray *stanzas)
{
	PoolReq *r = g_new0(PoolReq, 1);

	r->kind = POOL_REQ_RAW;
	r->acct = a;
	r->stanzas = stanzas;
	return submit(p, r, true);
}

void pool_post_message(Pool *p, Account *a, OutboxItem *item)
{
	PoolReq *r = g_new0(PoolReq, 1);

	r->kind = POOL_REQ_MESSAGE;
	r->acct = a;
	r->item = item;
	submit(p, r, false);
}

const char *pool_reload_begin(Pool *p)
{
	g_mutex_lock(&p->reload_lock);
	return p->cfg_path;
}

void pool_reload_end(Pool *p, CfgFile *keep)
{
	if (keep)
		g_ptr_array_add(p->configs, keep);
	g_mutex_unlock(&p->reload_lock);
}

void pool_post_config(Pool *p, Account *a, const CfgAccount *cfg)
{
	PoolReq *r = g_new0(PoolReq, 1);

	r->kind = POOL_REQ_CONFIG;
	r->acct = a;
	r->cfg = cfg;
	submit(p, r, false);
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

guint64 pool_state_serial(Pool *p)
{
	guint64 n;

	g_mutex_lock(&p->state_lock);
	n = p->state_serial;
	g_mutex_unlock(&p->state_lock);
	return n;
}

bool pool_state_wait(Pool *p, guint64 seen, gint64 deadline)
{
	bool changed;

	g_mutex_lock(&p->state_lock);
	while (p->state_serial == seen &&
	       g_cond_wait_until(&p->state_cond, &p->state_lock, deadline))
		;
	changed = p->state_serial != seen;
	g_mutex_unlock(&p->state_lock);
	return changed;
}

void pool_state_bump(Pool *p)
{
	g_mutex_lock(&p->state_lock);
	p->state_serial++;
	g_cond_broadcast(&p->state_cond);
	g_mutex_unlock(&p->state_lock);
}

static void req_done(Pool *p, PoolReq *r);

void pool_complete(PoolReq *r, int result)
{
	r->result = result;
	req_done(the_pool, r);
}

static void req_done(Pool *p, PoolReq *r)
{
	bool waited;

	g_mutex_lock(&p->lock);
	r->done = true;
	waited = r->waited;
	if (waited)
		g_cond_broadcast(&p->done_cond);
	g_mutex_unlock(&p->lock);
	if (!waited)
		req_free(r);
}

static Slot *slot_of(Pool *p, Account *a)
{
	for (guint i = 0; i < p->accounts->len; i++)
		if (p->slots[i].acct == a)
			return &p->slots[i];
	g_assert_not_reached();
}

/* Hand each queued request to its account; unmount marks every account. */
static void take_queue(Pool *p)
{
	uint64_t n;
	GQueue todo = G_QUEUE_INIT;

	if (read(p->wakefd, &n, sizeof n) < 0 && errno != EAGAIN)
		xfs_err("pool wake read: %s", g_strerror(errno));
	g_mutex_lock(&p->lock);
	todo = p->queue;
	g_queue_init(&p->queue);
	g_mutex_unlock(&p->lock);
	for (PoolReq *r; (r = g_queue_pop_head(&todo));) {
		if (r->kind != POOL_REQ_STOP) {
			g_queue_push_tail(&slot_of(p, r->acct)->pending, r);
			continue;
		}
		p->stopping = true;
		p->stop_deadline = g_get_monotonic_time() + POOL_STOP_TIMEOUT_US;
		for (guint i = 0; i < p->accounts->len; i++) {
			p->slots[i].stop = true;
			/* a coroutine stuck in a handshake: end it now */
			if (coro_suspended(p->slots[i].coro))
				p->ops->abort(p->slots[i].acct);
		}
		req_done(p, r);
	}
}

/* ---- the coroutines ---- */

/* Run @r; false when its answer comes later (pool_complete). */
static bool run_req(PoolReq *r)
{
	switch (r->kind) {
	case POOL_REQ_CALL:
		r->fn(r->acct, r->data, r); /* it calls pool_complete */
		return false;
	case POOL_REQ_RAW:
		r->result = the_pool->ops->send_raw(r->acct, r->stanzas);
		break;
	case POOL_REQ_SHOW:
		the_pool->ops->set_show(r->acct, r->show, r->text);
		break;
	case POOL_REQ_RESOLVED:
		the_pool->ops->resolved(r->acct, r->gen,
					 g_steal_pointer(&r->addrs), r->error);
		break;
	case POOL_REQ_MESSAGE:
		the_pool->ops->queue_message(r->acct,
					      g_steal_pointer(&r->item));
		break;
	case POOL_REQ_CONFIG:
		the_pool->ops->reconfigure(r->acct, r->cfg);
		break;
	case POOL_REQ_STOP:
		break;
	}
	return true;
}

/* What an account does in one turn of the loop, on its own stack. */
static void slot_work(void *data)
{
	Slot *s = data;
	Account *a = s->acct;
	const PoolOps *ops = the_pool->ops;
	bool ticking = false;
	gint64 now;

	ops->tick(a, g_get_monotonic_time());
	for (PoolReq *r; (r = g_queue_pop_head(&s->pending));)
		if (run_req(r))
			req_done(the_pool, r);
	if (s->stop) {
		s->stop = false;
		ops->shutdown(a);
	}
	ops->run(a);
	now = g_get_monotonic_time();
	s->due = ops->deadline(a, &ticking);
	if (ticking)
		s->due = MIN(s->due, now + POOL_TICK_MS * 1000);
	s->again = ops->wants_run(a);
}

Account *pool_current_account(void)
{
	return pool_on_thread() && coro_current() && cur_slot ? cur_slot->acct
							      : NULL;
}

static void slot_run(Slot *s)
{
	cur_slot = s;
	coro_run(s->coro);
	cur_slot = NULL;
}

/* select() from inside a coroutine with a timeout: wait in the loop. */
static int select_yield(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
			struct timeval *tv)
{
	Slot *s = cur_slot;
	int ready = 0;

	s->nwait = 0;
	for (int fd = 0; fd < nfds && s->nwait < WAIT_FDS_MAX; fd++) {
		short ev = (rd && FD_ISSET(fd, rd) ? POLLIN : 0) |
			   (wr && FD_ISSET(fd, wr) ? POLLOUT : 0) |
			   (ex && FD_ISSET(fd, ex) ? POLLPRI : 0);
		if (ev)
			s->wait[s->nwait++] = (struct pollfd){fd, ev, 0};
	}
	s->wait_until = tv ? g_get_monotonic_time() +
				     tv->tv_sec * G_USEC_PER_SEC + tv->tv_usec
			   : G_MAXINT64;
	coro_yield();
	for (guint i = 0; i < s->nwait; i++) {
		struct pollfd *w = &s->wait[i];
		bool err = w->revents & (POLLERR | POLLHUP | POLLNVAL);
		bool any = false;
		if (rd && FD_ISSET(w->fd, rd) && !(err || w->revents & POLLIN))
			FD_CLR(w->fd, rd);
		else if (rd && FD_ISSET(w->fd, rd))
			any = true;
		if (wr && FD_ISSET(w->fd, wr) && !(err || w->revents & POLLOUT))
			FD_CLR(w->fd, wr);
		else if (wr && FD_ISSET(w->fd, wr))
			any = true;
		if (ex && FD_ISSET(w->fd, ex) && !(w->revents & POLLPRI))
			FD_CLR(w->fd, ex);
		else if (ex && FD_ISSET(w->fd, ex))
			any = true;
		ready += any;
	}
	s->nwait = 0;
	return ready;
}

typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

/* Overrides libc's select for libstrophe (see DESIGN above): a wait from
 * inside an account's coroutine yields to the loop; every other call, and
 * every poll without timeout, is libc's. */
int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	static select_fn real_select;

	if (pool_on_thread() && coro_current() && cur_slot &&
	    !(tv && tv->tv_sec == 0 && tv->tv_usec == 0))
		return select_yield(nfds, rd, wr, ex, tv);
	if (!real_select)
		real_select = (select_fn)dlsym(RTLD_NEXT, "select");
	return real_select(nfds, rd, wr, ex, tv);
}

/* ---- the loop ---- */

static bool all_closed(Pool *p)
{
	for (guint i = 0; i < p->accounts->len; i++)
		if (!p->ops->closed(pool_account(p, i)) ||
		    coro_suspended(p->slots[i].coro))
			return false;
	return true;
}

/* How long poll may sleep: until the earliest due timer of any account,
 * forever when idle.  (A scan of one number per account: 1,000 of them
 * cost about a microsecond, far below the poll itself.) */
static int poll_timeout(Pool *p)
{
	gint64 now = g_get_monotonic_time(), due = G_MAXINT64;
	int ms;

	for (guint i = 0; i < p->accounts->len; i++) {
		Slot *s = &p->slots[i];
		if (coro_suspended(s->coro))
			due = MIN(due, s->wait_until);
		else
			due = MIN(due, s->again ? now : s->due);
	}
	if (due == G_MAXINT64)
		ms = -1;
	else
		ms = due <= now ? 0 : (int)MIN((due - now + 999) / 1000, 60000);
	if (p->stopping && (ms < 0 || ms > POOL_STOP_TICK_MS))
		ms = POOL_STOP_TICK_MS;
	return ms;
}

#define WAKE_KEY G_MAXUINT64
#define EVENTS_MAX 256

/* Keep the epoll set in step with what slot @i waits for: a suspended
 * coroutine's wait set, or its account's socket.  Called after the slot
 * ran, the only time that changes; a new connection re-registers even
 * when its socket has the old one's number. */
static void slot_register(Pool *p, Slot *s, guint i)
{
	struct pollfd want[WAIT_FDS_MAX];
	guint n = 0;
	guint64 serial = p->ops->conn_serial(s->acct);
	bool same;

	if (coro_suspended(s->coro)) {
		memcpy(want, s->wait, s->nwait * sizeof *want);
		n = s->nwait;
	} else if (p->ops->pollfd(s->acct, &want[0])) {
		n = 1;
	}
	same = n == s->nreg && serial == s->reg_conn;
	for (guint j = 0; same && j < n; j++)
		same = want[j].fd == s->reg[j].fd &&
		       want[j].events == s->reg[j].events;
	if (same)
		return;
	for (guint j = 0; j < s->nreg; j++) /* (a closed one is gone) */
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, s->reg[j].fd, NULL);
	for (guint j = 0; j < n; j++) {
		/* poll's and epoll's event bits are the same numbers */
		struct epoll_event ev = {.events = (uint32_t)want[j].events,
					 .data.u64 = ((guint64)i << 8) | j};
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, want[j].fd, &ev) < 0 &&
		    (errno != EEXIST ||
		     epoll_ctl(p->epfd, EPOLL_CTL_MOD, want[j].fd, &ev) < 0))
			xfs_err("epoll_ctl %d: %s", want[j].fd, g_strerror(errno));
		want[j].revents = 0;
	}
	memcpy(s->reg, want, n * sizeof *want);
	s->nreg = n;
	s->reg_conn = serial;
}

static void slot_run_registered(Pool *p, Slot *s, guint i)
{
	slot_run(s);
	s->ready = false;
	for (guint j = 0; j < s->nreg; j++)
		s->reg[j].revents = 0;
	slot_register(p, s, i);
}

/* Resume the coroutines whose wait is over; run the accounts whose
 * socket is ready, that have requests, or whose timer is due.  The
 * others are not touched: an idle account costs nothing per turn but a
 * few comparisons here. */
static void run_slots(Pool *p)
{
	gint64 now = g_get_monotonic_time();

	for (guint i = 0; i < p->accounts->len; i++) {
		Slot *s = &p->slots[i];
		if (coro_suspended(s->coro)) {
			if (!s->ready && now < s->wait_until)
				continue;
			for (guint j = 0; j < s->nwait; j++)
				s->wait[j].revents =
					j < s->nreg ? s->reg[j].revents : 0;
			slot_run_registered(p, s, i);
			continue;
		}
		if (s->ready || s->again || s->stop || s->pending.length ||
		    now >= s->due)
			slot_run_registered(p, s, i);
	}
}

/* Wait (epoll, so that the cost follows the ready descriptors, not all
 * of them: poll(2) on 1,000 sockets cost 49 µs a turn here), and mark
 * what is ready. */
static void wait_events(Pool *p)
{
	struct epoll_event evs[EVENTS_MAX];
	int n = epoll_wait(p->epfd, evs, EVENTS_MAX, poll_timeout(p));

	if (n < 0 && errno != EINTR)
		xfs_err("epoll_wait: %s", g_strerror(errno));
	for (int k = 0; k < n; k++) {
		guint64 key = evs[k].data.u64;
		Slot *s;
		guint j;
		if (key == WAKE_KEY) {
			take_queue(p);
			continue;
		}
		s = &p->slots[key >> 8];
		j = key & 0xff;
		if (j < s->nreg) {
			s->reg[j].revents |= (short)evs[k].events;
			s->ready = true;
		}
	}
}

static void pool_loop(Pool *p)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_KEY};

	epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wakefd, &ev);
	for (;;) {
		run_slots(p);
		if (p->stopping && (all_closed(p) ||
				    g_get_monotonic_time() > p->stop_deadline))
			return;
		wait_events(p);
	}
}

static void *pool_main(void *data)
{
	Pool *p = data;

	pool_thread_id = pthread_self();
	pool_thread_set = true;
	/* its own name in top -H, gdb and /proc: not the FUSE loop's */
	pthread_setname_np(pthread_self(), "xmppfs-pool");
	p->slots = g_new0(Slot, p->accounts->len);
	for (guint i = 0; i < p->accounts->len; i++) {
		Slot *s = &p->slots[i];
		s->acct = pool_account(p, i);
		s->coro = coro_new(slot_work, s, CORO_STACK_SIZE);
		g_queue_init(&s->pending);
		s->again = true; /* a first turn for every account */
		p->ops->attach(s->acct);
	}
	for (guint i = 0; i < p->accounts->len; i++)
		p->ops->connect(pool_account(p, i));
	pool_loop(p);
	if (!all_closed(p))
		xfs_warn("closing: some servers did not answer the stream "
			 "close in time; connections dropped");
	for (guint i = 0; i < p->accounts->len; i++) {
		Slot *s = &p->slots[i];
		for (PoolReq *r; (r = g_queue_pop_head(&s->pending));)
			req_done(p, r);
		if (coro_suspended(s->coro))
			continue; /* inside libstrophe: leave it be */
		p->ops->free(s->acct);
		coro_free(s->coro);
	}
	g_ptr_array_set_size(p->accounts, 0);
	return NULL;
}

int pool_start(Pool *p)
{
	int err;

	p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->wakefd < 0)
		return -errno;
	p->wakefd = fdcache_high(p->wakefd); /* below 1024: sockets only */
	p->epfd = fdcache_high(epoll_create1(EPOLL_CLOEXEC));
	if (p->epfd < 0)
		return -errno;
	the_pool = p;
	xmpp_initialize();
	err = pthread_create(&p->thread, NULL, pool_main, p);
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
		p->ops->free(pool_account(p, i));
	g_ptr_array_unref(p->accounts);
	/* after the accounts: nothing can read these settings now */
	g_ptr_array_unref(p->configs);
	g_free(p->cfg_path);
	g_mutex_clear(&p->reload_lock);
	g_free(p->slots);
	if (p->wakefd >= 0)
		close(p->wakefd);
	if (p->epfd >= 0)
		close(p->epfd);
	g_mutex_clear(&p->lock);
	g_cond_clear(&p->done_cond);
	g_mutex_clear(&p->state_lock);
	g_cond_clear(&p->state_cond);
	g_free(p);
}
