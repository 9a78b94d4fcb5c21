/* account.c - one account: resolve, connect, log in, presence.
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
#include "account_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <netdb.h>
#include <string.h>
#include <strophe.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "history.h"
#include "jid.h"
#include "outbox.h"
#include "errmap.h"
#include "record.h"
#include "roster.h"
#include "log.h"
#include "pool.h"
#include "text.h"
#include "watchdog.h"

#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 300
#define STABLE_ONLINE_US (60 * G_USEC_PER_SEC)
#define RUN_ROUNDS_MAX 64
#define CLOSE_ECHO_WAIT_US (1 * G_USEC_PER_SEC)
#define KEEPALIVE_BEAT_S 5
/* A stanza larger than this ends the connection: libstrophe would buffer
 * it without limit, at a cost that grows with the square of its size.  A
 * legitimate 5,000-item roster is about 300 KB. */
#define STANZA_MAX_BYTES (1u << 20)

/* Contexts carry no user data that callbacks can reach; this maps them
 * back.  Pool thread only. */
static GHashTable *acct_by_ctx;

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

static void attempt_next(Account *a);
static int presence_handler(xmpp_conn_t *conn, xmpp_stanza_t *p, void *ud);
static void finish_close(Account *a);
static gint64 ping_timeout(Account *a);
static void expire_iq_calls(Account *a, gint64 now, bool all, int err);
static bool roster_push(Account *a, xmpp_stanza_t *iq);

/* ---- shared state, any thread ---- */

static void set_state(Account *a, AcctState st, const char *error)
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
	if (error)
		xfs_warn("%s: %s", a->cfg->jid, error);
	else
		xfs_info("%s: %s", a->cfg->jid, state_words[st]);
	{
		g_autofree char *text =
			error ? g_strdup_printf("%s: %s", state_words[st], error)
			      : g_strdup(state_words[st]);
		acct_event(a, "connection", a->cfg->jid, text);
	}
}

/* Events that could not be written (a full disk) wait here, in order,
 * and go first the next time one can be. */
#define EVENTS_BACKLOG_MAX (1024 * 1024)

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

static void set_str(Account *a, char **field, char *value)
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
			       a->bound_jid ? a->bound_jid : a->cfg->jid);
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

/* ---- libstrophe callbacks, pool thread ---- */

static Account *acct_of_ctx(const xmpp_ctx_t *ctx)
{
	return g_hash_table_lookup(acct_by_ctx, ctx);
}

static void arm(Account *a, gint64 deadline)
{
	if (a->fd_dup >= 0)
		wd_arm(&a->wd, a->fd_dup, deadline);
}

/* libstrophe 0.12 runs the TLS handshake as one blocking loop inside
 * xmpp_run_once; the pool serves the other accounts meanwhile (see the
 * DESIGN of pool.c), and the watchdog ends a handshake that stalls for
 * ACCT_TLS_TIMEOUT_S, so this account's retry starts early. */
static void tls_begins(Account *a)
{
	a->in_tls = true;
	arm(a, MIN(a->login_deadline, g_get_monotonic_time() +
					      ACCT_TLS_TIMEOUT_S *
						      G_USEC_PER_SEC));
}

static void tls_ends(Account *a)
{
	a->in_tls = false;
	arm(a, a->login_deadline);
}

static void tcp_connected(Account *a)
{
	a->tcp_up = true;
	if (a->cfg->tls == CFG_TLS_DIRECT)
		tls_begins(a);
}

/* One line of XML: newlines inside as character references. */
static char *one_line(const char *xml)
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
static void raw_record(Account *a, xmpp_stanza_t *st)
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
	line = one_line(xml);
	xmpp_free(a->ctx, xml);
	hist_append(a->raw, line, strlen(line));
}

/* Every stanza the server sends, before any other handler: proof that
 * the link lives, the count of stream management, the `raw` file. */
static int stanza_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	Account *a = ud;

	(void)conn;
	a->progress++;
	a->last_rx = g_get_monotonic_time();
	a->ping_due = 0; /* anything from the server proves the link */
	a->stanzas++;
	sm_received(a, st);
	raw_record(a, st);
	return 1;
}

/* ---- what libstrophe 0.12 tells only in its log (strophe012.c) ---- */

void acct_lib_features(Account *a, bool sm, bool rosterver)
{
	if (sm)
		sm_offered(a);
	a->rosterver = a->rosterver || rosterver;
}

void acct_lib_auth_failed(Account *a, const char *why)
{
	if (!a->auth_error)
		a->auth_error = g_strdup(why);
}

void acct_lib_sent(Account *a)
{
	if (a->in_tls)
		tls_ends(a); /* the stream restarts over TLS */
}

void acct_lib_parse_error(Account *a)
{
	a->parse_error = true;
}

void acct_lib_tcp_up(Account *a)
{
	tcp_connected(a);
}

void acct_lib_tls_begins(Account *a)
{
	tls_begins(a);
}

void acct_lib_no_mechanism(Account *a)
{
	if (!a->auth_error)
		a->no_mechanism = true;
}

static int certfail_handler(const xmpp_tlscert_t *cert, const char *errormsg)
{
	Account *a = acct_of_ctx(xmpp_tlscert_get_ctx(cert));

	if (a && !a->cert_error)
		a->cert_error = g_strdup(errormsg ? errormsg : "unknown reason");
	return 0; /* refuse */
}

static int sockopt_cb(xmpp_conn_t *conn, void *sock)
{
	Account *a = acct_of_ctx(xmpp_conn_get_context(conn));
	int fd = *(int *)sock;

	if (!a)
		return 0;
	/* stanzas are small and latency matters: a message followed by an
	 * <r/> waited for the server's delayed ACK (~40 ms) under Nagle */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	a->fd = fd;
	if (a->fd_dup >= 0) {
		wd_disarm(&a->wd);
		close(a->fd_dup);
	}
	/* the watchdog's, for the login only (on_connect closes it); above
	 * the descriptors libstrophe's select() can take (fdcache.h) */
	a->fd_dup = fcntl(fd, F_DUPFD_CLOEXEC, 1024);
	if (a->fd_dup < 0)
		a->fd_dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	a->login_deadline = g_get_monotonic_time() +
			    ACCT_LOGIN_TIMEOUT_S * G_USEC_PER_SEC;
	arm(a, a->login_deadline);
	return 0;
}

/* ---- stanzas ---- */

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
	acct_add_caps(a, p);
	return p;
}

static void send_presence(Account *a)
{
	xmpp_stanza_t *p;

	POOL_ASSERT();
	p = acct_own_presence(a, NULL);
	sm_send(a, p);
	xmpp_stanza_release(p);
}

const char *acct_domain(Account *a)
{
	const char *at = strchr(a->cfg->jid, '@');

	return at ? at + 1 : a->cfg->jid;
}

bool acct_is_online(Account *a)
{
	return a->state == ACCT_ONLINE && a->conn && !a->conn_dead &&
	       !a->close_at;
}

static void send_unavailable(Account *a)
{
	xmpp_stanza_t *p = xmpp_presence_new(a->ctx);

	xmpp_stanza_set_type(p, "unavailable");
	sm_send(a, p);
	xmpp_stanza_release(p);
}

/* An empty result to @iq, or an error with @condition.  Pushes from our
 * own server carry no 'from' (RFC 6120 §8.1.2.1): libstrophe's
 * xmpp_stanza_reply gives nothing then, and they would go unanswered. */
