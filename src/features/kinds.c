/* kinds.c - what a message is, for its record: a plain message, or a
 * correction (XEP-0308), a retraction (XEP-0424), a reaction (XEP-0444),
 * a reply (XEP-0461), a headline or a message with a subject, with an
 * out-of-band URL (XEP-0066); and, going out, the same for ours (the
 * outbox item's kind and ref).  Pool thread. */
#include "features/kinds.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#include <errno.h>
#include <string.h>

#include "base/text.h"
#include "store/history.h"

#define NS_CORRECT "urn:xmpp:message-correct:0"
#define NS_RETRACT "urn:xmpp:message-retract:1"
#define NS_RETRACT0 "urn:xmpp:message-retract:0"
#define NS_FASTEN "urn:xmpp:fasten:0"
#define NS_REACTIONS "urn:xmpp:reactions:0"
#define NS_REPLY "urn:xmpp:reply:0"
#define NS_FALLBACK "urn:xmpp:fallback:0"
#define NS_OOB "jabber:x:oob"
#define NS_MODERATE0 "urn:xmpp:message-moderate:0"
#define NS_MODERATE "urn:xmpp:message-moderate:1"

static xmpp_stanza_t *child(xmpp_stanza_t *st, const char *name,
			    const char *ns)
{
	return st ? xmpp_stanza_get_child_by_name_and_ns(st, name, ns) : NULL;
}

/* An id another message names: not empty, one line, not absurdly long. */
static char *ref_of(xmpp_stanza_t *el)
{
	const char *id = el ? xmpp_stanza_get_attribute(el, "id") : NULL;

	if (!id || !*id || strlen(id) > 256 || strpbrk(id, "\t\n\r"))
		return NULL;
	return g_strdup(id);
}

/* @body without the part a reply's fallback quotes (XEP-0461 with
 * XEP-0428: code point offsets into the body). */
static char *without_fallback(xmpp_stanza_t *msg, const char *body)
{
	glong len = g_utf8_strlen(body, -1), start, end;

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(msg); c;
	     c = xmpp_stanza_get_next(c)) {
		xmpp_stanza_t *b;
		const char *s, *e;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "fallback") ||
		    g_strcmp0(xmpp_stanza_get_ns(c), NS_FALLBACK) ||
		    g_strcmp0(xmpp_stanza_get_attribute(c, "for"), NS_REPLY) ||
		    !(b = xmpp_stanza_get_child_by_name(c, "body")))
			continue;
		s = xmpp_stanza_get_attribute(b, "start");
		e = xmpp_stanza_get_attribute(b, "end");
		start = s ? g_ascii_strtoll(s, NULL, 10) : -1;
		end = e ? g_ascii_strtoll(e, NULL, 10) : -1;
		if (start < 0 || end < start || end > len)
			break; /* nonsense: keep the body whole */
		{
			const char *ps = g_utf8_offset_to_pointer(body, start);
			const char *pe = g_utf8_offset_to_pointer(body, end);
			GString *out = g_string_new_len(body, ps - body);
			g_string_append(out, pe);
			return g_string_free(out, FALSE);
		}
	}
	return g_strdup(body);
}

/* The reactions, one string: "👍 🎉", "" for none left. */
static char *reactions_text(xmpp_stanza_t *r)
{
	GString *out = g_string_new(NULL);

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(r); c;
	     c = xmpp_stanza_get_next(c)) {
		g_autofree char *t = NULL;
		if (!xmpp_stanza_is_tag(c) ||
		    strcmp(xmpp_stanza_get_name(c), "reaction"))
			continue;
		t = acct_text(c);
		/* an emoji is short, and no line of its own */
		if (!t || !*t || strlen(t) > 64 || strpbrk(t, "\t\n\r"))
			continue;
		if (out->len)
			g_string_append_c(out, ' ');
		g_string_append(out, t);
	}
	return g_string_free(out, FALSE);
}

/* A room's word that a moderator retracted a message (XEP-0425: 0.3's
 * <retract><moderated/></retract>, 0.2's <apply-to><moderated/>). */
