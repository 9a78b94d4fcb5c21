/* jid.c - RFC 7622 JIDs.
 *
 * Each part is checked for UTF-8 and control characters on the raw input
 * (normalization needs valid UTF-8), then normalized, then checked for
 * length and forbidden characters: NFC alone can turn an allowed character
 * into a forbidden one (U+037E GREEK QUESTION MARK becomes ';', U+2000
 * becomes another space), so the rules apply to what is stored.
 *
 * This is a working subset of the PRECIS profiles (RFC 8264/8265), not all
 * of them: no IDNA2008 code point tables, no bidi rule, no punycode. */
#include "base/jid.h"

#include <arpa/inet.h>
#include <string.h>

#define LABEL_MAX 63
#define DNS_NAME_MAX 253

G_DEFINE_QUARK(jid-error-quark, jid_error)

static bool is_control(gunichar c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/* "':'" for printable ASCII, "'é' (U+00E9)" otherwise, so an error names
 * the culprit even when it is invisible or looks like another character. */
static char *describe_char(gunichar c)
{
	char buf[8] = { 0 };

	if (c > 0x20 && c < 0x7f)
		return g_strdup_printf("'%c'", (char)c);
	if (is_control(c) || g_unichar_isspace(c))
		return g_strdup_printf("U+%04X", c);
	g_unichar_to_utf8(c, buf);
	return g_strdup_printf("'%s' (U+%04X)", buf, c);
}

static void set_char_error(GError **err, JidError code, const char *what,
			   const char *problem, gunichar c)
{
	g_autofree char *desc = describe_char(c);

	g_set_error(err, JID_ERROR, code, "%s contains %s %s", what, problem,
		    desc);
}

static bool check_utf8(const char *what, const char *s, GError **err)
{
	if (!*s) {
		g_set_error(err, JID_ERROR, JID_ERROR_EMPTY, "%s is empty",
			    what);
		return false;
	}
	if (!g_utf8_validate(s, -1, NULL)) {
		g_set_error(err, JID_ERROR, JID_ERROR_UTF8,
			    "%s is not valid UTF-8", what);
		return false;
	}
	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (is_control(c)) {
			set_char_error(err, JID_ERROR_UTF8, what,
				       "control character", c);
			return false;
		}
	}
	return true;
}

static bool check_length(const char *what, const char *s, GError **err)
{
	size_t len = strlen(s);

	if (len == 0) {
		g_set_error(err, JID_ERROR, JID_ERROR_EMPTY, "%s is empty",
			    what);
		return false;
	}
	if (len > JID_PART_MAX) {
		g_set_error(err, JID_ERROR, JID_ERROR_TOO_LONG,
			    "%s is %zu bytes, longer than %d", what, len,
			    JID_PART_MAX);
		return false;
	}
	return true;
}

/* RFC 8265 §3.3.2 step 1 (and UTS 46 for domains): fullwidth and
 * halfwidth forms are the characters they look like, so "ａdmin" cannot
 * pose as "admin".  Their compatibility decompositions are exactly the
 * width mappings. */
static char *map_width(const char *s)
{
	GString *out = g_string_sized_new(strlen(s));

	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		char buf[8] = { 0 };
		g_autofree char *m = NULL;

		if (c < 0xff01 || c > 0xffee) {
			g_string_append_unichar(out, c);
			continue;
		}
		g_unichar_to_utf8(c, buf);
		m = g_utf8_normalize(buf, -1, G_NORMALIZE_NFKC);
		g_string_append(out, m);
	}
	return g_string_free(out, FALSE);
}

/* Lower case rather than case folding, so 'ß' stays 'ß' (RFC 8265 §3.3.2
 * maps with toLowerCase).  The final NFC keeps the result normalized when
 * lowering yields a sequence that composes. */
static char *fold(const char *s)
{
	g_autofree char *wide = map_width(s);
	g_autofree char *nfc = g_utf8_normalize(wide, -1, G_NORMALIZE_NFC);
	g_autofree char *lower = g_utf8_strdown(nfc, -1);

	return g_utf8_normalize(lower, -1, G_NORMALIZE_NFC);
}

static char *normalize_local(const char *in, GError **err)
{
	const char *what = "localpart";
	g_autofree char *s = NULL;

	if (!check_utf8(what, in, err))
		return NULL;
	s = fold(in);
	if (!check_length(what, s, err))
		return NULL;
	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (g_unichar_isspace(c)) {
			set_char_error(err, JID_ERROR_LOCALPART, what,
				       "whitespace", c);
			return NULL;
		}
		if (c < 0x80 && strchr("\"&'/:<>@", (int)c)) {
			set_char_error(err, JID_ERROR_LOCALPART, what,
				       "forbidden character", c);
			return NULL;
		}
	}
	return g_steal_pointer(&s);
}

