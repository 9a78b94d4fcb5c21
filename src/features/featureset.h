/* featureset.h - the features an account has, for featureset.c, which adds
 * them and declares the order of their hooks and of the stanza chain;
 * and what features use of each other.  Pool thread only. */
#pragma once

#include "xmpp/dispatch.h"
#include "xmpp/feature.h"

typedef struct Account Account;

/* Give @a every feature, in order (before the pool runs). */
void featureset_attach(Account *a);

/* ---- the features ---- */

extern const Feature client_feature;        /* client.c */
extern const Feature contacts_feature;      /* contacts.c */
extern const Feature block_feature;         /* block.c */
extern const Feature carbons_feature;       /* carbons.c */
extern const Feature archive_feature;       /* mam.c */
extern const Feature outbox_check_feature;  /* mam_check.c */
extern const Feature rooms_feature;         /* muc.c */

/* ---- the stanza chain's links (dispatch.h) ---- */

bool muc_archive_in(Account *a, const In *in);
bool mam_result_in(Account *a, const In *in);
bool carbons_in(Account *a, const In *in);
bool chat_bad_sender_in(Account *a, const In *in);
bool muc_message_in(Account *a, const In *in);
bool mam_hold_in(Account *a, const In *in);
bool chat_in(Account *a, const In *in);

bool contacts_bad_sender_in(Account *a, const In *in);
bool muc_presence_in(Account *a, const In *in);
bool contacts_presence_in(Account *a, const In *in);

bool client_not_request_in(Account *a, const In *in);
bool contacts_push_in(Account *a, const In *in);
bool block_push_in(Account *a, const In *in);
bool client_answer_in(Account *a, const In *in);
bool client_unhandled_in(Account *a, const In *in);

/* ---- what features use of each other ---- */

/* chat.c: a message (or a bounce) from @jid as a record in its
 * conversation at @t, and an event; @copy: a copy (from our archive or
 * a carbon), where what we sent from another client is ours (recorded,
 * no event).  chat_live: a live one, unless the archive gave it already
 * (mam_seen_live). */
void chat_log(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t,
	      bool copy);
void chat_live(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t);
/* muc_out.c: a room's message leaving the queue (rooms_feature). */
bool muc_outgoing(Account *a, OutMsg *m);