static xmpp_stanza_t *answer(Account *a, xmpp_stanza_t *iq,
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

static xmpp_stanza_t *query_reply(Account *a, xmpp_stanza_t *iq,
				   const char *ns, xmpp_stanza_t **query)
{
	xmpp_stanza_t *reply = answer(a, iq, NULL);

	*query = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(*query, "query");
	xmpp_stanza_set_ns(*query, ns);
	xmpp_stanza_add_child_ex(reply, *query, 0);
	return reply;
}

/* XEP-0030: who we are and what we do.  Sorted: XEP-0115 hashes them in
 * this order. */
static const char *const disco_features[] = {
	"http://jabber.org/protocol/caps", XMPP_NS_DISCO_INFO,
	"jabber:iq:version", "urn:xmpp:delay", "urn:xmpp:ping",
};
#define CAPS_NODE "https://xmppfs.invalid/caps"

/* XEP-0115 §5.1: base64(SHA-1("client/pc//xmppfs<" + each feature "<")). */
static const char *caps_ver(void)
{
	static char *ver;
	GChecksum *ck;
	guint8 digest[20];
	gsize len = sizeof digest;

	if (ver)
		return ver;
	ck = g_checksum_new(G_CHECKSUM_SHA1);
	g_checksum_update(ck, (const guchar *)"client/pc//xmppfs<", -1);
	for (guint i = 0; i < G_N_ELEMENTS(disco_features); i++) {
		g_checksum_update(ck, (const guchar *)disco_features[i], -1);
		g_checksum_update(ck, (const guchar *)"<", 1);
	}
	g_checksum_get_digest(ck, digest, &len);
	g_checksum_free(ck);
	ver = g_base64_encode(digest, len);
	return ver;
}

void acct_add_caps(Account *a, xmpp_stanza_t *presence)
{
	xmpp_stanza_t *c = xmpp_stanza_new(a->ctx);

	xmpp_stanza_set_name(c, "c");
	xmpp_stanza_set_ns(c, "http://jabber.org/protocol/caps");
	xmpp_stanza_set_attribute(c, "hash", "sha-1");
	xmpp_stanza_set_attribute(c, "node", CAPS_NODE);
	xmpp_stanza_set_attribute(c, "ver", caps_ver());
	xmpp_stanza_add_child_ex(presence, c, 0);
}

static xmpp_stanza_t *disco_info_reply(Account *a, xmpp_stanza_t *iq)
{
	const char *const *features = disco_features;
	xmpp_stanza_t *q, *reply = query_reply(a, iq, XMPP_NS_DISCO_INFO, &q);
	xmpp_stanza_t *id = xmpp_stanza_new(a->ctx);
	xmpp_stanza_t *asked = xmpp_stanza_get_child_by_name_and_ns(
		iq, "query", XMPP_NS_DISCO_INFO);
	const char *node = asked ? xmpp_stanza_get_attribute(asked, "node")
				 : NULL;

	xmpp_stanza_set_name(id, "identity");
	xmpp_stanza_set_attribute(id, "category", "client");
	xmpp_stanza_set_attribute(id, "type", "pc");
	xmpp_stanza_set_attribute(id, "name", "xmppfs");
	xmpp_stanza_add_child_ex(q, id, 0);
	if (node) /* node#ver of our caps, or any: echo it */
		xmpp_stanza_set_attribute(q, "node", node);
	for (guint i = 0; i < G_N_ELEMENTS(disco_features); i++) {
		xmpp_stanza_t *f = xmpp_stanza_new(a->ctx);
		xmpp_stanza_set_name(f, "feature");
		xmpp_stanza_set_attribute(f, "var", features[i]);
		xmpp_stanza_add_child_ex(q, f, 0);
	}
	return reply;
}

/* XEP-0092: name and version, not the operating system. */
static xmpp_stanza_t *version_reply(Account *a, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *q, *reply = query_reply(a, iq, "jabber:iq:version", &q);

	acct_add_text_child(a, q, "name", "xmppfs");
	acct_add_text_child(a, q, "version", XFS_VERSION);
	return reply;
}

/* Answer every get/set nobody handles, as RFC 6120 §8.2.3 requires; ping
 * (XEP-0199) gets its empty result. */
static int iq_handler(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *type = xmpp_stanza_get_type(iq);
	xmpp_stanza_t *reply;

	a->progress++;
	if (type && !strcmp(type, "error") &&
	    !g_str_has_prefix(xmpp_stanza_get_id(iq) ?: "", "xfs-")) {
		/* (an error to one of our own requests goes to whoever made
		 * it: a write's result, the iq file, or the log for what
		 * xmppfs asks by itself, such as carbons on a server
		 * without them) */
		g_autofree char *ev = acct_error_event_text(iq, "iq");
		const char *from = xmpp_stanza_get_from(iq);
		acct_event(a, "error", from ? from : a->cfg->jid, ev);
	}
	if (!type || (strcmp(type, "get") && strcmp(type, "set")) ||
	    !xmpp_stanza_get_id(iq))
		return 1; /* a request without an id cannot be answered */
	if (!strcmp(type, "set") &&
	    xmpp_stanza_get_child_by_name_and_ns(iq, "query", XMPP_NS_ROSTER) &&
	    roster_push(a, iq))
		reply = answer(a, iq, NULL);
	else if (!strcmp(type, "set") && block_push(a, iq))
		reply = answer(a, iq, NULL);
	else if (xmpp_stanza_get_child_by_name_and_ns(iq, "ping", "urn:xmpp:ping"))
		reply = answer(a, iq, NULL);
	else if (!strcmp(type, "get") && xmpp_stanza_get_child_by_name_and_ns(
						iq, "query", XMPP_NS_DISCO_INFO))
		reply = disco_info_reply(a, iq);
	else if (!strcmp(type, "get") && xmpp_stanza_get_child_by_name_and_ns(
						iq, "query", "jabber:iq:version"))
		reply = version_reply(a, iq);
	else
		reply = answer(a, iq, "feature-not-implemented");
	if (!reply)
		return 1;
	sm_send(a, reply);
	xmpp_stanza_release(reply);
	return 1;
}

/* ---- messages ---- */

void acct_outmsg_free(OutMsg *m)
{
	outbox_item_free(m->item);
	g_free(m);
}

static bool is_groupchat(const OutMsg *m)
{
	return !strcmp(m->item->type, "groupchat");
}

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

static void send_message(Account *a, OutMsg *m)
{
	xmpp_stanza_t *msg = !strcmp(m->item->type, OUTBOX_TYPE_PRIVATE)
				     ? muc_private_stanza(a, m->item)
			     : is_groupchat(m)
				     ? muc_room_stanza(a, m->item)
				     : acct_message_new(a, m->item->type, m->item->to,
							m->item->id);

	xmpp_message_set_body(msg, m->item->body);
	sm_send(a, msg);
	xmpp_stanza_release(msg);
}

/* Send what waits, oldest first; what is for a room that does not have
 * us yet waits in room_outq (muc_hold), and a room message, once sent,
 * waits for the room's reflection (room_sent) rather than for the
 * server's acknowledgement; every other waits for that (sm.c). */
void acct_flush_outq(Account *a)
{
	OutMsg *m;

	if (!acct_is_online(a))
		return;
	if (a->held.length)
		return; /* what the archive check sorts goes first */
	while ((m = g_queue_pop_head(&a->outq))) {
		if (muc_hold(a, m))
			continue;
		send_message(a, m);
		if (is_groupchat(m))
			g_queue_push_tail(&a->room_sent, m);
		else
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

int acct_accept(Account *a, const char *to, const char *type,
		const char *const *bodies, guint n, Hist *h,
		const char *sender, guint64 *seq)
{
	g_autoptr(GPtrArray) items = NULL;
	OutboxSpan span;
	int ret;

	if (!n)
		return 0;
	ret = outbox_add_many(a->outbox, to, type, bodies, n, &items, &span);
	if (ret)
		return ret;
	if (h) {
		g_autoptr(GString) rec = g_string_new(NULL);
		gint64 now = g_get_real_time() / G_USEC_PER_SEC;
		for (guint i = 0; i < n; i++)
			record_append(rec, now, sender, bodies[i]);
		ret = hist_append(h, rec->str, rec->len);
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

int acct_send(Account *a, const char *to, const char *const *bodies,
	      guint n, guint64 *seq)
{
	g_autoptr(GError) err = NULL;
	Hist *h = hist_set_get(a->hists, to, true, &err);

	if (!h) {
		xfs_warn("%s: %s", a->cfg->jid, err->message);
		return -acct_errno_of(err);
	}
	return acct_accept(a, to, "chat", bodies, n, h, a->cfg->jid, seq);
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

gint64 acct_message_time(xmpp_stanza_t *msg)
{
	xmpp_stanza_t *d = xmpp_stanza_get_child_by_name_and_ns(
		msg, "delay", "urn:xmpp:delay");
	gint64 t;

	if (d && record_parse_stamp(xmpp_stanza_get_attribute(d, "stamp"), &t))
		return t;
	return g_get_real_time() / G_USEC_PER_SEC;
}

/* The text of a message worth a record, or NULL. */
static char *message_text(xmpp_stanza_t *msg)
{
	const char *type = xmpp_stanza_get_type(msg);
	char *body, *copy;

	if (type && !strcmp(type, "error"))
		return acct_error_text(msg);
	if (type && strcmp(type, "chat") && strcmp(type, "normal"))
		return NULL; /* groupchat and headline: not a conversation */
	body = xmpp_message_get_body(msg);
	if (!body)
		return NULL; /* chat states, receipts */
	copy = g_strdup(body);
	xmpp_free(xmpp_stanza_get_context(msg), body);
	return copy;
}

void acct_log_message(Account *a, xmpp_stanza_t *msg, const Jid *jid,
		      gint64 t, bool copy)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL, *bare = jid_bare(jid), *peer = NULL;
	g_autofree char *full = NULL;
	g_autoptr(GString) rec = NULL;
	const char *sender = bare;
	Hist *h;
	int ret;

	if (!(text = message_text(msg)))
		return;

	if (!text_is_clean(text, strlen(text), true)) {
		/* the records must stay one per line */
		g_strdelimit(text, "\r\v\f", ' ');
	}
	if (copy && !strcmp(bare, a->cfg->jid)) {
		/* what another client of ours sent */
		const char *to = xmpp_stanza_get_to(msg);
		g_autoptr(Jid) tj = to ? jid_parse(to, NULL) : NULL;
		peer = tj ? jid_bare(tj) : NULL;
		if (!peer || !strcmp(peer, a->cfg->jid))
			return;
	}
	h = hist_set_get(a->hists, peer ? peer : bare, true, &err);
	if (!h) {
		xfs_warn("%s: message from %s not logged: %s", a->cfg->jid,
			 bare, err->message);
		acct_log_failed(a, peer ? peer : bare, acct_errno_of(err));
		return;
	}
	rec = g_string_new(NULL);
	record_append(rec, t, sender, text);
	ret = hist_append(h, rec->str, rec->len);
	if (ret) {
		acct_log_failed(a, peer ? peer : bare, -ret);
		return;
	}
	if (peer)
		return; /* our own words are no event */
	if (g_str_has_prefix(text, "[error: ")) {
		/* "[error: cond] rest" -> "message cond rest" */
		g_autofree char *ev = g_strdup_printf("message %s", text + 8);
		char *close = strchr(ev, ']');
		if (close)
			memmove(close, close + 1, strlen(close));
		full = jid_full(jid);
		acct_event(a, "error", full, ev);
	} else {
		acct_event(a, "message", bare, text);
	}
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *msg, void *ud)
{
	Account *a = ud;
	const char *from = xmpp_stanza_get_from(msg);
	g_autoptr(GError) err = NULL;
	g_autoptr(Jid) jid = from ? jid_parse(from, &err) : NULL;
	gint64 t;

	if (muc_archive_message(a, msg))
		return 1; /* a page of a room's archive, at its join */
	if (mam_message(a, msg))
		return 1; /* a result of our archive query */
	if (mam_carbon(a, msg))
		return 1; /* what another client of ours got or sent */
	if (!jid) {
		xfs_warn("%s: message dropped: sender '%s' is not a valid JID "
			 "(%s)", a->cfg->jid, from ? from : "(none)",
			 err ? err->message : "no from");
		return 1;
	}
	{
		g_autofree char *room = jid_bare(jid);
		if (muc_message_from(a, msg, room, jid->resource, from))
			return 1;
	}
	t = acct_message_time(msg); /* when it came, or the delay's */
	if (mam_hold(a, msg, false, t))
		return 1; /* after the catch-up, in its order */
	acct_chat_message(a, msg, jid, t);
	return 1;
}

void acct_chat_message(Account *a, xmpp_stanza_t *msg, const Jid *jid,
		       gint64 t)
{
	guint failures = a->log_failures;

	if (mam_seen_live(a, msg))
		return; /* the archive gave it to us already */
	acct_log_message(a, msg, jid, t, false);
	if (a->log_failures == failures)
		mam_logged_live(a, msg);
}

#define LOG_RETRY_S 5

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
	xfs_warn("%s: %s", a->cfg->jid, text);
	g_mutex_lock(&a->lock);
	g_free(a->error);
	a->error = g_strdup(text);
	a->error_is_log = true;
	g_mutex_unlock(&a->lock);
	acct_event(a, "error", where, text);
}

void acct_log_failed(Account *a, const char *where, int err)
{
	if (!a->log_gap_since)
		a->log_gap_since = g_get_real_time() / G_USEC_PER_SEC;
	acct_log_note(a, where, err);
	mam_log_failed(a);
}

void acct_log_recovered(Account *a)
{
	a->log_gap_since = 0;
	acct_log_maybe_recovered(a);
}

void acct_log_maybe_recovered(Account *a)
{
	if (a->log_gap_since || g_hash_table_size(a->room_gaps) ||
	    !a->log_error_shown)
		return;
	a->log_error_shown = false;
	xfs_info("%s: every message that could not be logged is logged now",
		 a->cfg->jid);
	g_mutex_lock(&a->lock);
	if (a->error_is_log)
		g_clear_pointer(&a->error, g_free);
	a->error_is_log = false;
	g_mutex_unlock(&a->lock);
	events_append(a, NULL);
}

/* ---- roster (RFC 6121 §2) ---- */

static RosterItem *item_from_stanza(xmpp_stanza_t *item)
{
	const char *jid = xmpp_stanza_get_attribute(item, "jid");
	const char *name = xmpp_stanza_get_attribute(item, "name");
	const char *sub = xmpp_stanza_get_attribute(item, "subscription");
	const char *ask = xmpp_stanza_get_attribute(item, "ask");
	g_autofree char *bare = jid ? jid_normalize_bare(jid, NULL) : NULL;
	GPtrArray *groups = g_ptr_array_new();
	RosterItem *it;

	if (!bare)
		return NULL; /* never a file name */
	it = roster_item_new(bare);
	it->name = name && *name ? g_strdup(name) : NULL;
	g_free(it->subscription);
	it->subscription = g_strdup(sub ? sub : "none");
	it->ask = ask && !strcmp(ask, "subscribe");
	for (xmpp_stanza_t *g = xmpp_stanza_get_children(item); g;
	     g = xmpp_stanza_get_next(g)) {
		char *t;
		if (!xmpp_stanza_is_tag(g) ||
		    strcmp(xmpp_stanza_get_name(g), "group"))
			continue;
		t = xmpp_stanza_get_text(g);
		if (t && text_is_clean(t, strlen(t), false))
			g_ptr_array_add(groups, g_strdup(t));
		if (t)
			xmpp_free(xmpp_stanza_get_context(g), t);
	}
	g_ptr_array_add(groups, NULL);
	g_strfreev(it->groups);
	it->groups = (char **)g_ptr_array_free(groups, FALSE);
	return it;
}

static void roster_event(Account *a, const RosterItem *it, const char *jid)
{
	g_autofree char *text =
		it ? g_strdup_printf("set %s%s %s", it->subscription,
				     it->ask ? " pending-out" : "",
				     it->name ? it->name : "")
		   : g_strdup("remove");
	acct_event(a, "roster", it ? it->jid : jid, text);
}

/* A roster push: accepted only from our own account (RFC 6121 §2.1.6). */
static bool roster_push(Account *a, xmpp_stanza_t *iq)
{
	const char *from = xmpp_stanza_get_from(iq);
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_name_and_ns(
		iq, "query", XMPP_NS_ROSTER);
	xmpp_stanza_t *item = q ? xmpp_stanza_get_child_by_name(q, "item") : NULL;
	g_autofree char *from_bare = from ? jid_normalize_bare(from, NULL) : NULL;
	const char *ver = q ? xmpp_stanza_get_attribute(q, "ver") : NULL;
	RosterItem *it;

	if (!item || (from && (!from_bare || strcmp(from_bare, a->cfg->jid))))
		return false;
	if (!(it = item_from_stanza(item)))
		return true;
	if (!strcmp(it->subscription, "remove")) {
		g_autofree char *jid = g_strdup(it->jid);
		roster_item_free(it);
		roster_remove(a->roster, jid, ver);
		roster_event(a, NULL, jid);
		return true;
	}
	roster_event(a, it, NULL);
	roster_set(a->roster, it, ver);
	return true;
}

bool acct_from_self(Account *a, xmpp_stanza_t *st)
{
	const char *from = xmpp_stanza_get_from(st);
	g_autofree char *bare = from ? jid_normalize_bare(from, NULL) : NULL;

	return !from || !g_strcmp0(bare, a->cfg->jid);
}

static int roster_result(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_name_and_ns(
		iq, "query", XMPP_NS_ROSTER);

	/* an id handler fires for any stanza with that id, from anyone */
	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !acct_from_self(a, iq))
		return 1; /* not the answer: keep waiting for it */
	GPtrArray *items;

	if (!q)
		return 0; /* an empty result: our cached version is current */
	items = g_ptr_array_new_with_free_func((GDestroyNotify)roster_item_free);
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(q); c;
	     c = xmpp_stanza_get_next(c)) {
		RosterItem *it;
		if (xmpp_stanza_is_tag(c) &&
		    !strcmp(xmpp_stanza_get_name(c), "item") &&
		    (it = item_from_stanza(c)))
			g_ptr_array_add(items, it);
	}
	roster_replace(a->roster, items, xmpp_stanza_get_attribute(q, "ver"));
	return 0;
}

/* The roster at login; with versioning only what changed (XEP-0237). */
static void roster_fetch(Account *a)
{
	xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, "get", "xfs-roster");
	xmpp_stanza_t *q = xmpp_stanza_new(a->ctx);
	g_autofree char *ver = a->rosterver ? roster_version(a->roster) : NULL;

	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
	if (a->rosterver)
		xmpp_stanza_set_attribute(q, "ver", ver ? ver : "");
	xmpp_stanza_add_child(iq, q);
	xmpp_stanza_release(q);
	xmpp_id_handler_add(a->conn, roster_result, "xfs-roster", a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
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

void acct_change_wait_free(gpointer p)
{
	ChangeWait *w = p;

	roster_item_free(w->item);
	g_free(w->jid);
	g_free(w);
}

/* The answer to a roster change: the waiting write gets its result, and
 * on success our copy changes at once, so a read right after the write
 * sees it (the server's push may come after its answer). */
static int change_answer(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *ud)
{
	Account *a = ud;
	const char *id = xmpp_stanza_get_id(iq);
	const char *type = xmpp_stanza_get_type(iq);
	ChangeWait *w = id ? g_hash_table_lookup(a->iq_waits, id) : NULL;
	bool ok = type && !strcmp(type, "result");

	if (strcmp(xmpp_stanza_get_name(iq), "iq") || !acct_from_self(a, iq))
		return 1; /* not the answer: keep waiting for it */

	if (!w)
		return 0;
	if (ok && w->item)
		roster_set(a->roster, g_steal_pointer(&w->item), NULL);
	else if (ok)
		roster_remove(a->roster, w->jid, NULL);
	pool_complete(w->req, ok ? 0 : -acct_error_errno(iq));
	g_hash_table_remove(a->iq_waits, id);
	return 0;
}

/* What the item will be once the server accepted @c. */
static RosterItem *changed_item(Account *a, const RosterChange *c)
{
	RosterItem *it = c->remove ? NULL : roster_get(a->roster, c->jid);

	if (c->remove)
		return NULL;
	if (!it) {
		it = roster_item_new(c->jid);
		it->ask = c->add;
	}
	if (c->set_name) {
		g_free(it->name);
		it->name = c->name && *c->name ? g_strdup(c->name) : NULL;
	}
	if (c->set_groups) {
		g_strfreev(it->groups);
		it->groups = c->groups ? g_strdupv(c->groups) : g_new0(char *, 1);
	}
	return it;
}

static void send_subscription(Account *a, const char *jid, const char *type)
{
	xmpp_stanza_t *p = xmpp_presence_new(a->ctx);

	xmpp_stanza_set_type(p, type);
	xmpp_stanza_set_to(p, jid);
	sm_send(a, p);
	xmpp_stanza_release(p);
}

static xmpp_stanza_t *change_item(Account *a, const RosterChange *c)
{
	xmpp_stanza_t *item = xmpp_stanza_new(a->ctx);
	g_autoptr(RosterItem) old = roster_get(a->roster, c->jid);
	const char *name = c->set_name ? c->name : old ? old->name : NULL;
	char **groups = c->set_groups ? c->groups : old ? old->groups : NULL;

	xmpp_stanza_set_name(item, "item");
	xmpp_stanza_set_attribute(item, "jid", c->jid);
	if (c->remove) {
		xmpp_stanza_set_attribute(item, "subscription", "remove");
		return item;
	}
	if (name && *name)
		xmpp_stanza_set_attribute(item, "name", name);
	for (char **g = groups; g && *g; g++)
		acct_add_text_child(a, item, "group", *g);
	return item;
}

void acct_roster_change(Account *a, const RosterChange *c, PoolReq *r)
{
	g_autofree char *id = acct_next_id(a);
	xmpp_stanza_t *iq, *q;

	POOL_ASSERT();
	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead) {
		pool_complete(r, -ENOTCONN);
		return;
	}
	iq = xmpp_iq_new(a->ctx, "set", id);
	q = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
	xmpp_stanza_add_child_ex(q, change_item(a, c), 0);
	xmpp_stanza_add_child_ex(iq, q, 0);
	{
		ChangeWait *w = g_new0(ChangeWait, 1);
		w->block = -1;
		w->req = r;
		w->item = changed_item(a, c);
		w->jid = g_strdup(c->jid);
		g_hash_table_insert(a->iq_waits, g_strdup(id), w);
	}
	xmpp_id_handler_add(a->conn, change_answer, id, a);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	if (c->add)
		send_subscription(a, c->jid, "subscribe");
}

typedef struct {
	WaitHead head;
	IqCall *call;
} IqWait;

static void iqwait_free(gpointer p)
{
	IqWait *w = p;

	iqcall_unref(w->call);
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
		line = one_line(text);
		xmpp_free(a->ctx, text);
	}
	iqcall_finish(w->call, line, line ? 0 : -EIO);
	g_hash_table_remove(a->iq_calls, id);
	return 0;
}

int acct_send_iq(Account *a, IqCall *c, const char *text)
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
	w->call = iqcall_ref(c);
	w->head.deadline =
		g_get_monotonic_time() + IQCALL_TIMEOUT_S * G_USEC_PER_SEC;
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
		iqcall_finish(w->call, NULL, err);
		g_hash_table_iter_remove(&iter);
	}
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

