/* test_https.c - https_put and https_get against a TLS server of this
 * test on 127.0.0.1, with certificates made at start (a CA of its own,
 * a certificate from it for the right names, one for a wrong name, and
 * one self-signed).  The server plays a script per test: an answer per
 * connection, answered after the request, or at once, or never.
 *
 * Names resolve through getaddrinfo defined here: "upload.test" and
 * "nxdomain.test" never reach DNS ("two.test" is 127.0.0.2, where
 * nothing listens, then 127.0.0.1).
 *
 * SIGPIPE keeps its default action on the test's main thread, which runs
 * the client: a write of the client to a closed connection that raised
 * it would end the test.  The server's thread blocks it. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/https.h"

/* ---- names without DNS */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
		      struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res)
{
	static gai_fn real;
	struct addrinfo *one = NULL, *two = NULL;
	int ret;

	if (!real)
		real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (node && !strcmp(node, "nxdomain.test"))
		return EAI_NONAME;
	if (node && !strcmp(node, "upload.test"))
		return real("127.0.0.1", service, hints, res);
	if (!node || strcmp(node, "two.test"))
		return real(node, service, hints, res);
	if ((ret = real("127.0.0.2", service, hints, &one)) != 0)
		return ret;
	if ((ret = real("127.0.0.1", service, hints, &two)) != 0) {
		freeaddrinfo(one);
		return ret;
	}
	for (struct addrinfo *p = one;; p = p->ai_next)
		if (!p->ai_next) {
			p->ai_next = two;
			break;
		}
	*res = one;
	return 0;
}

/* ---- certificates */

static char *tmpdir;
static char *ca_file;
static SSL_CTX *ctx_good, *ctx_wrong, *ctx_self;

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san,
		       X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) :
			     name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (san) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
					  san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	g_assert_true(X509_sign(x, issuer_key ? issuer_key : key,
				EVP_sha256()) > 0);
	return x;
}

static SSL_CTX *server_ctx(X509 *cert, EVP_PKEY *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	g_assert_true(SSL_CTX_use_certificate(ctx, cert) == 1);
	g_assert_true(SSL_CTX_use_PrivateKey(ctx, key) == 1);
	return ctx;
}

static void make_certs(void)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
	X509 *ca = make_cert(ca_key, "xmppfs test CA", NULL, NULL, NULL, true);
	X509 *good = make_cert(key, "upload.test", "DNS:upload.test,"
			       "DNS:localhost,DNS:two.test,IP:127.0.0.1", ca,
			       ca_key, false);
	X509 *wrong = make_cert(key, "wrong.example", "DNS:wrong.example", ca,
				ca_key, false);
	X509 *self = make_cert(key, "upload.test", "DNS:upload.test", NULL,
			       NULL, true);
	FILE *f;

	ca_file = g_build_filename(tmpdir, "ca.pem", NULL);
	f = fopen(ca_file, "w");
	g_assert_nonnull(f);
	PEM_write_X509(f, ca);
	fclose(f);
	ctx_good = server_ctx(good, key);
	ctx_wrong = server_ctx(wrong, key);
	ctx_self = server_ctx(self, key);
	X509_free(ca);
	X509_free(good);
	X509_free(wrong);
	X509_free(self);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
}

/* ---- the server */

typedef enum {
	ANSWER,       /* read the request and its body, then answer */
	INTERIM,      /* "100 Continue" after the head, unasked; then as
		       * ANSWER */
	ANSWER_EARLY, /* answer after the head, then read what comes */
	CLOSE_EARLY,  /* answer after the head and close at once */
	SILENT_TCP,   /* take the connection, never say a word */
	SILENT_HTTP,  /* the handshake, the request, then nothing */
} Mode;

typedef struct {
	Mode mode;
	SSL_CTX *ctx;
	const char *answers[8]; /* one per connection, in turn; past the
				 * last, the first again */
	gsize answer_len;       /* of each, when it holds NULs; 0: strlen */
	int listen_fd;
	guint16 port;
	int stop[2];            /* a byte here ends the server */
	GThread *thread;
	/* what it saw */
	guint connections;
	GPtrArray *heads;       /* each request's head */
	GByteArray *body;       /* the last request's body (ANSWER) */
	guint64 body_bytes;     /* bytes of body read, all modes */
	char *sni;
} Server;

