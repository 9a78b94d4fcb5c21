/* chat.c - conversations (contacts/JID/): a message accepted from `send`
 * or `post`, and one received, as a record in its log and an event.
 * Which received message reaches here, and when, is the dispatcher's
 * chain (featureset.c): the rooms, the archive's results and carbons, and
 * the catch-up's hold come first. */
#include "features/chat.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/text.h"
#include "features/featureset.h"
#include "features/kinds.h"
#include "features/mam_int.h"
#include "features/receipts.h"
#include "store/history.h"
#include "xmpp/dispatch.h"

int chat_send(Account *a, const char *to, const char *const *bodies,
	      guint n, guint64 *seq)
{
	g_autoptr(GError) err = NULL;
	Hist *h = hist_set_get(a->hists, to, true, &err);
	int ret;

	if (!h) {
		xfs_warn("%s: %s", acct_cfg(a)->jid, err->message);
		return -acct_errno_of(err);
	}
	ret = acct_accept(a, to, "chat", bodies, n, h, acct_cfg(a)->jid, seq);
	if (!ret) /* we spoke: what they said before is read */
		receipts_sent(a, to, hist_size(h));
	return ret;
}

/* The event of a record of theirs: a message (a reply is one), a
 * headline, an error, or what one says of an earlier message, with its id
 * before the text. */
static void chat_event(Account *a, const MsgKind *k, const Jid *jid,
		       const char *bare)
{
	if (!strcmp(k->kind, "error")) {
		/* "[error: cond] rest" -> "message cond rest" */
		g_autofree char *ev = g_strdup_printf(
			"message %s", k->text + (g_str_has_prefix(k->text,
								  "[error: ")
							 ? 8
							 : 0));
		g_autofree char *full = jid_full(jid);
		char *close = strchr(ev, ']');
		if (close)
			memmove(close, close + 1, strlen(close));
		acct_event(a, "error", full, ev);
	} else if (!strcmp(k->kind, "correction") ||
		   !strcmp(k->kind, "reaction")) {
		acct_event_by(a, k->kind, bare, k->ref, k->text);
	} else if (!strcmp(k->kind, "retraction")) {
		acct_event(a, k->kind, bare, k->ref);
	} else {
		if (k->subject)
			acct_event(a, !strcmp(k->kind, "headline") ? "headline"
								 : "message",
				   bare, k->subject);
		acct_event(a, !strcmp(k->kind, "headline") ? "headline"
							  : "message",
			   bare, k->text);
	}
}

bool chat_log(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t,
	      bool copy, const char *archive_id)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *bare = jid_bare(jid), *peer = NULL, *full = NULL;
	g_autoptr(GString) rec = NULL, ids = NULL;
	const char *sender = bare, *id = xmpp_stanza_get_id(msg);
	MsgKind k;
	Hist *h;
	goffset at = 0;
	int ret;

	if (!g_strcmp0(xmpp_stanza_get_type(msg), "groupchat") ||
	    !kinds_of(a, msg, &k))
		return false; /* (a room's is no conversation) */
	/* the records must stay one per line */
	if (!text_is_clean(k.text, strlen(k.text), true))
		g_strdelimit(k.text, "\r\v\f", ' ');
	if (k.subject)
		g_strdelimit(k.subject, "\r\n\v\f", ' ');
	if (copy && !strcmp(bare, acct_cfg(a)->jid)) {
		/* what another client of ours sent */
		const char *to = xmpp_stanza_get_to(msg);
		g_autoptr(Jid) tj = to ? jid_parse(to, NULL) : NULL;
		peer = tj ? jid_bare(tj) : NULL;
		if (!peer || !strcmp(peer, acct_cfg(a)->jid)) {
			kinds_clear(&k);
			return false;
		}
	}
	h = hist_set_get(a->hists, peer ? peer : bare, true, &err);
	if (!h) {
		xfs_warn("%s: message from %s not logged: %s", acct_cfg(a)->jid,
			 bare, err->message);
		mam_log_failed(a, peer ? peer : bare, acct_errno_of(err));
		kinds_clear(&k);
		return false;
	}
	rec = g_string_new(NULL);
	ids = g_string_new(NULL);
	/* a subject is a record of its own, before the body's; an
	 * out-of-band URL one after it; all named by the message's id */
	if (k.subject) {
		record_append(rec, t, sender, k.subject);
		record_append_ids(ids, k.subject, id, "subject", NULL,
				  archive_id);
	}
	record_append(rec, t, sender, k.text);
	record_append_ids(ids, k.text, id, k.kind, k.ref, archive_id);
	if (k.url) {
		record_append(rec, t, sender, k.url);
		record_append_ids(ids, k.url, id, "oob", id, archive_id);
	}
	ret = hist_append_ids(h, rec->str, rec->len, ids->str, ids->len, &at);
	if (ret) {
		mam_log_failed(a, peer ? peer : bare, -ret);
		kinds_clear(&k);
		return false;
	}
	/* unread, or read (what we said from another client) */
	receipts_logged(a, peer ? peer : bare, !peer, at, at + (goffset)rec->len,
			copy ? NULL : msg, archive_id);
	if (!peer)
		chat_event(a, &k, jid, bare);
	kinds_clear(&k);
	return true;
}

