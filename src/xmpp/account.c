/* account.c - one account: its shared state (what the `connection` and
 * `status` files show), its events, the helpers its features share and
 * its features' hooks.  It is made and freed in core.c, the connection's
 * life is in conn.c (with login.c, keepalive.c, resolve.c), the messages
 * on their way out in outgoing.c, stream management in sm.c;
 * featureset.c says which features an account has.
 *
 * The lowest of the core's files: it calls none of them but the pool's
 * (see core.c for their order).
 *
 * Every function that touches libstrophe runs on the pool thread (asserted
 * with POOL_ASSERT).  Each account has its own libstrophe context so that
 * the library's log lines and certificate callbacks, which carry only a
 * context, can be told apart per account: that is how a failed login, a
 * refused certificate or a parse error becomes this account's `error:`.
 *
 * What FUSE threads may read (the `connection` and `status` files) is in
 * the "shared" block of struct Account, protected by Account.lock.  The
 * lock is never held while calling libstrophe. */
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>
#include <strophe.h>
#include <unistd.h>

#include "base/errmap.h"
#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/text.h"
#include "store/history.h"
#include "store/outbox.h"
#include "store/roster.h"
#include "xmpp/pool.h"

/* Events that could not be written (a full disk) wait here, in order,
 * and go first the next time one can be. */
#define EVENTS_BACKLOG_MAX (1024 * 1024)
#define LOG_RETRY_S 5

static const char *const show_words[] = {
	[ACCT_SHOW_AVAILABLE] = "available", [ACCT_SHOW_CHAT] = "chat",
	[ACCT_SHOW_AWAY] = "away",           [ACCT_SHOW_XA] = "xa",
	[ACCT_SHOW_DND] = "dnd",             [ACCT_SHOW_OFFLINE] = "offline",
};


static const char *const state_words[] = {
	[ACCT_OFFLINE] = "offline",
	[ACCT_CONNECTING] = "connecting",
	[ACCT_ONLINE] = "online",
	[ACCT_FAILED] = "failed",
};

/* ---- shared state, any thread ---- */

void acct_set_state(Account *a, AcctState st, const char *error)
{
	g_mutex_lock(&a->lock);
	if (a->state != st)
		a->since = g_get_real_time() / G_USEC_PER_SEC;
	a->state = st;
	if (error) {
		g_free(a->error);
		a->error = g_strdup(error);
		a->error_is_log = false;
	}
	g_mutex_unlock(&a->lock);
	/* after the unlock: the first-login watch (main.c) reads it now */
	pool_state_bump(a->pool);
	if (error)
		xfs_warn("%s: %s", acct_cfg(a)->jid, error);
	else
		xfs_info("%s: %s", acct_cfg(a)->jid, state_words[st]);
	{
		g_autofree char *text =
			error ? g_strdup_printf("%s: %s", state_words[st], error)
			      : g_strdup(state_words[st]);
		acct_event(a, "connection", acct_cfg(a)->jid, text);
	}
}

static void events_append(Account *a, const GString *out)
{
	GString *b;

	g_mutex_lock(&a->events_lock);
	b = a->events_backlog;
	if (b->len && hist_append(a->events, b->str, b->len) == 0)
		g_string_truncate(b, 0);
	if (!out || (!b->len && hist_append(a->events, out->str, out->len) == 0))
		goto out_unlock;
	if (b->len + out->len <= EVENTS_BACKLOG_MAX)
		g_string_append_len(b, out->str, out->len);
	else
		a->events_dropped++;
out_unlock:
	g_mutex_unlock(&a->events_lock);
}

void acct_event(Account *a, const char *kind, const char *jid,
		const char *text)
{
	acct_event_by(a, kind, jid, NULL, text);
}

