/* chat.h - conversations: what `send` and `post` of contacts/JID/ give
 * (chat.c). */
#pragma once

#include <glib.h>

typedef struct Account Account;

/* [any] Accept @n messages to @to (validated, clean bodies): into the
 * outbox, into the log, then to the pool, all or none.  0, or -errno when
 * the outbox or the log cannot store them; never fails because the link
 * is down.  *seq: the last one's place in the outbox, for outbox_watch. */
int chat_send(Account *a, const char *to, const char *const *bodies,
	      guint n, guint64 *seq);
