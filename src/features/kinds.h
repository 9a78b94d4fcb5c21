/* kinds.h - what a message is, for its record and its log.ids line
 * (kinds.c): XEP-0308 corrections, XEP-0424 retractions, XEP-0444
 * reactions, XEP-0461 replies, headlines and subjects, XEP-0066 URLs. */
#pragma once

#include <stdbool.h>
#include <strophe.h>

#include "store/outbox.h"

typedef struct Account Account;

typedef struct {
	const char *kind; /* static: message, correction, retraction,
			   * reaction, reply, headline, error */
	char *ref;        /* the id of the message it is about, or NULL */
	char *text;       /* the record's text: the body (a reply's without
			   * the quote of its fallback), the reactions, or
			   * "[retracted]" */
	char *subject;    /* a headline's or normal message's, or NULL */
	char *url;        /* an out-of-band URL the text does not hold */
} MsgKind;

/* What @msg (chat, normal, headline, groupchat, error) is; false when it
 * is worth no record (a receipt, a chat state, a reaction to nothing). */
bool kinds_of(Account *a, xmpp_stanza_t *msg, MsgKind *k);
void kinds_clear(MsgKind *k);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MsgKind, kinds_clear)

