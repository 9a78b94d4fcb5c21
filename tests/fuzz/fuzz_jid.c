/* fuzz_jid.c - libFuzzer target for jid.c: arbitrary bytes through every
 * entry point, checking the invariants the rest of xmppfs relies on. */
#include "base/jid.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_control(const char *s)
{
	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
			return true;
	}
	return false;
}

static void check_part(const char *part)
{
	size_t len;

	if (!part)
		return;
	len = strlen(part);
	g_assert_true(len >= 1 && len <= JID_PART_MAX);
	g_assert_true(g_utf8_validate(part, -1, NULL));
	g_assert_false(has_control(part));
}

static void assert_same(const Jid *a, const Jid *b)
{
	g_assert_cmpstr(a->local, ==, b->local);
	g_assert_cmpstr(a->domain, ==, b->domain);
	g_assert_cmpstr(a->resource, ==, b->resource);
}

/* A parsed JID is a fixed point: its full form, and its parts fed back to
 * jid_new, give the same JID; so normalization is idempotent. */
static void check_parse(const char *s)
{
	g_autoptr(Jid) jid = jid_parse(s, NULL);
	g_autoptr(Jid) again = NULL;
	g_autoptr(Jid) rebuilt = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *full = NULL;

	if (!jid)
		return;
	g_assert_nonnull(jid->domain);
	check_part(jid->local);
	check_part(jid->domain);
	check_part(jid->resource);
	if (jid->local)
		g_assert_null(strpbrk(jid->local, "\"&'/:<>@ "));
	g_assert_null(strpbrk(jid->domain, "/@"));
	full = jid_full(jid);
	again = jid_parse(full, &err);
	g_assert_no_error(err);
	assert_same(jid, again);
	rebuilt = jid_new(jid->local, jid->domain, jid->resource, &err);
	g_assert_no_error(err);
	assert_same(jid, rebuilt);
}

static void check_bare(const char *s)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *bare = jid_normalize_bare(s, &err);
	g_autofree char *twice = NULL;

	if (!bare) {
		g_assert_nonnull(err);
		g_assert_true(err->domain == JID_ERROR);
		return;
	}
	g_assert_null(strchr(bare, '/'));
	twice = jid_normalize_bare(bare, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(bare, ==, twice);
}

static void check_filename(const char *s)
{
	g_autofree char *name = jid_to_filename(s);
	g_autofree char *back = NULL;

	if (!*s) {
		g_assert_null(name);
		return;
	}
	g_assert_nonnull(name);
	g_assert_cmpstr(name, !=, "");
	g_assert_cmpstr(name, !=, ".");
	g_assert_cmpstr(name, !=, "..");
	g_assert_null(strchr(name, '/'));
	if (g_utf8_validate(s, -1, NULL))
		g_assert_true(g_utf8_validate(name, -1, NULL));
	back = jid_from_filename(name);
	if (!strstr(s, "\u2215") && !strstr(s, "\u2024"))
		g_assert_cmpstr(back, ==, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *s = g_strndup((const char *)data, size);

	check_parse(s);
	check_bare(s);
	check_filename(s);
	g_free(jid_from_filename(s));
	return 0;
}