static bool stop_requested(Server *s, int fd)
{
	struct pollfd p[2] = {{.fd = s->stop[0], .events = POLLIN},
			      {.fd = fd, .events = POLLIN}};

	for (;;) {
		if (poll(p, fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR)
			continue;
		return p[0].revents != 0;
	}
}

/* The request head, or NULL; body bytes read with it go to s->body. */
static char *read_head(Server *s, SSL *ssl)
{
	g_autoptr(GString) buf = g_string_new(NULL);
	char chunk[4096];
	char *end;
	int n;

	while (!(end = strstr(buf->str, "\r\n\r\n"))) {
		if ((n = SSL_read(ssl, chunk, sizeof chunk - 1)) <= 0)
			return NULL;
		g_string_append_len(buf, chunk, n);
	}
	end += 4;
	g_byte_array_append(s->body, (guint8 *)end,
			    buf->len - (end - buf->str));
	s->body_bytes += buf->len - (end - buf->str);
	return g_strndup(buf->str, end - buf->str);
}

static guint64 content_length(const char *head)
{
	const char *p = strcasestr(head, "\r\nContent-Length:");

	return p ? g_ascii_strtoull(p + 17, NULL, 10) : 0;
}

static void drain(Server *s, SSL *ssl, guint64 until, bool keep)
{
	char chunk[16384];
	int n;

	while (s->body_bytes < until &&
	       (n = SSL_read(ssl, chunk, sizeof chunk)) > 0) {
		if (keep)
			g_byte_array_append(s->body, (guint8 *)chunk, n);
		s->body_bytes += n;
	}
}

static void serve(Server *s, int fd)
{
	const char *answer = s->answers[MIN(s->connections, 7)] ?
		s->answers[MIN(s->connections, 7)] : s->answers[0];
	struct timeval tv = {.tv_sec = 20};
	SSL *ssl;
	char *head;

	s->connections++;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (s->mode == SILENT_TCP) {
		stop_requested(s, -1);
		return;
	}
	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	g_free(s->sni);
	s->sni = g_strdup(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	g_byte_array_set_size(s->body, 0);
	if (!(head = read_head(s, ssl)))
		goto out;
	g_ptr_array_add(s->heads, head);
	if (s->mode == SILENT_HTTP) {
		stop_requested(s, -1);
		goto out;
	}
	if (s->mode == INTERIM)
		SSL_write(ssl, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	if (s->mode == ANSWER || s->mode == INTERIM)
		drain(s, ssl, content_length(head), true);
	if (answer)
		SSL_write(ssl, answer, s->answer_len ? (int)s->answer_len :
			  (int)strlen(answer));
	if (s->mode == ANSWER_EARLY)
		drain(s, ssl, G_MAXUINT64, false);
	if (s->mode != CLOSE_EARLY)
		SSL_shutdown(ssl);
out:
	SSL_free(ssl);
}

static gpointer server_main(gpointer data)
{
	Server *s = data;
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	while (!stop_requested(s, s->listen_fd)) {
		int fd = accept(s->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(s, fd);
		close(fd);
	}
	ERR_clear_error();
	return NULL;
}

static Server *server_start(Mode mode, SSL_CTX *ctx, const char *answer)
{
	Server *s = g_new0(Server, 1);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;

	s->mode = mode;
	s->ctx = ctx;
	s->answers[0] = answer;
	s->heads = g_ptr_array_new_with_free_func(g_free);
	s->body = g_byte_array_new();
	g_assert_cmpint(pipe(s->stop), ==, 0);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa),
			==, 0);
	g_assert_cmpint(listen(s->listen_fd, 8), ==, 0);
	getsockname(s->listen_fd, (struct sockaddr *)&sa, &len);
	s->port = ntohs(sa.sin_port);
	return s;
}

static void server_run(Server *s)
{
	s->thread = g_thread_new("server", server_main, s);
}

/* Stop its thread: what it saw may be read after this. */
static void server_join(Server *s)
{
	if (!s->thread)
		return;
	g_assert_cmpint(write(s->stop[1], "x", 1), ==, 1);
	g_thread_join(s->thread);
	s->thread = NULL;
}

static void server_stop(Server *s)
{
	server_join(s);
	close(s->listen_fd);
	close(s->stop[0]);
	close(s->stop[1]);
	g_ptr_array_free(s->heads, TRUE);
	g_byte_array_free(s->body, TRUE);
	g_free(s->sni);
	g_free(s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Server, server_stop)

static Server *serve_one(Mode mode, const char *answer)
{
	Server *s = server_start(mode, ctx_good, answer);

	server_run(s);
	return s;
}

/* ---- helpers */

static char *url_of(const Server *s, const char *host, const char *path)
{
	return g_strdup_printf("https://%s:%u%s", host, s->port, path);
}

/* A file of @size bytes (a pattern, or zeros past 1 MiB, sparse), open
 * for reading at offset 0. */
static int make_file(const char *name, gsize size, GByteArray **content)
{
	g_autofree char *path = g_build_filename(tmpdir, name, NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	gsize pattern = MIN(size, 1024 * 1024);
	GByteArray *c = g_byte_array_sized_new(pattern);

	g_assert_cmpint(fd, >=, 0);
	for (gsize i = 0; i < pattern; i++) {
		guint8 b = (guint8)(i * 7 + i / 251);
		g_byte_array_append(c, &b, 1);
	}
	g_assert_cmpint(write(fd, c->data, c->len), ==, (gssize)c->len);
	g_assert_cmpint(ftruncate(fd, size), ==, 0);
	lseek(fd, 0, SEEK_SET);
	if (content)
		*content = c;
	else
		g_byte_array_free(c, TRUE);
	return fd;
}

static int out_file(const char *name)
{
	g_autofree char *path = g_build_filename(tmpdir, name, NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static GByteArray *read_all(int fd)
{
	GByteArray *b = g_byte_array_new();
	char buf[65536];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		g_byte_array_append(b, (guint8 *)buf, n);
	return b;
}

static void assert_bytes(GByteArray *got, const void *want, gsize len)
{
	g_assert_cmpuint(got->len, ==, len);
	g_assert_true(!len || memcmp(got->data, want, len) == 0);
}

static const HttpsOpts *opts_via(HttpsOpts *o, const char *via)
{
	memset(o, 0, sizeof *o);
	o->ca_file = ca_file;
	o->timeout_s = 5;
	o->connect_host = via;
	return o;
}

typedef struct {
	guint calls;
	guint64 last_done, last_total;
	bool backwards;
	guint stop_after;  /* 0: never stop */
	int stop_with;
} Seen;

static int on_progress(guint64 done, guint64 total, void *data)
{
	Seen *s = data;

	if (done < s->last_done)
		s->backwards = true;
	s->calls++;
	s->last_done = done;
	s->last_total = total;
	return s->stop_after && s->calls >= s->stop_after ? s->stop_with : 0;
}

#define CREATED "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"

/* ---- PUT */

static void test_put_created(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, CREATED);
	g_autofree char *url = url_of(s, "upload.test", "/up/f%20.txt?x=1");
	const char *headers[] = {"Authorization: Bearer abc.def", "Cookie: c=1",
				 NULL};
	GByteArray *content;
	int fd = make_file("put.txt", 5000, &content);
	g_autoptr(GError) err = NULL;
	Seen seen = {0};
	HttpsOpts o;
	int rc;

	rc = https_put(opts_via(&o, "127.0.0.1"), url, fd, 5000, "text/plain",
		       headers, on_progress, &seen, &err);
	g_assert_no_error(err);
	g_assert_cmpint(rc, ==, 0);
	server_join(s);
	assert_bytes(s->body, content->data, 5000);
	g_assert_nonnull(strstr(g_ptr_array_index(s->heads, 0),
				"\r\nContent-Type: text/plain\r\n"));
	g_assert_nonnull(strstr(g_ptr_array_index(s->heads, 0),
				"\r\nCookie: c=1\r\n"));
	close(fd);
	g_byte_array_free(content, TRUE);
	g_assert_cmpuint(seen.last_done, ==, 5000);
	g_assert_cmpuint(seen.last_total, ==, 5000);
	g_assert_false(seen.backwards);
}

/* What the server saw of a PUT: request line, Host, headers, body. */
static void test_put_request(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, CREATED);
	g_autofree char *url = url_of(s, "upload.test", "/up/f%20.txt?x=1");
	g_autofree char *host = g_strdup_printf("\r\nHost: upload.test:%u\r\n",
						s->port);
	const char *headers[] = {"Authorization: Bearer abc.def", NULL};
	GByteArray *content;
	int fd = make_file("req.txt", 3000, &content);
	HttpsOpts o;
	const char *head;

	g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd, 3000,
				  NULL, headers, NULL, NULL, NULL), ==, 0);
	server_join(s);
	g_assert_cmpuint(s->heads->len, ==, 1);
	head = g_ptr_array_index(s->heads, 0);
	g_assert_true(g_str_has_prefix(head, "PUT /up/f%20.txt?x=1 "
				       "HTTP/1.1\r\n"));
	g_assert_nonnull(strstr(head, host));
	g_assert_nonnull(strstr(head, "\r\nContent-Length: 3000\r\n"));
	g_assert_nonnull(strstr(head, "\r\nContent-Type: "
				"application/octet-stream\r\n"));
	g_assert_nonnull(strstr(head, "\r\nAuthorization: Bearer abc.def\r\n"));
	g_assert_nonnull(strstr(head, "\r\nConnection: close\r\n"));
	g_assert_cmpstr(s->sni, ==, "upload.test");
	assert_bytes(s->body, content->data, 3000);
	close(fd);
	g_byte_array_free(content, TRUE);
}

/* 3 MiB: streamed in pieces, every byte arrives. */
static void test_put_large(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, CREATED);
	g_autofree char *url = url_of(s, "localhost", "/big");
	gsize size = 3 * 1024 * 1024;
	GByteArray *content;
	int fd = make_file("big.bin", size, &content);
	g_autofree guint8 *want = g_malloc0(size);
	Seen seen = {0};
	HttpsOpts o;

	memcpy(want, content->data, content->len);
	g_assert_cmpint(https_put(opts_via(&o, NULL), url, fd, size, NULL,
				  NULL, on_progress, &seen, NULL), ==, 0);
	g_assert_cmpuint(seen.calls, >, 10);
	g_assert_cmpuint(seen.last_done, ==, size);
	server_join(s);
	assert_bytes(s->body, want, size);
	close(fd);
	g_byte_array_free(content, TRUE);
}

/* The server refuses after the head (Prosody's 413 for a length that is
 * not the slot's): the client stops sending and reports it. */
static void test_put_413_early(void)
{
	g_autoptr(Server) s = serve_one(ANSWER_EARLY, "HTTP/1.1 413 Payload "
					"Too Large\r\nContent-Length: 0\r\n\r\n");
	g_autofree char *url = url_of(s, "upload.test", "/up");
	gsize size = 64 * 1024 * 1024;
	int fd = make_file("early.bin", size, NULL);
	g_autoptr(GError) err = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd, size,
				  NULL, NULL, NULL, NULL, &err), ==, -EFBIG);
	g_assert_error(err, HTTP_ERROR, EFBIG);
	g_assert_nonnull(strstr(err->message, "413 Payload Too Large"));
	close(fd);
	server_join(s);
	g_test_message("the server read %" G_GUINT64_FORMAT " of %zu bytes",
		       s->body_bytes, size);
	g_assert_cmpuint(s->body_bytes, <, size);
}