void acct_event_by(Account *a, const char *kind, const char *jid,
		   const char *who, const char *text)
{
	char t[RECORD_TIME_LEN + 1];
	g_auto(GStrv) lines = NULL;
	GString *out = g_string_new(NULL);
	g_autofree char *clean = g_strdup(text ? text : "");
	g_autofree char *pre = g_strconcat(who ? who : "", who ? "\t" : "",
					   NULL);

	if (!a->events)
		return;
	record_format_time(g_get_real_time() / G_USEC_PER_SEC, t);
	/* a TAB in the text is kept, as in records: only the first three of
	 * a line separate fields */
	g_strdelimit(clean, "\r", ' ');
	lines = g_strsplit(clean, "\n", -1);
	for (char **l = lines; *l; l++) {
		if (!**l && l != lines && !l[1])
			break; /* a trailing newline */
		g_string_append_printf(out, "%s\t%s\t%s\t%s%s\n", t, kind, jid,
				       pre, *l);
	}
	if (!out->len) /* an empty text is still an event */
		g_string_append_printf(out, "%s\t%s\t%s\t%s\n", t, kind, jid,
				       pre);
	events_append(a, out);
	g_string_free(out, TRUE);
}

void acct_set_str(Account *a, char **field, char *value)
{
	g_mutex_lock(&a->lock);
	g_free(*field);
	*field = value;
	g_mutex_unlock(&a->lock);
}

static char *format_time(gint64 unix_s)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(unix_s);
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

char *acct_connection_text(Account *a)
{
	GString *s = g_string_new(NULL);

	g_mutex_lock(&a->lock);
	g_string_append_printf(s, "state: %s\n", state_words[a->state]);
	g_string_append_printf(s, "jid: %s\n",
			       a->bound_jid ? a->bound_jid : acct_cfg(a)->jid);
	if (a->server)
		g_string_append_printf(s, "server: %s\n", a->server);
	if (a->state == ACCT_ONLINE)
		g_string_append_printf(s, "tls: %s\n", a->tls_desc);
	g_autofree char *since = format_time(a->since);
	g_string_append_printf(s, "since: %s\n", since);
	if (a->retry_at_unix && a->state != ACCT_ONLINE) {
		g_autofree char *at = format_time(a->retry_at_unix);
		g_string_append_printf(s, "retry: %s\n", at);
	}
	if (a->error)
		g_string_append_printf(s, "error: %s\n", a->error);
	g_mutex_unlock(&a->lock);
	return g_string_free(s, FALSE);
}

bool acct_refuses_messages(Account *a)
{
	bool failed;

	if (acct_cfg(a)->queue_when_failed)
		return false;
	g_mutex_lock(&a->lock);
	failed = a->state == ACCT_FAILED;
	g_mutex_unlock(&a->lock);
	return failed;
}

AcctState acct_first_verdict(Account *a, char **error, bool *retrying)
{
	AcctState st;

	g_mutex_lock(&a->lock);
	st = a->state;
	*retrying = a->retry_at_unix && st != ACCT_ONLINE;
	*error = g_strdup(a->error);
	g_mutex_unlock(&a->lock);
	return st;
}

char *acct_status_text(Account *a)
{
	char *out;

	g_mutex_lock(&a->lock);
	if (!a->want_online)
		out = g_strdup("offline\n");
	else if (a->show_text)
		out = g_strdup_printf("%s %s\n", show_words[a->show],
				      a->show_text);
	else
		out = g_strdup_printf("%s\n", show_words[a->show]);
	g_mutex_unlock(&a->lock);
	return out;
}

gint64 acct_since(Account *a)
{
	gint64 t;

	g_mutex_lock(&a->lock);
	t = a->since;
	g_mutex_unlock(&a->lock);
	return t;
}

int acct_parse_status(const char *line, AcctShow *show, char **text)
{
	gsize len = strlen(line);
	const char *sp;
	g_autofree char *word = NULL;

	*text = NULL;
	if (len == 0 || len > ACCT_STATUS_TEXT_MAX)
		return -EINVAL;
	if (!text_is_clean(line, len, false))
		return -EILSEQ;
	sp = strpbrk(line, " \t");
	word = sp ? g_strndup(line, sp - line) : g_strdup(line);
	*show = ACCT_SHOW_RECONNECT;
	for (guint i = 0; i < G_N_ELEMENTS(show_words); i++)
		if (g_str_equal(word, show_words[i]))
			*show = i;
	if (*word == '\0')
		return -EINVAL;
	if (sp && (*show == ACCT_SHOW_OFFLINE || *show == ACCT_SHOW_RECONNECT))
		return 0; /* text after offline or a reconnect word is ignored */
	if (sp) {
		g_autofree char *t = g_strstrip(g_strdup(sp));
		if (*t)
			*text = g_steal_pointer(&t);
	}
	return 0;
}

