/* test_jid.c - table-driven tests of jid.c.  Every table row is its own
 * test case, so a failure names the row. */
#include "base/jid.h"

#include <string.h>

typedef struct {
	const char *in;
	const char *local;    /* NULL when absent */
	const char *domain;
	const char *resource; /* NULL when absent */
} ValidCase;

static const ValidCase valid_cases[] = {
	{ "example.com", NULL, "example.com", NULL },
	{ "user@example.com", "user", "example.com", NULL },
	{ "myusername@myserver.com/connectionID", "myusername", "myserver.com",
	  "connectionID" },
	{ "User@Example.COM/Res", "user", "example.com", "Res" },
	{ "a@b/c/d", "a", "b", "c/d" },
	{ "a@b/c@d", "a", "b", "c@d" },
	{ "b/c@d", NULL, "b", "c@d" },
	{ "a/b@c", NULL, "a", "b@c" },
	{ "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar" },
	{ "juliet@example.com/foo bar", "juliet", "example.com", "foo bar" },
	{ "example.org.", NULL, "example.org", NULL },
	{ "user@Example.Org./r", "user", "example.org", "r" },
	{ "user@127.0.0.1", "user", "127.0.0.1", NULL },
	{ "user@[::1]/r", "user", "[::1]", "r" },
	{ "[2001:DB8::1]", NULL, "[2001:db8::1]", NULL },
	{ "[::0001]", NULL, "[::1]", NULL },
	{ "[::FFFF:1.2.3.4]", NULL, "[::ffff:1.2.3.4]", NULL },
	{ "ß@example.com", "ß", "example.com", NULL },
	{ "ÄÖÜ@example.com", "äöü", "example.com", NULL },
	{ "e\u0301@example.com", "\u00e9", "example.com", NULL },
	{ "a@b/e\u0301", "a", "b", "\u00e9" },
	{ "a@b/\u00c9", "a", "b", "\u00c9" },
	{ "\u212a@example.com", "k", "example.com", NULL },
	{ "\u265a@example.com", "\u265a", "example.com", NULL },
	{ "\u03c0@example.com", "\u03c0", "example.com", NULL },
	{ "foo\\20bar@example.com", "foo\\20bar", "example.com", NULL },
	{ "\uff41dmin@\uff25\uff38.com", "admin", "ex.com", NULL },
	{ "münchen.de", NULL, "münchen.de", NULL },
	{ "MÜNCHEN.DE", NULL, "münchen.de", NULL },
	{ "xn--mnchen-3ya.de", NULL, "xn--mnchen-3ya.de", NULL },
	{ "a@例え。テスト", "a", "例え.テスト", NULL },
	{ "a@例え．テスト", "a", "例え.テスト", NULL },
	{ "localhost", NULL, "localhost", NULL },
	{ "a-b.example", NULL, "a-b.example", NULL },
	{ "123.example.com", NULL, "123.example.com", NULL },
	{ "a.b.c.d.e", NULL, "a.b.c.d.e", NULL },
	{ "x@conference.example.com/Nick Name", "x", "conference.example.com",
	  "Nick Name" },
	{ "x@y/ spaced ", "x", "y", " spaced " },
	{ "x@y/.", "x", "y", "." },
	{ "x@y/\U0001f600", "x", "y", "\U0001f600" },
	{ "x@y/\u2215", "x", "y", "\u2215" },
	{ "a!#$%*+=?^_`{|}~@example.com", "a!#$%*+=?^_`{|}~", "example.com",
	  NULL },
};

typedef struct {
	const char *in;
	JidError code;
	const char *message; /* a substring of the error message */
} InvalidCase;

