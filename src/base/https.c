/* https.c - see https.h.
 *
 * One connection per call, with a non-blocking socket and OpenSSL on
 * top; every wait is a poll(2) with a deadline, so a server that stops
 * answering (in the TCP connect, the handshake, the response, or the
 * middle of a body) costs at most timeout_s.
 *
 * OpenSSL reads and writes the socket through a BIO of ours, for two
 * reasons.  Writes use send(MSG_NOSIGNAL): a server that closes while a
 * file goes up would otherwise raise SIGPIPE, which kills a process that
 * does not ignore it, and a library may not assume that it does.  Reads
 * use read(2), not recv(2): xmppfs defines recv() itself for
 * libstrophe's sake (xmpp/guard.c), and base/ calls nothing above it.
 *
 * While a body goes up, what the server sends is watched too: Prosody
 * answers 413 or 401 as soon as it sees the head, and an upload that
 * went on regardless would end in EPIPE instead of the reason. */
#include "base/https.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

#define BODY_CHUNK 16384

typedef struct {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	gint64 step_us;         /* the longest wait for one step */
	guint step_s;
	const char *authority;  /* the URL's, for messages */
	bool eof;               /* the server has closed its side */
	bool broken;            /* TLS failed: no close_notify */
	gsize len;              /* bytes in buf not consumed yet */
	char buf[HTTP_HEAD_MAX]; /* the response head, then the body */
} Conn;

typedef struct {
	HttpsProgress cb;
	void *data;
} Progress;

static int fail(GError **err, int code, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

/* -@code, with @err set (when it is not yet) to the message. */
static int fail(GError **err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err && !*err)
		*err = g_error_new_valist(HTTP_ERROR, code, fmt, ap);
	va_end(ap);
	return -code;
}

/* -errno of @e (which http.c set), handed on to @err. */
static int take(GError **err, GError *e)
{
	int code = e->domain == HTTP_ERROR ? e->code : EINVAL;

	g_propagate_error(err, e);
	return -code;
}

/* ---- waiting */

/* Until @fd has one of @events (then 0, and what it has in @revents),
 * or the monotonic clock passes @deadline (-ETIMEDOUT). */
static int wait_fd(int fd, short events, gint64 deadline, short *revents)
{
	for (;;) {
		gint64 left = deadline - g_get_monotonic_time();
		struct pollfd p = {.fd = fd, .events = events};
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)MIN((left + 999) / 1000, G_MAXINT));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0) {
			if (revents)
				*revents = p.revents;
			return 0;
		}
	}
}

static gint64 deadline_of(const Conn *c)
{
	return g_get_monotonic_time() + c->step_us;
}

/* ---- the socket under OpenSSL */

static int bio_write(BIO *b, const char *buf, int len)
{
	ssize_t n = send(GPOINTER_TO_INT(BIO_get_data(b)), buf, len,
			 MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
	ssize_t n = read(GPOINTER_TO_INT(BIO_get_data(b)), buf, len);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH; /* nothing is buffered here */
}

static BIO_METHOD *sock_bio_method(void)
{
	static gsize once;
	static BIO_METHOD *m;

	if (g_once_init_enter(&once)) {
		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				 "xmppfs socket");
		BIO_meth_set_write(m, bio_write);
		BIO_meth_set_read(m, bio_read);
		BIO_meth_set_ctrl(m, bio_ctrl);
		g_once_init_leave(&once, 1);
	}
	return m;
}

/* ---- connecting */

/* libstrophe 0.12 select()s its sockets, and a descriptor over 1023
 * aborts the process there; xmppfs keeps the numbers below 1024 for
 * those (store/fdcache.c).  poll(2) has no such limit. */
static int move_high(int fd)
{
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 1024);

	if (high < 0)
		return fd;
	close(fd);
	return high;
}

/* One address: the connected socket, or -errno. */
static int connect_one(const struct addrinfo *ai, gint64 deadline)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
			SOCK_CLOEXEC, 0);
	int rc = 0, one = 1, soerr = 0;
	socklen_t slen = sizeof soerr;

	if (fd < 0)
		return -errno;
	fd = move_high(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			rc = -errno;
		else if (!(rc = wait_fd(fd, POLLOUT, deadline, NULL)))
			rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
					&slen) < 0 ? -errno : -soerr;
	}
	if (rc) {
		close(fd);
		return rc;
	}
	/* the head and the last piece of a body must not wait for an ACK */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* A socket connected to @host (a name or an address) on @port, trying
 * each address in turn within one deadline. */