int acct_send_raw(Account *a, GPtrArray *stanzas)
{
	POOL_ASSERT();
	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead)
		return -ENOTCONN;
	for (guint i = 0; i < stanzas->len; i++)
		sm_send_raw(a, g_ptr_array_index(stanzas, i));
	return 0;
}

int acct_subscription(Account *a, const char *jid, const char *word)
{
	static const struct {
		const char *word, *type;
	} words[] = {
		{"subscribe", "subscribe"},     {"approve", "subscribed"},
		{"deny", "unsubscribed"},       {"unsubscribe", "unsubscribe"},
		{"cancel", "unsubscribed"},
	};

	POOL_ASSERT();
	for (guint i = 0; i < G_N_ELEMENTS(words); i++) {
		if (strcmp(word, words[i].word))
			continue;
		if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead)
			return -ENOTCONN;
		send_subscription(a, jid, words[i].type);
		if (!strcmp(word, "approve") || !strcmp(word, "deny"))
			roster_set_pending_in(a->roster, jid, false);
		return 0;
	}
	return -EINVAL;
}

/* The stream is gone: no answer will come to what waits for one. */
static void fail_iq_waits(Account *a)
{
	GHashTableIter iter;
	gpointer v;

	g_hash_table_iter_init(&iter, a->iq_waits);
	while (g_hash_table_iter_next(&iter, NULL, &v)) {
		pool_complete(((ChangeWait *)v)->req, -ECONNRESET);
		g_hash_table_iter_remove(&iter);
	}
}

