/* http.c - see http.h.
 *
 * Strict where a mistake would be a hole (CR/LF in what we send, framing
 * of what we read: a wrong Content-Length or chunk size must never be
 * taken for data), tolerant where RFC 9112 lets a client be (a bare LF
 * ends a line, the reason phrase may be missing). */
#include "base/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define HOST_MAX 253
#define REASON_MAX 100
#define CHUNK_LINE_MAX 4096  /* a size and its extensions */
#define TRAILERS_MAX 16384

G_DEFINE_QUARK(http-error-quark, http_error)

static bool fail(GError **err, int code, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

static bool fail(GError **err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err && !*err)
		*err = g_error_new_valist(HTTP_ERROR, code, fmt, ap);
	va_end(ap);
	return false;
}

static bool is_tchar(char c)
{
	return g_ascii_isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* ---- URLs */

void http_url_clear(HttpUrl *u)
{
	g_clear_pointer(&u->host, g_free);
	g_clear_pointer(&u->authority, g_free);
	g_clear_pointer(&u->target, g_free);
}

/* The scheme, up to "://": true for http and https; @rest after it. */
static bool parse_scheme(const char *url, HttpUrl *out, const char **rest,
			 GError **err)
{
	const char *sep = strstr(url, "://");
	gsize n = sep ? (gsize)(sep - url) : 0;

	if (!sep || !n || strcspn(url, "/?#") < n)
		return fail(err, EINVAL, "not an absolute URL");
	if (n == 5 && !g_ascii_strncasecmp(url, "https", 5))
		out->tls = true;
	else if (n == 4 && !g_ascii_strncasecmp(url, "http", 4))
		out->tls = false;
	else
		return fail(err, EPROTONOSUPPORT, "URL scheme '%.*s' is not "
			    "https", (int)MIN(n, 20), url);
	*rest = sep + 3;
	return true;
}

static bool host_name_ok(const char *h)
{
	gsize label = 0, n = strlen(h);

	if (!n || n > HOST_MAX)
		return false;
	for (; *h; h++) {
		if (*h == '.') {
			if (!label)
				return false;
			label = 0;
		} else if (g_ascii_isalnum(*h) || *h == '-' || *h == '_') {
			label++;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* "host", "[v6]", each with ":port" or not: @a is the authority's text. */
static bool parse_authority(const char *a, gsize len, HttpUrl *out,
			    GError **err)
{
	g_autofree char *auth = g_strndup(a, len);
	char *port = NULL, *host = auth;
	unsigned char addr[16];
	guint16 dflt;
	bool v6;

	if (strchr(auth, '@'))
		return fail(err, EINVAL, "a user name in a URL is not sent");
	if (*host == '[') {
		char *end = strchr(host, ']');
		if (!end)
			return fail(err, EINVAL, "unclosed '[' in URL host");
		*end = '\0';
		host++;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return fail(err, EINVAL, "junk after ']' in URL host");
		if (inet_pton(AF_INET6, host, addr) != 1)
			return fail(err, EINVAL, "bad IPv6 address in URL");
		out->ip_literal = true;
	} else {
		port = strchr(host, ':');
		if (port)
			*port++ = '\0';
		if (!host_name_ok(host))
			return fail(err, EINVAL, "bad host name in URL");
		/* all digits and dots: an IPv4 address, or nothing */
		if (strspn(host, "0123456789.") == strlen(host)) {
			if (inet_pton(AF_INET, host, addr) != 1)
				return fail(err, EINVAL, "bad IPv4 address "
					    "in URL");
			out->ip_literal = true;
		}
	}
	dflt = out->tls ? 443 : 80;
	out->port = dflt;
	if (port) {
		gsize digits = strspn(port, "0123456789");
		guint64 p = digits && digits <= 5 && !port[digits] ?
			g_ascii_strtoull(port, NULL, 10) : 0;
		if (p < 1 || p > 65535)
			return fail(err, EINVAL, "bad port in URL");
		out->port = (guint16)p;
	}
	out->host = g_ascii_strdown(host, -1);
	v6 = strchr(out->host, ':') != NULL;
	if (out->port == dflt)
		out->authority = g_strdup_printf(v6 ? "[%s]" : "%s",
						 out->host);
	else
		out->authority = g_strdup_printf(v6 ? "[%s]:%u" : "%s:%u",
						 out->host, out->port);
	return true;
}

/* Path and query, up to a '#': what goes on the request line (the
 * caller refused controls and spaces). */
static bool parse_target(const char *p, HttpUrl *out, GError **err)
{
	GString *t = g_string_new(*p == '/' ? "" : "/");

	for (; *p && *p != '#'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '%' && !(g_ascii_isxdigit(p[1]) &&
				  g_ascii_isxdigit(p[2]))) {
			g_string_free(t, TRUE);
			return fail(err, EINVAL, "'%%' without two hex digits "
				    "in a URL");
		}
		if (c >= 0x80 || strchr("<>\"\\^`{|}", c))
			g_string_append_printf(t, "%%%02X", c);
		else
			g_string_append_c(t, (char)c);
	}
	out->target = g_string_free(t, FALSE);
	return true;
}

bool http_url_parse(const char *url, HttpUrl *out, GError **err)
{
	const char *rest = NULL;
	gsize alen;

	memset(out, 0, sizeof *out);
	if (!url || strlen(url) > HTTP_URL_MAX)
		return fail(err, EINVAL, "no URL, or one over %d bytes",
			    HTTP_URL_MAX);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return fail(err, EINVAL, "a control character or "
				    "space in a URL");
	if (!parse_scheme(url, out, &rest, err))
		return false;
	alen = strcspn(rest, "/?#");
	if (!alen)
		return fail(err, EINVAL, "no host in URL");
	if (!parse_authority(rest, alen, out, err) ||
	    !parse_target(rest + alen, out, err)) {
		http_url_clear(out);
		return false;
	}
	return true;
}

bool http_url_resolve(const HttpUrl *base, const char *location,
		      HttpUrl *out, GError **err)
{
	const char *scheme = base->tls ? "https:" : "http:";
	g_autofree char *abs = NULL;

	memset(out, 0, sizeof *out);
	if (!location || !*location)
		return fail(err, EPROTO, "a redirect without a Location");
	if (location[0] == '/' && location[1] == '/') {
		abs = g_strconcat(scheme, location, NULL);
	} else if (location[0] == '/') {
		abs = g_strconcat(scheme, "//", base->authority, location,
				  NULL);
	} else if (strstr(location, "://") &&
		   strcspn(location, ":") < strcspn(location, "/?#")) {
		abs = g_strdup(location);
	} else {
		/* relative to the directory of base's path (a target
		 * starts with '/', so there is one) */
		gsize plen = strcspn(base->target, "?");
		const char *slash = g_strrstr_len(base->target, plen, "/");
		abs = g_strdup_printf("%s//%s%.*s%s", scheme, base->authority,
				      (int)(slash - base->target) + 1,
				      base->target, location);
	}
	return http_url_parse(abs, out, err);
}

/* ---- request header lines */

bool http_header_ok(const char *line, GError **err)
{
	const char *p = line;

	while (is_tchar(*p))
		p++;
	if (p == line || *p != ':')
		return fail(err, EINVAL, "header '%.40s' has no valid name",
			    line);
	for (p++; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return fail(err, EINVAL, "header '%.*s' has a control "
				    "character (CR or LF?) in its value",
				    (int)MIN(strcspn(line, ":"), 40), line);
	return true;
}

/* ---- the response head */

void http_response_clear(HttpResponse *r)
{
	g_clear_pointer(&r->reason, g_free);
	g_clear_pointer(&r->location, g_free);
}

gsize http_head_length(const char *buf, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

bool http_status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

/* "HTTP/1.1 201 Created" */
static bool parse_status_line(const char *l, HttpResponse *r, GError **err)
{
	GString *reason;

	if (strncmp(l, "HTTP/1.", 7) || !g_ascii_isdigit(l[7]) || l[8] != ' ')
		return fail(err, EPROTO, "not an HTTP/1.x response");
	l += 9;
	if (!g_ascii_isdigit(l[0]) || !g_ascii_isdigit(l[1]) ||
	    !g_ascii_isdigit(l[2]) || (l[3] && l[3] != ' '))
		return fail(err, EPROTO, "no status code in the response");
	r->status = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (r->status < 100 || r->status > 599)
		return fail(err, EPROTO, "status %d is no HTTP status",
			    r->status);
	/* only for messages: keep it printable and short */
	reason = g_string_new(NULL);
	for (l += l[3] ? 4 : 3; *l && reason->len < REASON_MAX; l++)
		g_string_append_c(reason, *l >= 0x20 && *l < 0x7f ? *l : '?');
	r->reason = g_string_free(reason, FALSE);
	return true;
}

static bool parse_content_length(const char *v, HttpResponse *r,
				  GError **err)
{
	gsize digits = strspn(v, "0123456789");
	gint64 n;

	if (!digits || v[digits] || digits > 18)
		return fail(err, EPROTO, "bad Content-Length '%.30s'", v);
	n = (gint64)g_ascii_strtoull(v, NULL, 10);
	if (r->content_length >= 0 && r->content_length != n)
		return fail(err, EPROTO, "two different Content-Lengths");
	r->content_length = n;
	return true;
}

/* The codings, in the order applied: only "chunked", once and last. */
static bool parse_transfer_encoding(const char *v, HttpResponse *r,
				    GError **err)
{
	g_auto(GStrv) codings = g_strsplit(v, ",", -1);

	for (guint i = 0; codings[i]; i++) {
		char *c = g_strstrip(codings[i]);
		if (!*c)
			continue;
		if (g_ascii_strcasecmp(c, "chunked") || r->chunked)
			return fail(err, EPROTO, "Transfer-Encoding '%.30s' "
				    "is not supported", v);
		r->chunked = true;
	}
	return true;
}

static bool parse_field(char *line, HttpResponse *r, bool *te_seen,
			GError **err)
{
	char *colon = line, *v;

	while (is_tchar(*colon))
		colon++;
	/* RFC 9112 §5.1: no space before the colon; §5.2: no folding */
	if (colon == line || *colon != ':')
		return fail(err, EPROTO, "malformed header line '%.40s'",
			    line);
	*colon = '\0';
	v = g_strstrip(colon + 1);
	for (const char *p = v; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return fail(err, EPROTO, "a control character in "
				    "header %.40s", line);
	if (!g_ascii_strcasecmp(line, "Content-Length"))
		return parse_content_length(v, r, err);
	if (!g_ascii_strcasecmp(line, "Transfer-Encoding")) {
		*te_seen = true;
		return parse_transfer_encoding(v, r, err);
	}
	if (!g_ascii_strcasecmp(line, "Location")) {
		if (r->location)
			return fail(err, EPROTO, "two Locations");
		r->location = g_strdup(v);
	}
	return true;
}

bool http_response_parse(const char *head, gsize len, HttpResponse *r,
			 GError **err)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	bool te_seen = false;

	memset(r, 0, sizeof *r);
	r->content_length = -1;
	if (len > HTTP_HEAD_MAX || memchr(head, '\0', len))
		return fail(err, EPROTO, "response head too long or binary");
	text = g_strndup(head, len);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		char *l = lines[i];
		gsize n = strlen(l);
		if (n && l[n - 1] == '\r')
			l[--n] = '\0';
		if (strchr(l, '\r')) {
			http_response_clear(r);
			return fail(err, EPROTO, "a CR inside a header line");
		}
		if (!n && i)
			break; /* the empty line */
		if (!(i ? parse_field(l, r, &te_seen, err) :
		      parse_status_line(l, r, err))) {
			http_response_clear(r);
			return false;
		}
	}
	if (te_seen && !r->chunked) {
		http_response_clear(r);
		return fail(err, EPROTO, "an empty Transfer-Encoding");
	}
	if (r->chunked)
		r->content_length = -1; /* RFC 9112 §6.3: TE wins */
	return true;
}

/* ---- the chunked body (RFC 9112 §7.1) */

enum {
	CH_SIZE,       /* hex digits of a chunk size */
	CH_EXT,        /* after the size: extensions, up to the LF */
	CH_SIZE_LF,    /* a CR ended the size line: the LF */
	CH_DATA,       /* c->left bytes of data */
	CH_DATA_CR,    /* the CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER,    /* at the start of a trailer line (or the end) */
	CH_TRAILER_IN, /* inside one */
	CH_END_LF,     /* a CR on an empty line: its LF ends the body */
	CH_DONE,
	CH_ERROR,
};

bool http_chunked_done(const HttpChunked *c)
{
	return c->state == CH_DONE;
}

/* One framing byte; false when it is wrong. */
static bool chunk_byte(HttpChunked *c, char b)
{
	switch (c->state) {
	case CH_SIZE:
		if (g_ascii_isxdigit(b)) {
			if (c->left >> 59) /* more would overflow */
				return false;
			c->left = c->left * 16 + g_ascii_xdigit_value(b);
			return ++c->line < CHUNK_LINE_MAX;
		}
		if (!c->line) /* no digit yet */
			return false;
		if (b == '\n')
			break;
		if (b == '\r')
			c->state = CH_SIZE_LF;
		else if (b == ';' || b == ' ' || b == '\t')
			c->state = CH_EXT;
		else
			return false;
		return true;
	case CH_EXT:
		if (++c->line >= CHUNK_LINE_MAX)
			return false;
		if (b == '\n')
			break;
		if (b == '\r')
			c->state = CH_SIZE_LF;
		return b == '\r' || b == '\t' ||
		       ((unsigned char)b >= 0x20 && b != 0x7f);
	case CH_SIZE_LF:
		if (b != '\n')
			return false;
		break;
	case CH_DATA_CR:
		if (b == '\n') {
			c->state = CH_SIZE;
			return true;
		}
		c->state = CH_DATA_LF;
		return b == '\r';
	case CH_DATA_LF:
		c->state = CH_SIZE;
		return b == '\n';
	case CH_TRAILER:
	case CH_TRAILER_IN:
		if (++c->trailer > TRAILERS_MAX)
			return false;
		if (c->state == CH_TRAILER && (b == '\r' || b == '\n')) {
			c->state = b == '\r' ? CH_END_LF : CH_DONE;
			return true;
		}
		c->state = b == '\n' ? CH_TRAILER : CH_TRAILER_IN;
		return true;
	case CH_END_LF:
		c->state = CH_DONE;
		return b == '\n';
	default:
		return false;
	}
	/* the size line ended: data, or the last chunk */
	c->line = 0;
	c->state = c->left ? CH_DATA : CH_TRAILER;
	return true;
}

gssize http_chunked_decode(HttpChunked *c, char *buf, gsize len,
			   GError **err)
{
	gsize in = 0, out = 0;

	while (in < len && c->state != CH_DONE) {
		if (c->state == CH_DATA) {
			gsize n = (gsize)MIN((guint64)(len - in), c->left);
			memmove(buf + out, buf + in, n);
			in += n;
			out += n;
			c->left -= n;
			if (!c->left)
				c->state = CH_DATA_CR;
			continue;
		}
		if (!chunk_byte(c, buf[in++])) {
			c->state = CH_ERROR;
			fail(err, EPROTO, "malformed chunked body");
			return -1;
		}
	}
	return (gssize)out;
}

/* ---- status to errno */

int http_status_errno(int status)
{
	static const struct {
		int status, err;
	} map[] = {
		{400, EINVAL}, {401, EACCES}, {403, EACCES}, {404, ENOENT},
		{405, EPERM}, {408, ETIMEDOUT}, {409, EEXIST}, {410, ENOENT},
		{411, EINVAL}, {413, EFBIG}, {414, ENAMETOOLONG},
		{415, EINVAL}, {416, EINVAL}, {429, EBUSY}, {507, ENOSPC},
	};

	if (status >= 200 && status < 300)
		return 0;
	for (guint i = 0; i < G_N_ELEMENTS(map); i++)
		if (map[i].status == status)
			return map[i].err;
	if (status >= 300 && status < 400)
		return EREMOTE;
	return status < 200 ? EPROTO : EIO;
}
