/* record.h - the TAB record format of `log`, `stream` and `events` (SPEC
 * "Records").  Pure: no I/O, any thread.
 *
 *   2026-11-24T21:57:14Z<TAB>bob@example.org<TAB>hello there\n
 *
 * A body of several lines gives several records with the same time and
 * sender; a TAB inside a body is kept (only the first two TABs of a line
 * separate fields). */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define RECORD_ERROR (record_error_quark())
GQuark record_error_quark(void);

typedef enum {
	RECORD_ERROR_TIME,   /* not a valid time */
	RECORD_ERROR_FIELDS, /* fewer than three fields */
	RECORD_ERROR_SENDER, /* empty sender, or one with TAB or LF */
} RecordError;

/* "YYYY-MM-DDTHH:MM:SSZ" for @unix_s (UTC); into @buf of at least
 * RECORD_TIME_LEN + 1 bytes. */
#define RECORD_TIME_LEN 20
void record_format_time(gint64 unix_s, char *buf);

/* Append the records of one message to @out: one line per line of @body
 * (a trailing LF of the body does not make an empty last record; an
 * empty body gives one record with an empty third field).  @sender must
 * not contain TAB or LF (callers pass validated JIDs and escaped nicks). */
void record_append(GString *out, gint64 unix_s, const char *sender,
		   const char *body);

/* log.ids, the log's companion: line N names record N of the log,
 *
 *   ID<TAB>KIND<TAB>REF<TAB>SID\n
 *
 * ID the message's id (what a reply, a correction or a receipt names it
 * by), KIND what the record is ("message", "error", ...), REF the id of
 * the message it refers to, SID the id the archive that keeps it gave it
 * (XEP-0359 stanza-id: our server's, a room's); "-" for none.  Append to @ids one such line
 * for each record record_append makes of @body.  TAB, LF and other
 * control characters in the ids become U+FFFD, an empty id "-".
 * @enc: how the message travelled, when encrypted ("omemo"): a fifth
 * field, ENC; NULL for one in the clear (four fields, as before). */
void record_append_ids(GString *ids, const char *body, const char *id,
		       const char *kind, const char *ref, const char *sid,
		       const char *enc);

/* Parse one line (without its LF).  Fields point into a copy owned by
 * the caller through @storage (g_free it). */
typedef struct {
	gint64 time;
	const char *sender;
	const char *text;
} Record;
bool record_parse(const char *line, Record *rec, char **storage,
		  GError **err);

/* A time stamp of XEP-0082 (as in XEP-0203 <delay stamp='...'/>):
 * "CCYY-MM-DDThh:mm:ss[.sss](Z|(+|-)hh:mm)" -> seconds since the epoch
 * (fractions dropped).  False for anything else, also for out-of-range
 * fields (month 13, hour 24, Feb 30). */
bool record_parse_stamp(const char *stamp, gint64 *unix_s);

/* A nick or resource as the sender field: TAB and LF (and other control
 * characters) become U+FFFD so a record always has exactly its fields. */
char *record_escape_sender(const char *name);
