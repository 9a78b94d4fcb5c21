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
			   * reaction, reply, headline, error, moderation */
	char *ref;        /* the id of the message it is about, or NULL */
	char *text;       /* the record's text: the body (a reply's without
			   * the quote of its fallback), the reactions, or
			   * "[retracted]" */
	char *subject;    /* a headline's or normal message's, or NULL */
	char *url;        /* an out-of-band URL the text does not hold */
	char *file;       /* the out-of-band URL, if https:// (a file sent,
			   * which files.c may fetch), held or not */
	char *by;         /* a moderation's moderator (nick), or NULL */
} MsgKind;

/* What @msg (chat, normal, headline, groupchat, error) is; false when it
 * is worth no record (a receipt, a chat state, a reaction to nothing). */
bool kinds_of(Account *a, xmpp_stanza_t *msg, MsgKind *k);
void kinds_clear(MsgKind *k);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MsgKind, kinds_clear)

/* A message found in a log (its first record) and its log.ids line. */
typedef struct {
	char *id, *kind, *ref, *sid, *sender, *text;
} Found;
void found_clear(Found *f);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Found, found_clear)
typedef struct Hist Hist;
/* In @h: the last message whose ID or SID is @id; or, with @id NULL, the
 * last plain message, reply or correction of @sender.  Reads the log and
 * log.ids whole: for a write about one message, not for every record. */
bool kinds_find(Hist *h, const char *id, const char *sender, Found *f);

/* A message of ours about another, ready for the outbox. */
typedef struct {
	const char *kind; /* correction, retraction, reaction, reply, oob */
	char *ref, *ref_to, *body;
} About;
void about_clear(About *m);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(About, about_clear)
/* What a write of @v to the file of @kind asks, in the log @h where we are
 * @me (our JID, or our nick in @room, NULL for a conversation):
 *  correction: @v replaces our last message; -ENOENT when there is none;
 *  retraction: @v is the ID (or SID) of a message of ours; -EPERM for
 *    theirs;
 *  reaction: "ID<TAB>EMOJI[ EMOJI...]", our whole set (none: taken back);
 *  reply: "ID<TAB>TEXT".
 * 0 and *@out, or -EINVAL (malformed), -ENOENT (no such message),
 * -EILSEQ, -EFBIG (as for `send`). */
int kinds_about(Account *a, Hist *h, const char *me, const char *room,
		const char *kind, const char *v, About *out);