/* ... and when it closes at once: no SIGPIPE, and an error either way. */
static void test_put_close_early(void)
{
	g_autoptr(Server) s = serve_one(CLOSE_EARLY, "HTTP/1.1 413 Payload "
					"Too Large\r\nContent-Length: 0\r\n\r\n");
	g_autofree char *url = url_of(s, "upload.test", "/up");
	gsize size = 64 * 1024 * 1024;
	int fd = make_file("close.bin", size, NULL);
	g_autoptr(GError) err = NULL;
	HttpsOpts o;
	int rc;

	rc = https_put(opts_via(&o, "127.0.0.1"), url, fd, size, NULL, NULL,
		       NULL, NULL, &err);
	g_test_message("server closed early: %d %s", rc, err->message);
	g_assert_true(rc == -EFBIG || rc == -EPIPE || rc == -ECONNRESET);
	close(fd);
}

static void test_put_status(void)
{
	static const struct {
		const char *answer;
		int rc;
		const char *words;
	} cases[] = {
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, NULL},
		{"HTTP/1.1 204 No Content\r\n\r\n", 0, NULL},
		{"HTTP/1.1 100 Continue\r\n\r\n" CREATED, 0, NULL},
		{"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
		 -EFBIG, "HTTP 413 Payload Too Large"},
		{"HTTP/1.1 401 Unauthorized\r\n\r\n", -EACCES, "HTTP 401"},
		{"HTTP/1.1 403 Forbidden\r\n\r\n", -EACCES, "HTTP 403"},
		{"HTTP/1.1 404 Not Found\r\n\r\n", -ENOENT, "HTTP 404"},
		{"HTTP/1.1 409 Conflict\r\n\r\n", -EEXIST, "HTTP 409"},
		{"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n"
		 "\r\nbad", -EIO, "HTTP 500 Internal Server Error"},
		{"HTTP/1.1 503 Service Unavailable\r\n\r\n", -EIO, "HTTP 503"},
		{"HTTP/1.1 507 Insufficient Storage\r\n\r\n", -ENOSPC,
		 "HTTP 507"},
		{"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", -EREMOTE,
		 "HTTP 302"},
		{"garbage\r\n\r\n", -EPROTO, "not an HTTP"},
		{"HTTP/1.1 201 Created\r\n", -ECONNRESET, "middle"},
		{"", -ECONNRESET, "without an answer"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(Server) s = serve_one(ANSWER, cases[i].answer);
		g_autofree char *url = url_of(s, "upload.test", "/s");
		int fd = make_file("status.txt", 100, NULL);
		g_autoptr(GError) err = NULL;
		HttpsOpts o;
		int rc;

		rc = https_put(opts_via(&o, "127.0.0.1"), url, fd, 100, NULL,
			       NULL, NULL, NULL, &err);
		g_test_message("%u: %d %s", i, rc, err ? err->message : "");
		g_assert_cmpint(rc, ==, cases[i].rc);
		if (cases[i].words)
			g_assert_nonnull(strstr(err->message, cases[i].words));
		else
			g_assert_no_error(err);
		close(fd);
	}
}