static int tcp_connect(const char *host, guint16 port, gint64 deadline,
		       GError **err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char service[8];
	int rc = -EHOSTUNREACH, gai;

	g_snprintf(service, sizeof service, "%u", port);
	gai = getaddrinfo(host, service, &hints, &res);
	if (gai == EAI_SYSTEM)
		return fail(err, errno ? errno : EHOSTUNREACH, "cannot "
			    "resolve %s: %s", host, g_strerror(errno));
	if (gai)
		return fail(err, EHOSTUNREACH, "cannot resolve %s: %s", host,
			    gai_strerror(gai));
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, deadline);
		if (rc >= 0)
			break;
	}
	freeaddrinfo(res);
	if (rc == -ETIMEDOUT)
		return fail(err, ETIMEDOUT, "connecting to %s port %u: no "
			    "answer in time", host, port);
	if (rc < 0)
		return fail(err, -rc, "cannot connect to %s port %u: %s",
			    host, port, g_strerror(-rc));
	return rc;
}

/* -errno for an OpenSSL call on @c that returned @r and is not to be
 * retried; @what names the step for the message. */
static int tls_error(Conn *c, int r, const char *what, GError **err)
{
	int sys = errno, e = SSL_get_error(c->ssl, r);
	long v = SSL_get_verify_result(c->ssl);
	const char *reason;
	char msg[256] = "";

	c->broken = true;
	if (v != X509_V_OK)
		return fail(err, EPERM, "the certificate of %s is not "
			    "accepted: %s", c->authority,
			    X509_verify_cert_error_string(v));
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !sys))
		return fail(err, ECONNRESET, "%s closed the connection %s",
			    c->authority, what);
	if (e == SSL_ERROR_SYSCALL)
		return fail(err, sys, "%s: %s %s", c->authority,
			    g_strerror(sys), what);
	reason = ERR_reason_error_string(ERR_peek_last_error());
	if (!reason)
		ERR_error_string_n(ERR_peek_last_error(), msg, sizeof msg);
	return fail(err, EPROTO, "TLS with %s failed %s: %s", c->authority,
		    what, reason ? reason : msg);
}

/* After an OpenSSL call on @c returned @r: 0 once the socket is ready
 * for the retry it asks for, 1 when it asks for none (an error for
 * tls_error), -ETIMEDOUT past @deadline, or poll's -errno. */
static int ssl_wait(Conn *c, int r, gint64 deadline)
{
	int e = SSL_get_error(c->ssl, r);

	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		return 1;
	return wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
		       deadline, NULL);
}

/* The CAs to trust: @ca_file's, or the system's.  The system's are
 * loaded anew for each call (~40 ms of CPU for Debian's bundle): a
 * transfer takes longer, and nothing stays behind.  Through the
 * X509_STORE calls, not SSL_CTX_load_verify_locations and
 * SSL_CTX_set_default_verify_paths: xmppfs defines those two for
 * libstrophe (xmpp/strophe012.c), and base/ calls nothing above it. */
static int tls_load_cas(SSL_CTX *ctx, const char *ca_file, GError **err)
{
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);

	if (ca_file && access(ca_file, R_OK) < 0)
		return fail(err, errno, "CA file %s: %s", ca_file,
			    g_strerror(errno));
	if (!(ca_file ? X509_STORE_load_file(st, ca_file) :
	      X509_STORE_set_default_paths(st)))
		return fail(err, EINVAL, "cannot load the CAs of %s",
			    ca_file ? ca_file : "the system");
	return 0;
}

/* The chain, and the URL's host name or address in the certificate. */
static int tls_verify_setup(Conn *c, const HttpUrl *u, GError **err)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
	int ok;

	SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set_hostflags(vp,
		X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	ok = u->ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) :
		SSL_set1_host(c->ssl, u->host);
	return ok ? 0 : fail(err, EINVAL, "cannot check for name %s",
			     u->host);
}

