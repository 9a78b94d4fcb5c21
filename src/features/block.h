/* block.h - blocking (XEP-0191), as ACCOUNT/blocked and
 * contacts/JID/blocked show and change it (block.c). */
#pragma once

#include <stdbool.h>

#include "xmpp/pool.h"

/* [any] Block or unblock @jid; waits for the server: 0, -ENOTCONN
 * offline, -EOPNOTSUPP when the server has no blocking, or its error. */
int block_set(Pool *p, Account *a, const char *jid, bool block);
/* [any] "yes\n" or "no\n": whether @jid is on the blocklist. */
char *block_text(Account *a, const char *jid);
/* [any] The blocklist, one JID per line, sorted. */
char *block_list_text(Account *a);