static bool moderation(xmpp_stanza_t *msg, MsgKind *k)
{
	xmpp_stanza_t *r = child(msg, "retract", NS_RETRACT), *apply, *mod;
	xmpp_stanza_t *where = r;
	g_autofree char *reason = NULL;
	const char *by;

	if (!(mod = child(r, "moderated", NS_MODERATE))) {
		apply = child(msg, "apply-to", NS_FASTEN);
		mod = child(apply, "moderated", NS_MODERATE0);
		where = mod;
		r = apply;
	}
	if (!mod || !(k->ref = ref_of(r)))
		return false;
	k->kind = "moderation";
	by = xmpp_stanza_get_attribute(mod, "by");
	if (by && strchr(by, '/') && strchr(by, '/')[1])
		k->by = g_strdup(strchr(by, '/') + 1);
	reason = acct_text(xmpp_stanza_get_child_by_name(where, "reason"));
	if (reason)
		g_strdelimit(reason, "\t\r\n", ' ');
	k->text = reason && *reason
			  ? g_strdup_printf("[retracted by a moderator: %s]",
					    reason)
			  : g_strdup("[retracted by a moderator]");
	return true;
}

bool kinds_of(Account *a, xmpp_stanza_t *msg, MsgKind *k)
{
	const char *type = xmpp_stanza_get_type(msg);
	xmpp_stanza_t *el, *apply;
	g_autofree char *body = NULL;

	memset(k, 0, sizeof *k);
	k->kind = "message";
	if (type && !strcmp(type, "error")) {
		k->kind = "error";
		k->ref = ref_of(msg);
		k->text = acct_error_text(msg);
		return k->text != NULL;
	}
	if (type && strcmp(type, "chat") && strcmp(type, "normal") &&
	    strcmp(type, "headline") && strcmp(type, "groupchat"))
		return false;
	body = acct_text(xmpp_stanza_get_child_by_name(msg, "body"));
	if (moderation(msg, k))
		return true;
	if ((el = child(msg, "retract", NS_RETRACT)) ||
	    ((apply = child(msg, "apply-to", NS_FASTEN)) &&
	     child(apply, "retract", NS_RETRACT0) && (el = apply))) {
		if (!(k->ref = ref_of(el)))
			return false;
		k->kind = "retraction";
		k->text = g_strdup("[retracted]");
		return true;
	}
	if ((el = child(msg, "reactions", NS_REACTIONS))) {
		if (!(k->ref = ref_of(el)))
			return false;
		k->kind = "reaction";
		k->text = reactions_text(el);
		return true;
	}
	if (!body)
		return false; /* chat states, receipts, markers */
	if ((el = child(msg, "replace", NS_CORRECT)) && (k->ref = ref_of(el))) {
		k->kind = "correction";
	} else if ((el = child(msg, "reply", NS_REPLY)) &&
		   (k->ref = ref_of(el))) {
		k->kind = "reply";
		k->text = without_fallback(msg, body);
	} else if (type && !strcmp(type, "headline")) {
		k->kind = "headline";
	}
	if (!k->text)
		k->text = g_steal_pointer(&body);
	if (type && (!strcmp(type, "headline") || !strcmp(type, "normal")))
		k->subject = acct_text(xmpp_stanza_get_child_by_name(msg,
								   "subject"));
	if (k->subject && !*k->subject)
		g_clear_pointer(&k->subject, g_free);
	if ((el = child(msg, "x", NS_OOB))) {
		g_autofree char *url =
			acct_text(xmpp_stanza_get_child_by_name(el, "url"));
		if (url && *url && !strpbrk(url, "\n\r\t ") &&
		    !g_ascii_strncasecmp(url, "https://", 8))
			k->file = g_strdup(url);
		if (url && *url && !strpbrk(url, "\n\r\t") &&
		    !strstr(k->text, url))
			k->url = g_steal_pointer(&url);
	}
	/* a file shared encrypted (XEP-0454): its link is the whole body */
	if (!k->file && !strcmp(k->kind, "message") &&
	    g_str_has_prefix(k->text, "aesgcm://") &&
	    !strpbrk(k->text, " \t\r\n"))
		k->file = g_strdup(k->text);
	return true;
}

void kinds_clear(MsgKind *k)
{
	g_free(k->ref);
	g_free(k->text);
	g_free(k->subject);
	g_free(k->url);
	g_free(k->file);
	g_free(k->by);
	memset(k, 0, sizeof *k);
}

/* ---- finding the message one is about ---- */

void found_clear(Found *f)
{
	g_free(f->id);
	g_free(f->kind);
	g_free(f->ref);
	g_free(f->sid);
	g_free(f->sender);
	g_free(f->text);
	memset(f, 0, sizeof *f);
}

