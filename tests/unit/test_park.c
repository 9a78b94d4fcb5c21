/* test_park.c - fs/park.c: a parked request is answered once, by its
 * owner's answer path or by its interrupt, never both, never neither.
 *
 * park.c is built into this program with the three libfuse functions it
 * calls stubbed as libfuse 3.14 does them: fuse_req_interrupt_func calls
 * the callback at once when the request was interrupted before, and an
 * interrupt runs the callback with the request's own lock held. */
#include <errno.h>
#include <glib.h>

#include "fs/park.h"

struct fuse_req {
	GMutex lock;   /* libfuse's req->lock: held around the callback */
	gint interrupted;
	fuse_interrupt_func_t func;
	void *data;
	gint replies;  /* atomic */
	int err;
};

void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func,
			     void *data)
{
	g_mutex_lock(&req->lock);
	req->func = func;
	req->data = data;
	if (g_atomic_int_get(&req->interrupted) && func)
		func(req, data);
	g_mutex_unlock(&req->lock);
}

int fuse_req_interrupted(fuse_req_t req)
{
	return g_atomic_int_get(&req->interrupted);
}

int fuse_reply_err(fuse_req_t req, int err)
{
	req->err = err;
	g_atomic_int_inc(&req->replies);
	return 0;
}

/* What the kernel's interrupt makes libfuse do (find_interrupted). */
static void interrupt(fuse_req_t req)
{
	g_mutex_lock(&req->lock);
	g_atomic_int_set(&req->interrupted, 1);
	if (req->func)
		req->func(req, req->data);
	g_mutex_unlock(&req->lock);
}

/* An owner as stream.c and iqcall.c have one: a list under its lock. */
typedef struct {
	GMutex lock;
	GHashTable *waiting; /* of fuse_req_t, under lock */
	gint refs;           /* atomic: park.c's references */
	gint cancels;        /* atomic */
} Owner;

/* With o->lock held. */
static bool owner_take(Owner *o, fuse_req_t req)
{
	if (!g_hash_table_remove(o->waiting, req))
		return false;
	park_remove(req);
	return true;
}

static bool owner_cancel(void *owner, fuse_req_t req)
{
	Owner *o = owner;
	bool mine;

	g_atomic_int_inc(&o->cancels);
	g_assert_cmpint(g_atomic_int_get(&o->refs), >, 0);
	g_mutex_lock(&o->lock);
	mine = owner_take(o, req);
	g_mutex_unlock(&o->lock);
	return mine;
}

static void owner_ref(void *owner)
{
	g_atomic_int_inc(&((Owner *)owner)->refs);
}

static void owner_unref(void *owner)
{
	g_atomic_int_add(&((Owner *)owner)->refs, -1);
}

static const ParkClass owner_park = {
	.cancel = owner_cancel,
	.ref = owner_ref,
	.unref = owner_unref,
};

static Owner *owner_new(void)
{
	Owner *o = g_new0(Owner, 1);

	g_mutex_init(&o->lock);
	o->waiting = g_hash_table_new(NULL, NULL);
	return o;
}

static void owner_free(Owner *o)
{
	g_assert_cmpuint(g_hash_table_size(o->waiting), ==, 0);
	g_assert_cmpint(o->refs, ==, 0);
	g_hash_table_unref(o->waiting);
	g_mutex_clear(&o->lock);
	g_free(o);
}

static fuse_req_t req_new(void)
{
	fuse_req_t req = g_new0(struct fuse_req, 1);

	g_mutex_init(&req->lock);
	return req;
}

static void req_free(fuse_req_t req)
{
	g_mutex_clear(&req->lock);
	g_free(req);
}

/* Park @req on @o as park.h says; false when it was answered EINTR. */
static bool park(Owner *o, fuse_req_t req)
{
	bool gone;

	if (!park_arm(req))
		return false;
	g_mutex_lock(&o->lock);
	g_hash_table_add(o->waiting, req);
	park_add(req, o, &owner_park);
	gone = fuse_req_interrupted(req) && owner_take(o, req);
	g_mutex_unlock(&o->lock);
	if (gone)
		fuse_reply_err(req, EINTR);
	return !gone;
}

/* The owner's answer path: answers @req with 0 if it still waits. */
static bool answer(Owner *o, fuse_req_t req)
{
	bool mine;

	g_mutex_lock(&o->lock);
	mine = owner_take(o, req);
	g_mutex_unlock(&o->lock);
	if (mine)
		fuse_reply_err(req, 0);
	return mine;
}

