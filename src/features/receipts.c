/* receipts.c - whether a message arrived and was seen: delivery receipts
 * (XEP-0184) and chat markers (XEP-0333), both ways, in conversations.
 *
 * Ours: every chat message xmppfs sends asks for a receipt and is
 * markable; a receipt or a `received` marker that comes back sets the
 * conversation's `delivered` to that message's id, a `displayed` (or
 * `acknowledged`) marker its `displayed`, each with an event.  Theirs: a
 * message that asks for a receipt gets one once it is in the log (not
 * before: a receipt says it arrived), when the config allows (`receipts`)
 * and the sender may see our presence (XEP-0184 §8: a receipt tells that
 * we are online).
 *
 * The last ids are kept in DATA/ACCOUNT/contacts/JID/marks, so they
 * survive a remount.  Pool thread, but the text functions (any thread);
 * the table is under Account.lock. */
#include "features/receipts.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "store/roster.h"
#include "xmpp/dispatch.h"

#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_MARKERS "urn:xmpp:chat-markers:0"
#define NS_HINTS "urn:xmpp:hints"

typedef struct {
	char *delivered; /* the id of ours they last said arrived; or NULL */
	char *displayed; /* ... they last said they showed; or NULL */
} Marks;

/* What receipts.c keeps of each account (acct_state). */
typedef struct {
	/* bare JID -> Marks*, read from its file at first use; under
	 * Account.lock: the pool thread changes it, FUSE threads read it */
	GHashTable *marks;
	char *dir; /* DATA/ACCOUNT/contacts; immutable while attached */
} Receipts;

static Receipts *state(Account *a)
{
	return acct_state(a, &receipts_feature);
}

static void marks_free(gpointer p)
{
	Marks *m = p;

	g_free(m->delivered);
	g_free(m->displayed);
	g_free(m);
}

static void receipts_attach(Account *a, const char *dir)
{
	Receipts *r = state(a);

	r->marks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 marks_free);
	r->dir = g_build_filename(dir, "contacts", NULL);
}

static void receipts_detach(Account *a)
{
	Receipts *r = state(a);

	g_clear_pointer(&r->marks, g_hash_table_unref);
	g_clear_pointer(&r->dir, g_free);
}

static char *marks_path(Receipts *r, const char *jid)
{
	return g_build_filename(r->dir, jid, "marks", NULL);
}

/* With Account.lock held: @jid's marks, read from its file the first
 * time ("delivered ID" and "displayed ID" lines). */
static Marks *marks_of(Receipts *r, const char *jid)
{
	Marks *m = g_hash_table_lookup(r->marks, jid);
	g_autofree char *path = NULL, *text = NULL;

	if (m)
		return m;
	m = g_new0(Marks, 1);
	path = marks_path(r, jid);
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
		for (char **l = lines; *l; l++) {
			if (g_str_has_prefix(*l, "delivered ") && (*l)[10])
				m->delivered = g_strdup(*l + 10);
			else if (g_str_has_prefix(*l, "displayed ") && (*l)[10])
				m->displayed = g_strdup(*l + 10);
		}
	}
	g_hash_table_insert(r->marks, g_strdup(jid), m);
	return m;
}

/* An id fit for a line of its own: no control characters, not empty,
 * not absurdly long. */
static bool id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 256 || !g_utf8_validate(id, -1, NULL))
		return false;
	for (const char *p = id; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Set @jid's @which ("delivered", "displayed") to @id, keep it on disk,
 * and say it in an event. */
static void mark(Account *a, const char *jid, const char *which,
		 const char *id)
{
	Receipts *r = state(a);
	g_autofree char *text = NULL, *path = NULL, *folder = NULL;
	g_autoptr(GError) err = NULL;
	Marks *m;

	g_mutex_lock(&a->lock);
	m = marks_of(r, jid);
	if (!strcmp(which, "delivered")) {
		g_free(m->delivered);
		m->delivered = g_strdup(id);
	} else {
		g_free(m->displayed);
		m->displayed = g_strdup(id);
	}
	text = g_strdup_printf("%s%s%s%s%s%s", m->delivered ? "delivered " : "",
			       m->delivered ? m->delivered : "",
			       m->delivered ? "\n" : "",
			       m->displayed ? "displayed " : "",
			       m->displayed ? m->displayed : "",
			       m->displayed ? "\n" : "");
	g_mutex_unlock(&a->lock);
	path = marks_path(r, jid);
	folder = g_path_get_dirname(path);
	if (g_mkdir_with_parents(folder, 0700) < 0 ||
	    !g_file_set_contents_full(path, text, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600,
				      &err))
		xfs_warn("%s: %s: %s", acct_cfg(a)->jid, path,
			 err ? err->message : g_strerror(errno));
	acct_event(a, which, jid, id);
}

/* The first child of @msg named @name in @ns. */
static xmpp_stanza_t *child(xmpp_stanza_t *msg, const char *name,
			    const char *ns)
{
	return xmpp_stanza_get_child_by_name_and_ns(msg, name, ns);
}

/* A receipt or a marker from a contact: noted.  A message that is only
 * that ends here; one with a body goes on to the conversation. */
bool receipts_in(Account *a, const In *in)
{
	static const struct {
		const char *name, *ns, *which;
	} kinds[] = {
		{"received", NS_RECEIPTS, "delivered"},
		{"received", NS_MARKERS, "delivered"},
		{"displayed", NS_MARKERS, "displayed"},
		{"acknowledged", NS_MARKERS, "displayed"},
	};
	g_autofree char *bare = NULL;
	bool any = false;

	if (!g_strcmp0(in->type, "groupchat") || !g_strcmp0(in->type, "error"))
		return false;
	bare = jid_bare(in->jid);
	for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
		xmpp_stanza_t *c = child(in->st, kinds[i].name, kinds[i].ns);
		const char *id = c ? xmpp_stanza_get_attribute(c, "id") : NULL;
		if (!c)
			continue;
		any = true;
		if (!id_ok(id) || !strcmp(bare, acct_cfg(a)->jid))
			continue; /* (ours from another client: carbons.c) */
		mark(a, bare, kinds[i].which, id);
	}
	return any && !xmpp_stanza_get_child_by_name(in->st, "body");
}