/* One line of XML: newlines inside as character references. */
char *acct_one_line(const char *xml)
{
	GString *s = g_string_new(NULL);

	for (const char *p = xml; *p; p++) {
		if (*p == '\n')
			g_string_append(s, "&#10;");
		else if (*p == '\r')
			g_string_append(s, "&#13;");
		else
			g_string_append_c(s, *p);
	}
	g_string_append_c(s, '\n');
	return g_string_free(s, FALSE);
}

/* A received stanza for `raw` readers, as one line. */
void acct_raw_record(Account *a, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	g_autofree char *line = NULL;
	char *xml = NULL;
	size_t len;

	if (!g_atomic_int_get(&a->raw_readers) || !name ||
	    (strcmp(name, "message") && strcmp(name, "presence") &&
	     strcmp(name, "iq")))
		return;
	if (xmpp_stanza_to_text(st, &xml, &len) != XMPP_EOK)
		return;
	line = acct_one_line(xml);
	xmpp_free(a->ctx, xml);
	hist_append(a->raw, line, strlen(line));
}

/* ---- stanzas ---- */

xmpp_stanza_t *acct_add_child(Account *a, xmpp_stanza_t *parent,
			      const char *name, const char *ns)
{
	xmpp_stanza_t *c = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(c, name);
	if (ns)
		xmpp_stanza_set_ns(c, ns);
	xmpp_stanza_add_child_ex(parent, c, 0);
	return c;
}

void acct_add_text_child(Account *a, xmpp_stanza_t *parent,
			   const char *name, const char *text)
{
	xmpp_stanza_t *child = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *t = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(child, name);
	xmpp_stanza_set_text(t, text);
	xmpp_stanza_add_child(child, t);
	xmpp_stanza_add_child(parent, child);
	xmpp_stanza_release(t);
	xmpp_stanza_release(child);
}

xmpp_stanza_t *acct_ping_new(Account *a, const char *id)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", id);
	xmpp_stanza_t *ping = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(ping, "ping");
	xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
	xmpp_stanza_add_child_ex(iq, ping, 0);
	xmpp_stanza_set_to(iq, acct_domain(a));
	return iq;
}

/* Our presence (show, status, caps), directed to @to when not NULL. */
xmpp_stanza_t *acct_own_presence(Account *a, const char *to)
{
	xmpp_stanza_t *p = xmpp_presence_new(a->ctx);
	AcctShow show;
	g_autofree char *text = NULL;

	g_mutex_lock(&a->lock);
	show = a->show;
	text = g_strdup(a->show_text);
	g_mutex_unlock(&a->lock);
	if (to)
		xmpp_stanza_set_to(p, to);
	if (show != ACCT_SHOW_AVAILABLE)
		acct_add_text_child(a, p, "show", show_words[show]);
	if (text)
		acct_add_text_child(a, p, "status", text);
	for (guint i = 0; i < a->features->len; i++) {
		const Feature *f = g_ptr_array_index(a->features, i);
		if (f->own_presence)
			f->own_presence(a, p, to); /* caps, ... */
	}
	return p;
}

const char *acct_domain(Account *a)
{
	const char *at = strchr(acct_cfg(a)->jid, '@');

	return at ? at + 1 : acct_cfg(a)->jid;
}

bool acct_is_online(Account *a)
{
	return a->state == ACCT_ONLINE && a->conn && !a->conn_dead &&
	       !a->close_at;
}

/* An empty result to @iq, or an error with @condition.  Pushes from our
 * own server carry no 'from' (RFC 6120 §8.1.2.1): libstrophe's
 * xmpp_stanza_reply gives nothing then, and they would go unanswered. */
xmpp_stanza_t *acct_answer(Account *a, xmpp_stanza_t *iq,
			     const char *condition)
{
	const char *from = xmpp_stanza_get_from(iq);
	xmpp_stanza_t *r = xmpp_iq_new(a->ctx, condition ? "error" : "result",
				       xmpp_stanza_get_id(iq));

	if (from)
		xmpp_stanza_set_to(r, from);
	if (condition) {
		xmpp_stanza_t *e = xmpp_stanza_new(a->ctx);
		xmpp_stanza_t *c = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(e, "error");
		xmpp_stanza_set_type(e, "cancel");
		xmpp_stanza_set_name(c, condition);
		xmpp_stanza_set_ns(c, "urn:ietf:params:xml:ns:xmpp-stanzas");
		xmpp_stanza_add_child_ex(e, c, 0);
		xmpp_stanza_add_child_ex(r, e, 0);
	}
	return r;
}

