/* record.c - the TAB record format (SPEC "Records").
 *
 * Times are plain arithmetic on the proleptic Gregorian calendar (Howard
 * Hinnant's days_from_civil), never timegm/gmtime/mktime: those read TZ or
 * depend on the width of time_t, and a log must not change with either.
 * The range is 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, the years a
 * four-digit field can hold (XML Schema has no year 0000); times before
 * 1970 are ordinary negative seconds.  record_format_time clamps to that
 * range so it always writes exactly RECORD_TIME_LEN characters, and the
 * parsers refuse what falls outside it, so whatever parses re-formats to
 * the same value.
 *
 * record_parse accepts only the exact form record_format_time writes
 * (upper-case T and Z, no fraction, no offset): a log is ours, and a line
 * that is not in that form is damage, not a dialect.  Stamps from servers
 * (XEP-0082) get the full grammar in record_parse_stamp. */
#include "base/record.h"

#include <string.h>

#define SECS_PER_DAY 86400
#define YEAR_MIN 1
#define YEAR_MAX 9999
/* |offset| <= 14:00, the limit of XML Schema's time zones. */
#define OFFSET_MAX_MIN (14 * 60)

G_DEFINE_QUARK(record-error-quark, record_error)

typedef struct {
	int year, month, day, hour, min, sec;
} Civil;

/* Days from 1970-01-01 to y-m-d; exact for any year, negative before. */
static gint64 record_days_from_civil(gint64 y, int m, int d)
{
	gint64 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void record_civil_from_days(gint64 z, Civil *c)
{
	gint64 era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
	c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
	c->year = (int)(yoe + era * 400 + (c->month <= 2));
}

static gint64 record_time_min(void)
{
	return record_days_from_civil(YEAR_MIN, 1, 1) * SECS_PER_DAY;
}

static gint64 record_time_max(void)
{
	return record_days_from_civil(YEAR_MAX, 12, 31) * SECS_PER_DAY +
	       SECS_PER_DAY - 1;
}

void record_format_time(gint64 unix_s, char *buf)
{
	gint64 days, rem;
	Civil c;

	unix_s = CLAMP(unix_s, record_time_min(), record_time_max());
	/* Floor division: -1 is 23:59:59 of the day before, not 00:00:-1. */
	days = unix_s / SECS_PER_DAY;
	rem = unix_s % SECS_PER_DAY;
	if (rem < 0) {
		days--;
		rem += SECS_PER_DAY;
	}
	record_civil_from_days(days, &c);
	c.hour = (int)(rem / 3600);
	c.min = (int)(rem / 60 % 60);
	c.sec = (int)(rem % 60);
	g_snprintf(buf, RECORD_TIME_LEN + 1, "%04d-%02d-%02dT%02d:%02d:%02dZ",
		   c.year, c.month, c.day, c.hour, c.min, c.sec);
}

/* Exactly @n ASCII digits; strtol would also take spaces and signs. */
static bool record_digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool record_is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool record_civil_valid(const Civil *c)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int last;

	if (c->year < YEAR_MIN || c->month < 1 || c->month > 12)
		return false;
	last = mdays[c->month - 1] + (c->month == 2 && record_is_leap(c->year));
	/* No hour 24 and no leap second 60: XML Schema 1.1 has neither. */
	return c->day >= 1 && c->day <= last && c->hour <= 23 &&
	       c->min <= 59 && c->sec <= 59;
}

/* "YYYY-MM-DDThh:mm:ss", the part every form shares; @s advances past
 * it. */
static bool record_scan_civil(const char **s, Civil *c)
{
	const char *p = *s;

	if (!record_digits(p, 4, &c->year) || p[4] != '-' ||
	    !record_digits(p + 5, 2, &c->month) || p[7] != '-' ||
	    !record_digits(p + 8, 2, &c->day) || p[10] != 'T' ||
	    !record_digits(p + 11, 2, &c->hour) || p[13] != ':' ||
	    !record_digits(p + 14, 2, &c->min) || p[16] != ':' ||
	    !record_digits(p + 17, 2, &c->sec))
		return false;
	if (!record_civil_valid(c))
		return false;
	*s = p + 19;
	return true;
}

static gint64 record_civil_to_unix(const Civil *c)
{
	return record_days_from_civil(c->year, c->month, c->day) *
		       SECS_PER_DAY +
	       c->hour * 3600 + c->min * 60 + c->sec;
}

/* The exact form of record_format_time, nothing else. */
static bool record_parse_time(const char *s, gint64 *unix_s)
{
	Civil c;

	if (!record_scan_civil(&s, &c) || strcmp(s, "Z") != 0)
		return false;
	*unix_s = record_civil_to_unix(&c);
	return true;
}

/* "Z", "+hh:mm" or "-hh:mm" to the minutes to subtract for UTC. */
static bool record_scan_offset(const char *s, int *minutes)
{
	int hh, mm, off;

	if (strcmp(s, "Z") == 0) {
		*minutes = 0;
		return true;
	}
	if ((s[0] != '+' && s[0] != '-') || !record_digits(s + 1, 2, &hh) ||
	    s[3] != ':' || !record_digits(s + 4, 2, &mm) || s[6] != '\0')
		return false;
	off = hh * 60 + mm;
	if (mm > 59 || off > OFFSET_MAX_MIN)
		return false;
	*minutes = s[0] == '-' ? -off : off;
	return true;
}

