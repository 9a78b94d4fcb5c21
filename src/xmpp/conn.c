/* conn.c - an account's connection: connect, run, close, fail and
 * retry; what happens at CONNECT and after a disconnect, and why an
 * attempt failed.  The context, the connection's settings and the login
 * deadlines are in login.c, the keep-alive and the stanza size limit in
 * keepalive.c, the address lookup in resolve.c, stream management in
 * sm.c; what happens at CONNECT and after a disconnect beyond the
 * connection itself is the features' (feature.h), and every stanza goes
 * to the dispatcher (dispatch.h).
 *
 * The top of the core's connection files: it calls them, they do not
 * call it.  Pool thread only (POOL_ASSERT); the lock of the shared fields
 * is never held while calling libstrophe. */
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>
#include <strophe.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"
#include "xmpp/watchdog.h"

#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 300
#define STABLE_ONLINE_US (60 * G_USEC_PER_SEC)
#define RUN_ROUNDS_MAX 64
#define CLOSE_ECHO_WAIT_US (1 * G_USEC_PER_SEC)

static void finish_close(Account *a);

/* Closing: the server's answer to our unavailable presence, our own. */
static bool close_echo(Account *a, xmpp_stanza_t *st)
{
	const char *from = xmpp_stanza_get_from(st);
	const char *me = xmpp_conn_get_bound_jid(a->conn);

	return a->close_at && !g_strcmp0(xmpp_stanza_get_name(st), "presence") &&
	       !g_strcmp0(xmpp_stanza_get_type(st), "unavailable") && from &&
	       me && !strcmp(from, me);
}

/* Every stanza the server sends: proof that the link lives, the count
 * of stream management, the `raw` file; then the dispatcher. */
static int stanza_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	Account *a = ud;

	(void)conn;
	a->progress++;
	a->last_rx = g_get_monotonic_time();
	a->ping_due = 0; /* anything from the server proves the link */
	a->stanzas++;
	sm_received(a, st);
	acct_raw_record(a, st);
	if (close_echo(a, st))
		finish_close(a); /* (see begin_close) */
	else
		dispatch_stanza(a->dispatch, a, a->cfg->jid, st);
	return 1;
}

static void send_unavailable(Account *a)
{
	xmpp_stanza_t *p = xmpp_presence_new(a->ctx);

	xmpp_stanza_set_type(p, "unavailable");
	sm_send(a, p);
	xmpp_stanza_release(p);
}

/* ---- connection life ---- */

/* "ab:cd:.." or "abcd.." from libstrophe -> "AB:CD:..". */
static char *describe_tls(Account *a)
{
	xmpp_tlscert_t *cert;
	g_autofree char *fp = NULL;

	if (!xmpp_conn_is_secured(a->conn))
		return g_strdup("off");
	cert = xmpp_conn_get_peer_cert(a->conn);
	if (!cert)
		return g_strdup("on");
	fp = cfg_fingerprint(
		xmpp_tlscert_get_string(cert, XMPP_CERT_FINGERPRINT_SHA256));
	xmpp_tlscert_free(cert);
	return g_strdup_printf("on, certificate sha256 %s", fp ? fp : "?");
}

