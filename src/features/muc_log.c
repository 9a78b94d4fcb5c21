/* muc_log.c - a room's log (rooms/ROOM/log): what a room's line becomes
 * as a record, once (muc_record), and the gap a record that could not be
 * written leaves; with what every part of group chat asks of the rooms
 * (text from the wire as one line, a room we were in, the password to
 * join with, when a room was last heard from).  The lowest of the group chat files (muc_int.h): it calls
 * none of them, nor our archive's.  Pool thread only, as the account
 * layer (account_int.h). */
#include "features/files.h"
#include "features/muc_int.h"
#include "features/kinds.h"

#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/text.h"

/* Text from the wire for one line of `events` or `subject`: every
 * control character (TAB, CR, LF, the C1 ones) becomes a space; NULL
 * stays NULL. */
char *muc_one_line(const char *s)
{
	GString *out;

	if (!s)
		return NULL;
	out = g_string_sized_new(strlen(s));
	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char_validated(p, -1);
		if (c == (gunichar)-1 || c == (gunichar)-2)
			break; /* the XML parser let no such text through */
		if (g_unichar_iscntrl(c))
			g_string_append_c(out, ' ');
		else
			g_string_append_len(out, p, g_utf8_next_char(p) - p);
	}
	return g_string_free(out, FALSE);
}

/* The text of @el's child @name on one line, NULL for none or empty. */
char *muc_child_line(xmpp_stanza_t *el, const char *name)
{
	g_autofree char *t = el ? acct_child_text(el, name) : NULL;

	return t && *t ? muc_one_line(t) : NULL;
}

/* A JID from an attribute in its normalized form, or NULL. */
char *muc_valid_jid(const char *s)
{
	g_autoptr(Jid) j = s ? jid_parse(s, NULL) : NULL;

	return j ? jid_full(j) : NULL;
}

/* The time of the last record in @room's log (0 if none), and in @seen
 * (if not NULL) the lines of that second.  The end of the log is read in
 * a window large enough to hold the whole last record (first 4 KiB, then
 * up to 1 MiB for a long one). */
void muc_history_since(gint64 last, char *since)
{
	/* a second before: the log's time of a live line is its arrival,
	 * which may be a second after the room's stamp of it, and the room
	 * compares its stamps; what comes twice is in the seen lines (or
	 * the room's ids) and is dropped */
	record_format_time(MAX(last - 1, (gint64)0), since);
}

gint64 muc_last_record_time(Account *a, const char *room, GHashTable *seen)
{
	Muc *mu = muc_of(a);
	static const gsize windows[] = {4096, 1024 * 1024};
	Hist *h = hist_set_get(mu->hists, room, false, NULL);
	goffset size = h ? hist_size(h) : 0;
	g_autofree char *buf = NULL;
	char *line = NULL;
	gint64 t = 0;

	if (size < 2)
		return 0;
	for (guint w = 0; w < G_N_ELEMENTS(windows) && !line; w++) {
		gsize want = MIN((goffset)windows[w], size);
		gssize n;

		g_free(buf);
		buf = g_malloc(want + 1);
		n = hist_pread(h, buf, want, size - (goffset)want);
		if (n <= 1)
			return 0;
		buf[n - 1] = '\0'; /* the last LF */
		line = strrchr(buf, '\n');
		if (line)
			line++;
		else if ((goffset)want == size)
			line = buf; /* the log is one record */
	}
	if (!line || strlen(line) < RECORD_TIME_LEN)
		return 0;
	{
		g_autofree char *stamp = g_strndup(line, RECORD_TIME_LEN);
		record_parse_stamp(stamp, &t);
	}
	if (seen && t) {
		/* the lines of the last two seconds, without their time: a
		 * live line's record has its arrival time, which may be the
		 * second after the room's own stamp (muc_history_since) */
		g_auto(GStrv) lines = g_strsplit(buf, "\n", -1);
		for (char **l = lines; *l; l++) {
			g_autofree char *stamp = g_strndup(*l, RECORD_TIME_LEN);
			const char *rest = strchr(*l, '\t');
			gint64 lt;
			if (rest && record_parse_stamp(stamp, &lt) && lt >= t - 1)
				g_hash_table_add(seen, g_strdup(rest + 1));
		}
	}
	return t;
}