/* ---- connection life ---- */

/* "ab:cd:.." or "abcd.." from libstrophe -> "AB:CD:..". */
static char *format_fingerprint(const char *fp)
{
	GString *s = g_string_new(NULL);

	for (const char *p = fp; p && *p; p++) {
		if (!g_ascii_isxdigit(*p))
			continue;
		if (s->len && (s->len + 1) % 3 == 0)
			g_string_append_c(s, ':');
		g_string_append_c(s, g_ascii_toupper(*p));
	}
	return g_string_free(s, FALSE);
}

static char *describe_tls(Account *a)
{
	xmpp_tlscert_t *cert;
	g_autofree char *fp = NULL;

	if (!xmpp_conn_is_secured(a->conn))
		return g_strdup("off");
	cert = xmpp_conn_get_peer_cert(a->conn);
	if (!cert)
		return g_strdup("on");
	fp = format_fingerprint(
		xmpp_tlscert_get_string(cert, XMPP_CERT_FINGERPRINT_SHA256));
	xmpp_tlscert_free(cert);
	return g_strdup_printf("on, certificate sha256 %s", fp);
}

static void on_connect(Account *a)
{
	if (a->fd_dup >= 0) {
		wd_disarm(&a->wd);
		close(a->fd_dup); /* the login is over: sock_of uses a->fd */
		a->fd_dup = -1;
	}
	a->was_online = true;
	a->going_offline = false;
	a->online_at = g_get_monotonic_time();
	a->last_rx = a->online_at;
	set_str(a, &a->bound_jid, g_strdup(xmpp_conn_get_bound_jid(a->conn)));
	set_str(a, &a->tls_desc, describe_tls(a));
	g_mutex_lock(&a->lock);
	g_clear_pointer(&a->error, g_free);
	a->retry_at_unix = 0;
	g_mutex_unlock(&a->lock);
	/* libstrophe fires handlers in the order they were added */
	xmpp_handler_add(a->conn, stanza_handler, NULL, NULL, NULL, a);
	xmpp_handler_add(a->conn, iq_handler, NULL, "iq", NULL, a);
	xmpp_handler_add(a->conn, presence_handler, NULL, "presence", NULL, a);
	xmpp_handler_add(a->conn, message_handler, NULL, "message", NULL, a);
	sm_start(a);
	roster_fetch(a);
	block_fetch(a);
	mam_enable_carbons(a);
	send_presence(a);
	mam_after_presence(a);
	muc_rejoin(a);
	set_state(a, ACCT_ONLINE, NULL);
	mam_check_outbox(a);
	acct_flush_outq(a);
}

