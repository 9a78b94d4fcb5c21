/* Table-driven tests of record.c: the TAB records of log/stream/events and
 * the XEP-0082 stamps that become their first field. */
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/record.h"

/* The SPEC's example time, 2026-11-24T21:57:14Z. */
#define T_SPEC G_GINT64_CONSTANT(1795557434)
#define S_SPEC "2026-11-24T21:57:14Z"
#define T_MIN G_GINT64_CONSTANT(-62135596800)  /* 0001-01-01T00:00:00Z */
#define T_MAX G_GINT64_CONSTANT(253402300799)  /* 9999-12-31T23:59:59Z */
#define FFFD "\xef\xbf\xbd"

typedef struct {
	const char *name;
	gint64 t;
	const char *s;
} FormatCase;

static const FormatCase format_cases[] = {
	{"epoch", 0, "1970-01-01T00:00:00Z"},
	{"spec-example", T_SPEC, S_SPEC},
	{"leap-day", 1709208000, "2024-02-29T12:00:00Z"},
	{"leap-day-2000", 951868799, "2000-02-29T23:59:59Z"},
	{"day-after-leap", 1740787200, "2025-03-01T00:00:00Z"},
	{"1900-not-leap", G_GINT64_CONSTANT(-2203891200),
	 "1900-03-01T00:00:00Z"},
	{"before-epoch", -1, "1969-12-31T23:59:59Z"},
	{"past-2038", G_GINT64_CONSTANT(2147483648), "2038-01-19T03:14:08Z"},
	{"year-9999", T_MAX, "9999-12-31T23:59:59Z"},
	{"year-1", T_MIN, "0001-01-01T00:00:00Z"},
	{"clamp-high", T_MAX + 1, "9999-12-31T23:59:59Z"},
	{"clamp-max", G_MAXINT64, "9999-12-31T23:59:59Z"},
	{"clamp-low", T_MIN - 1, "0001-01-01T00:00:00Z"},
	{"clamp-min", G_MININT64, "0001-01-01T00:00:00Z"},
};

static void test_format(gconstpointer data)
{
	const FormatCase *c = data;
	char buf[RECORD_TIME_LEN + 2];

	memset(buf, 'x', sizeof(buf));
	record_format_time(c->t, buf);
	g_assert_cmpstr(buf, ==, c->s);
	g_assert_cmpint(buf[RECORD_TIME_LEN + 1], ==, 'x');
}

typedef struct {
	const char *name;
	const char *prefix; /* already in the GString */
	gint64 t;
	const char *sender;
	const char *body;
	const char *out;
	const char *parsed_sender; /* NULL: same as sender */
} AppendCase;

#define L(text) S_SPEC "\tbob@example.org\t" text "\n"

static const AppendCase append_cases[] = {
	{"single", "", T_SPEC, "bob@example.org", "hello there",
	 L("hello there"), NULL},
	{"multi-line", "", T_SPEC, "bob@example.org", "a\nb\nc",
	 L("a") L("b") L("c"), NULL},
	{"trailing-lf", "", T_SPEC, "bob@example.org", "a\nb\n",
	 L("a") L("b"), NULL},
	{"empty-body", "", T_SPEC, "bob@example.org", "", L(""), NULL},
	{"only-lf", "", T_SPEC, "bob@example.org", "\n", L(""), NULL},
	{"two-lf", "", T_SPEC, "bob@example.org", "\n\n", L("") L(""), NULL},
	{"blank-line-kept", "", T_SPEC, "bob@example.org", "a\n\nb",
	 L("a") L("") L("b"), NULL},
	{"tab-in-body", "", T_SPEC, "bob@example.org", "a\tb\t",
	 L("a\tb\t"), NULL},
	{"crlf-is-text", "", T_SPEC, "bob@example.org", "a\r\nb\r\n",
	 L("a\r") L("b\r"), NULL},
	{"lone-cr", "", T_SPEC, "bob@example.org", "a\rb", L("a\rb"), NULL},
	{"appends", "x\n", T_SPEC, "bob@example.org", "hi", "x\n" L("hi"),
	 NULL},
	{"epoch-nick", "", 0, "Jos\xc3\xa9 M", "hola",
	 "1970-01-01T00:00:00Z\tJos\xc3\xa9 M\thola\n", NULL},
	{"sender-tab-mended", "", 0, "a\tb", "x",
	 "1970-01-01T00:00:00Z\ta" FFFD "b\tx\n", "a" FFFD "b"},
	{"sender-lf-mended", "", 0, "a\nb", "x",
	 "1970-01-01T00:00:00Z\ta" FFFD "b\tx\n", "a" FFFD "b"},
};

