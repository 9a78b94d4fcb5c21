/* conn.c - an account's connection: connect, log in, run, keep alive,
 * close, fail and retry.  The address lookup is in resolve.c; stream
 * management in sm.c; what happens at CONNECT and after a disconnect
 * beyond the connection itself is the features' (feature.h), and every
 * stanza goes to the dispatcher (dispatch.h).
 *
 * Pool thread only (POOL_ASSERT); the lock of the shared fields is never
 * held while calling libstrophe. */
#include "xmpp/account_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strophe.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "xmpp/dispatch.h"
#include "xmpp/pool.h"
#include "xmpp/watchdog.h"

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

static void finish_close(Account *a);
static gint64 ping_timeout(Account *a);

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

static void send_unavailable(Account *a)
{
	xmpp_stanza_t *p = xmpp_presence_new(a->ctx);

	xmpp_stanza_set_type(p, "unavailable");
	sm_send(a, p);
	xmpp_stanza_release(p);
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

void acct_schedule_retry(Account *a)
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
	acct_fail_change_waits(a);
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
	acct_schedule_retry(a);
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
void acct_attempt_next(Account *a)
{
	g_auto(GStrv) hp = NULL;
	guint64 port;

	if (!a->addrs || a->addr_next >= a->addrs->len) {
		acct_schedule_retry(a);
		acct_set_state(a, ACCT_OFFLINE, NULL);
		return;
	}
	hp = g_strsplit(g_ptr_array_index(a->addrs, a->addr_next++), " ", 2);
	port = g_ascii_strtoull(hp[1], NULL, 10);
	acct_set_str(a, &a->server,
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
		acct_set_state(a, ACCT_CONNECTING, why);
	}
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
	return sock_of(a) >= 0 && util_unread_bytes(sock_of(a)) > 0;
}

/* Bytes libstrophe has taken from the socket: received minus queued. */
static bool consumed_bytes(int fd, guint64 *out)
{
	struct tcp_info ti = {0};
	socklen_t len = sizeof ti;
	int inq;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
			  sizeof ti.tcpi_bytes_received ||
	    (inq = util_unread_bytes(fd)) < 0)
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
			acct_attempt_next(a);
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
	xmpp_stanza_t *iq;
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
	iq = acct_ping_new(a, id);
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
	return MIN(keepalive_due(a), acct_features_due(a));
}

void acct_tick(Account *a, gint64 now)
{
	POOL_ASSERT();
	if (a->close_at && now >= a->close_at)
		finish_close(a);
	if (!a->close_at && !a->retry_at)
		keepalive(a, now);
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
	} else if (sock_of(a) >= 0) {
		shutdown(sock_of(a), SHUT_RDWR);
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

void acct_attach(Account *a)
{
	POOL_ASSERT();
	if (!acct_by_ctx)
		acct_by_ctx = g_hash_table_new(NULL, NULL);
	a->ctx = xmpp_ctx_new(NULL, &a->xlog);
	g_hash_table_insert(acct_by_ctx, a->ctx, a);
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

void acct_conn_free(Account *a)
{
	if (a->conn)
		release_conn(a);
	if (a->ctx) {
		g_hash_table_remove(acct_by_ctx, a->ctx);
		xmpp_ctx_free(a->ctx);
		a->ctx = NULL;
	}
}