/* A message whose sender is no valid JID: dropped, said once in the log. */
bool chat_bad_sender_in(Account *a, const In *in)
{
	if (in->jid)
		return false;
	xfs_warn("%s: message dropped: sender '%s' is not a valid JID (%s)",
		 acct_cfg(a)->jid, in->from ? in->from : "(none)",
		 in->jid_error ? in->jid_error : "no from");
	return true;
}

/* Any other message: a conversation's (the last of the chain). */
bool chat_in(Account *a, const In *in)
{
	chat_live(a, in->st, in->jid, in->time);
	return true;
}

void chat_live(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t)
{
	guint failures = a->log_failures;

	if (mam_seen_live(a, msg))
		return; /* the archive gave it to us already */
	if (chat_log(a, msg, jid, t, false, mam_stanza_id(a, msg)))
		receipts_answer(a, msg, jid);
	if (a->log_failures == failures)
		mam_logged_live(a, msg);
}

/* ---- what a message of ours says of an earlier one ---- */

/* A record found in a conversation: the first of its message's lines. */
typedef struct {
	char *id, *kind, *ref, *sender, *text;
} Found;

static void found_clear(Found *f)
{
	g_free(f->id);
	g_free(f->kind);
	g_free(f->ref);
	g_free(f->sender);
	g_free(f->text);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Found, found_clear)

/* The last message in @h named @id (ANY: the last of @sender's plain
 * messages, replies and corrections); false when there is none. */
#define ANY NULL
static bool find(Hist *h, const char *id, const char *sender, Found *f)
{
	g_autoptr(GPtrArray) log = hist_lines(h, false);
	g_autoptr(GPtrArray) ids = hist_lines(h, true);
	gint64 i;

	memset(f, 0, sizeof *f);
	if (!log || !ids || log->len != ids->len)
		return false;
	for (i = (gint64)ids->len - 1; i >= 0; i--) {
		g_auto(GStrv) fi = g_strsplit(ids->pdata[i], "\t", 4);
		g_auto(GStrv) fl = g_strsplit(log->pdata[i], "\t", 3);
		if (g_strv_length(fi) < 3 || g_strv_length(fl) < 3 ||
		    !strcmp(fi[0], "-"))
			continue;
		if (id ? strcmp(fi[0], id) != 0
		       : (strcmp(fl[1], sender) != 0 ||
			  (strcmp(fi[1], "message") && strcmp(fi[1], "reply") &&
			   strcmp(fi[1], "correction"))))
			continue;
		/* back to the first line of that message */
		while (i > 0 && g_str_has_prefix(ids->pdata[i - 1], fi[0]) &&
		       ((char *)ids->pdata[i - 1])[strlen(fi[0])] == '\t')
			i--;
		{
			g_auto(GStrv) first = g_strsplit(log->pdata[i], "\t", 3);
			f->id = g_strdup(fi[0]);
			f->kind = g_strdup(fi[1]);
			f->ref = g_strdup(fi[2]);
			f->sender = g_strdup(first[1]);
			f->text = g_strdup(first[2] ? first[2] : "");
		}
		return true;
	}
	return false;
}