/* Is @ids (a log.ids line) the one of message @id (its ID or SID)? */
static bool names(char **fi, const char *id)
{
	return !strcmp(fi[0], id) || (fi[3] && !strcmp(fi[3], id));
}

bool kinds_find(Hist *h, const char *id, const char *sender, Found *f)
{
	g_autoptr(GPtrArray) log = hist_lines(h, false);
	g_autoptr(GPtrArray) ids = hist_lines(h, true);

	memset(f, 0, sizeof *f);
	if (!log || !ids || log->len != ids->len)
		return false;
	for (gint64 i = (gint64)ids->len - 1; i >= 0; i--) {
		g_auto(GStrv) fi = g_strsplit(ids->pdata[i], "\t", 5);
		g_auto(GStrv) fl = g_strsplit(log->pdata[i], "\t", 3);
		if (g_strv_length(fi) < 4 || g_strv_length(fl) < 3)
			continue;
		if (id ? !strcmp(id, "-") || !names(fi, id)
		       : (strcmp(fl[1], sender) != 0 || !strcmp(fi[0], "-") ||
			  (strcmp(fi[1], "message") && strcmp(fi[1], "reply") &&
			   strcmp(fi[1], "correction"))))
			continue;
		/* back to the first line of that message */
		while (i > 0 && !strcmp(ids->pdata[i - 1], ids->pdata[i]))
			i--;
		{
			g_auto(GStrv) first = g_strsplit(log->pdata[i], "\t", 3);
			f->id = g_strdup(fi[0]);
			f->kind = g_strdup(fi[1]);
			f->ref = g_strdup(fi[2]);
			f->sid = g_strdup(fi[3]);
			f->sender = g_strdup(first[1]);
			f->text = g_strdup(first[2] ? first[2] : "");
		}
		return true;
	}
	return false;
}

/* ---- a message of ours about another ---- */

void about_clear(About *m)
{
	g_free(m->ref);
	g_free(m->ref_to);
	g_free(m->body);
	memset(m, 0, sizeof *m);
}