static const InvalidCase invalid_cases[] = {
	{ "", JID_ERROR_EMPTY, "JID is empty" },
	{ "@example.com", JID_ERROR_EMPTY, "localpart is empty" },
	{ "@x", JID_ERROR_EMPTY, "localpart is empty" },
	{ "a@", JID_ERROR_EMPTY, "domainpart is empty" },
	{ "x/", JID_ERROR_EMPTY, "resourcepart is empty" },
	{ "/res", JID_ERROR_EMPTY, "domainpart is empty" },
	{ "user@/res", JID_ERROR_EMPTY, "domainpart is empty" },
	{ ".", JID_ERROR_EMPTY, "domainpart is empty" },
	{ "a\"b@example.com", JID_ERROR_LOCALPART, "forbidden character '\"'" },
	{ "a&b@example.com", JID_ERROR_LOCALPART, "forbidden character '&'" },
	{ "a'b@example.com", JID_ERROR_LOCALPART, "forbidden character '''" },
	{ "a:b@example.com", JID_ERROR_LOCALPART, "forbidden character ':'" },
	{ "a<b@example.com", JID_ERROR_LOCALPART, "forbidden character '<'" },
	{ "a>b@example.com", JID_ERROR_LOCALPART, "forbidden character '>'" },
	{ "a\uff1ab@example.com", JID_ERROR_LOCALPART,
	  "forbidden character ':'" },
	{ "a b@example.com", JID_ERROR_LOCALPART, "whitespace U+0020" },
	{ "a\u00a0b@example.com", JID_ERROR_LOCALPART, "whitespace U+00A0" },
	{ "a\u3000b@example.com", JID_ERROR_LOCALPART, "whitespace U+3000" },
	{ "a\u2028b@example.com", JID_ERROR_LOCALPART, "whitespace U+2028" },
	{ "a\tb@example.com", JID_ERROR_UTF8, "control character U+0009" },
	{ "a\001@example.com", JID_ERROR_UTF8, "control character U+0001" },
	{ "a@b/\x7f", JID_ERROR_UTF8, "resourcepart contains control" },
	{ "a@b/\xc2\x85", JID_ERROR_UTF8, "control character U+0085" },
	{ "a@b/x\ny", JID_ERROR_UTF8, "control character U+000A" },
	{ "a@exa\rmple.com", JID_ERROR_UTF8, "domainpart contains control" },
	{ "\xff@example.com", JID_ERROR_UTF8, "localpart is not valid UTF-8" },
	{ "a@exa\xc3mple.com", JID_ERROR_UTF8, "domainpart is not valid" },
	{ "a@b/\xed\xa0\x80", JID_ERROR_UTF8, "resourcepart is not valid" },
	{ "a@b/\xc0\xaf", JID_ERROR_UTF8, "resourcepart is not valid" },
	{ "a@b@example.com", JID_ERROR_DOMAIN, "forbidden character '@'" },
	{ "-example.com", JID_ERROR_DOMAIN, "starts or ends with a hyphen" },
	{ "example-.com", JID_ERROR_DOMAIN, "starts or ends with a hyphen" },
	{ "exa_mple.com", JID_ERROR_DOMAIN, "forbidden character '_'" },
	{ "example..com", JID_ERROR_DOMAIN, "empty label" },
	{ ".example.com", JID_ERROR_DOMAIN, "empty label" },
	{ "example.com..", JID_ERROR_DOMAIN, "empty label" },
	{ "a@exa mple.com", JID_ERROR_DOMAIN, "forbidden character U+0020" },
	{ "a@example.com:5222", JID_ERROR_DOMAIN, "forbidden character ':'" },
	{ "a@ex\u00a7.com", JID_ERROR_DOMAIN, "'\u00a7' (U+00A7)" },
	{ "a@ex\u2603.com", JID_ERROR_DOMAIN, "(U+2603)" },
	{ "256.1.1.1", JID_ERROR_DOMAIN, "not a valid IPv4 address" },
	{ "1.2.3", JID_ERROR_DOMAIN, "not a valid IPv4 address" },
	{ "01.2.3.4", JID_ERROR_DOMAIN, "not a valid IPv4 address" },
	{ "123", JID_ERROR_DOMAIN, "not a valid IPv4 address" },
	{ "[::1", JID_ERROR_DOMAIN, "not a valid IPv6 literal" },
	{ "[1.2.3.4]", JID_ERROR_DOMAIN, "not a valid IPv6 literal" },
	{ "[::g]", JID_ERROR_DOMAIN, "not a valid IPv6 literal" },
	{ "[]", JID_ERROR_DOMAIN, "not a valid IPv6 literal" },
	{ "[::1]x", JID_ERROR_DOMAIN, "not a valid IPv6 literal" },
	{ "::1", JID_ERROR_DOMAIN, "without brackets" },
};

