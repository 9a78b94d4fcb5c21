/* kinds.c - what a message is, for its record: a plain message, or a
 * correction (XEP-0308), a retraction (XEP-0424), a reaction (XEP-0444),
 * a reply (XEP-0461), a headline or a message with a subject, with an
 * out-of-band URL (XEP-0066); and, going out, the same for ours (the
 * outbox item's kind and ref).  Pool thread. */
#include "features/kinds.h"
#include "features/featureset.h"
#include "xmpp/account_int.h"

#include <string.h>

#include "base/text.h"

#define NS_CORRECT "urn:xmpp:message-correct:0"
#define NS_RETRACT "urn:xmpp:message-retract:1"
#define NS_RETRACT0 "urn:xmpp:message-retract:0"
#define NS_FASTEN "urn:xmpp:fasten:0"
#define NS_REACTIONS "urn:xmpp:reactions:0"
#define NS_REPLY "urn:xmpp:reply:0"
#define NS_FALLBACK "urn:xmpp:fallback:0"
#define NS_OOB "jabber:x:oob"
#define NS_HINTS "urn:xmpp:hints"

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

static char *text_of(xmpp_stanza_t *el)
{
	char *t = el ? xmpp_stanza_get_text(el) : NULL;
	char *copy = t ? g_strdup(t) : NULL;

	if (t)
		xmpp_free(xmpp_stanza_get_context(el), t);
	return copy;
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
		t = text_of(c);
		/* an emoji is short, and no line of its own */
		if (!t || !*t || strlen(t) > 64 || strpbrk(t, "\t\n\r"))
			continue;
		if (out->len)
			g_string_append_c(out, ' ');
		g_string_append(out, t);
	}
	return g_string_free(out, FALSE);
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
	body = text_of(xmpp_stanza_get_child_by_name(msg, "body"));
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
		k->subject = text_of(xmpp_stanza_get_child_by_name(msg,
								   "subject"));
	if (k->subject && !*k->subject)
		g_clear_pointer(&k->subject, g_free);
	if ((el = child(msg, "x", NS_OOB))) {
		g_autofree char *url =
			text_of(xmpp_stanza_get_child_by_name(el, "url"));
		if (url && *url && !strpbrk(url, "\n\r\t") &&
		    !strstr(k->text, url))
			k->url = g_steal_pointer(&url);
	}
	return true;
}

void kinds_clear(MsgKind *k)
{
	g_free(k->ref);
	g_free(k->text);
	g_free(k->subject);
	g_free(k->url);
	memset(k, 0, sizeof *k);
}

/* ---- ours ---- */

static bool kinds_own_message(Account *a, xmpp_stanza_t *msg,
			      const OutboxItem *it)
{
	xmpp_stanza_t *c;

	if (!it->kind)
		return false;
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
