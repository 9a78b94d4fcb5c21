/* Table-driven tests of http.c: URLs, header lines, response heads, the
 * chunked decoder and the status table. */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "base/http.h"

typedef struct {
	const char *name;
	const char *url;
	int err;                /* 0: parsed */
	bool tls;
	const char *host;
	guint16 port;
	const char *authority;
	const char *target;
} UrlCase;

static const UrlCase url_cases[] = {
	{"plain", "https://upload.example.org/a/b.png", 0, true,
	 "upload.example.org", 443, "upload.example.org", "/a/b.png"},
	{"port", "https://localhost:5281/file_share/x/y.txt", 0, true,
	 "localhost", 5281, "localhost:5281", "/file_share/x/y.txt"},
	{"default-port-named", "https://a.b:443/x", 0, true, "a.b", 443,
	 "a.b", "/x"},
	{"http", "http://a.b/x", 0, false, "a.b", 80, "a.b", "/x"},
	{"http-port", "http://a.b:443/x", 0, false, "a.b", 443, "a.b:443",
	 "/x"},
	{"case", "HTTPS://Upload.Example.ORG/A", 0, true,
	 "upload.example.org", 443, "upload.example.org", "/A"},
	{"no-path", "https://a.b", 0, true, "a.b", 443, "a.b", "/"},
	{"query-only", "https://a.b?x=1", 0, true, "a.b", 443, "a.b",
	 "/?x=1"},
	{"query", "https://a.b/p?q=1&r=%20", 0, true, "a.b", 443, "a.b",
	 "/p?q=1&r=%20"},
	{"fragment", "https://a.b/p#frag", 0, true, "a.b", 443, "a.b", "/p"},
	{"ipv4", "https://127.0.0.1:8443/x", 0, true, "127.0.0.1", 8443,
	 "127.0.0.1:8443", "/x"},
	{"ipv6", "https://[::1]:8443/x", 0, true, "::1", 8443, "[::1]:8443",
	 "/x"},
	{"ipv6-default", "https://[2001:DB8::1]/", 0, true, "2001:db8::1", 443,
	 "[2001:db8::1]", "/"},
	{"utf8-path", "https://a.b/\xc3\xa9t\xc3\xa9.txt", 0, true, "a.b", 443,
	 "a.b", "/%C3%A9t%C3%A9.txt"},
	{"unsafe-printable", "https://a.b/x{1}|\"", 0, true, "a.b", 443, "a.b",
	 "/x%7B1%7D%7C%22"},
	{"underscore", "https://up_load.a.b/", 0, true, "up_load.a.b", 443,
	 "up_load.a.b", "/"},
	{"cr", "https://a.b/x\r\nHost: evil", EINVAL},
	{"lf-in-host", "https://a\n.b/x", EINVAL},
	{"space", "https://a.b/x y", EINVAL},
	{"tab", "https://a.b/x\ty", EINVAL},
	{"del", "https://a.b/x\x7f", EINVAL},
	{"bad-percent", "https://a.b/x%2", EINVAL},
	{"bad-percent-hex", "https://a.b/x%zz", EINVAL},
	{"ftp", "ftp://a.b/x", EPROTONOSUPPORT},
	{"xmpp", "xmpp://a.b/x", EPROTONOSUPPORT},
	{"relative", "/x/y", EINVAL},
	{"no-scheme", "a.b/x", EINVAL},
	{"empty", "", EINVAL},
	{"no-host", "https:///x", EINVAL},
	{"userinfo", "https://user:pw@a.b/x", EINVAL},
	{"port-zero", "https://a.b:0/x", EINVAL},
	{"port-big", "https://a.b:65536/x", EINVAL},
	{"port-empty", "https://a.b:/x", EINVAL},
	{"port-junk", "https://a.b:12a/x", EINVAL},
	{"port-long", "https://a.b:000443/x", EINVAL},
	{"empty-label", "https://a..b/x", EINVAL},
	{"trailing-dot", "https://a.b./x", EINVAL},
	{"bad-host-char", "https://a!b/x", EINVAL},
	{"bad-ipv4", "https://1.2.3/x", EINVAL},
	{"ipv4-big", "https://1.2.3.256/x", EINVAL},
	{"ipv6-unclosed", "https://[::1/x", EINVAL},
	{"ipv6-junk", "https://[::1]x/", EINVAL},
	{"ipv6-bad", "https://[::g]/", EINVAL},
	{"ipv6-zone", "https://[fe80::1%25eth0]/", EINVAL},
	{"scheme-slash", "ht/tps://a.b/", EINVAL},
};