/* The password to join @room with: the config's, else its bookmark's,
 * else an invitation's (anyone can send one: it never overrides what the
 * user wrote). */
const char *muc_room_password(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	const CfgRoom *cr = cfg_room(acct_cfg(a), room);
	const char *pw;

	if (cr && cr->password)
		return cr->password;
	/* then the one our bookmarks keep, then an invitation's */
	pw = g_hash_table_lookup(mu->bookmark_passwords, room);
	return pw ? pw : g_hash_table_lookup(mu->invite_passwords, room);
}

/* History or the archive's (a delayed message) whose records are all
 * among the lines of the last second the log had when we asked: written
 * already. */
static bool already_logged(Account *a, const char *room, const char *records)
{
	Muc *mu = muc_of(a);
	GHashTable *seen = g_hash_table_lookup(mu->seen, room);
	g_auto(GStrv) lines = NULL;

	if (!seen || !g_hash_table_size(seen))
		return false;
	lines = g_strsplit(records, "\n", -1);
	for (char **l = lines; *l; l++) {
		const char *rest = strchr(*l, '\t');
		if (**l && (!rest || !g_hash_table_contains(seen, rest + 1)))
			return false;
	}
	return true;
}

/* The body of @msg, NULL for none (newly allocated). */
char *muc_body(Account *a, xmpp_stanza_t *msg)
{
	char *b = xmpp_message_get_body(msg);
	char *body = b ? g_strdup(b) : NULL;

	if (b)
		xmpp_free(a->ctx, b);
	return body;
}

/* The ids the room gave the messages of its log (roomids.h). */
static RoomIds *muc_ids(Account *a, const char *room)
{
	Muc *mu = muc_of(a);
	RoomIds *r = g_hash_table_lookup(mu->ids, room);

	if (!r) {
		g_autofree char *path =
			g_build_filename(mu->dir, room, "ids", NULL);
		r = roomids_open(path);
		g_hash_table_insert(mu->ids, g_strdup(room), r);
	}
	return r;
}

/* The id @room gave @msg (XEP-0359 <stanza-id by=ROOM/>), or NULL. */
const char *muc_stanza_id(xmpp_stanza_t *msg, const char *room)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(msg); c;
	     c = xmpp_stanza_get_next(c)) {
		g_autofree char *by = NULL;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "stanza-id") ||
		    g_strcmp0(xmpp_stanza_get_ns(c), NS_SID))
			continue;
		by = muc_valid_jid(xmpp_stanza_get_attribute(c, "by"));
		if (by && !strcmp(by, room))
			return xmpp_stanza_get_attribute(c, "id");
	}
	return NULL;
}

/* @rec (a delayed message's records) is in the log already: by the id
 * the room gave it, where the room gives ids and we kept them; else by
 * its text among the lines of the last second (a server without ids, or
 * a log from before they were kept). */
static bool logged_before(Account *a, const char *room, const char *sid,
			  const char *rec)
{
	RoomIds *ids = muc_ids(a, room);

	if (sid && roomids_any(ids))
		return roomids_has(ids, sid);
	return already_logged(a, room, rec);
}

/* The room's event of a record of someone else's: a groupchat line, or
 * what a message says of an earlier one (REF<TAB>TEXT after the nick). */
static void room_event(Account *a, const char *room, const char *sender,
		       const MsgKind *k)
{
	g_autofree char *text = NULL;

	if (!strcmp(k->kind, "correction") || !strcmp(k->kind, "reaction") ||
	    !strcmp(k->kind, "moderation"))
		text = g_strdup_printf("%s\t%s", k->ref, k->text);
	else if (!strcmp(k->kind, "retraction"))
		text = g_strdup(k->ref);
	acct_event_by(a, text ? k->kind : "groupchat", room, sender,
		      text ? text : k->text);
	if (k->url)
		acct_event_by(a, "groupchat", room, sender, k->url);
}

