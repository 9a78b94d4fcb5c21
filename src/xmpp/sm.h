/* sm.h - the one way out for stanzas, and stream management (XEP-0198):
 * which accepted messages the server has.  Part of the account layer:
 * pool thread only.
 *
 * Every stanza xmppfs sends goes through sm_send (or sm_send_raw), which
 * counts it; that count is the XEP-0198 outbound count, so the number a
 * message gets when it is sent is exact, and an <a h=''/> from the
 * server tells exactly which messages it has.  A message leaves the
 * outbox only when an acknowledgement from the stream it was sent on
 * covers it: the server's <a/>, or, where the server offers no stream
 * management (or refuses it), the answer to a ping sent after it (the
 * server handles a stream's stanzas in order, so its answer to the ping
 * says it handled everything before).  What a lost stream did not
 * acknowledge goes back to Account.held, which the archive check of the
 * next connect (mam.c) sorts into "the server has it" and "send again". */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <strophe.h>

typedef struct Account Account;

/* The state of one stream; reset at each connection attempt. */
typedef struct {
	bool offered;  /* the stream features list urn:xmpp:sm:3 */
	bool enabling; /* <enable/> sent; the outbound count runs from it */
	bool on;       /* <enabled/> came: inbound count runs, <r/> allowed */
	bool barriers; /* no stream management: pings acknowledge */
	guint32 in;    /* stanzas received since <enabled/> */
	guint32 out;   /* stanzas sent since <enable/> (or the stream's start) */
	guint32 acked; /* the highest count acknowledged on this stream */
	bool r_pending; /* the server asked <r/>: answered after the run */
	bool ask;       /* messages went out: ask <r/> after the run */
	char *barrier;  /* the id of the ping that acknowledges, or NULL */
	guint32 barrier_out; /* what that ping acknowledges when answered */
} Sm;

/* A new attempt: nothing counted, nothing offered. */
void sm_reset(Account *a);
/* The stream features offered stream management (strophe012.c). */
void sm_offered(Account *a);
/* At CONNECT: enable stream management when offered, else acknowledge
 * with pings. */
void sm_start(Account *a);
/* Send @st (borrowed) and count it. */
void sm_send(Account *a, xmpp_stanza_t *st);
/* Send one stanza a user wrote (checked by xmlcheck) and count it. */
void sm_send_raw(Account *a, const char *xml);
/* @m (taken) was just sent: it waits in Account.inflight for an
 * acknowledgement that covers it. */
typedef struct OutMsg OutMsg;
void sm_track(Account *a, OutMsg *m);
/* A stanza came: counted when it is one (message, presence, iq); a
 * stream-management element is handled. */
void sm_received(Account *a, xmpp_stanza_t *st);
/* After a run: answer the server's <r/>, and ask an acknowledgement of
 * what was sent during it. */
void sm_after_run(Account *a);
bool sm_after_run_wanted(Account *a);
/* Acknowledge what was received, when stream management is on: the
 * answer to <r/>, and at a clean close (before </stream:stream>, or the
 * server bounces it). */
void sm_ack_all(Account *a);
/* The stream is gone: what it did not acknowledge waits in Account.held
 * for the next connect's archive check. */
void sm_lost(Account *a);