/* Refused before any connection: the server must see none. */
static void test_put_refused_input(void)
{
	static const struct {
		const char *path; /* appended to the URL */
		const char *header, *ctype;
		int rc;
	} cases[] = {
		{"/a\r\nX: y", NULL, NULL, -EINVAL},
		{"/a", "Authorization: Bearer x\r\nHost: evil", NULL, -EINVAL},
		{"/a", "Authorization: Bearer x\nX: y", NULL, -EINVAL},
		{"/a", "Content-Length: 5", NULL, -EINVAL},
		{"/a", "host: other", NULL, -EINVAL},
		{"/a", "Transfer-Encoding: chunked", NULL, -EINVAL},
		{"/a", "No Colon", NULL, -EINVAL},
		{"/a", NULL, "text/plain\r\nX: y", -EINVAL},
	};
	g_autoptr(Server) s = serve_one(ANSWER, CREATED);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *url = url_of(s, "upload.test", cases[i].path);
		const char *headers[] = {cases[i].header, NULL};
		int fd = make_file("refused.txt", 10, NULL);
		g_autoptr(GError) err = NULL;
		HttpsOpts o;

		g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd,
					  10, cases[i].ctype, headers, NULL,
					  NULL, &err), ==, cases[i].rc);
		g_assert_error(err, HTTP_ERROR, -cases[i].rc);
		close(fd);
	}
	server_stop(g_steal_pointer(&s));
}