xmpp_stanza_t *acct_query_reply(Account *a, xmpp_stanza_t *iq,
				   const char *ns, xmpp_stanza_t **query)
{
	xmpp_stanza_t *reply = acct_answer(a, iq, NULL);

	*query = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(*query, "query");
	xmpp_stanza_set_ns(*query, ns);
	xmpp_stanza_add_child_ex(reply, *query, 0);
	return reply;
}

/* "[error: service-unavailable] text" for a bounced message. */
char *acct_error_text(xmpp_stanza_t *msg)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(msg, "error");
	xmpp_stanza_t *c = err ? xmpp_stanza_get_children(err) : NULL;
	const char *cond = "undefined-condition";
	g_autofree char *text = NULL, *body = xmpp_message_get_body(msg);
	char *out;

	for (; c; c = xmpp_stanza_get_next(c)) {
		const char *name = xmpp_stanza_get_name(c);
		if (!name || !xmpp_stanza_is_tag(c))
			continue;
		if (!strcmp(name, "text"))
			text = xmpp_stanza_get_text(c);
		else
			cond = name;
	}
	out = g_strdup_printf("[error: %s]%s%s%s%s", cond, text ? " " : "",
			      text ? text : "", body ? " " : "",
			      body ? body : "");
	if (text)
		xmpp_free(xmpp_stanza_get_context(msg), g_steal_pointer(&text));
	if (body)
		xmpp_free(xmpp_stanza_get_context(msg), g_steal_pointer(&body));
	return out;
}

void acct_log_note(Account *a, const char *where, int err)
{
	g_autofree char *text = NULL;

	POOL_ASSERT();
	a->log_failures++;
	if (!a->log_retry_at)
		a->log_retry_at = g_get_monotonic_time() +
				  LOG_RETRY_S * G_USEC_PER_SEC;
	if (!err || a->log_error_shown)
		return; /* said once, until everything is logged again */
	a->log_error_shown = true;
	text = g_strdup_printf("a message in %s could not be logged (%s); it "
			       "is fetched from the archive again once it can "
			       "be", where, g_strerror(err));
	xfs_warn("%s: %s", acct_cfg(a)->jid, text);
	g_mutex_lock(&a->lock);
	g_free(a->error);
	a->error = g_strdup(text);
	a->error_is_log = true;
	g_mutex_unlock(&a->lock);
	acct_event(a, "error", where, text);
}

void acct_log_clear(Account *a)
{
	if (!a->log_error_shown)
		return;
	a->log_error_shown = false;
	xfs_info("%s: every message that could not be logged is logged now",
		 acct_cfg(a)->jid);
	g_mutex_lock(&a->lock);
	if (a->error_is_log)
		g_clear_pointer(&a->error, g_free);
	a->error_is_log = false;
	g_mutex_unlock(&a->lock);
	events_append(a, NULL);
}

bool acct_from_self(Account *a, xmpp_stanza_t *st)
{
	const char *from = xmpp_stanza_get_from(st);
	g_autofree char *bare = from ? jid_normalize_bare(from, NULL) : NULL;

	return !from || !g_strcmp0(bare, acct_cfg(a)->jid);
}

char *acct_next_id(Account *a)
{
	return g_strdup_printf("xfs-iq-%u", ++a->iq_next);
}

int acct_error_errno(xmpp_stanza_t *st)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");

	for (xmpp_stanza_t *c = err ? xmpp_stanza_get_children(err) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) &&
		    strcmp(xmpp_stanza_get_name(c), "text"))
			return errmap_condition(xmpp_stanza_get_name(c));
	return EIO;
}

gint64 acct_waits_due(GHashTable *waits)
{
	GHashTableIter iter;
	gpointer v;
	gint64 due = G_MAXINT64;

	g_hash_table_iter_init(&iter, waits);
	while (g_hash_table_iter_next(&iter, NULL, &v))
		due = MIN(due, ((WaitHead *)v)->deadline);
	return due;
}

