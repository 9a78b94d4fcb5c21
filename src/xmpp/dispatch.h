/* dispatch.h - every stanza the server sends is parsed once into an In and
 * offered to the features' handlers in the order they were registered,
 * until one claims it.  libstrophe fires every matching handler and has
 * no notion of "claimed"; the order in which a message is offered to the
 * room archive, our archive, carbons, rooms, the catch-up's hold and the
 * conversations matters, and is written in one place: featureset.c.
 *
 * Part of the XMPP layer (pool thread only).  It names no feature. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <strophe.h>

#include "base/jid.h"

typedef struct Account Account;

typedef enum {
	IN_MESSAGE,
	IN_PRESENCE,
	IN_IQ,
	IN_KINDS, /* anything else (stream management, ...): no chain */
} InKind;

/* A stanza as the handlers see it; the strings are the stanza's or the
 * In's own, valid while the handlers run. */
typedef struct {
	xmpp_stanza_t *st;
	InKind kind;
	const char *type;      /* NULL: none */
	const char *id;        /* NULL: none */
	const char *from;      /* as sent; NULL: none (our own server) */
	Jid *jid;              /* @from parsed; NULL when absent or invalid */
	char *bare;            /* @jid's bare JID; NULL likewise */
	char *jid_error;       /* why @from is not a valid JID, or NULL */
	bool from_self;        /* no from, or our own bare JID */
	gint64 time;           /* unix s: its XEP-0203 stamp, else arrival */
} In;

/* A handler: true when it took the stanza (none after it sees it). */
typedef bool (*InHandler)(Account *a, const In *in);

typedef struct Dispatch Dispatch;

Dispatch *dispatch_new(void);
void dispatch_free(Dispatch *d);
/* Offer stanzas of @kind to @fn after the handlers registered before;
 * @what says what it takes (shown with -d). */
void dispatch_add(Dispatch *d, InKind kind, const char *what, InHandler fn);
/* Parse @st (sent to the account whose bare JID is @own) and offer it;
 * true when a handler took it. */
bool dispatch_stanza(Dispatch *d, Account *a, const char *own,
		     xmpp_stanza_t *st);

/* Unix seconds of a message: its XEP-0203 stamp, else now. */
gint64 in_time(xmpp_stanza_t *st);