static int tls_start(Conn *c, const HttpsOpts *o, const HttpUrl *u,
		     GError **err)
{
	gint64 deadline = deadline_of(c);
	BIO *bio;
	int r, rc;

	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx)
		return fail(err, ENOMEM, "no TLS context");
	if (!o->insecure && (rc = tls_load_cas(c->ctx, o->ca_file, err)))
		return rc;
	if (!(c->ssl = SSL_new(c->ctx)))
		return fail(err, ENOMEM, "no TLS context");
	SSL_set_min_proto_version(c->ssl, TLS1_2_VERSION);
	/* a close without close_notify ends the stream as a clean one
	 * would; Content-Length and chunked framing still catch a body cut
	 * short, as browsers do */
	SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (!o->insecure && (rc = tls_verify_setup(c, u, err)))
		return rc;
	/* RFC 6066: no address as the server name */
	if (!u->ip_literal && !SSL_set_tlsext_host_name(c->ssl, u->host))
		return fail(err, EINVAL, "bad TLS server name %s", u->host);
	bio = BIO_new(sock_bio_method());
	if (!bio)
		return fail(err, ENOMEM, "no BIO");
	BIO_set_data(bio, GINT_TO_POINTER(c->fd));
	BIO_set_init(bio, 1);
	SSL_set_bio(c->ssl, bio, bio);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		r = SSL_connect(c->ssl);
		if (r == 1)
			return 0;
		rc = ssl_wait(c, r, deadline);
		if (rc == 1)
			return tls_error(c, r, "in the TLS handshake", err);
		if (rc == -ETIMEDOUT)
			return fail(err, ETIMEDOUT, "no TLS handshake with %s "
				    "in %u s", c->authority, c->step_s);
		if (rc)
			return fail(err, -rc, "poll: %s", g_strerror(-rc));
	}
}