char *acct_text(xmpp_stanza_t *el)
{
	char *t = el ? xmpp_stanza_get_text(el) : NULL;
	char *copy = t ? g_strdup(t) : NULL;

	if (t)
		xmpp_free(xmpp_stanza_get_context(el), t);
	return copy;
}

char *acct_child_text(xmpp_stanza_t *st, const char *name)
{
	char *out = acct_text(xmpp_stanza_get_child_by_name(st, name));

	if (out)
		g_strdelimit(out, "\t\r\n", ' ');
	return out;
}

/* "presence item-not-found text" for an error stanza. */
char *acct_error_event_text(xmpp_stanza_t *st, const char *kind)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");
	const char *cond = "undefined-condition";
	g_autofree char *text = err ? acct_child_text(err, "text") : NULL;

	for (xmpp_stanza_t *c = err ? xmpp_stanza_get_children(err) : NULL; c;
	     c = xmpp_stanza_get_next(c))
		if (xmpp_stanza_is_tag(c) &&
		    strcmp(xmpp_stanza_get_name(c), "text"))
			cond = xmpp_stanza_get_name(c);
	return g_strdup_printf("%s %s%s%s", kind, cond, text ? " " : "",
			       text ? text : "");
}

void acct_outmsg_free(OutMsg *m)
{
	outbox_item_free(m->item);
	g_free(m);
}

void acct_add_feature(Account *a, const Feature *f)
{
	g_ptr_array_add(a->features, (gpointer)f);
	g_ptr_array_add(a->states,
			f->state_size ? g_malloc0(f->state_size) : NULL);
	if (f->attach)
		f->attach(a, a->dir);
}

void *acct_state(Account *a, const Feature *f)
{
	/* a dozen features: a look along the list is as quick as a hash */
	for (guint i = 0; i < a->features->len; i++)
		if (a->features->pdata[i] == f)
			return a->states->pdata[i];
	return NULL;
}

Dispatch *acct_dispatch(Account *a)
{
	return a->dispatch;
}

#define EACH_FEATURE(a, f)                                                    \
	for (guint i_ = 0; i_ < (a)->features->len; i_++)                      \
		for (const Feature *f = g_ptr_array_index((a)->features, i_); f; \
		     f = NULL)

void acct_features_online(Account *a)
{
	EACH_FEATURE(a, f)
	if (f->online)
		f->online(a);
}

void acct_features_offline(Account *a)
{
	EACH_FEATURE(a, f)
	if (f->offline)
		f->offline(a);
}

gint64 acct_features_due(Account *a)
{
	gint64 due = G_MAXINT64;

	EACH_FEATURE(a, f)
	if (f->due)
		due = MIN(due, f->due(a));
	return due;
}

void acct_features_tick(Account *a, gint64 now)
{
	EACH_FEATURE(a, f)
	if (f->tick)
		f->tick(a, now);
}

void acct_features_presence_changed(Account *a)
{
	EACH_FEATURE(a, f)
	if (f->presence_changed)
		f->presence_changed(a);
}

bool acct_features_outgoing(Account *a, OutMsg *m)
{
	EACH_FEATURE(a, f)
	if (f->outgoing && f->outgoing(a, m))
		return true;
	return false;
}

bool acct_features_own_message(Account *a, xmpp_stanza_t *msg,
				const OutboxItem *it)
{
	bool body = false;

	EACH_FEATURE(a, f)
	if (f->own_message && f->own_message(a, msg, it))
		body = true;
	return body;
}

const CfgAccount *acct_cfg(const Account *a)
{
	/* the pool thread swaps it (acct_connect): an atomic read */
	return __atomic_load_n(&a->cfg, __ATOMIC_ACQUIRE);
}

HistSet *acct_hists(Account *a)
{
	return a->hists;
}

Outbox *acct_outbox(Account *a)
{
	return a->outbox;
}

Roster *acct_roster(Account *a)
{
	return a->roster;
}

Hist *acct_events(Account *a)
{
	return a->events;
}

Hist *acct_raw(Account *a)
{
	return a->raw;
}

void acct_raw_readers(Account *a, int delta)
{
	g_atomic_int_add(&a->raw_readers, delta);
}