static void test_url(gconstpointer data)
{
	const UrlCase *c = data;
	g_auto(HttpUrl) u = {0};
	g_autoptr(GError) err = NULL;
	bool ok = http_url_parse(c->url, &u, &err);

	if (c->err) {
		g_assert_false(ok);
		g_assert_error(err, HTTP_ERROR, c->err);
		g_assert_null(u.host);
		return;
	}
	g_assert_no_error(err);
	g_assert_true(ok);
	g_assert_cmpint(u.tls, ==, c->tls);
	g_assert_cmpstr(u.host, ==, c->host);
	g_assert_cmpuint(u.port, ==, c->port);
	g_assert_cmpstr(u.authority, ==, c->authority);
	g_assert_cmpstr(u.target, ==, c->target);
}

static void test_url_long(void)
{
	g_autofree char *path = g_strnfill(HTTP_URL_MAX, 'a');
	g_autofree char *url = g_strconcat("https://a.b/", path, NULL);
	g_auto(HttpUrl) u = {0};
	g_autoptr(GError) err = NULL;

	g_assert_false(http_url_parse(url, &u, &err));
	g_assert_error(err, HTTP_ERROR, EINVAL);
	g_assert_false(http_url_parse(NULL, &u, NULL));
}

static void test_ip_literal(void)
{
	g_auto(HttpUrl) a = {0}, b = {0}, c = {0};

	g_assert_true(http_url_parse("https://10.0.0.1/", &a, NULL));
	g_assert_true(a.ip_literal);
	g_assert_true(http_url_parse("https://[::1]/", &b, NULL));
	g_assert_true(b.ip_literal);
	g_assert_true(http_url_parse("https://10.0.0.1.example/", &c, NULL));
	g_assert_false(c.ip_literal);
}

typedef struct {
	const char *base, *location, *want; /* want NULL: refused */
} ResolveCase;

static const ResolveCase resolve_cases[] = {
	{"https://a.b/x/y?q", "https://c.d/z", "https://c.d/z"},
	{"https://a.b:8443/x/y?q", "/z?w", "https://a.b:8443/z?w"},
	{"https://a.b/x/y?q/r", "z", "https://a.b/x/z"},
	{"https://a.b/", "z", "https://a.b/z"},
	{"https://a.b/x", "//c.d:1/e", "https://c.d:1/e"},
	{"https://a.b/x", "http://c.d/e", "http://c.d/e"},
	{"https://a.b/x", "", NULL},
	{"https://a.b/x", "https://c.d/\r\nX: y", NULL},
	{"https://a.b/x", "ftp://c.d/e", NULL},
};

static void test_resolve(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(resolve_cases); i++) {
		const ResolveCase *c = &resolve_cases[i];
		g_auto(HttpUrl) base = {0}, got = {0}, want = {0};
		bool ok;

		g_assert_true(http_url_parse(c->base, &base, NULL));
		ok = http_url_resolve(&base, c->location, &got, NULL);
		if (!c->want) {
			g_assert_false(ok);
			continue;
		}
		g_assert_true(ok);
		g_assert_true(http_url_parse(c->want, &want, NULL));
		g_assert_cmpint(got.tls, ==, want.tls);
		g_assert_cmpstr(got.authority, ==, want.authority);
		g_assert_cmpstr(got.target, ==, want.target);
	}
}

static void test_header_ok(void)
{
	static const struct {
		const char *line;
		bool ok;
	} cases[] = {
		{"Authorization: Bearer abc.def", true},
		{"Cookie: a=b; c=d", true},
		{"Expires: Wed, 21 Oct 2015 07:28:00 GMT", true},
		{"X-Empty:", true},
		{"X-Tab: a\tb", true},
		{"Authorization: Bearer x\r\nHost: evil", false},
		{"Authorization: x\ny", false},
		{"Authorization: x\ry", false},
		{"Bad Name: x", false},
		{": x", false},
		{"NoColon", false},
		{"X: \x01", false},
		{"X: \x7f", false},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) err = NULL;
		bool ok = http_header_ok(cases[i].line, &err);
		g_assert_cmpint(ok, ==, cases[i].ok);
		if (!ok)
			g_assert_error(err, HTTP_ERROR, EINVAL);
	}
}

typedef struct {
	const char *name;
	const char *head;
	bool ok;
	int status;
	gint64 length;
	bool chunked;
	const char *reason;
	const char *location;
} HeadCase;

