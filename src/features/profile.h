/* profile.h - who the account and its contacts are to others:
 * nicknames (XEP-0172) and avatars (XEP-0084), kept in PEP (profile.c).
 * @jid NULL: the account's own. */
#pragma once

#include <glib.h>

#include "xmpp/pool.h"

/* The largest avatar of ours published (its base64 must fit in a
 * stanza a server takes: Prosody's limit is 256 KiB), and of others'
 * kept. */
#define PROFILE_AVATAR_MAX (128 * 1024)
#define PROFILE_AVATAR_FETCH_MAX (1024 * 1024)

/* [any] "NICK\n", or "" when @jid has none known. */
char *profile_nick_text(Account *a, const char *jid);
/* [any] Publish our nick (one line; "" takes it back); 0, -EINVAL,
 * -EILSEQ, -ENOTCONN, or the server's refusal. */
int profile_set_nick(Pool *p, Account *a, const char *nick);
/* [any] The extension (png, jpg, gif, webp) of @jid's avatar as kept on
 * disk, NULL when none (newly allocated). */
char *profile_avatar_ext(Account *a, const char *jid);
/* [any] The file that holds @jid's avatar of type @ext. */
char *profile_avatar_path(Account *a, const char *jid, const char *ext);
/* [any] Publish @data as our avatar: its type must be what @ext (png,
 * jpg, jpeg, gif, webp) says (-EINVAL), it at most PROFILE_AVATAR_MAX
 * bytes (-EFBIG); 0 once the server has it, -ENOTCONN offline, or the
 * server's refusal. */
int profile_set_avatar(Pool *p, Account *a, const char *ext,
		       const void *data, gsize len);
/* [any] Take our avatar back (XEP-0084 §4.5). */
int profile_remove_avatar(Pool *p, Account *a);
