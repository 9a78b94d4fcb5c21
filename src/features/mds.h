/* mds.h - displayed-sync (XEP-0490): the read positions shared with the
 * account's other clients (mds.c). */
#pragma once

#include "xmpp/pool.h"

/* [any] Share @jid's read position (receipts.c; @room: the room @jid's)
 * with our other clients:
 * published on the account's PEP node, answered later (a failure is a
 * line in the log).  0, or -errno when the pool could not take it. */
int mds_publish(Pool *pool, Account *a, const char *jid, bool room);
