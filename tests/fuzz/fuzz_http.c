/* libFuzzer target for http.c: what a web server answers and what an
 * XMPP server puts in a slot's URL.  The first byte picks the parser.
 * Invariants: a URL that parses has a target with no byte that could end
 * the request line (it is sent as it is), and parses again to itself; a
 * chunked body never decodes to more bytes than came in, whether fed at
 * once or in pieces, and both ways give the same data. */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "base/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void url(const char *s)
{
	g_auto(HttpUrl) u = {0}, again = {0}, next = {0};
	g_autofree char *round = NULL;

	if (!http_url_parse(s, &u, NULL))
		return;
	for (const char *p = u.target; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			__builtin_trap();
	if (u.target[0] != '/' || strchr(u.target, '#'))
		__builtin_trap();
	round = g_strdup_printf("%s://%s%s", u.tls ? "https" : "http",
				u.authority, u.target);
	if (!http_url_parse(round, &again, NULL) ||
	    strcmp(again.target, u.target) || strcmp(again.host, u.host) ||
	    again.port != u.port)
		__builtin_trap();
	/* the same text as a redirect's Location */
	http_url_resolve(&u, s + strcspn(s, "/"), &next, NULL);
}

static void chunked(const char *data, size_t size)
{
	g_autofree char *whole = g_memdup2(data, size);
	g_autofree char *piece = g_malloc(size + 1);
	GString *bytewise = g_string_new(NULL);
	HttpChunked a = {0}, b = {0};
	gssize n = http_chunked_decode(&a, whole, size, NULL);
	bool failed = false;

	if (n > (gssize)size)
		__builtin_trap();
	for (size_t i = 0; i < size && !failed; i += 3) {
		size_t len = MIN(3, size - i);
		gssize m;
		memcpy(piece, data + i, len);
		m = http_chunked_decode(&b, piece, len, NULL);
		if (m < 0)
			failed = true;
		else
			g_string_append_len(bytewise, piece, m);
	}
	if ((n < 0) != failed ||
	    (n >= 0 && ((gsize)n != bytewise->len ||
			memcmp(whole, bytewise->str, n))))
		__builtin_trap();
	g_string_free(bytewise, TRUE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *s = NULL;
	g_auto(HttpResponse) r = {0};
	gsize head;

	if (size < 1)
		return 0;
	s = g_strndup((const char *)data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
		url(s);
		break;
	case 1:
		head = http_head_length((const char *)data + 1, size - 1);
		if (head > size - 1)
			__builtin_trap();
		http_response_parse((const char *)data + 1,
				    head ? head : size - 1, &r, NULL);
		break;
	case 2:
		chunked((const char *)data + 1, size - 1);
		break;
	default:
		http_header_ok(s, NULL);
	}
	return 0;
}
