/* outbox.h - the persistent queue of accepted, unacknowledged messages
 * (SPEC "Nothing is lost").  A message is in the outbox file before the
 * write that gave it returns, and leaves it when the server acknowledged
 * it.  No FUSE, no XMPP; any thread (one lock inside). */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct Outbox Outbox;

typedef struct OutboxItem OutboxItem;
struct OutboxItem {
	char *id;   /* the stanza id, "xfs-UNIXTIME-UUID"; unique across mounts */
	char *to;   /* bare JID */
	char *type; /* "chat", "groupchat", ... */
	char *body;
	/* what it is when not a plain message (kinds.c): "correction",
	 * "retraction", "reaction", "reply"; the id it is about, and for a
	 * reply whose message that was; else NULL */
	char *kind, *ref, *ref_to;
	/* how it goes out (features/omemo.c): NULL in the clear; "omemo":
	 * encrypted, or not at all; "auto": encrypted if the contact has
	 * devices, as the conversation's default says */
	char *enc;
	guint64 seq; /* order of acceptance in this mount (not stored) */
};

/* Open (creating) the journal at @path and replay it. */
Outbox *outbox_open(const char *path, GError **err);
void outbox_free(Outbox *o);
/* Store a message; on success *item is a copy the caller frees. */
int outbox_add(Outbox *o, const char *to, const char *type, const char *body,
	       OutboxItem **item);
/* Where a batch of outbox_add_many is in the journal. */
typedef struct {
	goffset start, end;
} OutboxSpan;
/* The kind of a message that is not a plain one (OutboxItem.kind; NULL
 * for a plain one), and how it goes out (OutboxItem.enc). */
typedef struct {
	const char *kind, *ref, *ref_to;
	const char *enc;
} OutboxKind;
/* Store @n messages to @to, each of @k (NULL: plain, in the clear), with
 * one write(2): all or none (a full disk takes none: 0 or -errno).
 * *items: copies, in order, with their seq. */
int outbox_add_many(Outbox *o, const char *to, const char *type,
		    const OutboxKind *k, const char *const *bodies, guint n,
		    GPtrArray **items, OutboxSpan *span);
/* outbox_add_many of one message of kind @k. */
int outbox_add_kind(Outbox *o, const char *to, const char *type,
		    const OutboxKind *k, const char *body, GPtrArray **items,
		    OutboxSpan *span);
/* Take back what outbox_add_many stored (nothing of it was handed on):
 * cut off the journal when nothing came after it, else cancelled by
 * entries of their own. */
void outbox_cancel(Outbox *o, GPtrArray *items, const OutboxSpan *span);
/* The server acknowledged @id: forget it. */
void outbox_done(Outbox *o, const char *id);
/* @id can never go out (-@err; 0: as outbox_done): forget it; the watches
 * that cover it end with @err. */
void outbox_fail(Outbox *o, const char *id, int err);
/* What waits, oldest first (copies; free with g_ptr_array_unref). */
GPtrArray *outbox_pending(Outbox *o);
guint outbox_length(Outbox *o);
/* Call @fn(@data, err) once item number @upto, and every older item to
 * the same destination, has left the outbox (@err: 0, or the errno of the
 * first of them that failed, outbox_fail) (on the thread of outbox_done,
 * no lock held).  False, and no call, when @upto has left already: the
 * messages to one destination leave in the order they were accepted, but
 * not those to different ones (a room's wait for its reflection must not
 * hold an fsync of a chat).  *token names the watch for outbox_unwatch. */
bool outbox_watch(Outbox *o, guint64 upto, void (*fn)(void *data, int err),
		  void *data, guint64 *token);
void outbox_unwatch(Outbox *o, guint64 token);
/* The errno of the first message to @to (NULL: any) numbered after @after
 * and up to @upto that failed (outbox_fail), among the last few hundred failures;
 * 0 when none did.  For an fsync that comes after the failure: a watch
 * learns only what fails while it waits. */
int outbox_failed(Outbox *o, const char *to, guint64 after, guint64 upto);
/* Unix seconds when @it was accepted, 0 when its id does not say (ids of
 * an older xmppfs). */
gint64 outbox_item_time(const OutboxItem *it);
void outbox_item_free(OutboxItem *it);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(OutboxItem, outbox_item_free)