static const char *stream_error_word(xmpp_error_type_t t)
{
	switch (t) {
	case XMPP_SE_CONFLICT:
		return "conflict (another client took this resource)";
	case XMPP_SE_CONN_TIMEOUT:
		return "connection-timeout";
	case XMPP_SE_HOST_UNKNOWN:
		return "host-unknown";
	case XMPP_SE_NOT_AUTHORIZED:
		return "not-authorized";
	case XMPP_SE_POLICY_VIOLATION:
		return "policy-violation";
	case XMPP_SE_SYSTEM_SHUTDOWN:
		return "system-shutdown";
	case XMPP_SE_RESOURCE_CONSTRAINT:
		return "resource-constraint";
	case XMPP_SE_SEE_OTHER_HOST:
		return "see-other-host";
	case XMPP_SE_INVALID_XML:
	case XMPP_SE_XML_NOT_WELL_FORMED:
		return "not-well-formed";
	default:
		return "stream error";
	}
}

/* Why did this attempt end?  *fatal: retrying would not help. */
static char *failure_reason(Account *a, bool timed_out, int error,
			    xmpp_stream_error_t *se, bool *fatal)
{
	*fatal = false;
	if (a->cert_error) {
		*fatal = true;
		return g_strdup_printf("certificate verification failed: %s",
				       a->cert_error);
	}
	if (a->auth_error) {
		*fatal = true;
		return g_strdup_printf("authentication failed: wrong password "
				       "or no such account (%s)",
				       a->auth_error);
	}
	if (a->ping_dead)
		return g_strdup_printf("the server did not answer a keep-alive "
				       "ping within %d s: link dead",
				       (int)ping_timeout(a));
	if (a->doctype)
		return g_strdup("the server sent a DTD (<!DOCTYPE or <!ENTITY, "
				"forbidden in XMPP); connection dropped");
	if (a->parse_error)
		return g_strdup("the server sent malformed XML; connection "
				"dropped");
	if (a->no_mechanism) {
		*fatal = true;
		return g_strdup("authentication impossible: the server offers no "
				"SASL mechanism xmppfs supports (SCRAM-SHA-1/256/"
				"512, PLAIN over TLS)");
	}
	if (timed_out && a->in_tls)
		return g_strdup_printf("TLS handshake timed out after %d s "
				       "(server stalled)", ACCT_TLS_TIMEOUT_S);
	if (timed_out)
		return g_strdup_printf("login timed out: no complete XMPP login "
				       "within %d s (server silent or stalled)",
				       ACCT_LOGIN_TIMEOUT_S);
	if (!a->tcp_up)
		return g_strdup_printf("could not connect: %s",
				       error ? g_strerror(error)
					     : "connection refused");
	if (a->oversize)
		return g_strdup_printf("the server sent a stanza larger than "
				       "%u KiB; connection dropped",
				       STANZA_MAX_BYTES / 1024);
	if (se)
		return g_strdup_printf("stream error from server: %s%s%s",
				       stream_error_word(se->type),
				       se->text ? ": " : "",
				       se->text ? se->text : "");
	if (!a->was_online && a->cfg->tls == CFG_TLS_REQUIRED &&
	    !xmpp_conn_is_secured(a->conn))
		return g_strdup("login failed before TLS: the server closed "
				"the stream or offers no STARTTLS (TLS is "
				"required)");
	if (error && !xmpp_conn_is_secured(a->conn))
		return g_strdup_printf("connection failed: %s",
				       g_strerror(error));
	if (a->was_online)
		return g_strdup("connection lost");
	return g_strdup("login failed: the server closed the connection");
}

static void schedule_retry(Account *a)
{
	gint64 now = g_get_monotonic_time();
	double delay_s;

	if (a->was_online && now - a->online_at > STABLE_ONLINE_US)
		a->backoff_s = BACKOFF_MIN_S;
	/* ±25 % jitter so many clients do not come back in step */
	delay_s = a->backoff_s * g_random_double_range(0.75, 1.25);
	a->retry_at = now + (gint64)(delay_s * G_USEC_PER_SEC);
	g_mutex_lock(&a->lock);
	a->retry_at_unix = g_get_real_time() / G_USEC_PER_SEC + (gint64)delay_s;
	g_mutex_unlock(&a->lock);
	a->backoff_s = MIN(a->backoff_s * 2, BACKOFF_MAX_S);
}

static void on_disconnect(Account *a, int error, xmpp_stream_error_t *se)
{
	bool timed_out = false, fatal;
	g_autofree char *why = NULL;

	if (a->fd_dup >= 0)
		timed_out = wd_disarm(&a->wd);
	a->conn_dead = true;
	sm_lost(a);
	fail_iq_waits(a);
	mam_disconnected(a);
	expire_iq_calls(a, 0, true, -ECONNRESET);
	muc_disconnected(a);
	roster_presence_clear(a->roster);
	a->in_tls = a->in_tls && timed_out; /* kept for failure_reason */
	if (a->reconnect_asked && !a->shutting && a->want_online) {
		set_state(a, ACCT_CONNECTING, NULL);
		return;
	}
	if (a->shutting || !a->want_online) {
		set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	why = failure_reason(a, timed_out, error, se, &fatal);
	if (fatal) {
		set_state(a, ACCT_FAILED, why);
		return;
	}
	if (!a->was_online && a->addrs && a->addr_next < a->addrs->len) {
		/* another address of the same server may answer (set_state
		 * replaces the error: freeing it here too was a double free) */
		set_state(a, ACCT_CONNECTING, why);
		return;
	}
	schedule_retry(a);
	set_state(a, a->was_online ? ACCT_CONNECTING : ACCT_OFFLINE, why);
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event,
			 int error, xmpp_stream_error_t *se, void *ud)
{
	Account *a = ud;

	POOL_ASSERT();
	a->progress++;
	if (event == XMPP_CONN_CONNECT)
		on_connect(a);
	else if (event == XMPP_CONN_DISCONNECT || event == XMPP_CONN_FAIL)
		on_disconnect(a, error, se);
}

/* XEP-0198 is ours, not libstrophe's (see sm.c). */
static long conn_flags(const CfgAccount *cfg)
{
	switch (cfg->tls) {
	case CFG_TLS_DIRECT:
		return XMPP_CONN_FLAG_LEGACY_SSL | XMPP_CONN_FLAG_DISABLE_SM;
	case CFG_TLS_PLAINTEXT:
		return XMPP_CONN_FLAG_DISABLE_TLS | XMPP_CONN_FLAG_DISABLE_SM;
	default:
		return XMPP_CONN_FLAG_MANDATORY_TLS | XMPP_CONN_FLAG_DISABLE_SM;
	}
}

static void attempt_reset(Account *a)
{
	g_clear_pointer(&a->cert_error, g_free);
	g_clear_pointer(&a->auth_error, g_free);
	a->parse_error = false;
	a->doctype = false;
	a->guard_tail_len = 0;
	a->no_mechanism = false;
	a->oversize = false;
	sm_reset(a);
	a->close_at = 0;
	a->rosterver = false;
	a->ping_due = 0;
	a->ping_dead = false;
	a->stanzas = a->stanzas_mark = 0;
	a->bytes_mark = 0;
	a->was_online = false;
	a->tcp_up = false;
	a->in_tls = false;
	a->conn_dead = false;
}

static xmpp_conn_t *conn_create(Account *a)
{
	xmpp_conn_t *conn = xmpp_conn_new(a->ctx);
	g_autofree char *full =
		g_strdup_printf("%s/%s", a->cfg->jid, a->cfg->resource);

	xmpp_conn_set_flags(conn, conn_flags(a->cfg));
	xmpp_conn_set_jid(conn, full);
	xmpp_conn_set_pass(conn, a->cfg->password);
	if (a->cfg->ca_file)
		xmpp_conn_set_cafile(conn, a->cfg->ca_file);
	xmpp_conn_set_certfail_handler(conn, certfail_handler);
	xmpp_conn_set_sockopt_callback(conn, sockopt_cb);
	return conn;
}

/* Try the next candidate address of this attempt. */
static void attempt_next(Account *a)
{
	g_auto(GStrv) hp = NULL;
	guint64 port;

	if (!a->addrs || a->addr_next >= a->addrs->len) {
		schedule_retry(a);
		set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	hp = g_strsplit(g_ptr_array_index(a->addrs, a->addr_next++), " ", 2);
	port = g_ascii_strtoull(hp[1], NULL, 10);
	set_str(a, &a->server,
		strchr(hp[0], ':') ? g_strdup_printf("[%s]:%s", hp[0], hp[1])
				   : g_strdup_printf("%s:%s", hp[0], hp[1]));
	attempt_reset(a);
	a->conn = conn_create(a);
	a->conn_serial++;
	errno = 0;
	if (xmpp_connect_client(a->conn, hp[0], (unsigned short)port,
				conn_handler, a) != XMPP_EOK) {
		/* (EMFILE: too many open files, said as such) */
		g_autofree char *why = g_strdup_printf(
			"could not start connecting%s%s", errno ? ": " : "",
			errno ? g_strerror(errno) : "");
		a->conn_dead = true;
		set_state(a, ACCT_CONNECTING, why);
	}
}

static guint16 default_port(const CfgAccount *cfg)
{
	if (cfg->port)
		return cfg->port;
	return cfg->tls == CFG_TLS_DIRECT ? 5223 : 5222;
}

typedef struct {
	Account *a;
	Pool *pool;
	guint gen;
	char *host; /* NULL: SRV lookup of domain */
	char *domain;
	guint16 port;
	bool direct;
} ResolveJob;

static void add_addresses(GPtrArray *out, const char *host, guint16 port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char buf[NI_MAXHOST];

	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return;
	for (ai = res; ai; ai = ai->ai_next)
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof buf,
				NULL, 0, NI_NUMERICHOST) == 0)
			g_ptr_array_add(out,
					g_strdup_printf("%s %u", buf, port));
	freeaddrinfo(res);
}

