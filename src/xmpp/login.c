/* login.c - one attempt's connection as libstrophe sees it: the context
 * and the connection made, the deadlines of the TCP connect, the TLS
 * handshake and the login (armed on the watchdog, watchdog.c), what
 * libstrophe 0.12 tells only in its log (acct_lib_*, for strophe012.c),
 * and the socket to look at or shut down.
 *
 * Below conn.c, which runs the connection's life with these, and below
 * strophe012.c and guard.c, which report here.  Pool thread only. */
#include "xmpp/account_int.h"

#include <fcntl.h>
#include <string.h>
#include <strophe.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xmpp/pool.h"
#include "xmpp/watchdog.h"

/* Contexts carry no user data that callbacks can reach; this maps them
 * back.  Pool thread only. */
static GHashTable *acct_by_ctx;

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

static void check_pin(Account *a);

static void tls_ends(Account *a)
{
	a->in_tls = false;
	arm(a, a->login_deadline);
	check_pin(a);
}

static void tcp_connected(Account *a)
{
	a->tcp_up = true;
	/* libstrophe queued the stream's opening as its own data, which
	 * xmpp_conn_send_queue_len does not count (strophe012.h): without
	 * another turn now it waited for the next timer, 1 s per login */
	a->progress++;
	if (a->cfg->tls == CFG_TLS_DIRECT)
		tls_begins(a);
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

/* A certificate the system's CAs (and ca_file) do not vouch for: the
 * pinned one is accepted; any other is refused, and the error says what
 * it is and how to trust it. */
static int certfail_handler(const xmpp_tlscert_t *cert, const char *errormsg)
{
	Account *a = acct_of_ctx(xmpp_tlscert_get_ctx(cert));
	g_autofree char *fp = cfg_fingerprint(
		xmpp_tlscert_get_string(cert, XMPP_CERT_FINGERPRINT_SHA256));
	const char *subject = xmpp_tlscert_get_string(cert, XMPP_CERT_SUBJECT);
	const char *issuer = xmpp_tlscert_get_string(cert, XMPP_CERT_ISSUER);

	if (!a)
		return 0;
	if (a->cfg->tls_fingerprint && fp &&
	    !strcmp(fp, a->cfg->tls_fingerprint))
		return 1; /* the pinned one */
	if (!a->cert_error)
		a->cert_error = g_strdup_printf(
			"%s; its certificate: sha256 %s, subject %s, issuer "
			"%s; to trust it, give its CA as ca_file or pin it "
			"with tls_fingerprint = SHA256:%s",
			errormsg ? errormsg : "unknown reason", fp ? fp : "?",
			subject ? subject : "?", issuer ? issuer : "?",
			fp ? fp : "?");
	return 0; /* refuse */
}

/* The TLS handshake is over (before any login): with tls_fingerprint,
 * a certificate the CAs vouch for but that is not the pinned one ends
 * the attempt here, before the password could go out. */
static void check_pin(Account *a)
{
	xmpp_tlscert_t *cert;
	g_autofree char *fp = NULL;

	if (!a->cfg->tls_fingerprint || !a->conn)
		return;
	cert = xmpp_conn_get_peer_cert(a->conn);
	if (cert) {
		fp = cfg_fingerprint(xmpp_tlscert_get_string(
			cert, XMPP_CERT_FINGERPRINT_SHA256));
		xmpp_tlscert_free(cert);
	}
	if (fp && !strcmp(fp, a->cfg->tls_fingerprint))
		return;
	if (!a->cert_error)
		a->cert_error = g_strdup_printf(
			"certificate sha256 %s is not the one tls_fingerprint "
			"pins (%s)",
			fp ? fp : "?", a->cfg->tls_fingerprint);
	acct_abort(a);
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

void acct_attempt_reset(Account *a)
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

xmpp_conn_t *acct_conn_new(Account *a)
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

/* The socket to shut down or look at: the watchdog's dup during the
 * login, libstrophe's own after it (on the pool thread, while the
 * connection lives, it is libstrophe's open socket); -1 for none. */
int acct_sock(Account *a)
{
	if (a->fd_dup >= 0)
		return a->fd_dup;
	return a->conn && !a->conn_dead ? a->fd : -1;
}

void acct_conn_release(Account *a)
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

void acct_note_read(Account *a, bool more)
{
	a->progress++; /* libstrophe has something new to work on */
	a->read_more = a->read_more || more;
}

void acct_abort(Account *a)
{
	if (acct_sock(a) >= 0)
		shutdown(acct_sock(a), SHUT_RDWR);
}

void acct_attach(Account *a)
{
	POOL_ASSERT();
	if (!acct_by_ctx)
		acct_by_ctx = g_hash_table_new(NULL, NULL);
	a->ctx = xmpp_ctx_new(NULL, &a->xlog);
	g_hash_table_insert(acct_by_ctx, a->ctx, a);
}

void acct_conn_free(Account *a)
{
	if (a->conn)
		acct_conn_release(a);
	if (a->ctx) {
		g_hash_table_remove(acct_by_ctx, a->ctx);
		xmpp_ctx_free(a->ctx);
		a->ctx = NULL;
	}
}
