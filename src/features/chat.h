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

/* [any] What a message of ours says of an earlier one, to @to, accepted
 * as chat_send accepts (outbox, log, pool), with a record and a log.ids
 * line of its kind:
 *  chat_correct: @text replaces our last message (XEP-0308); -ENOENT
 *    when we said nothing yet;
 *  chat_retract: our message @id is taken back (XEP-0424); -ENOENT for an
 *    id the log lacks, -EPERM for one of theirs;
 *  chat_react: "ID<TAB>EMOJI[ EMOJI...]", our whole set of reactions to
 *    message ID (XEP-0444), none to take them back;
 *  chat_reply: "ID<TAB>TEXT", a reply to message ID (XEP-0461).
 * -EINVAL for a malformed line, -EILSEQ, -EFBIG as for `send`. */
int chat_correct(Account *a, const char *to, const char *text);
int chat_retract(Account *a, const char *to, const char *id);
int chat_react(Account *a, const char *to, const char *v);
int chat_reply(Account *a, const char *to, const char *v);
/* [any] A file sent: @url (https://) as the body, and as XEP-0066's
 * out-of-band data; accepted as chat_send. */
int chat_send_oob(Account *a, const char *to, const char *url);