/* A text to send as @a's: clean (LF allowed), within the limit. */
static int check_text(Account *a, const char *text)
{
	gsize len = strlen(text);

	if (len > acct_cfg(a)->message_limit)
		return -EFBIG;
	return text_is_clean(text, len, true) ? 0 : -EILSEQ;
}

static int send_kind(Account *a, const char *to, Hist *h, const char *kind,
		     const char *ref, const char *ref_to, const char *body)
{
	OutboxKind k = {kind, ref, ref_to};
	guint64 seq;
	int ret = acct_accept_kind(a, to, "chat", &k, body, h,
				   acct_cfg(a)->jid, &seq);

	if (!ret)
		receipts_sent(a, to, hist_size(h));
	return ret;
}

static Hist *conversation(Account *a, const char *to)
{
	return hist_set_get(a->hists, to, false, NULL);
}

int chat_correct(Account *a, const char *to, const char *text)
{
	Hist *h = conversation(a, to);
	g_auto(Found) f = {0};
	int ret;

	if ((ret = check_text(a, text)))
		return ret;
	if (!h || !find(h, ANY, acct_cfg(a)->jid, &f))
		return -ENOENT; /* nothing of ours to correct */
	/* XEP-0308: a correction names the original, also when it corrects
	 * a correction */
	return send_kind(a, to, h, "correction",
			 !strcmp(f.kind, "correction") ? f.ref : f.id, NULL,
			 text);
}

int chat_retract(Account *a, const char *to, const char *id)
{
	Hist *h = conversation(a, to);
	g_auto(Found) f = {0};

	if (!*id || strpbrk(id, "\t\n"))
		return -EINVAL;
	if (!h || !find(h, id, NULL, &f))
		return -ENOENT;
	if (strcmp(f.sender, acct_cfg(a)->jid))
		return -EPERM; /* only our own, in a conversation */
	if (strcmp(f.kind, "message") && strcmp(f.kind, "reply") &&
	    strcmp(f.kind, "correction"))
		return -EINVAL;
	return send_kind(a, to, h, "retraction",
			 !strcmp(f.kind, "correction") ? f.ref : f.id, NULL,
			 "[retracted]");
}

/* "ID<TAB>REST": the id, and REST in *rest; false when malformed. */
static bool id_and_rest(const char *v, char **id, const char **rest)
{
	const char *tab = strchr(v, '\t');

	if (!tab || tab == v || memchr(v, '\n', tab - v))
		return false;
	*id = g_strndup(v, tab - v);
	*rest = tab + 1;
	return true;
}

int chat_react(Account *a, const char *to, const char *v)
{
	Hist *h = conversation(a, to);
	g_autofree char *id = NULL;
	g_auto(GStrv) each = NULL;
	g_autoptr(GString) set = g_string_new(NULL);
	g_auto(Found) f = {0};
	const char *rest;

	if (!id_and_rest(v, &id, &rest) || strchr(rest, '\n'))
		return -EINVAL;
	if (!text_is_clean(rest, strlen(rest), false))
		return -EILSEQ;
	each = g_strsplit(rest, " ", -1);
	for (char **e = each; *e; e++) {
		if (!**e)
			continue;
		if (strlen(*e) > 64 || strchr(*e, '\t'))
			return -EINVAL;
		if (set->len)
			g_string_append_c(set, ' ');
		g_string_append(set, *e);
	}
	if (!h || !find(h, id, NULL, &f))
		return -ENOENT;
	/* the whole set of ours: "" takes them all back */
	return send_kind(a, to, h, "reaction", f.id, NULL, set->str);
}

int chat_reply(Account *a, const char *to, const char *v)
{
	Hist *h = conversation(a, to);
	g_autofree char *id = NULL;
	g_auto(Found) f = {0};
	const char *text;
	int ret;

	if (!id_and_rest(v, &id, &text) || !*text)
		return -EINVAL;
	if ((ret = check_text(a, text)))
		return ret;
	if (!h || !find(h, id, NULL, &f))
		return -ENOENT;
	return send_kind(a, to, h, "reply", f.id, f.sender, text);
}