static void test_put_http_refused(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, CREATED);
	g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u/a",
					       s->port);
	int fd = make_file("http.txt", 10, NULL);
	g_autoptr(GError) err = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_put(opts_via(&o, NULL), url, fd, 10, NULL, NULL,
				  NULL, NULL, &err), ==, -EPROTONOSUPPORT);
	g_assert_error(err, HTTP_ERROR, EPROTONOSUPPORT);
	close(fd);
}

/* An interim response while the body goes up is no reason to stop. */
static void test_put_interim(void)
{
	g_autoptr(Server) s = serve_one(INTERIM, CREATED);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	gsize size = 4 * 1024 * 1024;
	int fd = make_file("interim.bin", size, NULL);
	g_autoptr(GError) err = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd, size,
				  NULL, NULL, NULL, NULL, &err), ==, 0);
	g_assert_no_error(err);
	server_join(s);
	g_assert_cmpuint(s->body_bytes, ==, size);
	close(fd);
}

/* The file is shorter than the size promised in Content-Length. */
static void test_put_short_file(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, CREATED);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int fd = make_file("short.txt", 10, NULL);
	g_autoptr(GError) err = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd, 100,
				  NULL, NULL, NULL, NULL, &err), ==, -EIO);
	g_assert_nonnull(strstr(err->message, "ended after 10 of 100"));
	close(fd);
}

static void test_put_progress_stops(void)
{
	g_autoptr(Server) s = serve_one(ANSWER_EARLY, NULL);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int fd = make_file("stop.bin", 1024 * 1024, NULL);
	Seen stop = {.stop_after = 3, .stop_with = 1};
	Seen intr = {.stop_after = 2, .stop_with = -EINTR};
	HttpsOpts o;

	g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd,
				  1024 * 1024, NULL, NULL, on_progress, &stop,
				  NULL), ==, -ECANCELED);
	g_assert_cmpuint(stop.calls, ==, 3);
	lseek(fd, 0, SEEK_SET);
	g_assert_cmpint(https_put(opts_via(&o, "127.0.0.1"), url, fd,
				  1024 * 1024, NULL, NULL, on_progress, &intr,
				  NULL), ==, -EINTR);
	close(fd);
}

/* The server takes the head and reads no body: the client's writes
 * block, and the timeout ends the upload. */
static void test_put_stalled(void)
{
	g_autoptr(Server) s = serve_one(SILENT_HTTP, NULL);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	gsize size = 256 * 1024 * 1024;
	int fd = make_file("stall.bin", size, NULL);
	g_autoptr(GError) err = NULL;
	gint64 t0 = g_get_monotonic_time();
	HttpsOpts o;

	opts_via(&o, "127.0.0.1");
	o.timeout_s = 1;
	g_assert_cmpint(https_put(&o, url, fd, size, NULL, NULL, NULL, NULL,
				  &err), ==, -ETIMEDOUT);
	g_test_message("stalled upload: %s after %.2f s", err->message,
		       (g_get_monotonic_time() - t0) / 1e6);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
	close(fd);
}

/* ---- GET */

typedef struct {
	const char *name;
	const char *answer;
	guint64 max;
	int rc;
	const char *body;   /* what fd_out holds after */
	const char *words;  /* in the message, when rc */
} GetCase;

static const GetCase get_cases[] = {
	{"length", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
	 100, 0, "hello world"},
	{"length-extra", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello "
	 "world", 100, 0, "hello"},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "5\r\nhello\r\n1;x=y\r\n \r\n5\r\nworld\r\n0\r\nX-T: 1\r\n\r\n", 100,
	 0, "hello world"},
	{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nhello world", 100, 0,
	 "hello world"},
	{"empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 100, 0, ""},
	{"204", "HTTP/1.1 204 No Content\r\n\r\n", 100, 0, ""},
	{"exactly-max", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 5,
	 0, "hello"},
	{"length-over-max", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
	 "hello world", 10, -EFBIG, "", "11 bytes"},
	{"chunked-over-max", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	 "\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 10, -EFBIG, "",
	 "more than"},
	{"close-over-max", "HTTP/1.1 200 OK\r\n\r\nhello world", 10, -EFBIG, "",
	 "more than"},
	{"truncated", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
	 1000, -ECONNRESET, "hello", "after 5 bytes"},
	{"chunked-truncated", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
	 "\r\n\r\n5\r\nhello\r\n", 1000, -ECONNRESET, "hello", "closed"},
	{"chunked-bad", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "zz\r\nhello\r\n", 1000, -EPROTO, "", "chunked"},
	{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", 1000,
	 -EPROTO, "", "gzip"},
	{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
	 1000, -ENOENT, "", "HTTP 404 Not Found"},
	{"410", "HTTP/1.1 410 Gone\r\n\r\n", 1000, -ENOENT, "", "HTTP 410"},
	{"500", "HTTP/1.1 500 Oops\r\n\r\n", 1000, -EIO, "", "HTTP 500 Oops"},
};