void muc_record(Account *a, const char *room, const char *nick,
		xmpp_stanza_t *msg, gint64 t, bool delayed, const char *sid)
{
	Muc *mu = muc_of(a);
	g_autofree char *sender = NULL, *mine = NULL;
	g_autoptr(GString) rec = NULL, ids = NULL;
	g_autoptr(GError) err = NULL;
	const char *mid = xmpp_stanza_get_id(msg);
	g_auto(MsgKind) k = {0};
	goffset at = 0;
	Hist *h;
	int ret;

	if (!kinds_of(a, msg, &k) || !strcmp(k.kind, "error"))
		return; /* a chat state, a marker; an error is not the room's */
	if (!delayed && muc_gap(a, room)) {
		/* after a message that could not be logged, the live ones
		 * wait for the archive to bring them all, in order */
		muc_log_failed(a, room, 0);
		return;
	}
	if (!text_is_clean(k.text, strlen(k.text), true))
		g_strdelimit(k.text, "\r\v\f", ' ');
	sender = record_escape_sender(nick);
	rec = g_string_new(NULL);
	record_append(rec, t, sender, k.text);
	if (k.url)
		record_append(rec, t, sender, k.url);
	if (delayed && logged_before(a, room, sid, rec->str))
		return;
	/* ID its own id, SID the room's: a correction names the message by
	 * the one (XEP-0308), a reaction, a reply or a retraction by the
	 * other (XEP-0444, XEP-0461, XEP-0424 in groupchat) */
	ids = g_string_new(NULL);
	record_append_ids(ids, k.text, mid, k.kind, k.ref, sid, NULL);
	if (k.url)
		record_append_ids(ids, k.url, mid, "oob", mid, sid, NULL);
	h = hist_set_get(mu->hists, room, true, &err);
	ret = h ? hist_append_ids(h, rec->str, rec->len, ids->str, ids->len,
				  &at)
		: -acct_errno_of(err);
	if (ret) {
		muc_log_failed(a, room, -ret);
		return;
	}
	mine = rooms_nick(mu->rooms, room);
	/* unread, or read (what we said) */
	receipts_room_logged(a, room, g_strcmp0(nick, mine) != 0, at,
			     at + (goffset)rec->len, sid);
	if (sid && roomids_add(muc_ids(a, room), sid) < 0)
		xfs_warn("%s: %s: cannot keep the id of a record: a rejoin may "
			 "write it again", acct_cfg(a)->jid, room);
	/* our own words are records, not events (as in contacts/): a bot
	 * that answers events must not answer itself */
	if (g_strcmp0(nick, mine))
		room_event(a, room, sender, &k);
	if (g_strcmp0(nick, mine) && k.file) /* a file someone sent */
		files_offer(a, room, k.file);
}

bool muc_gaps(Account *a)
{
	Muc *mu = muc_of(a);

	return g_hash_table_size(mu->gaps) > 0;
}

bool muc_gap(Account *a, const char *room)
{
	Muc *mu = muc_of(a);

	return g_hash_table_contains(mu->gaps, room);
}

void muc_log_failed(Account *a, const char *room, int err)
{
	Muc *mu = muc_of(a);
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(mu->gaps, room));

	g_hash_table_replace(mu->gaps, g_strdup(room),
			     GUINT_TO_POINTER(n + 1));
	acct_log_note(a, room, err);
}

bool muc_known_room(Account *a, const char *bare)
{
	Muc *mu = muc_of(a);

	return rooms_has(mu->rooms, bare) ||
	       hist_set_get(mu->hists, bare, false, NULL);
}

void muc_heard(Account *a, const char *room, xmpp_stanza_t *st)
{
	Muc *mu = muc_of(a);
	gint64 *t;

	/* an error (a bounce, a refusal) is no sign that the room has us */
	if (st && !g_strcmp0(xmpp_stanza_get_type(st), "error"))
		return;
	t = g_hash_table_lookup(mu->heard, room);
	if (!t) {
		t = g_new(gint64, 1);
		g_hash_table_insert(mu->heard, g_strdup(room), t);
	}
	*t = g_get_monotonic_time();
}

/* The rooms' state (Muc, muc_int.h): every room file reads it, so it
 * belongs to the lowest of them.  rooms_feature fills and empties it. */
const Feature room_state_feature = {
	.name = "the rooms' state (muc_log.c)",
	.state_size = sizeof(Muc),
};
