/* stream.c - see stream.h.
 *
 * Who may answer a parked request: whoever takes it out of r->parked
 * under r->lock (park.h).  That is the appending thread (stream_wake),
 * the interrupt (stream_cancel), or stream_read itself when it finds the
 * request was interrupted while it parked it.  Replies and poll
 * notifications are sent after r->lock is released.
 *
 * Lifetime: the reader is counted; the log holds one reference while the
 * reader waits on it (armed), the open file one until release.  park.c
 * finds the reader of an interrupted request only while the request is
 * parked (and the file therefore open), and holds a reference while it
 * cancels.
 *
 * Lock order: StreamReader.lock, then park.c's. */
#include "fs/stream.h"

#include <errno.h>
#include <poll.h>

#include "fs/park.h"

typedef struct {
	fuse_req_t req;
	size_t size;
} Parked;

struct StreamReader {
	HistWaiter waiter; /* first: stream_wake casts back */
	gatomicrefcount ref;
	Hist *hist;
	GMutex lock;
	goffset cursor;               /* protected by lock */
	GQueue parked;                /* of Parked*, protected by lock */
	struct fuse_pollhandle *ph;   /* protected by lock */
};

typedef struct {
	fuse_req_t req;
	char *buf;
	gssize len; /* < 0: -errno */
} Answer;

static void stream_wake(HistWaiter *w);
static const ParkClass stream_park;

/* With r->lock held. */
static void park(StreamReader *r, Parked *p)
{
	g_queue_push_tail(&r->parked, p);
	park_add(p->req, r, &stream_park);
}

/* With r->lock held: the head leaves the queue. */
static void unpark_head(StreamReader *r)
{
	Parked *p = g_queue_pop_head(&r->parked);

	park_remove(p->req);
	g_free(p);
}

static void reader_unref(StreamReader *r)
{
	if (!g_atomic_ref_count_dec(&r->ref))
		return;
	if (r->ph)
		fuse_pollhandle_destroy(r->ph);
	g_mutex_clear(&r->lock);
	g_free(r);
}

StreamReader *stream_open(Hist *h)
{
	StreamReader *r = g_new0(StreamReader, 1);

	g_atomic_ref_count_init(&r->ref);
	r->waiter.wake = stream_wake;
	r->hist = h;
	g_mutex_init(&r->lock);
	g_queue_init(&r->parked);
	r->cursor = hist_size(h);
	return r;
}

void stream_close(StreamReader *r)
{
	g_mutex_lock(&r->lock);
	if (hist_unwait(r->hist, &r->waiter))
		g_atomic_ref_count_dec(&r->ref); /* the log's; ours remains */
	g_mutex_unlock(&r->lock);
	reader_unref(r);
}

/* Wait on the log for what lies past the cursor; false if it is there
 * already.  Called with r->lock held. */
static bool arm(StreamReader *r)
{
	if (r->waiter.queued)
		return true;
	g_atomic_ref_count_inc(&r->ref);
	if (!hist_wait(r->hist, &r->waiter, r->cursor))
		return true;
	g_atomic_ref_count_dec(&r->ref);
	return false;
}

/* Take what is readable for the parked requests, oldest first. */
static GArray *take_answers(StreamReader *r)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(Answer));
	Parked *p;

	while ((p = g_queue_peek_head(&r->parked))) {
		Answer a = {p->req, g_malloc(MAX(p->size, 1)), 0};
		a.len = hist_pread(r->hist, a.buf, p->size, r->cursor);
		/* nothing yet: wait; nothing ever (the conversation was
		 * removed, hist_set_forget): end of file */
		if (a.len == 0 && !hist_gone(r->hist)) {
			g_free(a.buf);
			break;
		}
		if (a.len > 0)
			r->cursor += a.len;
		g_array_append_val(out, a);
		unpark_head(r);
	}
	return out;
}

