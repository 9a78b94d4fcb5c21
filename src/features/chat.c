/* chat.c - conversations (contacts/JID/): a message accepted from `send`
 * or `post`, and one received, as a record in its log and an event.
 * Which received message reaches here, and when, is the dispatcher's
 * chain (featureset.c): the rooms, the archive's results and carbons, and
 * the catch-up's hold come first. */
#include "features/chat.h"
#include "xmpp/account_int.h"

#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "base/record.h"
#include "base/text.h"
#include "features/featureset.h"
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

/* The text of a message worth a record, or NULL. */
static char *message_text(xmpp_stanza_t *msg)
{
	const char *type = xmpp_stanza_get_type(msg);
	char *body, *copy;

	if (type && !strcmp(type, "error"))
		return acct_error_text(msg);
	if (type && strcmp(type, "chat") && strcmp(type, "normal"))
		return NULL; /* groupchat and headline: not a conversation */
	body = xmpp_message_get_body(msg);
	if (!body)
		return NULL; /* chat states, receipts */
	copy = g_strdup(body);
	xmpp_free(xmpp_stanza_get_context(msg), body);
	return copy;
}

bool chat_log(Account *a, xmpp_stanza_t *msg, const Jid *jid, gint64 t,
	      bool copy, const char *archive_id)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL, *bare = jid_bare(jid), *peer = NULL;
	g_autofree char *full = NULL;
	g_autoptr(GString) rec = NULL, ids = NULL;
	const char *sender = bare, *type = xmpp_stanza_get_type(msg);
	bool error = !g_strcmp0(type, "error");
	Hist *h;
	goffset at = 0;
	int ret;

	if (!(text = message_text(msg)))
		return false;

	if (!text_is_clean(text, strlen(text), true)) {
		/* the records must stay one per line */
		g_strdelimit(text, "\r\v\f", ' ');
	}
	if (copy && !strcmp(bare, acct_cfg(a)->jid)) {
		/* what another client of ours sent */
		const char *to = xmpp_stanza_get_to(msg);
		g_autoptr(Jid) tj = to ? jid_parse(to, NULL) : NULL;
		peer = tj ? jid_bare(tj) : NULL;
		if (!peer || !strcmp(peer, acct_cfg(a)->jid))
			return false;
	}
	h = hist_set_get(a->hists, peer ? peer : bare, true, &err);
	if (!h) {
		xfs_warn("%s: message from %s not logged: %s", acct_cfg(a)->jid,
			 bare, err->message);
		mam_log_failed(a, peer ? peer : bare, acct_errno_of(err));
		return false;
	}
	rec = g_string_new(NULL);
	ids = g_string_new(NULL);
	record_append(rec, t, sender, text);
	/* an error names the message of ours it bounces (same id) */
	record_append_ids(ids, text, xmpp_stanza_get_id(msg),
			  error ? "error" : "message",
			  error ? xmpp_stanza_get_id(msg) : NULL, archive_id);
	ret = hist_append_ids(h, rec->str, rec->len, ids->str, ids->len, &at);
	if (ret) {
		mam_log_failed(a, peer ? peer : bare, -ret);
		return false;
	}
	/* unread, or read (what we said from another client) */
	receipts_logged(a, peer ? peer : bare, !peer, at, at + (goffset)rec->len,
			copy ? NULL : msg);
	if (peer)
		return true; /* our own words are no event */
	if (g_str_has_prefix(text, "[error: ")) {
		/* "[error: cond] rest" -> "message cond rest" */
		g_autofree char *ev = g_strdup_printf("message %s", text + 8);
		char *close = strchr(ev, ']');
		if (close)
			memmove(close, close + 1, strlen(close));
		full = jid_full(jid);
		acct_event(a, "error", full, ev);
	} else {
		acct_event(a, "message", bare, text);
	}
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
