/* iqfile.c - ACCOUNT/iq: a request written to it goes out (with an id of
 * the await engine's own: answers are matched by it), and its answer (or
 * ETIMEDOUT after the account's iq_timeout (30 s), ECONNRESET when the stream goes) goes
 * to the caller's callback (fs/iqcall.c parks the read that waits for
 * it).  The user's own id, if any, is put back on the answer, so that
 * what is read matches what was written. */
#include "features/iqfile.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "features/featureset.h"
#include "xmpp/await.h"
#include "xmpp/pool.h"

typedef struct {
	IqfileDone done;
	void *data;
	GDestroyNotify free_data;
	char *user_id; /* the id the user wrote, or NULL */
} IqDone;

static void done_free(void *p)
{
	IqDone *d = p;

	if (d->free_data)
		d->free_data(d->data);
	g_free(d->user_id);
	g_free(d);
}

static void answered(Account *a, xmpp_stanza_t *iq, int err, void *data)
{
	IqDone *d = data;
	char *text = NULL;
	size_t len;
	g_autofree char *line = NULL;

	if (!iq) {
		d->done(d->data, NULL, err);
		return;
	}
	/* a copy: libstrophe still reads the id of the stanza it is
	 * handing round */
	iq = xmpp_stanza_copy(iq);
	if (d->user_id)
		xmpp_stanza_set_id(iq, d->user_id);
	if (xmpp_stanza_to_text(iq, &text, &len) == XMPP_EOK) {
		line = acct_one_line(text);
		xmpp_free(a->ctx, text);
	}
	xmpp_stanza_release(iq);
	d->done(d->data, line, line ? 0 : -EIO);
}

/* Sends the request; on 0, @d belongs to the wait. */
static int send_iq(Account *a, IqDone *d, const char *text)
{
	xmpp_stanza_t *iq;
	const char *type, *id;

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
	if ((id = xmpp_stanza_get_id(iq)) && *id)
		d->user_id = g_strdup(id);
	await_iq(a, iq, acct_cfg(a)->iq_timeout, answered, d, done_free);
	xmpp_stanza_release(iq);
	return 0;
}

typedef struct {
	IqDone *done;
	char *text;
} IqJob;

static void iq_run(Account *a, void *data, PoolReq *r)
{
	IqJob *j = data;
	int ret = send_iq(a, j->done, j->text);

	if (!ret)
		j->done = NULL; /* the wait's now */
	pool_complete(r, ret);
}

static void iq_job_free(void *data)
{
	IqJob *j = data;

	if (j->done)
		done_free(j->done);
	g_free(j->text);
	g_free(j);
}

int iqfile_send(Pool *p, Account *a, const char *text, IqfileDone done,
		void *data, GDestroyNotify free_data)
{
	IqJob *j = g_new0(IqJob, 1);

	j->done = g_new0(IqDone, 1);
	*j->done = (IqDone){done, data, free_data, NULL};
	j->text = g_strdup(text);
	return pool_call(p, a, iq_run, j, iq_job_free);
}
