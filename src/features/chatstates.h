/* chatstates.h - chat states (XEP-0085), as contacts/JID/chatstate shows
 * and sends them (chatstates.c). */
#pragma once

#include "xmpp/pool.h"

/* [any] "STATE\n": the contact's last chat state (active, composing,
 * paused, inactive, gone) while we are online; "" for none. */
char *chatstates_text(Account *a, const char *jid);
/* [any] Send our state @word to @jid: 0, -EINVAL for no state, -EPERM
 * unless the account says chat_states = true, -ENOTCONN offline. */
int chatstates_say(Pool *p, Account *a, const char *jid, const char *word);