/* May @bare see our presence (and so learn from a receipt that we are
 * online)? */
static bool sees_our_presence(Account *a, const char *bare)
{
	g_autoptr(RosterItem) it = roster_get(acct_roster(a), bare);

	return it && (!g_strcmp0(it->subscription, "from") ||
		      !g_strcmp0(it->subscription, "both"));
}

void receipts_answer(Account *a, xmpp_stanza_t *msg, const Jid *from)
{
	const char *id = xmpp_stanza_get_id(msg);
	const char *type = xmpp_stanza_get_type(msg);
	g_autofree char *bare = NULL, *full = NULL, *mid = NULL;
	xmpp_stanza_t *reply, *rcv, *store;

	if (!acct_cfg(a)->receipts || !child(msg, "request", NS_RECEIPTS) ||
	    !id_ok(id) || (type && strcmp(type, "chat") && strcmp(type, "normal")))
		return;
	bare = jid_bare(from);
	if (!strcmp(bare, acct_cfg(a)->jid) || !sees_our_presence(a, bare))
		return;
	full = jid_full(from);
	mid = acct_next_id(a);
	reply = xmpp_message_new(a->ctx, NULL, full, mid);
	rcv = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(rcv, "received");
	xmpp_stanza_set_ns(rcv, NS_RECEIPTS);
	xmpp_stanza_set_attribute(rcv, "id", id);
	xmpp_stanza_add_child_ex(reply, rcv, 0);
	/* kept for them while they are offline, as their message was */
	store = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(store, "store");
	xmpp_stanza_set_ns(store, NS_HINTS);
	xmpp_stanza_add_child_ex(reply, store, 0);
	sm_send(a, reply);
	xmpp_stanza_release(reply);
}

/* Ours: ask for a receipt, and let them mark it (chat messages only: a
 * room gives its own reflection, and anonymous rooms' occupants are no
 * one's contacts). */
static void receipts_own_message(Account *a, xmpp_stanza_t *msg,
				 const char *type)
{
	xmpp_stanza_t *req, *markable;

	if (g_strcmp0(type, "chat"))
		return;
	req = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(req, "request");
	xmpp_stanza_set_ns(req, NS_RECEIPTS);
	xmpp_stanza_add_child_ex(msg, req, 0);
	markable = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(markable, "markable");
	xmpp_stanza_set_ns(markable, NS_MARKERS);
	xmpp_stanza_add_child_ex(msg, markable, 0);
}

static char *mark_text(Account *a, const char *jid, bool delivered)
{
	Marks *m;
	char *text;

	g_mutex_lock(&a->lock);
	m = marks_of(state(a), jid);
	text = delivered ? m->delivered : m->displayed;
	text = text ? g_strdup_printf("%s\n", text) : g_strdup("");
	g_mutex_unlock(&a->lock);
	return text;
}

char *receipts_delivered_text(Account *a, const char *jid)
{
	return mark_text(a, jid, true);
}

char *receipts_displayed_text(Account *a, const char *jid)
{
	return mark_text(a, jid, false);
}

const Feature receipts_feature = {
	.name = "receipts and chat markers (XEP-0184, XEP-0333)",
	.state_size = sizeof(Receipts),
	.attach = receipts_attach,
	.detach = receipts_detach,
	.own_message = receipts_own_message,
};