static void test_append(gconstpointer data)
{
	const AppendCase *c = data;
	g_autoptr(GString) out = g_string_new(c->prefix);

	record_append(out, c->t, c->sender, c->body);
	g_assert_cmpstr(out->str, ==, c->out);
}

/* Every line that record_append writes parses back, and the texts joined
 * by LF give the body without its one trailing LF. */
static void test_roundtrip(gconstpointer data)
{
	const AppendCase *c = data;
	const char *sender = c->parsed_sender ? c->parsed_sender : c->sender;
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GString) texts = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;
	gsize body_len = strlen(c->body);

	record_append(out, c->t, c->sender, c->body);
	g_assert_true(g_str_has_suffix(out->str, "\n"));
	g_string_truncate(out, out->len - 1);
	lines = g_strsplit(out->str, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_autoptr(GError) err = NULL;
		g_autofree char *storage = NULL;
		Record rec;

		g_assert_true(record_parse(lines[i], &rec, &storage, &err));
		g_assert_no_error(err);
		g_assert_cmpint(rec.time, ==, c->t);
		g_assert_cmpstr(rec.sender, ==, sender);
		g_string_append_printf(texts, "%s%s", i ? "\n" : "", rec.text);
	}
	if (body_len && c->body[body_len - 1] == '\n')
		body_len--;
	g_assert_cmpmem(texts->str, texts->len, c->body, body_len);
}

typedef struct {
	const char *name;
	const char *line;
	int error; /* -1: parses */
	gint64 t;
	const char *sender;
	const char *text;
} ParseCase;

static const ParseCase parse_cases[] = {
	{"basic", S_SPEC "\tbob@example.org\thello there", -1, T_SPEC,
	 "bob@example.org", "hello there"},
	{"tab-in-text", S_SPEC "\tbob\ta\tb\t", -1, T_SPEC, "bob", "a\tb\t"},
	{"empty-text", S_SPEC "\tbob\t", -1, T_SPEC, "bob", ""},
	{"cr-in-text", S_SPEC "\tbob\ta\r", -1, T_SPEC, "bob", "a\r"},
	{"lf-in-text", S_SPEC "\tbob\ta\nb", -1, T_SPEC, "bob", "a\nb"},
	{"before-epoch", "1969-12-31T23:59:59Z\tbob\thi", -1, -1, "bob", "hi"},
	{"nick-utf8", S_SPEC "\tJos\xc3\xa9 M\thola", -1, T_SPEC,
	 "Jos\xc3\xa9 M", "hola"},
	{"empty-line", "", RECORD_ERROR_FIELDS, 0, NULL, NULL},
	{"no-tab", "hello", RECORD_ERROR_FIELDS, 0, NULL, NULL},
	{"two-fields", S_SPEC "\tbob", RECORD_ERROR_FIELDS, 0, NULL, NULL},
	{"no-time", "\tbob\thi", RECORD_ERROR_TIME, 0, NULL, NULL},
	{"time-without-z", "2026-11-24T21:57:14\tbob\thi", RECORD_ERROR_TIME,
	 0, NULL, NULL},
	{"time-lower-z", "2026-11-24T21:57:14z\tbob\thi", RECORD_ERROR_TIME,
	 0, NULL, NULL},
	{"time-offset", "2026-11-24T21:57:14+00:00\tbob\thi",
	 RECORD_ERROR_TIME, 0, NULL, NULL},
	{"time-fraction", "2026-11-24T21:57:14.5Z\tbob\thi",
	 RECORD_ERROR_TIME, 0, NULL, NULL},
	{"time-month-13", "2026-13-24T21:57:14Z\tbob\thi", RECORD_ERROR_TIME,
	 0, NULL, NULL},
	{"time-space", " " S_SPEC "\tbob\thi", RECORD_ERROR_TIME, 0, NULL,
	 NULL},
	{"empty-sender", S_SPEC "\t\thi", RECORD_ERROR_SENDER, 0, NULL, NULL},
	{"lf-in-sender", S_SPEC "\tb\nob\thi", RECORD_ERROR_SENDER, 0, NULL,
	 NULL},
};