/* IDNA2008 letters, combining marks and digits; everything else (symbols,
 * punctuation, spaces) has no place in a host name. */
static bool is_label_char(gunichar c)
{
	if (c < 0x80)
		return g_ascii_isalnum((char)c) || c == '-';
	switch (g_unichar_type(c)) {
	case G_UNICODE_LOWERCASE_LETTER:
	case G_UNICODE_MODIFIER_LETTER:
	case G_UNICODE_OTHER_LETTER:
	case G_UNICODE_TITLECASE_LETTER:
	case G_UNICODE_UPPERCASE_LETTER:
	case G_UNICODE_SPACING_MARK:
	case G_UNICODE_ENCLOSING_MARK:
	case G_UNICODE_NON_SPACING_MARK:
	case G_UNICODE_DECIMAL_NUMBER:
		return true;
	default:
		return false;
	}
}

/* The byte limit applies to the label as written: for a U-label that is
 * stricter than RFC 5890's limit on its A-label, but needs no punycode. */
static bool check_label(const char *label, GError **err)
{
	size_t len = strlen(label);

	if (len == 0) {
		g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
			    "domainpart has an empty label");
		return false;
	}
	if (len > LABEL_MAX) {
		g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
			    "domainpart label longer than %d bytes", LABEL_MAX);
		return false;
	}
	if (label[0] == '-' || label[len - 1] == '-') {
		g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
			    "domainpart label '%s' starts or ends with a hyphen",
			    label);
		return false;
	}
	for (const char *p = label; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (!is_label_char(c)) {
			set_char_error(err, JID_ERROR_DOMAIN, "domainpart",
				       "forbidden character", c);
			return false;
		}
	}
	return true;
}

static bool is_all_digits(const char *s)
{
	for (; *s; s++)
		if (!g_ascii_isdigit(*s))
			return false;
	return true;
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* An all-numeric top label cannot be a host name (RFC 3696 §2), so such a
 * name must be a dotted-quad IPv4 literal or nothing. */
static bool check_dns_name(const char *s, GError **err)
{
	struct in_addr a4;
	g_auto(GStrv) labels = NULL;
	guint n;

	if (inet_pton(AF_INET, s, &a4) == 1)
		return true;
	if (is_ascii(s) && strlen(s) > DNS_NAME_MAX) {
		g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
			    "domainpart longer than %d bytes", DNS_NAME_MAX);
		return false;
	}
	labels = g_strsplit(s, ".", -1);
	n = g_strv_length(labels);
	for (guint i = 0; i < n; i++)
		if (!check_label(labels[i], err))
			return false;
	if (is_all_digits(labels[n - 1])) {
		g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
			    "domainpart '%s' is not a valid IPv4 address", s);
		return false;
	}
	return true;
}

/* Rewritten in inet_ntop's form so that "[::0001]" and "[::1]" compare
 * equal as strings. */
static char *normalize_ipv6(const char *s, GError **err)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];
	size_t len = strlen(s);
	g_autofree char *inner = NULL;

	if (len < 2 || s[len - 1] != ']')
		goto invalid;
	inner = g_strndup(s + 1, len - 2);
	if (inet_pton(AF_INET6, inner, &a6) != 1 ||
	    !inet_ntop(AF_INET6, &a6, buf, sizeof(buf)))
		goto invalid;
	return g_strdup_printf("[%s]", buf);
invalid:
	g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
		    "domainpart '%s' is not a valid IPv6 literal", s);
	return NULL;
}

/* RFC 7622 §3.2: the ideographic full stops are label separators too. */
static char *map_dots(const char *s)
{
	static const char *const dots[] = { "\u3002", "\uff0e", "\uff61" };
	g_autofree char *out = g_strdup(s);

	for (size_t i = 0; i < G_N_ELEMENTS(dots); i++) {
		g_auto(GStrv) v = g_strsplit(out, dots[i], -1);

		g_free(out);
		out = g_strjoinv(".", v);
	}
	return g_steal_pointer(&out);
}

static char *normalize_domain(const char *in, GError **err)
{
	const char *what = "domainpart";
	g_autofree char *folded = NULL;
	g_autofree char *s = NULL;
	size_t len;
	struct in6_addr a6;

	if (!check_utf8(what, in, err))
		return NULL;
	folded = fold(in);
	s = map_dots(folded);
	len = strlen(s);
	if (len > 0 && s[len - 1] == '.')
		s[len - 1] = '\0';
	if (!check_length(what, s, err))
		return NULL;
	if (s[0] == '[')
		return normalize_ipv6(s, err);
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		g_set_error(err, JID_ERROR, JID_ERROR_DOMAIN,
			    "domainpart '%s' is an IPv6 address without "
			    "brackets", s);
		return NULL;
	}
	if (!check_dns_name(s, err))
		return NULL;
	return g_steal_pointer(&s);
}

