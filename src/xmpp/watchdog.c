/* watchdog.c - see watchdog.h.  One thread, one mutex, a short list of
 * armed slots; it sleeps on a condition variable until the earliest
 * deadline, so it costs nothing while nothing is armed.  A deadline
 * measures the server, not xmppfs: when it passes while bytes the server
 * sent wait unread on the socket, it is moved on. */
#include "xmpp/watchdog.h"

#include <sys/socket.h>

#include "base/util.h"

static GMutex wd_lock;
static GCond wd_cond;
static GPtrArray *wd_slots; /* of WdSlot*, protected by wd_lock */

/* A deadline passes only if the server is silent at that moment; while
 * what it sent waits unread, it moves on by this, up to WD_GRACE_US past
 * the first. */
#define WD_RECHECK_US (G_USEC_PER_SEC / 2)
#define WD_GRACE_US (120 * G_USEC_PER_SEC)

static WdSlot *earliest(void)
{
	WdSlot *best = NULL;

	for (guint i = 0; i < wd_slots->len; i++) {
		WdSlot *s = g_ptr_array_index(wd_slots, i);
		if (!best || s->deadline < best->deadline)
			best = s;
	}
	return best;
}

static gpointer wd_thread(gpointer unused)
{
	g_mutex_lock(&wd_lock);
	for (;;) {
		WdSlot *s = earliest();
		if (!s) {
			g_cond_wait(&wd_cond, &wd_lock);
			continue;
		}
		if (g_get_monotonic_time() < s->deadline) {
			g_cond_wait_until(&wd_cond, &wd_lock, s->deadline);
			continue;
		}
		if (util_unread_bytes(s->fd) > 0 &&
		    g_get_monotonic_time() < s->limit) {
			/* the server did answer: xmppfs has not read it yet
			 * (a busy pool, a thousand logins at once); that time
			 * is not the server's to be blamed for */
			s->deadline = g_get_monotonic_time() + WD_RECHECK_US;
			continue;
		}
		shutdown(s->fd, SHUT_RDWR);
		s->fired = true;
		g_ptr_array_remove_fast(wd_slots, s);
	}
	return NULL;
}

void wd_start(void)
{
	wd_slots = g_ptr_array_new();
	g_thread_unref(g_thread_new("xmppfs-watchdog", wd_thread, NULL));
}

void wd_slot_init(WdSlot *slot)
{
	slot->fd = -1;
	slot->deadline = 0;
	slot->fired = false;
}

void wd_arm(WdSlot *slot, int fd, gint64 deadline)
{
	g_mutex_lock(&wd_lock);
	g_ptr_array_remove_fast(wd_slots, slot);
	slot->fd = fd;
	slot->deadline = deadline;
	slot->limit = deadline + WD_GRACE_US;
	slot->fired = false;
	g_ptr_array_add(wd_slots, slot);
	g_cond_signal(&wd_cond);
	g_mutex_unlock(&wd_lock);
}

bool wd_disarm(WdSlot *slot)
{
	bool fired;

	g_mutex_lock(&wd_lock);
	g_ptr_array_remove_fast(wd_slots, slot);
	fired = slot->fired;
	slot->fd = -1;
	slot->fired = false;
	g_mutex_unlock(&wd_lock);
	return fired;
}