static void test_parse(gconstpointer data)
{
	const ParseCase *c = data;
	g_autoptr(GError) err = NULL;
	g_autofree char *storage = NULL;
	Record rec = { 0 };
	bool ok = record_parse(c->line, &rec, &storage, &err);

	if (c->error >= 0) {
		g_assert_false(ok);
		g_assert_null(storage);
		g_assert_error(err, RECORD_ERROR, c->error);
		/* Without a GError, too. */
		g_assert_false(record_parse(c->line, &rec, &storage, NULL));
		return;
	}
	g_assert_no_error(err);
	g_assert_true(ok);
	g_assert_nonnull(storage);
	g_assert_cmpint(rec.time, ==, c->t);
	g_assert_cmpstr(rec.sender, ==, c->sender);
	g_assert_cmpstr(rec.text, ==, c->text);
}

typedef struct {
	const char *name;
	const char *stamp;
	bool ok;
	gint64 t;
} StampCase;

static const StampCase stamp_cases[] = {
	{"utc", S_SPEC, true, T_SPEC},
	{"plus", "2026-11-24T23:57:14+02:00", true, T_SPEC},
	{"minus-half-hour", "2026-11-24T16:27:14-05:30", true, T_SPEC},
	{"plus-next-day", "2026-11-25T07:57:14+10:00", true, T_SPEC},
	{"plus-prev-year", "2026-01-01T00:30:00+01:00", true, 1767223800},
	{"minus-next-year", "2025-12-31T23:30:00-01:00", true, 1767227400},
	{"plus-leap-day", "2024-03-01T00:30:00+01:00", true, 1709249400},
	{"plus-14", "2026-11-25T11:57:14+14:00", true, T_SPEC},
	{"z-and-offset", S_SPEC "-00:00", false, 0},
	{"minus-00-00", "2026-11-24T21:57:14-00:00", true, T_SPEC},
	{"fraction", "2026-11-24T21:57:14.123Z", true, T_SPEC},
	{"fraction-one", "2026-11-24T21:57:14.9Z", true, T_SPEC},
	{"fraction-long", "2026-11-24T23:57:14.999999999+02:00", true, T_SPEC},
	{"epoch", "1970-01-01T00:00:00Z", true, 0},
	{"before-epoch", "1969-12-31T23:59:59Z", true, -1},
	{"before-epoch-fraction", "1969-12-31T23:59:59.5Z", true, -1},
	{"epoch-in-tokyo", "1970-01-01T09:00:00+09:00", true, 0},
	{"epoch-plus", "1970-01-01T00:00:00+01:00", true, -3600},
	{"leap-day", "2024-02-29T12:00:00Z", true, 1709208000},
	{"leap-day-2000", "2000-02-29T23:59:59Z", true, 951868799},
	{"year-9999", "9999-12-31T23:59:59Z", true, T_MAX},
	{"year-1", "0001-01-01T00:00:00Z", true, T_MIN},
	{"after-9999", "9999-12-31T23:59:59-00:01", false, 0},
	{"before-year-1", "0001-01-01T00:00:00+00:01", false, 0},
	{"year-0", "0000-06-01T00:00:00Z", false, 0},
	{"month-13", "2026-13-01T00:00:00Z", false, 0},
	{"month-0", "2026-00-01T00:00:00Z", false, 0},
	{"day-0", "2026-11-00T00:00:00Z", false, 0},
	{"feb-30", "2024-02-30T00:00:00Z", false, 0},
	{"feb-29-2025", "2025-02-29T00:00:00Z", false, 0},
	{"feb-29-1900", "1900-02-29T00:00:00Z", false, 0},
	{"apr-31", "2026-04-31T00:00:00Z", false, 0},
	{"hour-24", "2026-11-24T24:00:00Z", false, 0},
	{"minute-60", "2026-11-24T21:60:00Z", false, 0},
	{"second-60", "2016-12-31T23:59:60Z", false, 0},
	{"offset-14-01", "2026-11-24T21:57:14+14:01", false, 0},
	{"offset-15", "2026-11-24T21:57:14-15:00", false, 0},
	{"offset-minute-60", "2026-11-24T21:57:14+05:60", false, 0},
	{"offset-no-colon", "2026-11-24T21:57:14+0200", false, 0},
	{"offset-hours-only", "2026-11-24T21:57:14+02", false, 0},
	{"no-zone", "2026-11-24T21:57:14", false, 0},
	{"missing-t", "2026-11-24 21:57:14Z", false, 0},
	{"lower-t", "2026-11-24t21:57:14Z", false, 0},
	{"lower-z", "2026-11-24T21:57:14z", false, 0},
	{"trailing-space", S_SPEC " ", false, 0},
	{"trailing-junk", S_SPEC "junk", false, 0},
	{"offset-junk", "2026-11-24T23:57:14+02:00x", false, 0},
	{"leading-space", " " S_SPEC, false, 0},
	{"dot-no-digits", "2026-11-24T21:57:14.Z", false, 0},
	{"comma-fraction", "2026-11-24T21:57:14,5Z", false, 0},
	{"short-year", "26-11-24T21:57:14Z", false, 0},
	{"five-digit-year", "12026-11-24T21:57:14Z", false, 0},
	{"signed-field", "2026-+1-24T21:57:14Z", false, 0},
	{"date-only", "2026-11-24", false, 0},
	{"empty", "", false, 0},
};

