/* bookmarks.h - the rooms the account is in, the same on each of its
 * clients: bookmarks (XEP-0402 in PEP; XEP-0048 in private storage,
 * XEP-0049, where the server has no PEP).  bookmarks.c. */
#pragma once

#include <stdbool.h>

#include "xmpp/pool.h"

/* [any] mkdir joined @room: its bookmark says so (autojoin), for our
 * other clients. */
int bookmarks_joined(Pool *p, Account *a, const char *room);
/* [any] rmdir left @room: its bookmark goes (our other clients leave it
 * too). */
int bookmarks_left(Pool *p, Account *a, const char *room);