bool record_parse_stamp(const char *stamp, gint64 *unix_s)
{
	const char *p = stamp;
	int offset;
	gint64 t;
	Civil c;

	g_return_val_if_fail(stamp && unix_s, false);
	if (!record_scan_civil(&p, &c))
		return false;
	if (*p == '.') {
		/* At least one digit; any precision; dropped. */
		if (!g_ascii_isdigit(p[1]))
			return false;
		for (p++; g_ascii_isdigit(*p); p++)
			;
	}
	if (!record_scan_offset(p, &offset))
		return false;
	/* 10:00+02:00 is 08:00Z: the offset is what local time is ahead. */
	t = record_civil_to_unix(&c) - (gint64)offset * 60;
	if (t < record_time_min() || t > record_time_max())
		return false;
	*unix_s = t;
	return true;
}

static void record_append_line(GString *out, const char *stamp,
			       const char *sender, const char *text,
			       gsize len)
{
	g_string_append(out, stamp);
	g_string_append_c(out, '\t');
	g_string_append(out, sender);
	g_string_append_c(out, '\t');
	g_string_append_len(out, text, (gssize)len);
	g_string_append_c(out, '\n');
}

void record_append(GString *out, gint64 unix_s, const char *sender,
		   const char *body)
{
	char stamp[RECORD_TIME_LEN + 1];
	g_autofree char *safe = NULL;
	const char *p = body;

	g_return_if_fail(out && sender && body);
	/* A precondition, but one slip would shift every later field of the
	 * line for every reader: cheaper to mend than to trust. */
	if (strpbrk(sender, "\t\n"))
		sender = safe = record_escape_sender(sender);
	record_format_time(unix_s, stamp);
	for (;;) {
		const char *lf = strchr(p, '\n');

		if (!lf) {
			/* The last line; empty only for an empty body. */
			if (*p || p == body)
				record_append_line(out, stamp, sender, p,
						   strlen(p));
			return;
		}
		record_append_line(out, stamp, sender, p, (gsize)(lf - p));
		p = lf + 1;
	}
}

/* How many records record_append makes of @body. */
static guint record_count(const char *body)
{
	guint n = 0;
	const char *p = body, *lf;

	while ((lf = strchr(p, '\n'))) {
		n++;
		p = lf + 1;
	}
	return n + (*p || p == body ? 1 : 0);
}

void record_append_ids(GString *ids, const char *body, const char *id,
		       const char *kind, const char *ref, const char *sid,
		       const char *enc)
{
	g_autofree char *i = record_escape_sender(id && *id ? id : "-");
	g_autofree char *r = record_escape_sender(ref && *ref ? ref : "-");
	g_autofree char *a = record_escape_sender(sid && *sid ? sid : "-");
	g_autofree char *line =
		enc ? g_strdup_printf("%s\t%s\t%s\t%s\t%s\n", i, kind, r, a,
				      enc)
		    : g_strdup_printf("%s\t%s\t%s\t%s\n", i, kind, r, a);

	for (guint n = record_count(body); n; n--)
		g_string_append(ids, line);
}

static bool record_fail(GError **err, RecordError code, const char *msg)
{
	g_set_error_literal(err, RECORD_ERROR, code, msg);
	return false;
}

bool record_parse(const char *line, Record *rec, char **storage,
		  GError **err)
{
	g_autofree char *copy = NULL;
	char *tab1, *tab2;
	gint64 t;

	g_return_val_if_fail(line && rec && storage, false);
	*storage = NULL;
	copy = g_strdup(line);
	tab1 = strchr(copy, '\t');
	tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
	if (!tab2)
		return record_fail(err, RECORD_ERROR_FIELDS,
				   "record has fewer than three fields");
	*tab1 = *tab2 = '\0';
	if (!record_parse_time(copy, &t))
		return record_fail(err, RECORD_ERROR_TIME,
				   "record time is not YYYY-MM-DDTHH:MM:SSZ");
	if (!tab1[1] || strchr(tab1 + 1, '\n'))
		return record_fail(err, RECORD_ERROR_SENDER,
				   "record sender is empty or contains LF");
	rec->time = t;
	rec->sender = tab1 + 1;
	rec->text = tab2 + 1;
	*storage = g_steal_pointer(&copy);
	return true;
}

static bool record_is_control(gunichar c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

char *record_escape_sender(const char *name)
{
	GString *out;
	const char *p = name;

	g_return_val_if_fail(name, NULL);
	out = g_string_sized_new(strlen(name));
	while (*p) {
		/* Invalid UTF-8 too: a log is read as text. */
		gunichar c = g_utf8_get_char_validated(p, -1);

		if (c == (gunichar)-1 || c == (gunichar)-2) {
			g_string_append_unichar(out, 0xfffd);
			p++;
			continue;
		}
		g_string_append_unichar(out, record_is_control(c) ? 0xfffd : c);
		p = g_utf8_next_char(p);
	}
	return g_string_free(out, false);
}