static void test_stamp(gconstpointer data)
{
	const StampCase *c = data;
	gint64 t = 42;

	g_assert_cmpint(record_parse_stamp(c->stamp, &t), ==, c->ok);
	g_assert_cmpint(t, ==, c->ok ? c->t : 42);
}

typedef struct {
	const char *name;
	const char *in;
	const char *out;
} EscapeCase;

static const EscapeCase escape_cases[] = {
	{"plain", "alice", "alice"},
	{"empty", "", ""},
	{"spaces", "Bob the Builder", "Bob the Builder"},
	{"utf8", "Jos\xc3\xa9 \xf0\x9f\x99\x82",
	 "Jos\xc3\xa9 \xf0\x9f\x99\x82"},
	{"fffd-kept", FFFD, FFFD},
	{"tab", "a\tb", "a" FFFD "b"},
	{"lf", "a\nb\n", "a" FFFD "b" FFFD},
	{"cr", "a\rb", "a" FFFD "b"},
	{"esc-bel", "\x1b[31m\a", FFFD "[31m" FFFD},
	{"del", "a\x7f", "a" FFFD},
	{"c1", "a\xc2\x85z", "a" FFFD "z"},
	{"invalid-byte", "a\xff" "b", "a" FFFD "b"},
	{"truncated-utf8", "a\xe2\x82", "a" FFFD FFFD},
};

static void test_escape(gconstpointer data)
{
	const EscapeCase *c = data;
	g_autofree char *out = record_escape_sender(c->in);

	g_assert_cmpstr(out, ==, c->out);
	g_assert_true(g_utf8_validate(out, -1, NULL));
}

/* GLib's own calendar agrees with ours across the whole range, and every
 * formatted time parses back as a stamp. */