static void test_answered(void)
{
	Owner *o = owner_new();
	fuse_req_t req = req_new();

	g_assert_true(park(o, req));
	g_assert_cmpint(req->replies, ==, 0);
	g_assert_true(answer(o, req));
	/* an interrupt after the answer finds nothing */
	interrupt(req);
	g_assert_cmpint(req->replies, ==, 1);
	g_assert_cmpint(req->err, ==, 0);
	g_assert_cmpint(o->cancels, ==, 0);
	req_free(req);
	owner_free(o);
}

static void test_interrupted_while_parked(void)
{
	Owner *o = owner_new();
	fuse_req_t req = req_new();

	g_assert_true(park(o, req));
	interrupt(req);
	g_assert_cmpint(req->replies, ==, 1);
	g_assert_cmpint(req->err, ==, EINTR);
	g_assert_cmpint(o->cancels, ==, 1);
	/* the answer that comes later has no request to answer */
	g_assert_false(answer(o, req));
	g_assert_cmpint(req->replies, ==, 1);
	req_free(req);
	owner_free(o);
}

static void test_interrupted_before_arm(void)
{
	Owner *o = owner_new();
	fuse_req_t req = req_new();

	req->interrupted = 1;
	g_assert_false(park(o, req));
	g_assert_cmpint(req->replies, ==, 1);
	g_assert_cmpint(req->err, ==, EINTR);
	g_assert_cmpint(o->cancels, ==, 0);
	req_free(req);
	owner_free(o);
}

static void test_interrupted_between_arm_and_add(void)
{
	Owner *o = owner_new();
	fuse_req_t req = req_new();
	bool gone;

	g_assert_true(park_arm(req));
	interrupt(req); /* nothing parked yet: nobody answers */
	g_assert_cmpint(req->replies, ==, 0);
	g_mutex_lock(&o->lock);
	g_hash_table_add(o->waiting, req);
	park_add(req, o, &owner_park);
	gone = fuse_req_interrupted(req) && owner_take(o, req);
	g_mutex_unlock(&o->lock);
	g_assert_true(gone);
	fuse_reply_err(req, EINTR);
	g_assert_cmpint(req->replies, ==, 1);
	g_assert_cmpint(o->cancels, ==, 0);
	req_free(req);
	owner_free(o);
}

/* Many requests parked on two owners, answered and interrupted at once
 * from two threads: each is answered exactly once. */
#define RACE_N 4000

typedef struct {
	Owner *owners[2];
	fuse_req_t reqs[RACE_N];
	gint ready; /* atomic: threads at the start line */
} Race;

/* Both threads start together and walk the same way, so that they meet
 * on many of the same requests. */
static void race_start(Race *r)
{
	g_atomic_int_inc(&r->ready);
	while (g_atomic_int_get(&r->ready) < 2)
		;
}

static gpointer race_answer(gpointer data)
{
	Race *r = data;

	race_start(r);
	for (int i = 0; i < RACE_N; i++)
		answer(r->owners[i % 2], r->reqs[i]);
	return NULL;
}

static gpointer race_interrupt(gpointer data)
{
	Race *r = data;

	race_start(r);
	for (int i = 0; i < RACE_N; i++)
		interrupt(r->reqs[i]);
	return NULL;
}

static void race_once(void)
{
	Race r = {0};
	GThread *a, *b;
	int eintr = 0;

	r.owners[0] = owner_new();
	r.owners[1] = owner_new();
	for (int i = 0; i < RACE_N; i++) {
		r.reqs[i] = req_new();
		g_assert_true(park(r.owners[i % 2], r.reqs[i]));
	}
	a = g_thread_new("answer", race_answer, &r);
	b = g_thread_new("interrupt", race_interrupt, &r);
	g_thread_join(a);
	g_thread_join(b);
	for (int i = 0; i < RACE_N; i++) {
		g_assert_cmpint(r.reqs[i]->replies, ==, 1);
		eintr += r.reqs[i]->err == EINTR;
		req_free(r.reqs[i]);
	}
	g_test_message("%d of %d answered by their interrupt", eintr, RACE_N);
	owner_free(r.owners[0]);
	owner_free(r.owners[1]);
}

static void test_race(void)
{
	for (int round = 0; round < 10; round++)
		race_once();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/park/answered", test_answered);
	g_test_add_func("/park/interrupted-while-parked",
			test_interrupted_while_parked);
	g_test_add_func("/park/interrupted-before-arm",
			test_interrupted_before_arm);
	g_test_add_func("/park/interrupted-between-arm-and-add",
			test_interrupted_between_arm_and_add);
	g_test_add_func("/park/race", test_race);
	return g_test_run();
}
