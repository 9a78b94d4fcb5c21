/* iqfile.c - ACCOUNT/iq: a request written to it goes out with an id of
 * its own if it has none, and its answer (or ETIMEDOUT after
 * IQFILE_TIMEOUT_S, ECONNRESET when the stream goes) goes to the caller's
 * callback (fs/iqcall.c parks the read that waits for it). */
#include "features/iqfile.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "features/featureset.h"
#include "xmpp/pool.h"

/* Who waits for an answer: the caller's callback. */
typedef struct {
	IqfileDone done;
	void *data;
	GDestroyNotify free_data;
} IqDone;

static void done_free(IqDone *d)
{
	if (d->free_data)
		d->free_data(d->data);
}

typedef struct {
	WaitHead head;
	IqDone done;
} IqWait;

static void iqwait_free(gpointer p)
{
	IqWait *w = p;

	done_free(&w->done);
	g_free(w);
}

static int iq_file_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *id = xmpp_stanza_get_id(iq);
	IqWait *w = id ? g_hash_table_lookup(a->iq_calls, id) : NULL;
	char *text = NULL;
	size_t len;
	g_autofree char *line = NULL;

	if (!w)
		return 0;
	if (xmpp_stanza_to_text(iq, &text, &len) == XMPP_EOK) {
		line = acct_one_line(text);
		xmpp_free(a->ctx, text);
	}
	w->done.done(w->done.data, line, line ? 0 : -EIO);
	g_hash_table_remove(a->iq_calls, id);
	return 0;
}

/* Sends the request; on 0, @d belongs to the wait (cleared here). */
static int send_iq(Account *a, IqDone *d, const char *text)
{
	xmpp_stanza_t *iq;
	const char *type, *id;
	g_autofree char *new_id = NULL;
	IqWait *w;

	POOL_ASSERT();
	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead)
		return -ENOTCONN;
	iq = xmpp_stanza_new_from_string(a->ctx, text);
	type = iq ? xmpp_stanza_get_type(iq) : NULL;
	if (!iq || strcmp(xmpp_stanza_get_name(iq), "iq") || !type ||
	    (strcmp(type, "get") && strcmp(type, "set"))) {
		if (iq)
			xmpp_stanza_release(iq);
		return -EINVAL;
	}
	if (!(id = xmpp_stanza_get_id(iq)) || !*id ||
	    g_hash_table_contains(a->iq_calls, id)) {
		new_id = acct_next_id(a);
		xmpp_stanza_set_id(iq, new_id);
		id = new_id;
	}
	w = g_new0(IqWait, 1);
	w->done = *d;
	*d = (IqDone){0};
	w->head.deadline =
		g_get_monotonic_time() + IQFILE_TIMEOUT_S * G_USEC_PER_SEC;
	g_hash_table_insert(a->iq_calls, g_strdup(id), w);
	xmpp_id_handler_add(a->conn, iq_file_answer, id, a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	return 0;
}

/* Requests of the iq file whose answer is overdue, or whose stream is
 * gone (@all): they end with @err. */
static void expire_iq_calls(Account *a, gint64 now, bool all, int err)
{
	GHashTableIter iter;
	gpointer k, v;

	g_hash_table_iter_init(&iter, a->iq_calls);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		IqWait *w = v;
		if (!all && now < w->head.deadline)
			continue;
		if (a->conn && !a->conn_dead)
			xmpp_id_handler_delete(a->conn, iq_file_answer, k);
		w->done.done(w->done.data, NULL, err);
		g_hash_table_iter_remove(&iter);
	}
}

typedef struct {
	IqDone done;
	char *text;
} IqJob;

static void iq_run(Account *a, void *data, PoolReq *r)
{
	IqJob *j = data;

	pool_complete(r, send_iq(a, &j->done, j->text));
}

static void iq_job_free(void *data)
{
	IqJob *j = data;

	done_free(&j->done);
	g_free(j->text);
	g_free(j);
}

int iqfile_send(Pool *p, Account *a, const char *text, IqfileDone done,
		void *data, GDestroyNotify free_data)
{
	IqJob *j = g_new0(IqJob, 1);

	j->done = (IqDone){done, data, free_data};
	j->text = g_strdup(text);
	return pool_call(p, a, iq_run, j, iq_job_free);
}

static void iqfile_attach(Account *a, const char *dir)
{
	(void)dir;
	a->iq_calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    iqwait_free);
}

static void iqfile_detach(Account *a)
{
	g_clear_pointer(&a->iq_calls, g_hash_table_unref);
}

static void iqfile_offline(Account *a)
{
	expire_iq_calls(a, 0, true, -ECONNRESET);
}

static gint64 iqfile_due(Account *a)
{
	return acct_waits_due(a->iq_calls);
}

static void iqfile_tick(Account *a, gint64 now)
{
	expire_iq_calls(a, now, false, -ETIMEDOUT);
}

const Feature iqfile_feature = {
	.name = "the iq file",
	.attach = iqfile_attach,
	.detach = iqfile_detach,
	.offline = iqfile_offline,
	.due = iqfile_due,
	.tick = iqfile_tick,
};