/* Take answers until the rest is parked on an armed waiter. */
static GArray *take_all(StreamReader *r)
{
	GArray *answers = take_answers(r);

	while (r->parked.length && !arm(r)) {
		GArray *more = take_answers(r);
		g_array_append_vals(answers, more->data, more->len);
		g_array_free(more, TRUE);
	}
	return answers;
}

static void send_answers(GArray *answers)
{
	for (guint i = 0; i < answers->len; i++) {
		Answer *a = &g_array_index(answers, Answer, i);
		if (a->len < 0)
			fuse_reply_err(a->req, (int)-a->len);
		else
			fuse_reply_buf(a->req, a->buf, a->len);
		g_free(a->buf);
	}
	g_array_free(answers, TRUE);
}

/* The log grew (appending thread, no lock of history.c held). */
static void stream_wake(HistWaiter *w)
{
	StreamReader *r = (StreamReader *)w;
	struct fuse_pollhandle *ph;
	GArray *answers;

	g_mutex_lock(&r->lock);
	ph = r->ph;
	r->ph = NULL;
	answers = take_all(r);
	g_mutex_unlock(&r->lock);
	send_answers(answers);
	if (ph) {
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
	reader_unref(r); /* the log's reference */
}

/* With r->lock held: true when @req was parked (and now is not). */
static bool unpark(StreamReader *r, fuse_req_t req)
{
	for (GList *l = r->parked.head; l; l = l->next) {
		Parked *p = l->data;
		if (p->req != req)
			continue;
		park_remove(req);
		g_free(p);
		g_queue_delete_link(&r->parked, l);
		return true;
	}
	return false;
}

/* [interrupt] park.c answers EINTR when @req was still parked. */
static bool stream_cancel(void *owner, fuse_req_t req)
{
	StreamReader *r = owner;
	bool mine;

	g_mutex_lock(&r->lock);
	mine = unpark(r, req);
	g_mutex_unlock(&r->lock);
	return mine;
}

static void stream_ref(void *owner)
{
	StreamReader *r = owner;

	g_atomic_ref_count_inc(&r->ref);
}

static void stream_unref(void *owner)
{
	reader_unref(owner);
}

static const ParkClass stream_park = {
	.cancel = stream_cancel,
	.ref = stream_ref,
	.unref = stream_unref,
};

void stream_read(StreamReader *r, fuse_req_t req, size_t size, bool nonblock)
{
	Parked *p;
	GArray *answers;
	bool interrupted;

	if (!park_arm(req))
		return;
	p = g_new0(Parked, 1);
	p->req = req;
	p->size = size;
	g_mutex_lock(&r->lock);
	park(r, p);
	answers = take_answers(r);
	if (answers->len == 0 && nonblock) {
		unpark(r, req);
		g_mutex_unlock(&r->lock);
		g_array_free(answers, TRUE);
		fuse_reply_err(req, EAGAIN);
		return;
	}
	if (r->parked.length) {
		GArray *more = take_all(r);
		g_array_append_vals(answers, more->data, more->len);
		g_array_free(more, TRUE);
	}
	/* interrupted between fuse_req_interrupt_func and park()? */
	interrupted = fuse_req_interrupted(req) && unpark(r, req);
	g_mutex_unlock(&r->lock);
	send_answers(answers);
	if (interrupted)
		fuse_reply_err(req, EINTR);
}

void stream_poll(StreamReader *r, fuse_req_t req, struct fuse_pollhandle *ph)
{
	bool readable;

	g_mutex_lock(&r->lock);
	readable = hist_size(r->hist) > r->cursor || hist_gone(r->hist);
	if (ph && !readable) {
		if (r->ph)
			fuse_pollhandle_destroy(r->ph);
		r->ph = ph;
		ph = NULL;
		if (!arm(r))
			readable = true;
	}
	g_mutex_unlock(&r->lock);
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, readable ? POLLIN | POLLRDNORM : 0);
}