/* A text to send as @a's: clean (LF allowed), within the limit. */
static int check_text(Account *a, const char *text)
{
	gsize len = strlen(text);

	if (len > acct_cfg(a)->message_limit)
		return -EFBIG;
	return text_is_clean(text, len, true) ? 0 : -EILSEQ;
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

/* Reactions as written ("👍 🎉", one line) into their set, checked. */
static int reaction_set(const char *rest, char **set)
{
	g_auto(GStrv) each = NULL;
	GString *out = g_string_new(NULL);

	if (strchr(rest, '\n'))
		goto invalid;
	if (!text_is_clean(rest, strlen(rest), false)) {
		g_string_free(out, TRUE);
		return -EILSEQ;
	}
	each = g_strsplit(rest, " ", -1);
	for (char **e = each; *e; e++) {
		if (!**e)
			continue;
		if (strlen(*e) > 64 || strchr(*e, '\t'))
			goto invalid;
		if (out->len)
			g_string_append_c(out, ' ');
		g_string_append(out, *e);
	}
	*set = g_string_free(out, FALSE);
	return 0;
invalid:
	g_string_free(out, TRUE);
	return -EINVAL;
}

/* How the message @f is named by a message of @kind: in a room a
 * reaction, reply or retraction names it by the room's id, where it has
 * one (XEP-0444, XEP-0461, XEP-0424); a correction names the original by
 * its own id, also when @f corrects it (XEP-0308). */
static char *ref_to_found(const Found *f, const char *kind, bool room)
{
	if (!strcmp(f->kind, "correction") && strcmp(f->ref, "-") &&
	    (!strcmp(kind, "correction") || !room))
		return g_strdup(f->ref);
	if (room && strcmp(kind, "correction") && strcmp(f->sid, "-"))
		return g_strdup(f->sid);
	return g_strdup(f->id);
}

int kinds_about(Account *a, Hist *h, const char *me, const char *room,
		const char *kind, const char *v, About *out)
{
	g_autofree char *id = NULL;
	g_auto(Found) f = {0};
	const char *rest = NULL;
	int ret;

	memset(out, 0, sizeof *out);
	out->kind = kind;
	if (!strcmp(kind, "oob")) {
		/* a file sent (XEP-0066): its https:// URL as the body too,
		 * for clients that show no OOB */
		if (g_ascii_strncasecmp(v, "https://", 8) ||
		    strpbrk(v, " \t\r\n") || strlen(v) > 4096)
			return -EINVAL;
		out->body = g_strdup(v);
		out->ref = g_strdup("-");
		return 0;
	}
	if (!strcmp(kind, "correction")) {
		if ((ret = check_text(a, v)))
			return ret;
		if (!h || !kinds_find(h, NULL, me, &f))
			return -ENOENT; /* nothing of ours to correct */
		out->body = g_strdup(v);
	} else if (!strcmp(kind, "retraction")) {
		if (!*v || strpbrk(v, "\t\n"))
			return -EINVAL;
		if (!h || !kinds_find(h, v, NULL, &f))
			return -ENOENT;
		if (strcmp(f.sender, me))
			return -EPERM; /* only our own */
		if (strcmp(f.kind, "message") && strcmp(f.kind, "reply") &&
		    strcmp(f.kind, "correction"))
			return -EINVAL;
		out->body = g_strdup("[retracted]");
	} else if (!strcmp(kind, "reaction")) {
		if (!id_and_rest(v, &id, &rest))
			return -EINVAL;
		if ((ret = reaction_set(rest, &out->body)))
			return ret;
		if (!h || !kinds_find(h, id, NULL, &f))
			return -ENOENT;
	} else {
		if (!id_and_rest(v, &id, &rest) || !*rest)
			return -EINVAL;
		if ((ret = check_text(a, rest)))
			return ret;
		if (!h || !kinds_find(h, id, NULL, &f))
			return -ENOENT;
		out->body = g_strdup(rest);
		/* the author: the contact's JID, or the occupant's */
		out->ref_to = room ? g_strdup_printf("%s/%s", room, f.sender)
				   : g_strdup(f.sender);
	}
	out->ref = ref_to_found(&f, kind, room != NULL);
	return 0;
}

/* ---- ours ---- */

static bool kinds_own_message(Account *a, xmpp_stanza_t *msg,
			      const OutboxItem *it)
{
	xmpp_stanza_t *c;

	if (!it->kind)
		return false;
	if (!strcmp(it->kind, "oob")) {
		c = acct_add_child(a, msg, "x", NS_OOB);
		acct_add_text_child(a, c, "url", it->body);
		return false;
	}
	if (!strcmp(it->kind, "correction")) {
		c = acct_add_child(a, msg, "replace", NS_CORRECT);
		xmpp_stanza_set_attribute(c, "id", it->ref);
		return false;
	}
	if (!strcmp(it->kind, "reply")) {
		c = acct_add_child(a, msg, "reply", NS_REPLY);
		xmpp_stanza_set_attribute(c, "id", it->ref);
		if (it->ref_to)
			xmpp_stanza_set_attribute(c, "to", it->ref_to);
		return false;
	}
	if (!strcmp(it->kind, "retraction")) {
		c = acct_add_child(a, msg, "retract", NS_RETRACT);
		xmpp_stanza_set_attribute(c, "id", it->ref);
		c = acct_add_child(a, msg, "fallback", NS_FALLBACK);
		xmpp_stanza_set_attribute(c, "for", NS_RETRACT);
		acct_add_child(a, msg, "store", NS_HINTS);
		/* for clients without retractions (our record says
		 * "[retracted]") */
		xmpp_message_set_body(msg, "I retracted a message; your client "
					   "cannot show which (XEP-0424).");
		return true;
	}
	if (!strcmp(it->kind, "reaction")) {
		g_auto(GStrv) each = g_strsplit(it->body, " ", -1);
		c = acct_add_child(a, msg, "reactions", NS_REACTIONS);
		xmpp_stanza_set_attribute(c, "id", it->ref);
		for (char **e = each; *e; e++) {
			xmpp_stanza_t *r, *t;
			if (!**e)
				continue;
			r = acct_add_child(a, c, "reaction", NULL);
			t = xmpp_stanza_new(a->ctx);
			xmpp_stanza_set_text(t, *e);
			xmpp_stanza_add_child_ex(r, t, 0);
		}
		acct_add_child(a, msg, "store", NS_HINTS);
		return true; /* no body: the reactions are all */
	}
	return false;
}

const Feature kinds_feature = {
	.name = "corrections, retractions, reactions, replies (XEP-0308, "
		"XEP-0424, XEP-0444, XEP-0461)",
	.own_message = kinds_own_message,
};