static void conn_free(Conn *c)
{
	if (!c)
		return;
	/* one try at a close_notify, without waiting for the answer (not
	 * after a fatal error: OpenSSL forbids it) */
	if (c->ssl && !c->broken && SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	ERR_clear_error(); /* the queue is per thread: leave it clean */
	g_free(c);
}

/* A TLS connection to @u, at @via when that is not NULL. */
static int conn_open(const HttpsOpts *o, const HttpUrl *u, const char *via,
		     Conn **out, GError **err)
{
	Conn *c = g_new0(Conn, 1);
	int rc;

	c->fd = -1;
	c->step_s = o->timeout_s ? o->timeout_s : HTTPS_TIMEOUT_S;
	c->step_us = (gint64)c->step_s * G_USEC_PER_SEC;
	c->authority = u->authority;
	rc = tcp_connect(via ? via : u->host, u->port, deadline_of(c), err);
	if (rc >= 0) {
		c->fd = rc;
		rc = tls_start(c, o, u, err);
	}
	if (rc < 0) {
		conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- reading and writing */

/* Up to @len bytes into @buf: how many, 0 at the end of the stream, or
 * -errno, waiting until @deadline; with @deadline 0, -EAGAIN (and no
 * @err) rather than waiting. */
static gssize conn_read(Conn *c, char *buf, gsize len, gint64 deadline,
			GError **err)
{
	for (;;) {
		size_t n = 0;
		int r, rc;

		ERR_clear_error();
		errno = 0;
		r = SSL_read_ex(c->ssl, buf, len, &n);
		if (r == 1)
			return (gssize)n;
		if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN)
			return 0;
		rc = ssl_wait(c, r, deadline);
		if (rc == 1)
			return tls_error(c, r, "while it answered", err);
		if (rc == -ETIMEDOUT)
			return deadline ? fail(err, ETIMEDOUT, "%s sent nothing "
					       "for %u s", c->authority,
					       c->step_s) : -EAGAIN;
		if (rc)
			return fail(err, -rc, "poll: %s", g_strerror(-rc));
	}
}

/* Drop complete interim (1xx) responses from the start of c->buf: some
 * servers send "100 Continue" unasked, and it is no reason to stop. */
static void skip_interim(Conn *c)
{
	gsize h;

	while ((h = http_head_length(c->buf, c->len)) &&
	       !strncmp(c->buf, "HTTP/1.", 7) && c->len > 9 &&
	       c->buf[9] == '1') {
		c->len -= h;
		memmove(c->buf, c->buf + h, c->len);
	}
}

/* Without waiting: has the server answered (or closed) while we were
 * still sending?  1 if so, with what it sent in c->buf; 0 if not (what
 * came was TLS housekeeping, an interim response, or nothing), or
 * -errno. */
static int peek_answer(Conn *c, GError **err)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	gssize n;

	if (c->len || c->eof)
		return 1;
	if (!SSL_has_pending(c->ssl) && poll(&p, 1, 0) <= 0)
		return 0;
	n = conn_read(c, c->buf, sizeof c->buf, 0, err);
	if (n == -EAGAIN)
		return 0;
	if (n < 0)
		return (int)n;
	c->len = (gsize)n;
	c->eof = n == 0;
	skip_interim(c);
	return c->len || c->eof;
}

/* All of @buf: 0, or -errno; with @watch, 1 when the server answered
 * before it took it all (peek_answer). */
static int conn_write(Conn *c, const void *buf, gsize len, bool watch,
		      GError **err)
{
	gint64 deadline = deadline_of(c);

	for (;;) {
		size_t n = 0;
		short want, got = 0;
		int r, e, rc;

		ERR_clear_error();
		errno = 0;
		r = SSL_write_ex(c->ssl, buf, len, &n);
		if (r == 1)
			return 0; /* no partial writes: all of it */
		e = SSL_get_error(c->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_error(c, r, "while we were sending", err);
		want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		rc = wait_fd(c->fd, watch ? want | POLLIN : want, deadline,
			     &got);
		if (rc == -ETIMEDOUT)
			return fail(err, ETIMEDOUT, "%s took nothing for %u s",
				    c->authority, c->step_s);
		if (rc)
			return fail(err, -rc, "poll: %s", g_strerror(-rc));
		/* the write is retried with the same buffer, as OpenSSL
		 * asks, after a read in between */
		if (watch && want == POLLOUT && (got & ~POLLOUT) &&
		    (rc = peek_answer(c, err)))
			return rc;
	}
}

/* The response head into @r; what follows it stays in c->buf.  Interim
 * (1xx) responses are skipped. */
static int read_head(Conn *c, HttpResponse *r, GError **err)
{
	gint64 deadline = deadline_of(c);

	for (;;) {
		gsize h = http_head_length(c->buf, c->len);
		gssize n;

		if (h) {
			GError *e = NULL;
			if (!http_response_parse(c->buf, h, r, &e))
				return take(err, e);
			c->len -= h;
			memmove(c->buf, c->buf + h, c->len);
			if (r->status >= 200 || r->status == 101)
				return 0;
			http_response_clear(r);
			continue;
		}
		if (c->len == sizeof c->buf)
			return fail(err, EPROTO, "%s sent a response head over "
				    "%d bytes", c->authority, HTTP_HEAD_MAX);
		if (c->eof)
			return fail(err, ECONNRESET, "%s closed the connection "
				    "%s", c->authority, c->len ?
				    "in the middle of its answer" :
				    "without an answer");
		/* the whole head within one step: no trickling */
		n = conn_read(c, c->buf + c->len, sizeof c->buf - c->len,
			      deadline, err);
		if (n < 0)
			return (int)n;
		c->len += (gsize)n;
		c->eof = n == 0;
	}
}

static int progress(const Progress *p, guint64 done, guint64 total,
		    GError **err)
{
	int r = p->cb ? p->cb(done, total, p->data) : 0;

	if (!r)
		return 0;
	r = r < 0 ? -r : ECANCELED;
	return fail(err, r, "stopped after %" G_GUINT64_FORMAT " of %"
		    G_GUINT64_FORMAT " bytes: %s", done, total,
		    g_strerror(r));
}

/* The status as -errno, and in words. */
static int check_status(const char *what, const HttpUrl *u,
			const HttpResponse *r, GError **err)
{
	int e = http_status_errno(r->status);

	if (!e)
		return 0;
	return fail(err, e, "%s %s: HTTP %d %s", what, u->authority,
		    r->status, r->reason);
}

/* ---- the request */

/* Headers we write ourselves: one from the caller would frame the
 * request differently from what we send. */
static bool own_header(const char *line)
{
	static const char *const own[] = {
		"Host", "Content-Length", "Content-Type", "Transfer-Encoding",
		"Connection", "Expect", "TE", "Trailer", "Upgrade",
		"Keep-Alive",
	};
	gsize n = strcspn(line, ":");

	for (guint i = 0; i < G_N_ELEMENTS(own); i++)
		if (strlen(own[i]) == n && !g_ascii_strncasecmp(line, own[i], n))
			return true;
	return false;
}

static GString *request_head(const char *method, const HttpUrl *u)
{
	GString *h = g_string_new(NULL);

	g_string_append_printf(h, "%s %s HTTP/1.1\r\nHost: %s\r\n"
			       "User-Agent: xmppfs/" XFS_VERSION "\r\n"
			       "Connection: close\r\n", method, u->target,
			       u->authority);
	return h;
}

static int put_head(const HttpUrl *u, guint64 size, const char *ctype,
		    const char *const *headers, GString **out, GError **err)
{
	g_autoptr(GString) h = request_head("PUT", u);
	g_autofree char *ct = g_strconcat("Content-Type: ", ctype ? ctype :
					  "application/octet-stream", NULL);
	GError *e = NULL;

	if (!http_header_ok(ct, &e))
		return take(err, e);
	g_string_append_printf(h, "Content-Length: %" G_GUINT64_FORMAT
			       "\r\n%s\r\n", size, ct);
	for (guint i = 0; headers && headers[i]; i++) {
		if (!http_header_ok(headers[i], &e))
			return take(err, e);
		if (own_header(headers[i]))
			return fail(err, EINVAL, "header %.*s is not the "
				    "caller's to set",
				    (int)MIN(strcspn(headers[i], ":"), 40),
				    headers[i]);
		g_string_append_printf(h, "%s\r\n", headers[i]);
	}
	g_string_append(h, "\r\n");
	*out = g_steal_pointer(&h);
	return 0;
}

/* @url parsed into @u, and https:// */
static int parse_https(const char *url, HttpUrl *u, GError **err)
{
	GError *e = NULL;

	if (!http_url_parse(url, u, &e))
		return take(err, e);
	if (!u->tls)
		return fail(err, EPROTONOSUPPORT, "%s is not an https:// URL "
			    "(XEP-0363 wants TLS)", u->authority);
	return 0;
}

/* ---- PUT */

/* @size bytes from @fd after the head: 0, 1 when the server answered
 * before the end, or -errno. */
static int send_body(Conn *c, int fd, guint64 size, const Progress *p,
		     GError **err)
{
	g_autofree char *buf = g_malloc(BODY_CHUNK);
	guint64 done = 0;
	int rc;

	while (done < size) {
		ssize_t n;

		if ((rc = peek_answer(c, err)))
			return rc;
		n = read(fd, buf, (gsize)MIN((guint64)BODY_CHUNK, size - done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(err, errno, "reading the file to upload: "
				    "%s", g_strerror(errno));
		if (n == 0)
			return fail(err, EIO, "the file to upload ended after "
				    "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
				    " bytes", done, size);
		if ((rc = conn_write(c, buf, (gsize)n, true, err)))
			return rc;
		done += (guint64)n;
		if ((rc = progress(p, done, size, err)))
			return rc;
	}
	return 0;
}

/* After a failed send: did the server say why before it closed?  (A
 * server that refuses a body may close without reading it; the write
 * then fails, but its answer may be there to read.) */
static bool answered_anyway(Conn *c, HttpResponse *r)
{
	GError *e = NULL;

	if (read_head(c, r, &e) == 0)
		return true;
	g_error_free(e);
	return false;
}

int https_put(const HttpsOpts *o, const char *url, int fd, guint64 size,
	      const char *content_type, const char *const *headers,
	      HttpsProgress cb, void *data, GError **err)
{
	static const HttpsOpts defaults;
	g_auto(HttpUrl) u = {0};
	g_auto(HttpResponse) r = {0};
	g_autoptr(GString) head = NULL;
	Progress p = {cb, data};
	Conn *c = NULL;
	int rc;

	o = o ? o : &defaults;
	if ((rc = parse_https(url, &u, err)) ||
	    (rc = put_head(&u, size, content_type, headers, &head, err)) ||
	    (rc = conn_open(o, &u, o->connect_host, &c, err)))
		return rc;
	rc = conn_write(c, head->str, head->len, false, err);
	if (!rc)
		rc = send_body(c, fd, size, &p, err);
	if (rc == 0 || rc == 1) {
		bool early = rc == 1;
		rc = read_head(c, &r, err);
		if (!rc && early && !http_status_errno(r.status))
			rc = fail(err, EPROTO, "%s answered %d before it had "
				  "the whole file", u.authority, r.status);
	} else if ((rc == -EPIPE || rc == -ECONNRESET) &&
		   answered_anyway(c, &r)) {
		g_clear_error(err);
		rc = 0;
	}
	if (!rc)
		rc = check_status("upload to", &u, &r, err);
	conn_free(c);
	return rc;
}

/* ---- GET */

/* The body after the head, to @out. */
static int read_body(Conn *c, const HttpResponse *r, int out,
		     guint64 max, const Progress *p, GError **err)
{
	HttpChunked ch = {0};
	guint64 got = 0, total = MAX(r->content_length, 0);
	bool sized = r->content_length >= 0;
	GError *e = NULL;
	int rc;

	if (sized && total > max)
		return fail(err, EFBIG, "%s offers %" G_GUINT64_FORMAT " bytes, "
			    "more than the %" G_GUINT64_FORMAT " allowed",
			    c->authority, total, max);
	while (!(sized && got == total) && !http_chunked_done(&ch)) {
		gssize n = (gssize)c->len;

		c->len = 0;
		if (!n && !c->eof &&
		    (n = conn_read(c, c->buf, sizeof c->buf, deadline_of(c),
				   err)) < 0)
			return (int)n;
		if (!n) {
			c->eof = true;
			if (!sized && !r->chunked)
				return 0; /* the close ends this body */
			return fail(err, ECONNRESET, "%s closed the connection "
				    "after %" G_GUINT64_FORMAT " bytes of the "
				    "body", c->authority, got);
		}
		if (r->chunked && (n = http_chunked_decode(&ch, c->buf,
							   (gsize)n, &e)) < 0)
			return take(err, e);
		if (sized)
			n = (gssize)MIN((guint64)n, total - got);
		if ((guint64)n > max - got)
			return fail(err, EFBIG, "%s sent more than the %"
				    G_GUINT64_FORMAT " bytes allowed",
				    c->authority, max);
		if ((rc = util_write_all(out, c->buf, (gsize)n)))
			return fail(err, -rc, "writing the download: %s",
				    g_strerror(-rc));
		got += (guint64)n;
		if (n && (rc = progress(p, got, total, err)))
			return rc;
	}
	return 0;
}

static bool is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

/* One GET of @u: 0 and the head in @r, with @c open on the body. */
static int get_head(const HttpsOpts *o, const HttpUrl *u, const char *via,
		    Conn **c, HttpResponse *r, GError **err)
{
	g_autoptr(GString) head = request_head("GET", u);
	int rc;

	g_string_append(head, "Accept-Encoding: identity\r\n\r\n");
	if ((rc = conn_open(o, u, via, c, err)))
		return rc;
	if (!(rc = conn_write(*c, head->str, head->len, false, err)))
		rc = read_head(*c, r, err);
	if (rc) {
		conn_free(*c);
		*c = NULL;
	}
	return rc;
}

int https_get(const HttpsOpts *o, const char *url, int fd_out,
	      guint64 max_bytes, HttpsProgress cb, void *data, GError **err)
{
	static const HttpsOpts defaults;
	g_auto(HttpUrl) u = {0};
	g_autofree char *origin = NULL;
	Progress p = {cb, data};
	int rc;

	o = o ? o : &defaults;
	if ((rc = parse_https(url, &u, err)))
		return rc;
	origin = g_strdup(u.host);
	for (guint hops = 0;; hops++) {
		g_auto(HttpResponse) r = {0};
		HttpUrl next;
		GError *e = NULL;
		Conn *c = NULL;

		/* connect_host stands for the URL's host, not another's */
		rc = get_head(o, &u, g_str_equal(u.host, origin) ?
			      o->connect_host : NULL, &c, &r, err);
		if (rc)
			return rc;
		if (!is_redirect(r.status) || !r.location) {
			rc = check_status("download from", &u, &r, err);
			if (!rc && http_status_has_body(r.status))
				rc = read_body(c, &r, fd_out, max_bytes, &p,
					       err);
			conn_free(c);
			return rc;
		}
		conn_free(c);
		if (hops == HTTPS_MAX_REDIRECTS)
			return fail(err, ELOOP, "more than %d redirects from "
				    "%s", HTTPS_MAX_REDIRECTS, url);
		if (!http_url_resolve(&u, r.location, &next, &e))
			return take(err, e);
		http_url_clear(&u);
		u = next;
		if (!u.tls)
			return fail(err, EPROTONOSUPPORT, "redirected to %s, "
				    "which is not https://", u.authority);
	}
}