static void on_connect(Account *a)
{
	if (a->fd_dup >= 0) {
		wd_disarm(&a->wd);
		close(a->fd_dup); /* the login is over: acct_sock uses a->fd */
		a->fd_dup = -1;
	}
	a->was_online = true;
	a->going_offline = false;
	a->online_at = g_get_monotonic_time();
	a->last_rx = a->online_at;
	acct_set_str(a, &a->bound_jid, g_strdup(xmpp_conn_get_bound_jid(a->conn)));
	acct_set_str(a, &a->tls_desc, describe_tls(a));
	g_mutex_lock(&a->lock);
	g_clear_pointer(&a->error, g_free);
	a->retry_at_unix = 0;
	g_mutex_unlock(&a->lock);
	/* one handler for every stanza: dispatch.h offers it on */
	xmpp_handler_add(a->conn, stanza_handler, NULL, NULL, NULL, a);
	sm_start(a);
	/* the roster, carbons, our presence, the catch-up, the rooms, the
	 * outbox check... in featureset.c's order */
	acct_features_online(a);
	acct_set_state(a, ACCT_ONLINE, NULL);
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
				       (int)acct_ping_timeout(a));
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
				       ACCT_STANZA_MAX_BYTES / 1024);
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
	acct_features_offline(a);
	a->in_tls = a->in_tls && timed_out; /* kept for failure_reason */
	if (a->reconnect_asked && !a->shutting && a->want_online) {
		acct_set_state(a, ACCT_CONNECTING, NULL);
		return;
	}
	if (a->shutting || !a->want_online) {
		acct_set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	why = failure_reason(a, timed_out, error, se, &fatal);
	if (fatal) {
		acct_set_state(a, ACCT_FAILED, why);
		return;
	}
	if (!a->was_online && a->addrs && a->addr_next < a->addrs->len) {
		/* another address of the same server may answer (set_state
		 * replaces the error: freeing it here too was a double free) */
		acct_set_state(a, ACCT_CONNECTING, why);
		return;
	}
	schedule_retry(a);
	acct_set_state(a, a->was_online ? ACCT_CONNECTING : ACCT_OFFLINE, why);
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

/* Try the next candidate address of this attempt. */
static void attempt_next(Account *a)
{
	g_auto(GStrv) hp = NULL;
	guint64 port;

	if (!a->addrs || a->addr_next >= a->addrs->len) {
		schedule_retry(a);
		acct_set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	hp = g_strsplit(g_ptr_array_index(a->addrs, a->addr_next++), " ", 2);
	port = g_ascii_strtoull(hp[1], NULL, 10);
	acct_set_str(a, &a->server,
		strchr(hp[0], ':') ? g_strdup_printf("[%s]:%s", hp[0], hp[1])
				   : g_strdup_printf("%s:%s", hp[0], hp[1]));
	acct_attempt_reset(a);
	a->conn = acct_conn_new(a);
	a->conn_serial++;
	errno = 0;
	if (xmpp_connect_client(a->conn, hp[0], (unsigned short)port,
				conn_handler, a) != XMPP_EOK) {
		/* (EMFILE: too many open files, said as such) */
		g_autofree char *why = g_strdup_printf(
			"could not start connecting%s%s", errno ? ": " : "",
			errno ? g_strerror(errno) : "");
		a->conn_dead = true;
		acct_set_state(a, ACCT_CONNECTING, why);
	}
}

void acct_connect(Account *a)
{
	GPtrArray *addrs;

	POOL_ASSERT();
	if (a->conn || a->resolving || a->shutting)
		return;
	if (a->cfg_next) {
		/* a reload's settings: no attempt uses the old ones now */
		__atomic_store_n(&a->cfg, a->cfg_next, __ATOMIC_RELEASE);
		a->cfg_next = NULL;
	}
	a->retry_at = 0;
	a->gen++;
	g_mutex_lock(&a->lock);
	a->retry_at_unix = 0; /* no retry pending while we try */
	g_mutex_unlock(&a->lock);
	acct_set_state(a, ACCT_CONNECTING, NULL);
	addrs = acct_literal_address(a->cfg);
	if (addrs) {
		acct_resolved(a, a->gen, addrs, NULL);
		return;
	}
	acct_resolve(a);
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
		acct_set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	if (a->cfg_next) {
		/* looked up with the old settings: start over with the new */
		acct_connect(a);
		return;
	}
	if (error) {
		schedule_retry(a);
		acct_set_state(a, ACCT_OFFLINE, error);
		return;
	}
	attempt_next(a);
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
	if (a->parse_error && acct_sock(a) >= 0)
		/* libstrophe stops reading */
		shutdown(acct_sock(a), SHUT_RDWR);
	if (a->conn && a->tcp_up)
		acct_check_stanza_size(a);
	if (a->conn && a->conn_dead) {
		acct_conn_release(a);
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
	return MIN(acct_keepalive_due(a), acct_features_due(a));
}

void acct_tick(Account *a, gint64 now)
{
	POOL_ASSERT();
	if (a->close_at && now >= a->close_at)
		finish_close(a);
	if (!a->close_at && !a->retry_at)
		acct_keepalive(a, now);
	acct_features_tick(a, now);
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
	} else if (acct_sock(a) >= 0) {
		shutdown(acct_sock(a), SHUT_RDWR);
	}
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
			acct_set_state(a, ACCT_OFFLINE, NULL);
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
		acct_send_presence(a);
		acct_features_presence_changed(a);
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

void acct_reconfigure(Account *a, const CfgAccount *cfg)
{
	POOL_ASSERT();
	a->cfg_next = cfg;
	if (a->shutting || !a->want_online)
		return; /* taken when `status` asks for a connection */
	a->backoff_s = BACKOFF_MIN_S;
	if (a->conn) {
		/* online: a clean close; logging in: the attempt is dropped
		 * (it may be one that the new settings are to mend); then
		 * acct_run connects again at once, and acct_connect takes
		 * them */
		a->reconnect_asked = true;
		begin_close(a);
		return;
	}
	/* refused (failed) or waiting to retry: now; while the address is
	 * looked up, acct_resolved starts over */
	if (!a->resolving)
		acct_connect(a);
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

void acct_conn_init(Account *a)
{
	a->fd = -1;
	a->fd_dup = -1;
	a->backoff_s = BACKOFF_MIN_S;
	wd_slot_init(&a->wd);
	a->xlog.handler = strophe012_log;
	a->xlog.userdata = a;
}