static const HeadCase head_cases[] = {
	{"created", "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", true,
	 201, 0, false, "Created"},
	{"lf-only", "HTTP/1.1 200 OK\nContent-Length: 5\n\n", true, 200, 5,
	 false, "OK"},
	{"no-reason", "HTTP/1.1 200\r\n\r\n", true, 200, -1, false, ""},
	{"empty-reason", "HTTP/1.1 404 \r\n\r\n", true, 404, -1, false, ""},
	{"http10", "HTTP/1.0 200 OK\r\n\r\n", true, 200, -1, false, "OK"},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	 true, 200, -1, true, "OK"},
	{"chunked-case", "HTTP/1.1 200 OK\r\ntransfer-encoding:  Chunked \r\n"
	 "\r\n", true, 200, -1, true, "OK"},
	{"te-wins", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
	 "Transfer-Encoding: chunked\r\n\r\n", true, 200, -1, true, "OK"},
	{"same-length-twice", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
	 "Content-Length: 7\r\n\r\n", true, 200, 7, false, "OK"},
	{"location", "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n", true, 302,
	 -1, false, "Found", "/x"},
	{"reason-sanitized", "HTTP/1.1 500 Bad\x01\xff\r\n\r\n", true, 500, -1,
	 false, "Bad??"},
	{"other-headers", "HTTP/1.1 200 OK\r\nServer: x\r\nX-A: b:c\r\n\r\n",
	 true, 200, -1, false, "OK"},
	{"two-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
	 "Content-Length: 8\r\n\r\n", false},
	{"length-list", "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n",
	 false},
	{"length-negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	 false},
	{"length-huge", "HTTP/1.1 200 OK\r\nContent-Length: "
	 "99999999999999999999\r\n\r\n", false},
	{"length-empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false},
	{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false},
	{"gzip-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked"
	 "\r\n\r\n", false},
	{"chunked-twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
	 "chunked\r\n\r\n", false},
	{"te-empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", false},
	{"http2", "HTTP/2 200 OK\r\n\r\n", false},
	{"not-http", "SSH-2.0-OpenSSH\r\n\r\n", false},
	{"status-short", "HTTP/1.1 20 OK\r\n\r\n", false},
	{"status-999", "HTTP/1.1 999 OK\r\n\r\n", false},
	{"status-junk", "HTTP/1.1 2000 OK\r\n\r\n", false},
	{"space-before-colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
	 false},
	{"folded", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false},
	{"bare-cr", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", false},
	{"two-locations", "HTTP/1.1 302 Found\r\nLocation: /a\r\n"
	 "Location: /b\r\n\r\n", false},
	{"nul", "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", false},
};

static void test_head(gconstpointer data)
{
	const HeadCase *c = data;
	g_auto(HttpResponse) r = {0};
	g_autoptr(GError) err = NULL;
	gsize len = strlen(c->head);
	bool ok;

	if (g_str_equal(c->name, "nul"))
		len = sizeof "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n" - 1;
	g_assert_cmpuint(http_head_length(c->head, len), ==, len);
	ok = http_response_parse(c->head, len, &r, &err);
	if (!c->ok) {
		g_assert_false(ok);
		g_assert_error(err, HTTP_ERROR, EPROTO);
		return;
	}
	g_assert_no_error(err);
	g_assert_cmpint(r.status, ==, c->status);
	g_assert_cmpint(r.content_length, ==, c->length);
	g_assert_cmpint(r.chunked, ==, c->chunked);
	g_assert_cmpstr(r.reason, ==, c->reason);
	g_assert_cmpstr(r.location, ==, c->location);
}

static void test_head_length(void)
{
	const char *h = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nBODY";

	g_assert_cmpuint(http_head_length(h, strlen(h)), ==, strlen(h) - 4);
	for (gsize i = 0; i < strlen(h) - 4; i++)
		g_assert_cmpuint(http_head_length(h, i), ==, 0);
	g_assert_cmpuint(http_head_length("a\n\nb", 4), ==, 3);
	g_assert_cmpuint(http_head_length("a\r\n\r", 4), ==, 0);
}

typedef struct {
	const char *name;
	const char *in;
	const char *out;  /* NULL: refused */
	bool done;
} ChunkCase;

static const ChunkCase chunk_cases[] = {
	{"one", "5\r\nhello\r\n0\r\n\r\n", "hello", true},
	{"two", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", true},
	{"hex", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n",
	 "0123456789abcdefghij", true},
	{"lf-only", "3\nabc\n0\n\n", "abc", true},
	{"ext", "3;name=value\r\nabc\r\n0;x\r\n\r\n", "abc", true},
	{"trailers", "3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", "abc", true},
	{"after-end", "3\r\nabc\r\n0\r\n\r\nGARBAGE", "abc", true},
	{"not-yet", "3\r\nabc\r\n", "abc", false},
	{"no-trailer-end", "3\r\nabc\r\n0\r\n", "abc", false},
	{"leading-zeros", "0003\r\nabc\r\n0\r\n\r\n", "abc", true},
	{"no-size", "\r\nabc\r\n", NULL},
	{"bad-size", "x\r\nabc\r\n", NULL},
	{"negative", "-3\r\nabc\r\n", NULL},
	{"missing-crlf", "3\r\nabcX\r\n0\r\n\r\n", NULL},
	{"cr-without-lf", "3\rabc", NULL},
	{"overflow", "fffffffffffffffff\r\n", NULL},
	{"ctl-in-ext", "3;\x01\r\nabc\r\n", NULL},
};

/* Each case fed whole, and one byte at a time. */
static void test_chunked(gconstpointer data)
{
	const ChunkCase *c = data;

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		HttpChunked ch = {0};
		g_autoptr(GString) out = g_string_new(NULL);
		gsize len = strlen(c->in), step = bytewise ? 1 : len;
		bool refused = false;

		for (gsize i = 0; i < len && !refused; i += step) {
			char buf[64];
			gsize n = MIN(step, len - i);
			gssize d;
			memcpy(buf, c->in + i, n);
			d = http_chunked_decode(&ch, buf, n, NULL);
			if (d < 0)
				refused = true;
			else
				g_string_append_len(out, buf, d);
		}
		if (!c->out) {
			g_assert_true(refused);
			continue;
		}
		g_assert_false(refused);
		g_assert_cmpstr(out->str, ==, c->out);
		g_assert_cmpint(http_chunked_done(&ch), ==, c->done);
	}
}

static void test_chunked_big(void)
{
	/* a size of 2^40: the data length fits, the decoder does not trip */
	char in[] = "10000000000\r\nabc";
	HttpChunked ch = {0};
	gssize d = http_chunked_decode(&ch, in, strlen(in), NULL);

	g_assert_cmpint(d, ==, 3);
	g_assert_cmpuint(ch.left, ==, (G_GUINT64_CONSTANT(1) << 40) - 3);
	g_assert_false(http_chunked_done(&ch));
}

static void test_status(void)
{
	static const struct {
		int status, err;
	} cases[] = {
		{200, 0}, {201, 0}, {204, 0}, {301, EREMOTE}, {400, EINVAL},
		{401, EACCES}, {403, EACCES}, {404, ENOENT}, {409, EEXIST},
		{410, ENOENT}, {413, EFBIG}, {418, EIO}, {429, EBUSY},
		{500, EIO}, {503, EIO}, {507, ENOSPC}, {101, EPROTO},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(http_status_errno(cases[i].status), ==,
				cases[i].err);
	g_assert_false(http_status_has_body(204));
	g_assert_false(http_status_has_body(304));
	g_assert_true(http_status_has_body(200));
}

int main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(url_cases); i++) {
		g_autofree char *p = g_strdup_printf("/http/url/%s",
						     url_cases[i].name);
		g_test_add_data_func(p, &url_cases[i], test_url);
	}
	g_test_add_func("/http/url/too-long", test_url_long);
	g_test_add_func("/http/url/ip-literal", test_ip_literal);
	g_test_add_func("/http/url/resolve", test_resolve);
	g_test_add_func("/http/header-ok", test_header_ok);
	for (guint i = 0; i < G_N_ELEMENTS(head_cases); i++) {
		g_autofree char *p = g_strdup_printf("/http/head/%s",
						     head_cases[i].name);
		g_test_add_data_func(p, &head_cases[i], test_head);
	}
	g_test_add_func("/http/head/length", test_head_length);
	for (guint i = 0; i < G_N_ELEMENTS(chunk_cases); i++) {
		g_autofree char *p = g_strdup_printf("/http/chunked/%s",
						     chunk_cases[i].name);
		g_test_add_data_func(p, &chunk_cases[i], test_chunked);
	}
	g_test_add_func("/http/chunked/big", test_chunked_big);
	g_test_add_func("/http/status", test_status);
	return g_test_run();
}