/* The resource keeps its case: it is opaque to everyone but the client
 * that chose it (RFC 7622 §3.4, OpaqueString). */
static char *normalize_resource(const char *in, GError **err)
{
	const char *what = "resourcepart";
	g_autofree char *s = NULL;

	if (!check_utf8(what, in, err))
		return NULL;
	s = g_utf8_normalize(in, -1, G_NORMALIZE_NFC);
	if (!check_length(what, s, err))
		return NULL;
	return g_steal_pointer(&s);
}

Jid *jid_new(const char *local, const char *domain, const char *resource,
	     GError **err)
{
	g_autoptr(Jid) jid = NULL;

	if (!domain) {
		g_set_error(err, JID_ERROR, JID_ERROR_EMPTY,
			    "domainpart is empty");
		return NULL;
	}
	jid = g_new0(Jid, 1);
	if (local && !(jid->local = normalize_local(local, err)))
		return NULL;
	if (!(jid->domain = normalize_domain(domain, err)))
		return NULL;
	if (resource && !(jid->resource = normalize_resource(resource, err)))
		return NULL;
	return g_steal_pointer(&jid);
}

char *jid_normalize_resource(const char *str, GError **err)
{
	if (!str) {
		g_set_error(err, JID_ERROR, JID_ERROR_EMPTY,
			    "resourcepart is empty");
		return NULL;
	}
	return normalize_resource(str, err);
}

/* RFC 7622 §3.1: the resource starts at the first '/', so it may hold '@'
 * and '/'; the localpart ends at the first '@' before that. */
Jid *jid_parse(const char *str, GError **err)
{
	const char *slash, *at, *dom;
	size_t head;
	g_autofree char *local = NULL;
	g_autofree char *domain = NULL;

	if (!str || !*str) {
		g_set_error(err, JID_ERROR, JID_ERROR_EMPTY, "JID is empty");
		return NULL;
	}
	slash = strchr(str, '/');
	head = slash ? (size_t)(slash - str) : strlen(str);
	at = memchr(str, '@', head);
	if (at)
		local = g_strndup(str, (size_t)(at - str));
	dom = at ? at + 1 : str;
	domain = g_strndup(dom, (size_t)(str + head - dom));
	return jid_new(local, domain, slash ? slash + 1 : NULL, err);
}

void jid_free(Jid *jid)
{
	if (!jid)
		return;
	g_free(jid->local);
	g_free(jid->domain);
	g_free(jid->resource);
	g_free(jid);
}

char *jid_bare(const Jid *jid)
{
	if (!jid->local)
		return g_strdup(jid->domain);
	return g_strconcat(jid->local, "@", jid->domain, NULL);
}

char *jid_full(const Jid *jid)
{
	g_autofree char *bare = jid_bare(jid);

	if (!jid->resource)
		return g_steal_pointer(&bare);
	return g_strconcat(bare, "/", jid->resource, NULL);
}

char *jid_normalize_bare(const char *str, GError **err)
{
	g_autoptr(Jid) jid = jid_parse(str, err);

	if (!jid)
		return NULL;
	if (jid->resource) {
		g_set_error(err, JID_ERROR, JID_ERROR_NOT_BARE,
			    "'%s' has a resourcepart where a bare JID is "
			    "expected", str);
		return NULL;
	}
	return jid_bare(jid);
}

#define DIVISION_SLASH "\u2215"
#define ONE_DOT_LEADER "\u2024"

char *jid_to_filename(const char *part)
{
	g_auto(GStrv) v = NULL;

	if (!part || !*part)
		return NULL;
	if (!strcmp(part, "."))
		return g_strdup(ONE_DOT_LEADER);
	if (!strcmp(part, ".."))
		return g_strdup(ONE_DOT_LEADER ONE_DOT_LEADER);
	v = g_strsplit(part, "/", -1);
	return g_strjoinv(DIVISION_SLASH, v);
}

char *jid_from_filename(const char *name)
{
	g_auto(GStrv) v = NULL;

	if (!name || !*name)
		return NULL;
	if (!strcmp(name, ONE_DOT_LEADER))
		return g_strdup(".");
	if (!strcmp(name, ONE_DOT_LEADER ONE_DOT_LEADER))
		return g_strdup("..");
	v = g_strsplit(name, DIVISION_SLASH, -1);
	return g_strjoinv("/", v);
}
