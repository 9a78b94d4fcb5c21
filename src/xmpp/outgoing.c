/* outgoing.c - accepted messages on their way out: into the outbox and
 * the log together (acct_accept), then queued on the pool thread, sent
 * in order once online and once what a lost stream left is sorted
 * (Account.held, mam.c's outbox check), and kept until acknowledged
 * (sm.c); and the other stanzas of ours that go out by a request: our
 * presence, what a user wrote to `raw`.  Above sm.c, below conn.c.
 * Pool thread, but acct_accept and acct_errno_of (any). */
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "base/record.h"
#include "store/history.h"
#include "store/outbox.h"
#include "xmpp/pool.h"

xmpp_stanza_t *acct_message_new(Account *a, const char *type, const char *to,
			       const char *id)
{
	xmpp_stanza_t *msg = xmpp_message_new(a->ctx, type, to, id);
	xmpp_stanza_t *oid = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(oid, "origin-id");
	xmpp_stanza_set_ns(oid, NS_SID);
	xmpp_stanza_set_id(oid, id);
	xmpp_stanza_add_child_ex(msg, oid, 0);
	return msg;
}

void acct_send_message(Account *a, xmpp_stanza_t *msg, const OutboxItem *it)
{
	if (!acct_features_own_message(a, msg, it))
		xmpp_message_set_body(msg, it->body);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
}

/* Send what waits, oldest first.  A feature may take a message (rooms
 * hold theirs until the room has us, and wait for its reflection rather
 * than for the server's acknowledgement); every other is a chat message
 * and waits for its acknowledgement (sm.c). */
void acct_flush_outq(Account *a)
{
	OutMsg *m;

	if (!acct_is_online(a))
		return;
	if (a->held.length)
		return; /* what the archive check sorts goes first */
	while ((m = g_queue_pop_head(&a->outq))) {
		if (acct_features_outgoing(a, m))
			continue;
		acct_send_message(a, acct_message_new(a, m->item->type,
						      m->item->to, m->item->id),
				  m->item);
		sm_track(a, m);
	}
}

void acct_release_held(Account *a, GHashTable *sent)
{
	OutMsg *m;

	POOL_ASSERT();
	guint had = 0, again = 0;

	/* before what was accepted since: the order of acceptance */
	while ((m = g_queue_pop_tail(&a->held))) {
		if (sent && g_hash_table_contains(sent, m->item->id)) {
			outbox_done(a->outbox, m->item->id);
			acct_outmsg_free(m);
			had++;
			continue;
		}
		g_queue_push_head(&a->outq, m);
		again++;
	}
	if (sent && (had || again))
		xfs_info("%s: of %u unacknowledged messages, the archive shows "
			 "%u the server has (not sent again); %u go out again",
			 a->cfg->jid, had + again, had, again);
	acct_flush_outq(a);
}

void acct_queue_message(Account *a, OutboxItem *item)
{
	OutMsg *m = g_new0(OutMsg, 1);

	POOL_ASSERT();
	m->item = item;
	g_queue_push_tail(&a->outq, m);
	acct_flush_outq(a);
}

int acct_errno_of(const GError *err)
{
	static const struct {
		GFileError code;
		int err;
	} map[] = {
		{G_FILE_ERROR_NOSPC, ENOSPC}, {G_FILE_ERROR_MFILE, EMFILE},
		{G_FILE_ERROR_NFILE, ENFILE}, {G_FILE_ERROR_ACCES, EACCES},
		{G_FILE_ERROR_ROFS, EROFS},   {G_FILE_ERROR_NOMEM, ENOMEM},
	};

	for (guint i = 0; err && err->domain == G_FILE_ERROR &&
			  i < G_N_ELEMENTS(map);
	     i++)
		if (map[i].code == (GFileError)err->code)
			return map[i].err;
	return EIO;
}

static int accept(Account *a, const char *to, const char *type,
		  const OutboxKind *k, const char *const *bodies, guint n,
		  Hist *h, const char *sender, guint64 *seq)
{
	g_autoptr(GPtrArray) items = NULL;
	OutboxSpan span;
	int ret;

	if (!n)
		return 0;
	if (acct_refuses_messages(a))
		return -ENOTCONN;
	ret = outbox_add_many(a->outbox, to, type, k, bodies, n, &items,
			      &span);
	if (ret)
		return ret;
	if (h) {
		g_autoptr(GString) rec = g_string_new(NULL);
		g_autoptr(GString) ids = g_string_new(NULL);
		gint64 now = g_get_real_time() / G_USEC_PER_SEC;
		for (guint i = 0; i < n; i++) {
			OutboxItem *it = g_ptr_array_index(items, i);
			record_append(rec, now, sender, bodies[i]);
			/* the id it goes out with (and its origin-id) */
			record_append_ids(ids, bodies[i], it->id,
					  k && k->kind ? k->kind : "message",
					  k ? k->ref : NULL, NULL,
					  k ? k->enc : NULL);
		}
		ret = hist_append_ids(h, rec->str, rec->len, ids->str,
				      ids->len, NULL);
		if (ret) {
			/* all or nothing: what the log cannot show is not sent */
			outbox_cancel(a->outbox, items, &span);
			return ret;
		}
	}
	*seq = ((OutboxItem *)g_ptr_array_index(items, n - 1))->seq;
	for (guint i = 0; i < n; i++)
		pool_post_message(a->pool, a, g_steal_pointer(&items->pdata[i]));
	return 0;
}

int acct_accept(Account *a, const char *to, const char *type,
		const OutboxKind *k, const char *const *bodies, guint n,
		Hist *h, const char *sender, guint64 *seq)
{
	return accept(a, to, type, k, bodies, n, h, sender, seq);
}

int acct_accept_kind(Account *a, const char *to, const char *type,
		     const OutboxKind *k, const char *body, Hist *h,
		     const char *sender, guint64 *seq)
{
	const char *bodies[] = {body};

	return accept(a, to, type, k, bodies, 1, h, sender, seq);
}

int acct_send_raw(Account *a, GPtrArray *stanzas)
{
	POOL_ASSERT();
	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead)
		return -ENOTCONN;
	for (guint i = 0; i < stanzas->len; i++)
		sm_send_raw(a, g_ptr_array_index(stanzas, i));
	return 0;
}

void acct_send_presence(Account *a)
{
	xmpp_stanza_t *p;

	POOL_ASSERT();
	p = acct_own_presence(a, NULL);
	sm_send(a, p);
	xmpp_stanza_release(p);
}

/* Our presence at CONNECT, after the features that must come before it
 * (featureset.c says which). */
const Feature acct_presence_feature = {
	.name = "our presence",
	.online = acct_send_presence,
};
