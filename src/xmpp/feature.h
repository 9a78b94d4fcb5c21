/* feature.h - what a feature is to the core of an account.
 *
 * The core (account.c, conn.c, outgoing.c, sm.c, dispatch.c) runs a
 * connection's life and calls every feature's hooks at its moments, in
 * the order the features were added (featureset.c: the one place that
 * names them and decides that order); stanzas reach features through
 * dispatch.h.  No hook is required.  The core names no feature.  Pool
 * thread only, but attach and detach (any thread, before the pool runs
 * and after it stopped). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <strophe.h>

typedef struct Account Account;
typedef struct OutMsg OutMsg;
typedef struct OutboxItem OutboxItem;

typedef struct {
	const char *name;
	/* the bytes of the feature's own state in each account: made zeroed
	 * before attach, freed after detach; acct_state finds it.  What is
	 * in it, who may touch it and under which lock, the feature says
	 * next to its fields. */
	size_t state_size;
	/* the account is made (@dir: its data directory) / freed */
	void (*attach)(Account *a, const char *dir);
	void (*detach)(Account *a);
	/* the stream reached CONNECT: before the account says online */
	void (*online)(Account *a);
	/* the stream is gone (and once more before detach) */
	void (*offline)(Account *a);
	/* its next timer (monotonic µs, G_MAXINT64: none), and its turn */
	gint64 (*due)(Account *a);
	void (*tick)(Account *a, gint64 now);
	/* our presence is going out: add to it (@to: directed, or NULL) */
	void (*own_presence)(Account *a, xmpp_stanza_t *p, const char *to);
	/* our presence changed (a `status` write): tell whom it concerns */
	void (*presence_changed)(Account *a);
	/* an accepted message is about to go out: true when the feature
	 * takes it (holds it, or sends and tracks it itself) */
	bool (*outgoing)(Account *a, OutMsg *m);
	/* a message of ours (@it: what the outbox has of it) goes out: add
	 * to it; true when the feature set its body (or wants none) */
	bool (*own_message)(Account *a, xmpp_stanza_t *msg,
			    const OutboxItem *it);
} Feature;

/* Add @f to @a, after those added before (featureset.c). */
void acct_add_feature(Account *a, const Feature *f);
/* @f's state in @a (Feature.state_size bytes; NULL if none). */
void *acct_state(Account *a, const Feature *f);

/* The core's own feature: our presence, sent at CONNECT and at a `status`
 * write, with what the other features add to it (outgoing.c). */
extern const Feature acct_presence_feature;
