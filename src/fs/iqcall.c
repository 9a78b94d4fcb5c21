/* iqcall.c - see iqcall.h.  Who answers the parked read: whoever takes
 * it out of c->parked under c->lock (park.h): iqcall_finish, the
 * interrupt (iq_cancel), or iqcall_read when it was interrupted while it
 * parked it.  Lock order: IqCall.lock, then park.c's. */
#include "fs/iqcall.h"

#include <errno.h>
#include <string.h>

#include "fs/park.h"

struct IqCall {
	gatomicrefcount ref;
	GMutex lock;
	bool pending;     /* protected by lock */
	char *answer;     /* protected by lock: the line, until read */
	int err;          /* protected by lock */
	fuse_req_t parked; /* protected by lock */
	size_t parked_size;
};

IqCall *iqcall_new(void)
{
	IqCall *c = g_new0(IqCall, 1);

	g_atomic_ref_count_init(&c->ref);
	g_mutex_init(&c->lock);
	return c;
}

IqCall *iqcall_ref(IqCall *c)
{
	g_atomic_ref_count_inc(&c->ref);
	return c;
}

void iqcall_unref(IqCall *c)
{
	if (!g_atomic_ref_count_dec(&c->ref))
		return;
	g_free(c->answer);
	g_mutex_clear(&c->lock);
	g_free(c);
}

void iqcall_start(IqCall *c)
{
	g_mutex_lock(&c->lock);
	c->pending = true;
	g_clear_pointer(&c->answer, g_free);
	c->err = 0;
	g_mutex_unlock(&c->lock);
}

bool iqcall_pending(IqCall *c)
{
	bool p;

	g_mutex_lock(&c->lock);
	p = c->pending;
	g_mutex_unlock(&c->lock);
	return p;
}

/* With c->lock held: take the parked read out of the registry. */
static fuse_req_t unpark(IqCall *c)
{
	fuse_req_t req = c->parked;

	if (req) {
		park_remove(req);
		c->parked = NULL;
	}
	return req;
}

/* With c->lock held: the answer for a read of @size, consumed. */
static char *take_answer(IqCall *c, size_t size, gsize *len, int *err)
{
	char *out = NULL;

	*err = c->err;
	*len = 0;
	if (c->answer) {
		*len = MIN(strlen(c->answer), size);
		out = g_strndup(c->answer, *len);
		/* a short read gets the rest next time */
		memmove(c->answer, c->answer + *len,
			strlen(c->answer) - *len + 1);
		if (!*c->answer)
			g_clear_pointer(&c->answer, g_free);
	}
	c->err = 0;
	return out;
}

static void reply(fuse_req_t req, char *buf, gsize len, int err)
{
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, len);
	g_free(buf);
}

void iqcall_finish(IqCall *c, const char *line, int err)
{
	fuse_req_t req;
	char *buf = NULL;
	gsize len = 0;
	int e = 0;

	g_mutex_lock(&c->lock);
	c->pending = false;
	g_free(c->answer);
	c->answer = line ? g_strdup(line) : NULL;
	c->err = err;
	req = unpark(c);
	if (req)
		buf = take_answer(c, c->parked_size, &len, &e);
	g_mutex_unlock(&c->lock);
	if (req)
		reply(req, buf, len, e);
}

/* [interrupt] park.c answers EINTR when @req was still parked. */
static bool iq_cancel(void *owner, fuse_req_t req)
{
	IqCall *c = owner;
	bool mine;

	g_mutex_lock(&c->lock);
	mine = c->parked == req;
	if (mine)
		unpark(c);
	g_mutex_unlock(&c->lock);
	return mine;
}

static void iq_ref(void *owner)
{
	iqcall_ref(owner);
}

static void iq_unref(void *owner)
{
	iqcall_unref(owner);
}

static const ParkClass iq_park = {
	.cancel = iq_cancel,
	.ref = iq_ref,
	.unref = iq_unref,
};

void iqcall_read(IqCall *c, fuse_req_t req, size_t size, bool nonblock)
{
	char *buf;
	gsize len;
	int err;
	bool interrupted;

	if (!park_arm(req))
		return;
	g_mutex_lock(&c->lock);
	if (!c->pending || c->parked) {
		/* answered (or nothing asked): what there is; a second reader
		 * while one waits gets EBUSY */
		bool busy = c->parked != NULL;
		buf = busy ? NULL : take_answer(c, size, &len, &err);
		g_mutex_unlock(&c->lock);
		reply(req, buf, busy ? 0 : len, busy ? -EBUSY : err);
		return;
	}
	if (nonblock) {
		g_mutex_unlock(&c->lock);
		fuse_reply_err(req, EAGAIN);
		return;
	}
	c->parked = req;
	c->parked_size = size;
	park_add(req, c, &iq_park);
	interrupted = fuse_req_interrupted(req) && c->parked == req;
	if (interrupted)
		unpark(c);
	g_mutex_unlock(&c->lock);
	if (interrupted)
		fuse_reply_err(req, EINTR);
}