/* Parts made of @count copies of @unit between @prefix and @suffix, for
 * the length limits; @code is -1 where the JID is valid. */
typedef struct {
	const char *prefix;
	const char *unit;
	guint count;
	const char *suffix;
	int code;
	const char *message;
} LengthCase;

static const LengthCase length_cases[] = {
	{ "", "a", 1023, "@x", -1, NULL },
	{ "", "a", 1024, "@x", JID_ERROR_TOO_LONG, "localpart is 1024 bytes" },
	{ "", "\u00e9", 511, "@x", -1, NULL },
	{ "", "\u00e9", 512, "@x", JID_ERROR_TOO_LONG, "longer than 1023" },
	{ "", "e\u0301", 341, "@x", -1, NULL }, /* NFC makes it 682 bytes */
	{ "x/", "r", 1023, "", -1, NULL },
	{ "x/", "r", 1024, "", JID_ERROR_TOO_LONG, "resourcepart is 1024" },
	{ "", "a", 63, ".com", -1, NULL },
	{ "", "a", 64, ".com", JID_ERROR_DOMAIN, "longer than 63 bytes" },
	{ "", "\u00fc", 31, ".de", -1, NULL },
	{ "", "\u00fc", 32, ".de", JID_ERROR_DOMAIN, "longer than 63 bytes" },
	{ "", "a.", 126, "b", -1, NULL },
	{ "", "a.", 126, "b.", -1, NULL },
	{ "", "a.", 126, "bc", JID_ERROR_DOMAIN, "longer than 253 bytes" },
	/* the 253-byte limit is for ASCII names; U-labels grow as A-labels
	 * and shrink as UTF-8, so only the part limit applies to them */
	{ "", "üüüüüüüüüü.", 15, "de", -1, NULL },
	{ "", "üüüüüüüüüü.", 48, "aaaaaaaaaaaaaaa", -1, NULL },
	{ "", "üüüüüüüüüü.", 48, "aaaaaaaaaaaaaaaa", JID_ERROR_TOO_LONG,
	  "domainpart is 1024 bytes" },
};

typedef struct {
	const char *local;
	const char *domain;
	const char *resource;
	const char *full; /* NULL when invalid */
	JidError code;
} NewCase;

static const NewCase new_cases[] = {
	{ NULL, "example.com", NULL, "example.com", 0 },
	{ "User", "EXAMPLE.com", "Phone", "user@example.com/Phone", 0 },
	{ NULL, "example.com", "r/s@t", "example.com/r/s@t", 0 },
	{ "", "example.com", NULL, NULL, JID_ERROR_EMPTY },
	{ "a", NULL, NULL, NULL, JID_ERROR_EMPTY },
	{ "a", "", NULL, NULL, JID_ERROR_EMPTY },
	{ "a", "b", "", NULL, JID_ERROR_EMPTY },
	{ "a@b", "c", NULL, NULL, JID_ERROR_LOCALPART },
	{ "a/b", "c", NULL, NULL, JID_ERROR_LOCALPART },
	{ NULL, "a/b", NULL, NULL, JID_ERROR_DOMAIN },
	{ NULL, "a@b", NULL, NULL, JID_ERROR_DOMAIN },
	{ "a", "b", "c\001", NULL, JID_ERROR_UTF8 },
};

typedef struct {
	const char *in;
	const char *out; /* NULL when invalid */
	JidError code;
} BareCase;

static const BareCase bare_cases[] = {
	{ "User@Example.COM", "user@example.com", 0 },
	{ "example.com.", "example.com", 0 },
	{ "[::0:1]", "[::1]", 0 },
	{ "a@b/c", NULL, JID_ERROR_NOT_BARE },
	{ "b/c", NULL, JID_ERROR_NOT_BARE },
	{ "", NULL, JID_ERROR_EMPTY },
	{ "a:b@c", NULL, JID_ERROR_LOCALPART },
};

