/* watchdog.h - shuts a socket down when its deadline passes.
 *
 * libstrophe 0.12 can block its caller inside the TLS handshake and never
 * gives up on a server that accepts TCP and stays silent.  The pool arms a
 * deadline for each login; if it passes, this thread calls shutdown(2) on
 * a dup of the socket, which ends whatever libstrophe is waiting in, and the
 * pool sees an ordinary disconnect.  The dup keeps the socket itself alive,
 * so a closed-and-reused descriptor number can never be hit. */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct {
	/* all protected by the watchdog's mutex */
	int fd;         /* a dup owned by the arming thread; -1 when idle */
	gint64 deadline; /* g_get_monotonic_time() microseconds */
	gint64 limit;    /* the latest it may be moved to */
	bool fired;
} WdSlot;

void wd_start(void);
void wd_slot_init(WdSlot *slot);
/* Watch @fd until @deadline; replaces an earlier arm of @slot. */
void wd_arm(WdSlot *slot, int fd, gint64 deadline);
/* Stop watching; returns whether the deadline fired.  After it returns the
 * watchdog no longer uses the descriptor, so the caller may close it. */
bool wd_disarm(WdSlot *slot);
