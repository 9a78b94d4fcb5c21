/* pep.h - the account's own PEP service (XEP-0163, on XEP-0060): what
 * the features that keep state there share (mds.c, bookmarks.c).  Each
 * node is private to the account (whitelist access) and keeps every item
 * (XEP-0223), and its items reach our other clients, and us, as
 * notifications.  Pool thread only. */
#pragma once

#include <stdbool.h>
#include <strophe.h>

#include "xmpp/await.h"
#include "xmpp/dispatch.h"

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"

/* Ask our service for every item of @node; @fn gets the answer (read
 * its items with pep_items), as await_iq's callbacks do. */
void pep_fetch(Account *a, const char *node, AwaitFn fn, void *data,
	       GDestroyNotify free_data);
/* The same of @jid's service (NULL: ours): a contact's. */
void pep_fetch_from(Account *a, const char *jid, const char *node,
		    AwaitFn fn, void *data, GDestroyNotify free_data);
/* The <items/> of an answer to pep_fetch, NULL for none. */
xmpp_stanza_t *pep_items(xmpp_stanza_t *answer);
/* Its first <item/> (a node of one item: "current"), NULL for none. */
xmpp_stanza_t *pep_first_item(xmpp_stanza_t *answer);
/* Who may read a node's items. */
typedef enum {
	PEP_PRIVATE,  /* the account's own clients (XEP-0223: whitelist,
		       * every item kept, none sent again at presence) */
	PEP_CONTACTS, /* the server's default: those subscribed to our
		       * presence (a nick, an avatar) */
	PEP_OPEN,     /* anyone, subscribed or not (OMEMO's device list and
		       * bundles: a stranger may write to us encrypted) */
} PepAccess;

/* Publish @payload (copied) as item @id of @node for @access; @fn as
 * await_iq's (NULL: the answer is only logged, as @what). */
void pep_publish(Account *a, const char *node, const char *id,
		 xmpp_stanza_t *payload, PepAccess access, const char *what,
		 AwaitFn fn, void *data, GDestroyNotify free_data);
/* Take item @id of @node back, telling our other clients; @fn as
 * pep_publish's. */
void pep_retract(Account *a, const char *node, const char *id,
		 const char *what, AwaitFn fn, void *data,
		 GDestroyNotify free_data);
/* A notification of @node: its <items/> (children <item/> and
 * <retract/>), else NULL.  Only one from our own service (@in->from_self)
 * says what our other clients did. */
xmpp_stanza_t *pep_event_items(const In *in, const char *node);
/* Whether @in comes from our own PEP service: our bare JID exactly, or
 * no from (the server on our behalf); not one of our resources, which
 * has no service of its own. */
bool pep_from_us(Account *a, const In *in);
/* An item's child (or any stanza's) by name, for walking <items/>:
 * calls @fn with each child element named @name. */
void pep_each(xmpp_stanza_t *parent, const char *name,
	      void (*fn)(Account *a, xmpp_stanza_t *el, void *data),
	      Account *a, void *data);
/* A data form field (XEP-0004) in @x: @var = @value (@type: NULL, or
 * "hidden" for FORM_TYPE). */
void pep_add_field(Account *a, xmpp_stanza_t *x, const char *var,
		   const char *type, const char *value);