typedef struct {
	const char *part;
	const char *name; /* NULL for no name */
} FilenameCase;

static const FilenameCase filename_cases[] = {
	{ "phone", "phone" },
	{ "my phone", "my phone" },
	{ "a/b", "a\u2215b" },
	{ "/", "\u2215" },
	{ "//x//", "\u2215\u2215x\u2215\u2215" },
	{ ".", "\u2024" },
	{ "..", "\u2024\u2024" },
	{ "...", "..." },
	{ "./", ".\u2215" },
	{ "/..", "\u2215.." },
	{ "..a", "..a" },
	{ ".hidden", ".hidden" },
	{ "\u00e9t\u00e9", "\u00e9t\u00e9" },
	{ "", NULL },
};

/* Names that jid_to_filename never makes, read back all the same. */
static const FilenameCase from_filename_cases[] = {
	{ "\u2024\u2024\u2024", "\u2024\u2024\u2024" },
	{ "a\u2024", "a\u2024" },
	{ "a/b", "a/b" },
	{ "", NULL },
};

static void assert_jid_equal(const Jid *a, const Jid *b)
{
	g_assert_cmpstr(a->local, ==, b->local);
	g_assert_cmpstr(a->domain, ==, b->domain);
	g_assert_cmpstr(a->resource, ==, b->resource);
}

static char *expected_full(const ValidCase *c)
{
	GString *s = g_string_new(NULL);

	if (c->local)
		g_string_append_printf(s, "%s@", c->local);
	g_string_append(s, c->domain);
	if (c->resource)
		g_string_append_printf(s, "/%s", c->resource);
	return g_string_free(s, FALSE);
}

static void test_parse_valid(gconstpointer data)
{
	const ValidCase *c = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(Jid) jid = jid_parse(c->in, &err);
	g_autoptr(Jid) again = NULL;
	g_autofree char *full = NULL;
	g_autofree char *bare = NULL;
	g_autofree char *want = expected_full(c);

	g_assert_no_error(err);
	g_assert_nonnull(jid);
	g_assert_cmpstr(jid->local, ==, c->local);
	g_assert_cmpstr(jid->domain, ==, c->domain);
	g_assert_cmpstr(jid->resource, ==, c->resource);
	full = jid_full(jid);
	g_assert_cmpstr(full, ==, want);
	bare = jid_bare(jid);
	g_assert_true(g_str_has_prefix(full, bare));
	g_assert_null(strchr(bare, '/'));
	again = jid_parse(full, &err);
	g_assert_no_error(err);
	assert_jid_equal(jid, again);
}

static void test_parse_invalid(gconstpointer data)
{
	const InvalidCase *c = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(Jid) jid = jid_parse(c->in, &err);

	g_assert_null(jid);
	g_assert_error(err, JID_ERROR, (gint)c->code);
	if (!strstr(err->message, c->message))
		g_error("message \"%s\" lacks \"%s\"", err->message,
			c->message);
}

static void test_parse_length(gconstpointer data)
{
	const LengthCase *c = data;
	g_autoptr(GString) s = g_string_new(c->prefix);
	g_autoptr(GError) err = NULL;
	g_autoptr(Jid) jid = NULL;

	for (guint i = 0; i < c->count; i++)
		g_string_append(s, c->unit);
	g_string_append(s, c->suffix);
	jid = jid_parse(s->str, &err);
	if (c->code < 0) {
		g_assert_no_error(err);
		g_assert_nonnull(jid);
		return;
	}
	g_assert_null(jid);
	g_assert_error(err, JID_ERROR, c->code);
	if (!strstr(err->message, c->message))
		g_error("message \"%s\" lacks \"%s\"", err->message,
			c->message);
}

static void test_parse_null(void)
{
	g_autoptr(GError) err = NULL;

	g_assert_null(jid_parse(NULL, &err));
	g_assert_error(err, JID_ERROR, JID_ERROR_EMPTY);
	g_assert_null(jid_parse("a@@b", NULL));
}

