/* http.h - the part of HTTP/1.1 (RFC 9110, 9112) a client of HTTP File
 * Upload needs, as pure functions: URLs, request header lines, the
 * response head, the chunked body, and the one table from a status to
 * an errno.  No sockets and no TLS: https.c moves the bytes.  Everything
 * parsed here comes from outside (a slot's URLs from an XMPP server, a
 * response from a web server), so tests/fuzz/fuzz_http.c feeds it
 * garbage.  Safe from any thread. */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* Errors of http.c and https.c: the code is a positive errno. */
#define HTTP_ERROR (http_error_quark())
GQuark http_error_quark(void);

/* Longer URLs are refused: a slot's URL is well under 1 KiB. */
#define HTTP_URL_MAX 8192

typedef struct {
	bool tls;        /* https (else http) */
	char *host;      /* lower case; an IPv6 literal without its brackets */
	bool ip_literal; /* host is an IPv4 or IPv6 address, not a name */
	guint16 port;    /* the URL's, or 443 / 80 */
	char *authority; /* for Host: "host", "[v6]", ":port" when not default */
	char *target;    /* path and query as sent: "/" at least, no fragment */
} HttpUrl;

/* Parse an absolute http:// or https:// URL, strictly: a host name
 * (letters, digits, '-', '_', '.' in non-empty labels), a dotted IPv4
 * address or a bracketed IPv6 one (no zone); an optional port 1-65535;
 * no user name or password.  Controls, spaces, CR and LF anywhere make
 * it invalid (EINVAL); bytes of 0x80 and above and the few printable
 * characters RFC 3986 leaves out of a path ("<>\"\\^`{|}") are sent
 * percent-encoded, as browsers do with IRIs; a '%' must start a %XX
 * escape; a fragment is dropped.  Another scheme is EPROTONOSUPPORT.
 * False with @err (HTTP_ERROR) when it is refused. */
bool http_url_parse(const char *url, HttpUrl *out, GError **err);
void http_url_clear(HttpUrl *u);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HttpUrl, http_url_clear)

/* The target of a redirect: @location (a Location header) taken relative
 * to @base as RFC 3986 does it, for the forms servers send: an absolute
 * URL, "//authority/path", "/path", or a path relative to @base's
 * directory (dot segments are left to the server). */
bool http_url_resolve(const HttpUrl *base, const char *location,
		      HttpUrl *out, GError **err);

/* May "Name: value" go out as a request header line?  The name must be
 * a token, the value must hold no control character but tab (a CR or LF
 * would let whoever wrote it add headers or a second request): false
 * with EINVAL otherwise. */
bool http_header_ok(const char *line, GError **err);

/* Response heads longer than this are refused. */
#define HTTP_HEAD_MAX 16384

typedef struct {
	int status;             /* 100-599 */
	char *reason;           /* printable ASCII only, at most 100 bytes */
	gint64 content_length;  /* -1: none */
	bool chunked;           /* Transfer-Encoding: chunked */
	char *location;         /* Location, or NULL */
} HttpResponse;

/* The length of the head at the start of @buf, through the empty line
 * that ends it; 0 while that line has not come. */
gsize http_head_length(const char *buf, gsize len);
/* Parse a response head (@len bytes, as http_head_length measured).
 * Lines end in CRLF or LF.  A Transfer-Encoding other than "chunked" is
 * refused (nothing here decompresses); Content-Length must be digits,
 * and the same in every copy; Transfer-Encoding overrides it.  False
 * with EPROTO when the head is malformed. */
bool http_response_parse(const char *head, gsize len, HttpResponse *r,
			 GError **err);
void http_response_clear(HttpResponse *r);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HttpResponse, http_response_clear)
/* Does a response to a GET or PUT with @status carry a body? */
bool http_status_has_body(int status);

/* The state of a chunked body being decoded; zero it to start. */
typedef struct {
	int state;
	guint64 left;      /* data bytes left in this chunk, or the size read */
	guint line;        /* bytes of the current size line or trailer */
	guint trailer;     /* bytes of trailers so far */
} HttpChunked;

/* Decode the next @len bytes of a chunked body in place: the data they
 * hold is moved to the front of @buf.  The data length (0 to @len), or
 * -1 with EPROTO when the framing is wrong.  Bytes after the end of the
 * body are ignored. */
gssize http_chunked_decode(HttpChunked *c, char *buf, gsize len,
			   GError **err);
/* Has the last chunk, and the trailers after it, been decoded? */
bool http_chunked_done(const HttpChunked *c);

/* The errno for a final status: 0 for 2xx;
 *   400, 411, 415, 416 EINVAL    401, 403 EACCES    404, 410 ENOENT
 *   405 EPERM (no uploads here)  408 ETIMEDOUT      409 EEXIST (Prosody:
 *   the slot was used already)   413 EFBIG          414 ENAMETOOLONG
 *   429 EBUSY                    507 ENOSPC         other 4xx, 5xx EIO
 *   3xx EREMOTE (a redirect not followed)           1xx EPROTO */
int http_status_errno(int status);
