/* fuzz_record.c - libFuzzer target for record.c: arbitrary bytes as a log
 * line, as a delay stamp, as a sender and as a body, checking that what
 * parses is a fixed point of the format. */
#include "base/record.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parsed line re-appended is the same line: the time field is only ever
 * accepted in the one form record_format_time writes. */
static void check_parse(const char *line)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *storage = NULL;
	g_autofree char *expect = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	Record rec;

	if (!record_parse(line, &rec, &storage, &err)) {
		g_assert_nonnull(err);
		g_assert_true(err->domain == RECORD_ERROR);
		g_assert_null(storage);
		return;
	}
	g_assert_no_error(err);
	g_assert_cmpstr(rec.sender, !=, "");
	g_assert_null(strpbrk(rec.sender, "\t\n"));
	if (strchr(rec.text, '\n'))
		return;
	record_append(out, rec.time, rec.sender, rec.text);
	expect = g_strconcat(line, "\n", NULL);
	g_assert_cmpstr(out->str, ==, expect);
}

static void check_stamp(const char *s)
{
	char buf[RECORD_TIME_LEN + 1];
	gint64 t, again;
	Record rec;
	g_autofree char *line = NULL;
	g_autofree char *storage = NULL;

	if (!record_parse_stamp(s, &t))
		return;
	record_format_time(t, buf);
	g_assert_cmpuint(strlen(buf), ==, RECORD_TIME_LEN);
	g_assert_true(record_parse_stamp(buf, &again));
	g_assert_cmpint(again, ==, t);
	/* The formatted stamp is also a valid record time. */
	line = g_strconcat(buf, "\tx\ty", NULL);
	g_assert_true(record_parse(line, &rec, &storage, NULL));
	g_assert_cmpint(rec.time, ==, t);
}

/* Any sender, escaped, and any body give lines that all parse back with
 * exactly three fields. */
static void check_append(const char *s, gint64 t)
{
	g_autofree char *sender = record_escape_sender(s);
	g_autoptr(GString) out = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;

	g_assert_true(g_utf8_validate(sender, -1, NULL));
	g_assert_null(strpbrk(sender, "\t\n\r"));
	if (!*sender)
		return;
	record_append(out, t, sender, s);
	g_assert_true(g_str_has_suffix(out->str, "\n"));
	g_string_truncate(out, out->len - 1);
	lines = g_strsplit(out->str, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_autofree char *storage = NULL;
		Record rec;

		g_assert_true(record_parse(lines[i], &rec, &storage, NULL));
		g_assert_cmpstr(rec.sender, ==, sender);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *s = g_strndup((const char *)data, size);
	gint64 t = 0;

	if (size >= sizeof(t))
		memcpy(&t, data, sizeof(t));
	check_parse(s);
	check_stamp(s);
	check_append(s, t);
	return 0;
}