static void test_get(gconstpointer data)
{
	const GetCase *c = data;
	g_autoptr(Server) s = serve_one(ANSWER, c->answer);
	g_autofree char *url = url_of(s, "upload.test", "/file");
	int out = out_file("get.out");
	g_autoptr(GError) err = NULL;
	g_autoptr(GByteArray) got = NULL;
	HttpsOpts o;
	int rc;

	rc = https_get(opts_via(&o, "127.0.0.1"), url, out, c->max, NULL,
		       NULL, &err);
	g_test_message("%d %s", rc, err ? err->message : "");
	g_assert_cmpint(rc, ==, c->rc);
	if (c->rc)
		g_assert_nonnull(strstr(err->message, c->words));
	else
		g_assert_no_error(err);
	got = read_all(out);
	assert_bytes(got, c->body, strlen(c->body));
	server_join(s);
	g_assert_true(g_str_has_prefix(g_ptr_array_index(s->heads, 0),
				       "GET /file HTTP/1.1\r\n"));
	close(out);
}

/* 2 MiB in chunks of 64 KiB: the progress counts up to it. */
static void test_get_large_chunked(void)
{
	gsize size = 2 * 1024 * 1024, piece = 65536;
	g_autoptr(GString) answer = g_string_new("HTTP/1.1 200 OK\r\n"
		"Transfer-Encoding: chunked\r\n\r\n");
	g_autofree char *want = g_malloc(size);
	g_autoptr(Server) s = NULL;
	g_autoptr(GByteArray) got = NULL;
	g_autofree char *url = NULL;
	int out = out_file("large.out");
	Seen seen = {0};
	HttpsOpts o;

	for (gsize i = 0; i < size; i++)
		want[i] = (char)('a' + i % 26 + (i / piece) % 3);
	for (gsize i = 0; i < size; i += piece) {
		g_string_append_printf(answer, "%zx\r\n", piece);
		g_string_append_len(answer, want + i, piece);
		g_string_append(answer, "\r\n");
	}
	g_string_append(answer, "0\r\n\r\n");
	s = server_start(ANSWER, ctx_good, answer->str);
	s->answer_len = answer->len;
	server_run(s);
	url = url_of(s, "upload.test", "/big");
	g_assert_cmpint(https_get(opts_via(&o, "127.0.0.1"), url, out, size,
				  on_progress, &seen, NULL), ==, 0);
	got = read_all(out);
	assert_bytes(got, want, size);
	g_assert_cmpuint(seen.last_done, ==, size);
	g_assert_cmpuint(seen.last_total, ==, 0); /* not known in advance */
	g_assert_false(seen.backwards);
	close(out);
}

static Server *serve_script(const char *const *answers)
{
	Server *s = server_start(ANSWER, ctx_good, NULL);

	for (guint i = 0; answers[i] && i < G_N_ELEMENTS(s->answers); i++)
		s->answers[i] = answers[i];
	server_run(s);
	return s;
}

static void test_get_redirect(void)
{
	const char *answers[] = {
		"HTTP/1.1 302 Found\r\nLocation: /b?x=1\r\nContent-Length: 0"
		"\r\n\r\n",
		"HTTP/1.1 301 Moved\r\nLocation: c\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
		NULL,
	};
	g_autoptr(Server) s = serve_script(answers);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int out = out_file("redirect.out");
	g_autoptr(GByteArray) got = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_get(opts_via(&o, "127.0.0.1"), url, out, 100,
				  NULL, NULL, NULL), ==, 0);
	got = read_all(out);
	assert_bytes(got, "done", 4);
	server_join(s);
	g_assert_cmpuint(s->heads->len, ==, 3);
	g_assert_true(g_str_has_prefix(g_ptr_array_index(s->heads, 1),
				       "GET /b?x=1 HTTP/1.1\r\n"));
	g_assert_true(g_str_has_prefix(g_ptr_array_index(s->heads, 2),
				       "GET /c HTTP/1.1\r\n"));
	close(out);
}

