/* park.h - one way for a FUSE request to wait without holding a worker
 * thread, answered later from another thread or with EINTR when it is
 * interrupted (STYLE.md, threads rule 5).  A `stream`, `events` or `raw`
 * read (stream.c), an `iq` read (iqcall.c) and an fsync (write.c) wait so.
 *
 * A request waits on an owner (a stream reader, an iq call, an outbox):
 * it is in a list of the owner's, under the owner's lock, and whoever
 * takes it out of that list under that lock answers it, once: the
 * owner's answer path, or the interrupt, which park.c turns into a call
 * of the owner's cancel.  The owner parks a request so:
 *
 *	if (!park_arm(req))
 *		return;                 interrupted already: answered EINTR
 *	lock the owner
 *	put req in the owner's list; park_add(req, owner, &class);
 *	gone = fuse_req_interrupted(req) && take req out of the list;
 *	unlock the owner
 *	if (gone)
 *		fuse_reply_err(req, EINTR);
 *
 * and wherever req leaves the list, under the owner's lock, it calls
 * park_remove(req).  The check after park_add sees an interrupt that came
 * between park_arm and park_add, when park.c's callback found nothing to
 * cancel.  It is made under the owner's lock while req is in the list,
 * so that nobody has answered it: a request is freed once answered.
 *
 * Lock order: an owner's lock, then park.c's own.  park.c calls an
 * owner's cancel (and ref, unref) with no lock of its own held. */
#pragma once

#include <fuse_lowlevel.h>
#include <stdbool.h>

typedef struct {
	/* [interrupt] Take @req out of @owner's list under the owner's
	 * lock, with park_remove; true when it was still there, and park.c
	 * then answers EINTR; false when the answer path took it first. */
	bool (*cancel)(void *owner, fuse_req_t req);
	/* Keep @owner alive while cancel runs (NULL: it outlives every
	 * request parked on it).  Called with park.c's lock held: no lock. */
	void (*ref)(void *owner);
	void (*unref)(void *owner);
} ParkClass;

/* Before @req may be parked: its interrupt now goes to park.c.  False
 * when it was interrupted before: then it has been answered EINTR. */
bool park_arm(fuse_req_t req);
/* Under the owner's lock: @req waits on @owner (in the owner's list). */
void park_add(fuse_req_t req, void *owner, const ParkClass *cls);
/* Under the owner's lock: @req left the owner's list; who took it
 * answers it. */
void park_remove(fuse_req_t req);
