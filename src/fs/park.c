/* park.c - see park.h.
 *
 * The interrupt callback can run after its request was answered (libfuse
 * holds the request while the callback runs, but does not stop an answer
 * from another thread meanwhile), so it does not trust its data: it finds
 * the owner through parked_by_req, which has an entry only while the
 * request is in its owner's list, and asks the owner, under the owner's
 * lock, whether the request is still there. */
#include "fs/park.h"

#include <errno.h>
#include <glib.h>

typedef struct {
	void *owner;
	const ParkClass *cls;
} Parked;

static GMutex park_lock; /* taken after every owner's lock */
static GHashTable *parked_by_req; /* fuse_req_t -> Parked*, under park_lock */

/* fuse_req_interrupt_func calls the callback at once, on this thread,
 * when the request was interrupted before; the request is in no list yet,
 * and park_arm answers it. */
static __thread bool registering;
static __thread bool interrupted_now;

static void on_interrupt(fuse_req_t req, void *data)
{
	Parked p = {0};
	Parked *found;

	if (registering) {
		interrupted_now = true;
		return;
	}
	g_mutex_lock(&park_lock);
	found = parked_by_req ? g_hash_table_lookup(parked_by_req, req) : NULL;
	if (found) {
		p = *found;
		if (p.cls->ref)
			p.cls->ref(p.owner);
	}
	g_mutex_unlock(&park_lock);
	if (!found)
		return; /* answered already, or not parked yet (park.h) */
	if (p.cls->cancel(p.owner, req))
		fuse_reply_err(req, EINTR);
	if (p.cls->unref)
		p.cls->unref(p.owner);
}

bool park_arm(fuse_req_t req)
{
	registering = true;
	interrupted_now = false;
	fuse_req_interrupt_func(req, on_interrupt, NULL);
	registering = false;
	if (interrupted_now) {
		fuse_reply_err(req, EINTR);
		return false;
	}
	return true;
}

void park_add(fuse_req_t req, void *owner, const ParkClass *cls)
{
	Parked *p = g_new(Parked, 1);

	p->owner = owner;
	p->cls = cls;
	g_mutex_lock(&park_lock);
	if (!parked_by_req)
		parked_by_req = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	g_hash_table_insert(parked_by_req, req, p);
	g_mutex_unlock(&park_lock);
}

void park_remove(fuse_req_t req)
{
	g_mutex_lock(&park_lock);
	if (parked_by_req)
		g_hash_table_remove(parked_by_req, req);
	g_mutex_unlock(&park_lock);
}