static void test_get_redirect_loop(void)
{
	const char *loop = "HTTP/1.1 307 Again\r\nLocation: /a\r\n\r\n";
	const char *answers[] = {loop, loop, loop, loop, loop, NULL};
	g_autoptr(Server) s = serve_script(answers);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int out = out_file("loop.out");
	g_autoptr(GError) err = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_get(opts_via(&o, "127.0.0.1"), url, out, 100,
				  NULL, NULL, &err), ==, -ELOOP);
	server_join(s);
	g_assert_cmpuint(s->heads->len, ==, HTTPS_MAX_REDIRECTS + 1);
	close(out);
}

static void test_get_redirect_http(void)
{
	const char *answers[] = {
		"HTTP/1.1 302 Found\r\nLocation: http://upload.test/x\r\n\r\n",
		NULL,
	};
	g_autoptr(Server) s = serve_script(answers);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int out = out_file("tohttp.out");
	g_autoptr(GError) err = NULL;
	HttpsOpts o;

	g_assert_cmpint(https_get(opts_via(&o, "127.0.0.1"), url, out, 100,
				  NULL, NULL, &err), ==, -EPROTONOSUPPORT);
	close(out);
}

/* The request goes out; no answer ever comes. */
static void test_get_silent(void)
{
	g_autoptr(Server) s = serve_one(SILENT_HTTP, NULL);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int out = out_file("silent.out");
	g_autoptr(GError) err = NULL;
	gint64 t0 = g_get_monotonic_time();
	HttpsOpts o;

	opts_via(&o, "127.0.0.1");
	o.timeout_s = 1;
	g_assert_cmpint(https_get(&o, url, out, 100, NULL, NULL, &err), ==,
			-ETIMEDOUT);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, G_USEC_PER_SEC);
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);
	close(out);
}

/* ---- TLS and connecting */

static int get_from(Server *s, const char *host, const char *via,
		    bool insecure, const char *ca, GError **err)
{
	g_autofree char *url = url_of(s, host, "/x");
	int out = out_file("tls.out"), rc;
	HttpsOpts o;

	opts_via(&o, via);
	o.insecure = insecure;
	o.ca_file = ca;
	rc = https_get(&o, url, out, 100, NULL, NULL, err);
	close(out);
	return rc;
}

#define OK_ANSWER "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static void test_tls_silent_handshake(void)
{
	g_autoptr(Server) s = serve_one(SILENT_TCP, NULL);
	g_autofree char *url = url_of(s, "upload.test", "/a");
	int out = out_file("hs.out");
	g_autoptr(GError) err = NULL;
	gint64 t0 = g_get_monotonic_time();
	HttpsOpts o;

	opts_via(&o, "127.0.0.1");
	o.timeout_s = 1;
	g_assert_cmpint(https_get(&o, url, out, 100, NULL, NULL, &err), ==,
			-ETIMEDOUT);
	g_assert_nonnull(strstr(err->message, "handshake"));
	g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);
	close(out);
}

static void test_tls_wrong_name(void)
{
	Server *s = server_start(ANSWER, ctx_wrong, OK_ANSWER);
	g_autoptr(GError) err = NULL;

	server_run(s);
	g_assert_cmpint(get_from(s, "upload.test", "127.0.0.1", false, ca_file,
				 &err), ==, -EPERM);
	g_test_message("%s", err->message);
	g_assert_nonnull(strstr(err->message, "hostname mismatch"));
	g_clear_error(&err);
	/* the same server, checks off */
	g_assert_cmpint(get_from(s, "upload.test", "127.0.0.1", true, NULL,
				 &err), ==, 0);
	g_assert_no_error(err);
	server_stop(s);
}

static void test_tls_untrusted(void)
{
	Server *s = server_start(ANSWER, ctx_self, OK_ANSWER);
	g_autoptr(GError) err = NULL;

	server_run(s);
	g_assert_cmpint(get_from(s, "upload.test", "127.0.0.1", false, ca_file,
				 &err), ==, -EPERM);
	g_test_message("%s", err->message);
	g_assert_nonnull(strstr(err->message, "not accepted"));
	server_stop(s);
}

/* Without a CA file the system's store is used: our CA is not in it. */
static void test_tls_system_store(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, OK_ANSWER);
	g_autoptr(GError) err = NULL;

	g_assert_cmpint(get_from(s, "upload.test", "127.0.0.1", false, NULL,
				 &err), ==, -EPERM);
}

static void test_tls_ca_missing(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, OK_ANSWER);
	g_autoptr(GError) err = NULL;

	g_assert_cmpint(get_from(s, "upload.test", "127.0.0.1", false,
				 "/nonexistent/ca.pem", &err), ==, -ENOENT);
}

/* An address as the host: checked against the IP SAN, and no SNI. */
static void test_tls_ip_literal(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, OK_ANSWER);
	g_autoptr(GError) err = NULL;

	g_assert_cmpint(get_from(s, "127.0.0.1", NULL, false, ca_file, &err),
			==, 0);
	g_assert_no_error(err);
	server_join(s);
	g_assert_null(s->sni);
}