/* RFC 6120 §3.2: the SRV records of the domain, else the domain itself.
 * Blocking lookups, so this runs on its own short-lived thread. */
static gpointer resolve_thread(gpointer data)
{
	ResolveJob *job = data;
	GPtrArray *addrs = g_ptr_array_new_with_free_func(g_free);

	if (job->host) {
		add_addresses(addrs, job->host, job->port);
	} else {
		g_autoptr(GResolver) r = g_resolver_get_default();
		GList *srv = g_resolver_lookup_service(
			r, job->direct ? "xmpps-client" : "xmpp-client", "tcp",
			job->domain, NULL, NULL);
		for (GList *l = srv; l; l = l->next)
			add_addresses(addrs, g_srv_target_get_hostname(l->data),
				      g_srv_target_get_port(l->data));
		g_resolver_free_targets(srv);
		if (addrs->len == 0)
			add_addresses(addrs, job->domain, job->port);
	}
	g_autofree char *err =
		addrs->len ? NULL
			   : g_strdup_printf("cannot resolve %s",
					     job->host ? job->host : job->domain);
	pool_post_resolved(job->pool, job->a, job->gen, addrs, err);
	g_free(job->host);
	g_free(job->domain);
	g_free(job);
	return NULL;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

void acct_connect(Account *a)
{
	const CfgAccount *cfg = a->cfg;

	POOL_ASSERT();
	if (a->conn || a->resolving || a->shutting)
		return;
	a->retry_at = 0;
	a->gen++;
	g_mutex_lock(&a->lock);
	a->retry_at_unix = 0; /* no retry pending while we try */
	g_mutex_unlock(&a->lock);
	set_state(a, ACCT_CONNECTING, NULL);
	if (cfg->host && is_ip_literal(cfg->host)) {
		GPtrArray *addrs = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(addrs, g_strdup_printf("%s %u", cfg->host,
						       default_port(cfg)));
		acct_resolved(a, a->gen, addrs, NULL);
		return;
	}
	ResolveJob *job = g_new0(ResolveJob, 1);
	job->a = a;
	job->pool = a->pool;
	job->gen = a->gen;
	job->host = g_strdup(cfg->host);
	g_autofree char *domain = g_strdup(strchr(cfg->jid, '@')
						   ? strchr(cfg->jid, '@') + 1
						   : cfg->jid);
	job->domain = g_steal_pointer(&domain);
	job->port = default_port(cfg);
	job->direct = cfg->tls == CFG_TLS_DIRECT;
	a->resolving = true;
	g_thread_unref(g_thread_new("xmppfs-resolve", resolve_thread, job));
}

void acct_resolved(Account *a, guint gen, GPtrArray *addrs,
		   const char *error)
{
	POOL_ASSERT();
	if (gen != a->gen) {
		g_ptr_array_unref(addrs);
		return;
	}
	a->resolving = false;
	g_clear_pointer(&a->addrs, g_ptr_array_unref);
	a->addrs = addrs;
	a->addr_next = 0;
	if (a->shutting || !a->want_online) {
		set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	if (error) {
		schedule_retry(a);
		set_state(a, ACCT_OFFLINE, error);
		return;
	}
	attempt_next(a);
}

/* ---- the pool's view ---- */

/* The socket to shut down or look at: the watchdog's dup during the
 * login, libstrophe's own after it (on the pool thread, while the
 * connection lives, it is libstrophe's open socket); -1 for none. */
static int sock_of(Account *a)
{
	if (a->fd_dup >= 0)
		return a->fd_dup;
	return a->conn && !a->conn_dead ? a->fd : -1;
}

static void release_conn(Account *a)
{
	xmpp_conn_release(a->conn);
	a->conn = NULL;
	a->fd = -1;
	if (a->fd_dup >= 0) {
		wd_disarm(&a->wd);
		close(a->fd_dup);
		a->fd_dup = -1;
	}
}

/* The server sent something that waits unread on the socket. */
static bool sock_waiting(Account *a)
{
	int n = 0;

	return sock_of(a) >= 0 && ioctl(sock_of(a), SIOCINQ, &n) == 0 && n > 0;
}

/* Bytes libstrophe has taken from the socket: received minus queued. */
static bool consumed_bytes(int fd, guint64 *out)
{
	struct tcp_info ti = {0};
	socklen_t len = sizeof ti;
	int inq = 0;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
			  sizeof ti.tcpi_bytes_received ||
	    ioctl(fd, SIOCINQ, &inq) < 0)
		return false;
	*out = ti.tcpi_bytes_received - (guint64)inq;
	return true;
}

/* Drop the link when more than STANZA_MAX_BYTES arrived without a single
 * complete stanza. */
static void check_stanza_size(Account *a)
{
	guint64 used;

	if (sock_of(a) < 0 || !consumed_bytes(sock_of(a), &used))
		return;
	if (a->stanzas != a->stanzas_mark || used < a->bytes_mark) {
		a->stanzas_mark = a->stanzas;
		a->bytes_mark = used;
	} else if (used - a->bytes_mark > STANZA_MAX_BYTES) {
		a->oversize = true;
		shutdown(sock_of(a), SHUT_RDWR);
	}
}

void acct_run(Account *a)
{
	POOL_ASSERT();
	if (!a->conn)
		return;
	/* libstrophe reads at most 4 KiB per call and does not look at what
	 * OpenSSL already buffered: go again while calls make progress. */
	for (int i = 0; i < RUN_ROUNDS_MAX && a->conn && !a->conn_dead; i++) {
		guint before = a->progress;
		a->read_more = false;
		xmpp_run_once(a->ctx, 0);
		/* a 4 KiB piece of a large stanza logs nothing, but the rest may
		 * wait decrypted in OpenSSL, where poll(2) cannot see it: a
		 * 5,000-item roster sat there until the next timer, 30 s */
		if (a->progress == before && !a->read_more)
			break;
	}
	/* many pushes in one run (a login re-sends pending items) make one
	 * write of the cache, not one each */
	roster_save(a->roster);
	if (a->conn && !a->conn_dead && sm_after_run_wanted(a)) {
		sm_after_run(a);
		xmpp_run_once(a->ctx, 0); /* write it now */
	}
	if (a->parse_error && sock_of(a) >= 0)
		shutdown(sock_of(a), SHUT_RDWR); /* libstrophe stops reading */
	if (a->conn && a->tcp_up)
		check_stanza_size(a);
	if (a->conn && a->conn_dead) {
		release_conn(a);
		if (a->reconnect_asked) {
			a->reconnect_asked = false;
			if (a->want_online && !a->shutting)
				acct_connect(a);
			return;
		}
		if (a->want_online && !a->shutting && a->state != ACCT_FAILED &&
		    !a->retry_at)
			attempt_next(a);
	}
}

static bool has_dtd(const char *buf, size_t len)
{
	static const char *const bad[] = {"<!DOCTYPE", "<!ENTITY", "<!ELEMENT",
					  "<!ATTLIST"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		if (memmem(buf, len, bad[i], strlen(bad[i])))
			return true;
	return false;
}

bool acct_guard_input(Account *a, const char *buf, size_t len)
{
	char joined[sizeof a->guard_tail + 16];
	size_t head = MIN(len, sizeof joined - a->guard_tail_len);

	if (a->doctype)
		return false;
	/* a marker split between two reads: the kept tail plus the start */
	memcpy(joined, a->guard_tail, a->guard_tail_len);
	memcpy(joined + a->guard_tail_len, buf, head);
	if (has_dtd(joined, a->guard_tail_len + head) || has_dtd(buf, len)) {
		a->doctype = true;
		acct_abort(a);
		return false;
	}
	if (len >= sizeof a->guard_tail) {
		memcpy(a->guard_tail, buf + len - sizeof a->guard_tail,
		       sizeof a->guard_tail);
		a->guard_tail_len = sizeof a->guard_tail;
	} else {
		size_t keep = MIN(a->guard_tail_len,
				  sizeof a->guard_tail - len);
		memmove(a->guard_tail, a->guard_tail + a->guard_tail_len - keep,
			keep);
		memcpy(a->guard_tail + keep, buf, len);
		a->guard_tail_len = keep + len;
	}
	return true;
}

guint64 acct_conn_serial(Account *a)
{
	return a->conn_serial;
}

bool acct_wants_run(Account *a)
{
	/* the last run stopped with data waiting inside OpenSSL (its round
	 * limit), or a connection to tidy up */
	return a->read_more || (a->conn && a->conn_dead);
}

void acct_note_read(Account *a, bool more)
{
	a->progress++; /* libstrophe has something new to work on */
	a->read_more = a->read_more || more;
}

void acct_abort(Account *a)
{
	if (sock_of(a) >= 0)
		shutdown(sock_of(a), SHUT_RDWR);
}

bool acct_pollfd(Account *a, struct pollfd *pfd)
{
	POOL_ASSERT();
	if (!a->conn || a->fd < 0)
		return false;
	pfd->fd = a->fd;
	pfd->events = POLLIN;
	if (xmpp_conn_is_connecting(a->conn) ||
	    xmpp_conn_send_queue_len(a->conn) > 0)
		pfd->events |= POLLOUT;
	return true;
}

/* XEP-0199 keep-alive: when the link has been quiet for ping_interval
 * seconds, ping the server; no answer (nor anything else) within
 * ACCT_PING_TIMEOUT_S and the link is dead: drop it, the reconnect logic
 * takes over.  A link that dies without FIN or RST is otherwise never
 * noticed.  Idle, that is one wake-up per interval. */
static gint64 keepalive_due(Account *a)
{
	gint64 due;

	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead ||
	    !a->cfg->ping_interval)
		return G_MAXINT64;
	if (a->ping_due)
		return a->ping_due;
	due = a->last_rx + (gint64)a->cfg->ping_interval * G_USEC_PER_SEC;
	/* idle accounts ping on a common beat, so a thousand of them wake
	 * the pool a few times a minute, not a thousand */
	if (a->cfg->ping_interval >= 4 * KEEPALIVE_BEAT_S)
		due = (due / (KEEPALIVE_BEAT_S * G_USEC_PER_SEC) + 1) *
		      (KEEPALIVE_BEAT_S * G_USEC_PER_SEC);
	return due;
}

/* Seconds to wait for the answer: ACCT_PING_TIMEOUT_S, less for a short
 * interval (a server should answer within it), never under 5. */
static gint64 ping_timeout(Account *a)
{
	return CLAMP((gint64)a->cfg->ping_interval, 5, ACCT_PING_TIMEOUT_S);
}

static void keepalive(Account *a, gint64 now)
{
	xmpp_stanza_t *iq, *ping;
	g_autofree char *id = NULL;
	gint64 due = keepalive_due(a);

	if (now < due)
		return;
	if (a->ping_due && sock_waiting(a)) {
		/* an answer is here, unread (a busy pool): not dead */
		a->ping_due = now + G_USEC_PER_SEC / 2;
		return;
	}
	if (a->ping_due) {
		a->ping_dead = true;
		a->ping_due = 0;
		acct_abort(a);
		return;
	}
	id = acct_next_id(a);
	iq = xmpp_iq_new(a->ctx, "get", id);
	ping = xmpp_stanza_new(a->ctx);
	xmpp_stanza_set_name(ping, "ping");
	xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
	xmpp_stanza_add_child_ex(iq, ping, 0);
	xmpp_stanza_set_to(iq, acct_domain(a));
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	a->ping_due = now + ping_timeout(a) * G_USEC_PER_SEC;
}

gint64 acct_deadline(Account *a, bool *ticking)
{
	/* login and close run on libstrophe's own timers (a close's cleanup
	 * timeout ends it when the server does not answer </stream:stream>) */
	if (a->conn && (!a->was_online || a->shutting || !a->want_online ||
			a->reconnect_asked))
		*ticking = true;
	if (a->close_at)
		return a->close_at;
	if (a->retry_at)
		return a->retry_at;
	return MIN(MIN(keepalive_due(a), acct_waits_due(a->iq_calls)),
		   MIN(MIN(acct_waits_due(a->room_waits), muc_due(a)),
		       mam_due(a)));
}

void acct_tick(Account *a, gint64 now)
{
	POOL_ASSERT();
	if (a->close_at && now >= a->close_at)
		finish_close(a);
	if (!a->close_at && !a->retry_at)
		keepalive(a, now);
	expire_iq_calls(a, now, false, -ETIMEDOUT);
	muc_expire_waits(a, now, false);
	muc_tick(a, now);
	mam_tick(a, now);
	if (a->retry_at && now >= a->retry_at && !a->conn) {
		a->retry_at = 0;
		acct_connect(a);
	}
}

/* Acknowledge everything received, then </stream:stream>. */
static void finish_close(Account *a)
{
	a->close_at = 0;
	if (!a->conn || a->conn_dead)
		return;
	sm_ack_all(a);
	xmpp_disconnect(a->conn);
}

/* A clean close: unavailable presence first.  The server answers it with
 * our own unavailable presence; once that is here (presence_handler), or
 * after CLOSE_ECHO_WAIT_US, finish_close acknowledges it with the rest,
 * so the server has nothing unacknowledged to bounce. */
static void begin_close(Account *a)
{
	if (!a->conn || a->close_at)
		return;
	if (a->was_online && !a->conn_dead) {
		send_unavailable(a);
		a->going_offline = true;
		a->close_at = g_get_monotonic_time() + CLOSE_ECHO_WAIT_US;
	} else if (sock_of(a) >= 0) {
		shutdown(sock_of(a), SHUT_RDWR);
	}
}

char *acct_child_text(xmpp_stanza_t *st, const char *name)
{
	xmpp_stanza_t *c = xmpp_stanza_get_child_by_name(st, name);
	char *t = c ? xmpp_stanza_get_text(c) : NULL;
	char *out = t ? g_strdup(t) : NULL;

	if (t)
		xmpp_free(xmpp_stanza_get_context(st), t);
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

static void subscription_presence(Account *a, const char *type,
				  const char *bare, xmpp_stanza_t *p)
{
	g_autofree char *status = acct_child_text(p, "status");

	if (!strcmp(type, "subscribe")) {
		if (a->cfg->auto_approve) {
			acct_subscription(a, bare, "approve");
		} else {
			roster_set_pending_in(a->roster, bare, true);
		}
	} else if (!strcmp(type, "unsubscribe")) {
		roster_set_pending_in(a->roster, bare, false);
	}
	acct_event(a, type, bare, status);
}

static void contact_presence(Account *a, const char *type, Jid *jid,
			     xmpp_stanza_t *p)
{
	g_autofree char *bare = jid_bare(jid), *full = jid_full(jid);
	g_autofree char *show = acct_child_text(p, "show");
	g_autofree char *status = acct_child_text(p, "status");
	g_autofree char *prio = acct_child_text(p, "priority");
	const char *word = type ? "unavailable" : show ? show : "available";
	g_autofree char *ev = NULL;
	static const char *const shows[] = {"chat", "away", "xa", "dnd"};

	if (!type && show && !g_strv_contains(shows, show))
		word = "available";
	roster_presence(a->roster, bare, jid->resource ? jid->resource : "",
			type ? NULL : word, prio ? atoi(prio) : 0, status);
	ev = g_strdup_printf("%s%s%s", word, status ? " " : "",
			     status ? status : "");
	acct_event(a, "presence", full, ev);
}

static int presence_handler(xmpp_conn_t *conn, xmpp_stanza_t *p, void *ud)
{
	Account *a = ud;
	const char *type = xmpp_stanza_get_type(p);
	const char *from = xmpp_stanza_get_from(p);
	const char *me = xmpp_conn_get_bound_jid(conn);
	g_autoptr(Jid) jid = from ? jid_parse(from, NULL) : NULL;
	g_autofree char *bare = jid ? jid_bare(jid) : NULL;

	if (a->close_at && type && !strcmp(type, "unavailable") && from && me &&
	    !strcmp(from, me)) {
		finish_close(a);
		return 1;
	}
	if (!jid)
		return 1; /* no sender, or one that is not a valid JID */
	if (muc_presence_from(a, p, bare, jid->resource))
		return 1;
	if (type && !strcmp(type, "error")) {
		g_autofree char *ev = acct_error_event_text(p, "presence");
		acct_event(a, "error", from, ev);
	} else if (type && strcmp(type, "unavailable")) {
		subscription_presence(a, type, bare, p);
	} else if (strcmp(bare, a->cfg->jid)) {
		contact_presence(a, type, jid, p);
	}
	return 1;
}

void acct_set_show(Account *a, AcctShow show, const char *text)
{
	POOL_ASSERT();
	if (show == ACCT_SHOW_OFFLINE) {
		g_mutex_lock(&a->lock);
		a->want_online = false;
		a->retry_at_unix = 0;
		g_mutex_unlock(&a->lock);
		a->retry_at = 0;
		a->gen++; /* drop a resolver answer still on its way */
		a->resolving = false;
		begin_close(a);
		if (!a->conn)
			set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	g_mutex_lock(&a->lock);
	a->want_online = true;
	if (show != ACCT_SHOW_RECONNECT) {
		a->show = show;
		g_free(a->show_text);
		a->show_text = g_strdup(text);
	}
	g_mutex_unlock(&a->lock);
	if (a->state == ACCT_ONLINE && a->conn && show != ACCT_SHOW_RECONNECT) {
		send_presence(a);
		muc_send_presence(a);
		return;
	}
	if (show == ACCT_SHOW_RECONNECT && a->conn && a->was_online) {
		/* close cleanly, then acct_run connects again at once */
		a->reconnect_asked = true;
		begin_close(a);
		a->backoff_s = BACKOFF_MIN_S;
		return;
	}
	if (!a->conn && !a->resolving) {
		a->backoff_s = BACKOFF_MIN_S;
		acct_connect(a);
	}
}

void acct_shutdown(Account *a)
{
	POOL_ASSERT();
	a->shutting = true;
	a->retry_at = 0;
	begin_close(a);
}

bool acct_closed(Account *a)
{
	return a->conn == NULL;
}

/* ---- life ---- */

Account *acct_new(const CfgAccount *cfg, Pool *pool, const char *data_dir,
		  GError **err)
{
	g_autofree char *dir = g_build_filename(data_dir, cfg->jid, NULL);
	g_autofree char *contacts = g_build_filename(dir, "contacts", NULL);
	g_autofree char *outbox = g_build_filename(dir, "outbox", NULL);
	HistSet *hists = hist_set_new(contacts, err);
	Outbox *o = hists ? outbox_open(outbox, err) : NULL;
	Account *a;

	if (!o) {
		hist_set_free(hists);
		return NULL;
	}
	a = g_new0(Account, 1);
	a->hists = hists;
	a->outbox = o;
	{
		g_autofree char *rpath = g_build_filename(dir, "roster", NULL);
		a->roster = roster_new(rpath);
	}
	a->events = hist_open(dir, "events", err);
	g_mutex_init(&a->events_lock);
	a->events_backlog = g_string_new(NULL);
	{
		/* raw is for readers of this mount only: start it empty */
		g_autofree char *raw = g_build_filename(dir, "raw", "log", NULL);
		if (truncate(raw, 0) < 0 && errno != ENOENT)
			xfs_warn("%s: %s", raw, g_strerror(errno));
	}
	a->raw = a->events ? hist_open(dir, "raw", err) : NULL;
	if (!a->raw) {
		g_string_free(a->events_backlog, TRUE);
		hist_close(a->events);
		roster_free(a->roster);
		outbox_free(o);
		hist_set_free(hists);
		g_free(a);
		return NULL;
	}
	a->iq_waits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    acct_change_wait_free);
	a->iq_calls = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    iqwait_free);
	muc_init(a, dir);
	mam_init(a, dir);
	block_init(a);
	g_queue_init(&a->outq);
	g_queue_init(&a->inflight);
	g_queue_init(&a->held);
	g_queue_init(&a->room_outq);
	g_queue_init(&a->room_sent);
	{
		/* what an earlier mount accepted and never saw acknowledged:
		 * held until the archive shows which the server has; a room
		 * message, until the room's history does (muc.c) */
		g_autoptr(GPtrArray) pending = outbox_pending(o);
		for (guint i = 0; i < pending->len; i++) {
			OutMsg *m = g_new0(OutMsg, 1);
			m->item = g_steal_pointer(&pending->pdata[i]);
			g_queue_push_tail(is_groupchat(m) ? &a->room_outq
							  : &a->held,
					  m);
		}
	}

	a->cfg = cfg;
	a->pool = pool;
	g_mutex_init(&a->lock);
	a->state = ACCT_OFFLINE;
	a->since = g_get_real_time() / G_USEC_PER_SEC;
	a->show = ACCT_SHOW_AVAILABLE;
	a->want_online = true;
	a->fd = -1;
	a->fd_dup = -1;
	a->backoff_s = BACKOFF_MIN_S;
	wd_slot_init(&a->wd);
	a->xlog.handler = strophe012_log;
	a->xlog.userdata = a;
	return a;
}

void acct_attach(Account *a)
{
	POOL_ASSERT();
	if (!acct_by_ctx)
		acct_by_ctx = g_hash_table_new(NULL, NULL);
	a->ctx = xmpp_ctx_new(NULL, &a->xlog);
	g_hash_table_insert(acct_by_ctx, a->ctx, a);
}

const CfgAccount *acct_cfg(const Account *a)
{
	return a->cfg;
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

void acct_free(Account *a)
{
	g_assert(!a->ctx || pool_on_thread());
	mam_disconnected(a); /* what it held is logged, not lost */
	if (a->conn)
		release_conn(a);
	if (a->ctx) {
		g_hash_table_remove(acct_by_ctx, a->ctx);
		xmpp_ctx_free(a->ctx);
	}
	g_clear_pointer(&a->addrs, g_ptr_array_unref);
	g_queue_clear_full(&a->outq, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&a->held, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&a->inflight, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&a->room_outq, (GDestroyNotify)acct_outmsg_free);
	g_queue_clear_full(&a->room_sent, (GDestroyNotify)acct_outmsg_free);
	g_clear_pointer(&a->hists, hist_set_free);
	g_clear_pointer(&a->outbox, outbox_free);
	g_clear_pointer(&a->roster, roster_free);
	g_clear_pointer(&a->events, hist_close);
	g_mutex_clear(&a->events_lock);
	g_string_free(a->events_backlog, TRUE);
	g_clear_pointer(&a->raw, hist_close);
	g_clear_pointer(&a->iq_waits, g_hash_table_unref);
	g_clear_pointer(&a->iq_calls, g_hash_table_unref);
	muc_free(a);
	mam_free(a);
	block_free(a);
	g_free(a->bound_jid);
	g_free(a->server);
	g_free(a->tls_desc);
	g_free(a->error);
	g_free(a->show_text);
	g_free(a->cert_error);
	g_free(a->auth_error);
	a->cert_error = a->auth_error = NULL;
	/* a resolver thread still running will post to this account: keep it */
	if (!a->resolving) {
		g_mutex_clear(&a->lock);
		g_free(a);
	}
}