static void test_new(gconstpointer data)
{
	const NewCase *c = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(Jid) jid = jid_new(c->local, c->domain, c->resource, &err);
	g_autofree char *full = NULL;

	if (!c->full) {
		g_assert_null(jid);
		g_assert_error(err, JID_ERROR, (gint)c->code);
		return;
	}
	g_assert_no_error(err);
	full = jid_full(jid);
	g_assert_cmpstr(full, ==, c->full);
}

static void test_normalize_bare(gconstpointer data)
{
	const BareCase *c = data;
	g_autoptr(GError) err = NULL;
	g_autofree char *bare = jid_normalize_bare(c->in, &err);

	if (!c->out) {
		g_assert_null(bare);
		g_assert_error(err, JID_ERROR, (gint)c->code);
		return;
	}
	g_assert_no_error(err);
	g_assert_cmpstr(bare, ==, c->out);
}

static void test_to_filename(gconstpointer data)
{
	const FilenameCase *c = data;
	g_autofree char *name = jid_to_filename(c->part);
	g_autofree char *back = jid_from_filename(name);

	g_assert_cmpstr(name, ==, c->name);
	if (name)
		g_assert_cmpstr(back, ==, c->part);
}

static void test_from_filename(gconstpointer data)
{
	const FilenameCase *c = data;
	g_autofree char *part = jid_from_filename(c->part);

	g_assert_cmpstr(part, ==, c->name);
}

static void test_filename_null(void)
{
	g_assert_null(jid_to_filename(NULL));
	g_assert_null(jid_from_filename(NULL));
}

/* A nick alone gets what jid_new gives a resourcepart: the same
 * normalized form, the same refusals. */
static void test_resource_alone(void)
{
	static const char *const parts[] = {
		"laptop", "Al Ice", "a/b@c", "\uFF21lice", "..", "B\u00f8b",
	};
	static const char *const bad[] = {"", "a\tb", "a\nb", "\x01x"};
	g_autoptr(GError) err = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
		g_autoptr(Jid) j = jid_new(NULL, "example.org", parts[i], NULL);
		g_autofree char *r = jid_normalize_resource(parts[i], NULL);
		g_assert_nonnull(j);
		g_assert_cmpstr(r, ==, j->resource);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *r = jid_normalize_resource(bad[i], &err);
		g_assert_null(r);
		g_assert_nonnull(err);
		g_clear_error(&err);
	}
	g_assert_null(jid_normalize_resource(NULL, &err));
	g_assert_error(err, JID_ERROR, JID_ERROR_EMPTY);
}

static void test_free_null(void)
{
	jid_free(NULL);
}

/* One test case per table row, at "@prefix/NN". */
static void add_table(const char *prefix, const void *rows, size_t size,
		      size_t n, GTestDataFunc fn)
{
	for (size_t i = 0; i < n; i++) {
		g_autofree char *path = g_strdup_printf("%s/%02zu", prefix, i);

		g_test_add_data_func(path, (const char *)rows + i * size, fn);
	}
}

#define ADD_TABLE(prefix, table, fn) \
	add_table(prefix, table, sizeof(table[0]), G_N_ELEMENTS(table), fn)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD_TABLE("/jid/parse/valid", valid_cases, test_parse_valid);
	ADD_TABLE("/jid/parse/invalid", invalid_cases, test_parse_invalid);
	ADD_TABLE("/jid/parse/length", length_cases, test_parse_length);
	g_test_add_func("/jid/parse/null", test_parse_null);
	ADD_TABLE("/jid/new", new_cases, test_new);
	ADD_TABLE("/jid/normalize-bare", bare_cases, test_normalize_bare);
	ADD_TABLE("/jid/filename/to", filename_cases, test_to_filename);
	ADD_TABLE("/jid/filename/from", from_filename_cases,
		  test_from_filename);
	g_test_add_func("/jid/filename/null", test_filename_null);
	g_test_add_func("/jid/free/null", test_free_null);
	g_test_add_func("/jid/resource/alone", test_resource_alone);
	return g_test_run();
}
