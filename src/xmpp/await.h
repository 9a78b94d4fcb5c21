/* await.h - the one way to wait for the server: send an iq with await_iq
 * and get its answer, or the end of the wait (a deadline, the stream
 * gone), in a callback, exactly once.
 *
 * The engine keeps the waits (its state in the account, by id), takes an answer (the
 * first link of the iq chain, await_in) only from whom the request went to (RFC 6120 §8.1.2.1: a request without
 * `to`, or to our bare JID, is answered by our own account, with no
 * `from` or our bare JID; one to our server by our domain), lets the
 * deadlines run on the account's timers, and ends every wait when the
 * stream goes.  It is the core's own feature (await_feature), which
 * featureset.c adds first.  Pool thread only. */
#pragma once

#include <glib.h>
#include <strophe.h>

#include "xmpp/dispatch.h"
#include "xmpp/feature.h"

typedef struct Account Account;

/* @answer: the result or error iq (the caller's to read, not to keep);
 * NULL when none came, with @err -ETIMEDOUT (the deadline) or
 * -ECONNRESET (the stream went, or the account is freed). */
typedef void (*AwaitFn)(Account *a, xmpp_stanza_t *answer, int err,
			void *data);

/* Send @iq, a get or set (given an id of the engine's own), and call
 * @fn(@a, answer, 0, @data) when its answer comes, or @fn(@a, NULL, -err,
 * @data) after @timeout_s or when the stream goes; @free_data(@data)
 * after.  The stream must be up (acct_is_online, or during CONNECT). */
void await_iq(Account *a, xmpp_stanza_t *iq, guint timeout_s, AwaitFn fn,
	      void *data, GDestroyNotify free_data);

/* The iq chain's link (featureset.c puts it first): @in is the answer to
 * one of our requests, from whom it went to. */
bool await_in(Account *a, const In *in);

/* An AwaitFn's @answer and @err as one result: 0 for a result iq, the
 * -errno of an error iq (acct_error_errno), else @err. */
int await_errno(xmpp_stanza_t *answer, int err);

/* How many wait now. */
guint await_count(Account *a);

extern const Feature await_feature;