/* The name resolves (here, or /etc/hosts for localhost), no override. */
static void test_connect_by_name(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, OK_ANSWER);

	g_assert_cmpint(get_from(s, "upload.test", NULL, false, ca_file, NULL),
			==, 0);
	server_join(s);
	g_assert_cmpstr(s->sni, ==, "upload.test");
}

/* The first address refuses, the second answers. */
static void test_connect_next_address(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, OK_ANSWER);

	g_assert_cmpint(get_from(s, "two.test", NULL, false, ca_file, NULL),
			==, 0);
}

static void test_connect_refused(void)
{
	Server *s = server_start(ANSWER, ctx_good, NULL);
	g_autoptr(GError) err = NULL;

	/* a port nothing listens on: bound, never listened to */
	close(s->listen_fd);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(get_from(s, "upload.test", "127.0.0.1", false, ca_file,
				 &err), ==, -ECONNREFUSED);
	g_assert_error(err, HTTP_ERROR, ECONNREFUSED);
	server_stop(s);
}

static void test_connect_no_such_host(void)
{
	g_autoptr(Server) s = serve_one(ANSWER, OK_ANSWER);
	g_autoptr(GError) err = NULL;

	g_assert_cmpint(get_from(s, "nxdomain.test", NULL, false, ca_file,
				 &err), ==, -EHOSTUNREACH);
	g_assert_nonnull(strstr(err->message, "nxdomain.test"));
}

/* Calls from many threads at once share nothing. */
static gpointer one_get(gpointer data)
{
	Server *s = data;

	return GINT_TO_POINTER(get_from(s, "127.0.0.1", NULL, false, ca_file,
					NULL));
}

static void test_threads(void)
{
	const char *answers[] = {OK_ANSWER, OK_ANSWER, OK_ANSWER, OK_ANSWER,
				 OK_ANSWER, OK_ANSWER, OK_ANSWER, OK_ANSWER,
				 NULL};
	g_autoptr(Server) s = serve_script(answers);
	GThread *t[4];

	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		t[i] = g_thread_new("client", one_get, s);
	for (guint i = 0; i < G_N_ELEMENTS(t); i++)
		g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(t[i])), ==, 0);
}

static void rm_tmpdir(void)
{
	g_autoptr(GDir) d = g_dir_open(tmpdir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(tmpdir, name, NULL);
		g_unlink(p);
	}
	g_rmdir(tmpdir);
}

int main(int argc, char *argv[])
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("test_https.XXXXXX", NULL);
	g_assert_nonnull(tmpdir);
	make_certs();
	g_test_add_func("/https/put/created", test_put_created);
	g_test_add_func("/https/put/request", test_put_request);
	g_test_add_func("/https/put/large", test_put_large);
	g_test_add_func("/https/put/413-early", test_put_413_early);
	g_test_add_func("/https/put/server-closes-early", test_put_close_early);
	g_test_add_func("/https/put/status", test_put_status);
	g_test_add_func("/https/put/refused-input", test_put_refused_input);
	g_test_add_func("/https/put/http-refused", test_put_http_refused);
	g_test_add_func("/https/put/interim", test_put_interim);
	g_test_add_func("/https/put/short-file", test_put_short_file);
	g_test_add_func("/https/put/progress-stops", test_put_progress_stops);
	g_test_add_func("/https/put/stalled", test_put_stalled);
	for (guint i = 0; i < G_N_ELEMENTS(get_cases); i++) {
		g_autofree char *p = g_strdup_printf("/https/get/%s",
						     get_cases[i].name);
		g_test_add_data_func(p, &get_cases[i], test_get);
	}
	g_test_add_func("/https/get/large-chunked", test_get_large_chunked);
	g_test_add_func("/https/get/redirect", test_get_redirect);
	g_test_add_func("/https/get/redirect-loop", test_get_redirect_loop);
	g_test_add_func("/https/get/redirect-http", test_get_redirect_http);
	g_test_add_func("/https/get/silent", test_get_silent);
	g_test_add_func("/https/tls/silent-handshake",
			test_tls_silent_handshake);
	g_test_add_func("/https/tls/wrong-name", test_tls_wrong_name);
	g_test_add_func("/https/tls/untrusted", test_tls_untrusted);
	g_test_add_func("/https/tls/system-store", test_tls_system_store);
	g_test_add_func("/https/tls/ca-missing", test_tls_ca_missing);
	g_test_add_func("/https/tls/ip-literal", test_tls_ip_literal);
	g_test_add_func("/https/connect/by-name", test_connect_by_name);
	g_test_add_func("/https/connect/next-address",
			test_connect_next_address);
	g_test_add_func("/https/connect/refused", test_connect_refused);
	g_test_add_func("/https/connect/no-such-host",
			test_connect_no_such_host);
	g_test_add_func("/https/threads", test_threads);
	rc = g_test_run();
	SSL_CTX_free(ctx_good);
	SSL_CTX_free(ctx_wrong);
	SSL_CTX_free(ctx_self);
	rm_tmpdir();
	g_free(ca_file);
	g_free(tmpdir);
	return rc;
}
