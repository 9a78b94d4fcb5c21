/* chatstates.c - chat states (XEP-0085): whether a contact is typing.
 *
 * Theirs: the state in their last message (one with only a state, or
 * beside a body) is contacts/JID/chatstate and a `chatstate` event when it
 * changed.  Ours: a script is no person typing, so nothing is sent unless
 * the account says chat_states = true; then our messages carry <active/>
 * and a state written to chatstate goes out on its own.
 *
 * Pool thread, but the text and the write (any thread); the table is
 * under Account.lock. */
#include "features/chatstates.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "xmpp/dispatch.h"

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

static const char *const states[] = {"active", "composing", "paused",
				     "inactive", "gone"};

/* What chatstates.c keeps of each account (acct_state). */
typedef struct {
	/* bare JID -> state (one of states[], not owned); under
	 * Account.lock: the pool thread changes it, FUSE threads read it */
	GHashTable *theirs;
} ChatStates;

static ChatStates *state(Account *a)
{
	return acct_state(a, &chatstates_feature);
}

static void cs_attach(Account *a, const char *dir)
{
	(void)dir;
	state(a)->theirs = g_hash_table_new_full(g_str_hash, g_str_equal,
						 g_free, NULL);
}

static void cs_detach(Account *a)
{
	g_clear_pointer(&state(a)->theirs, g_hash_table_unref);
}

/* The stream went: nobody is typing to us any more that we would know. */
static void cs_offline(Account *a)
{
	g_mutex_lock(&a->lock);
	g_hash_table_remove_all(state(a)->theirs);
	g_mutex_unlock(&a->lock);
}

/* The state @msg carries, or NULL. */
static const char *state_of(xmpp_stanza_t *msg)
{
	for (guint i = 0; i < G_N_ELEMENTS(states); i++)
		if (xmpp_stanza_get_child_by_name_and_ns(msg, states[i],
							 NS_CHATSTATES))
			return states[i];
	return NULL;
}

bool chatstates_in(Account *a, const In *in)
{
	const char *st = state_of(in->st);
	g_autofree char *bare = NULL;
	bool changed;

	if (!st || !g_strcmp0(in->type, "groupchat") ||
	    !g_strcmp0(in->type, "error"))
		return false;
	bare = jid_bare(in->jid);
	if (strcmp(bare, acct_cfg(a)->jid)) {
		g_mutex_lock(&a->lock);
		changed = g_strcmp0(g_hash_table_lookup(state(a)->theirs, bare),
				    st) != 0;
		g_hash_table_replace(state(a)->theirs, g_strdup(bare),
				     (gpointer)st);
		g_mutex_unlock(&a->lock);
		if (changed)
			acct_event(a, "chatstate", bare, st);
	}
	/* a state alone ends here; beside a body, on to the conversation */
	return !xmpp_stanza_get_child_by_name(in->st, "body") &&
	       !xmpp_stanza_get_child_by_name(in->st, "subject");
}

char *chatstates_text(Account *a, const char *jid)
{
	const char *st;

	g_mutex_lock(&a->lock);
	st = g_hash_table_lookup(state(a)->theirs, jid);
	g_mutex_unlock(&a->lock);
	return st ? g_strdup_printf("%s\n", st) : g_strdup("");
}

/* Ours carry <active/> when the account sends states (XEP-0085 §5.1:
 * with the first message, and every one after). */
static bool cs_own_message(Account *a, xmpp_stanza_t *msg,
			   const OutboxItem *it)
{
	if (acct_cfg(a)->chat_states && !g_strcmp0(it->type, "chat") &&
	    (!it->kind || strcmp(it->kind, "reaction")))
		acct_add_child(a, msg, "active", NS_CHATSTATES);
	return false;
}

typedef struct {
	char *jid;
	const char *st;
} Say;

static void say_free(void *data)
{
	Say *s = data;

	g_free(s->jid);
	g_free(s);
}

static void say_run(Account *a, void *data, PoolReq *r)
{
	Say *s = data;
	g_autofree char *id = NULL;
	xmpp_stanza_t *m;

	if (!acct_is_online(a)) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	id = acct_next_id(a);
	m = xmpp_message_new(a->ctx, "chat", s->jid, id);
	acct_add_child(a, m, s->st, NS_CHATSTATES);
	/* a state is for now: not to be kept for later */
	acct_add_child(a, m, "no-store", NS_HINTS);
	sm_send(a, m);
	xmpp_stanza_release(m);
	pool_complete(r, 0);
}

int chatstates_say(Pool *p, Account *a, const char *jid, const char *word)
{
	Say *s;

	for (guint i = 0; i < G_N_ELEMENTS(states); i++) {
		if (strcmp(word, states[i]))
			continue;
		if (!acct_cfg(a)->chat_states)
			return -EPERM;
		s = g_new0(Say, 1);
		s->jid = g_strdup(jid);
		s->st = states[i];
		return pool_call(p, a, say_run, s, say_free);
	}
	return -EINVAL;
}

const Feature chatstates_feature = {
	.name = "chat states (XEP-0085)",
	.state_size = sizeof(ChatStates),
	.attach = cs_attach,
	.detach = cs_detach,
	.offline = cs_offline,
	.own_message = cs_own_message,
};