static void test_format_gdatetime(void)
{
	const gint64 step = G_GINT64_CONSTANT(86400) * 37 + 3601;

	for (gint64 t = T_MIN; t <= T_MAX; t += step) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
		/* Not g_date_time_format: its %Y does not pad year 1. */
		g_autofree char *want = g_strdup_printf(
			"%04d-%02d-%02dT%02d:%02d:%02dZ",
			g_date_time_get_year(dt), g_date_time_get_month(dt),
			g_date_time_get_day_of_month(dt),
			g_date_time_get_hour(dt), g_date_time_get_minute(dt),
			g_date_time_get_second(dt));
		char buf[RECORD_TIME_LEN + 1];
		gint64 back = 0;

		record_format_time(t, buf);
		g_assert_cmpstr(buf, ==, want);
		g_assert_true(record_parse_stamp(buf, &back));
		g_assert_cmpint(back, ==, t);
	}
}

/* Nothing may depend on the local time zone. */
static void test_tokyo(void)
{
	g_autofree char *old = g_strdup(g_getenv("TZ"));
	char buf[RECORD_TIME_LEN + 1];
	gint64 t = 1;

	g_setenv("TZ", "Asia/Tokyo", true);
	tzset();
	record_format_time(0, buf);
	g_assert_cmpstr(buf, ==, "1970-01-01T00:00:00Z");
	g_assert_true(record_parse_stamp("1970-01-01T00:00:00Z", &t));
	g_assert_cmpint(t, ==, 0);
	if (old)
		g_setenv("TZ", old, true);
	else
		g_unsetenv("TZ");
	tzset();
}

#define ADD_CASES(prefix, table, func)                                      \
	for (guint i = 0; i < G_N_ELEMENTS(table); i++) {                   \
		g_autofree char *path =                                     \
			g_strdup_printf("/record/" prefix "/%s",            \
					table[i].name);                     \
		g_test_add_data_func(path, &table[i], func);                \
	}

/* log.ids: one line per record of the body, whatever the ids hold. */
static void test_append_ids(void)
{
	g_autoptr(GString) ids = g_string_new(NULL);

	record_append_ids(ids, "one\ntwo\n", "a\tb\nc", "reply", "r\x01", NULL,
			  NULL);
	g_assert_cmpstr(ids->str, ==,
			"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\treply\tr\xef\xbf\xbd\t-\n"
			"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\treply\tr\xef\xbf\xbd\t-\n");
	g_string_truncate(ids, 0);
	record_append_ids(ids, "", "", "message", NULL, "s1", NULL);
	g_assert_cmpstr(ids->str, ==, "-\tmessage\t-\ts1\n");
	g_string_truncate(ids, 0);
	record_append_ids(ids, "x\n\ny", "i", "message", NULL, NULL, NULL);
	/* as record_append: "x", "", "y" are three records */
	g_assert_cmpstr(ids->str, ==,
			"i\tmessage\t-\t-\ni\tmessage\t-\t-\ni\tmessage\t-\t-\n");
	/* an encrypted message's: a fifth field says how it travelled */
	g_string_truncate(ids, 0);
	record_append_ids(ids, "a\nb", "i", "message", NULL, "s", "omemo");
	g_assert_cmpstr(ids->str, ==,
			"i\tmessage\t-\ts\tomemo\ni\tmessage\t-\ts\tomemo\n");
}

int main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	ADD_CASES("format", format_cases, test_format);
	ADD_CASES("append", append_cases, test_append);
	ADD_CASES("roundtrip", append_cases, test_roundtrip);
	ADD_CASES("parse", parse_cases, test_parse);
	ADD_CASES("stamp", stamp_cases, test_stamp);
	ADD_CASES("escape", escape_cases, test_escape);
	g_test_add_func("/record/format/gdatetime", test_format_gdatetime);
	g_test_add_func("/record/format/tokyo", test_tokyo);
	g_test_add_func("/record/append-ids", test_append_ids);
	return g_test_run();
}
