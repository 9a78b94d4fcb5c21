/* chat.c - conversations (contacts/JID/): a message accepted from `send`
 * or `post`, and one received, as a record in its log and an event.
 * Which received message reaches here, and when, is the dispatcher's
 * chain (featureset.c): the rooms, the archive's results and carbons, and
 * the catch-up's hold come first. */
#include "features/files.h"
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
#include "features/omemo.h"
#include "features/receipts.h"
#include "store/history.h"
#include "xmpp/dispatch.h"

int chat_send(Account *a, const char *to, const char *const *bodies,
	      guint n, guint64 *seq)
{
	g_autoptr(GError) err = NULL;
	OutboxKind k = {0};
	Hist *h;
	int ret;

	/* encrypted, or not sent at all: decided now, kept in the outbox */
	if ((ret = omemo_send_mode(a, to, &k.enc)))
		return ret;
	h = hist_set_get(a->hists, to, true, &err);
	if (!h) {
		xfs_warn("%s: %s", acct_cfg(a)->jid, err->message);
		return -acct_errno_of(err);
	}
	ret = acct_accept(a, to, "chat", k.enc ? &k : NULL, bodies, n, h,
			  acct_cfg(a)->jid, seq);
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
	} else if (!strcmp(k->kind, "undecryptable")) {
		acct_event(a, k->kind, bare, k->text);
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
	const char *type = xmpp_stanza_get_type(msg), *enc = NULL;
	g_autofree char *why = NULL;
	OmemoIn oin = OMEMO_IN_PLAIN;
	MsgKind k;
	Hist *h;
	goffset at = 0;
	int ret;

	if (!g_strcmp0(type, "groupchat"))
		return false; /* (a room's is no conversation) */
	/* (a bounce of ours holds what we sent: an error, not for us) */
	if (g_strcmp0(type, "error"))
		oin = omemo_message_in(a, msg, bare, &why, &ret);
	if (oin == OMEMO_IN_NOTHING)
		return false;
	if (oin == OMEMO_IN_LATER) { /* as a record that could not be written */
		mam_log_failed(a, bare, ret);
		return false;
	}
	if (oin != OMEMO_IN_PLAIN)
		enc = "omemo";
	if (!kinds_of(a, msg, &k) && oin != OMEMO_IN_FAILED)
		return false;
	if (oin == OMEMO_IN_FAILED) {
		/* once, with the reason, instead of the body for clients
		 * without OMEMO */
		kinds_clear(&k);
		k.kind = "undecryptable";
		k.text = g_strdup_printf("[undecryptable: %s]", why);
	}
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
				  archive_id, enc);
	}
	record_append(rec, t, sender, k.text);
	record_append_ids(ids, k.text, id, k.kind, k.ref, archive_id, enc);
	if (k.url) {
		record_append(rec, t, sender, k.url);
		record_append_ids(ids, k.url, id, "oob", id, archive_id, enc);
	}
	ret = hist_append_ids(h, rec->str, rec->len, ids->str, ids->len, &at);
	if (ret) {
		mam_log_failed(a, peer ? peer : bare, -ret);
		kinds_clear(&k);
		return false;
	}
	if (oin == OMEMO_IN_DECRYPTED)
		omemo_message_logged(a);
	/* unread, or read (what we said from another client) */
	receipts_logged(a, peer ? peer : bare, !peer, at, at + (goffset)rec->len,
			copy ? NULL : msg, archive_id);
	if (!peer)
		chat_event(a, &k, jid, bare);
	if (!peer && k.file) /* a file they sent */
		files_offer(a, bare, k.file);
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

/* A message of ours about an earlier one (kinds_about), to @to. */
static int chat_about(Account *a, const char *to, const char *kind,
		      const char *v)
{
	g_autoptr(GError) err = NULL;
	/* a file sent may start the conversation; the others are about a
	 * message in it */
	bool oob = !strcmp(kind, "oob");
	Hist *h = hist_set_get(a->hists, to, oob, &err);
	g_auto(About) m = {0};
	OutboxKind k;
	guint64 seq;
	int ret;

	if (oob && !h) {
		xfs_warn("%s: %s", acct_cfg(a)->jid, err->message);
		return -acct_errno_of(err);
	}
	if ((ret = kinds_about(a, h, acct_cfg(a)->jid, NULL, kind, v, &m)))
		return ret;
	k = (OutboxKind){m.kind, m.ref, m.ref_to, NULL};
	/* what holds words of ours is encrypted as a message is; a file's
	 * link would give the file away (XEP-0454 is not done yet) */
	if (!strcmp(kind, "correction") || !strcmp(kind, "reply") || oob) {
		if ((ret = omemo_send_mode(a, to, &k.enc)))
			return ret;
		if (oob && k.enc)
			return -EOPNOTSUPP;
	}
	ret = acct_accept_kind(a, to, "chat", &k, m.body, h, acct_cfg(a)->jid,
			       &seq);
	if (!ret) /* we spoke: what they said before is read */
		receipts_sent(a, to, hist_size(h));
	return ret;
}

int chat_correct(Account *a, const char *to, const char *text)
{
	return chat_about(a, to, "correction", text);
}

int chat_retract(Account *a, const char *to, const char *id)
{
	return chat_about(a, to, "retraction", id);
}

int chat_react(Account *a, const char *to, const char *v)
{
	return chat_about(a, to, "reaction", v);
}

int chat_reply(Account *a, const char *to, const char *v)
{
	return chat_about(a, to, "reply", v);
}

int chat_send_oob(Account *a, const char *to, const char *url)
{
	return chat_about(a, to, "oob", url);
}
