/* xmlcheck.c - see xmlcheck.h.  The input is parsed inside a wrapper
 * element, so several stanzas form one document; the byte offsets expat
 * reports for each top-level element cut the stanzas out of the input
 * unchanged. */
#include "base/xmlcheck.h"

#include <expat.h>
#include <stdbool.h>
#include <string.h>

G_DEFINE_QUARK(xmlcheck-error-quark, xmlcheck_error)

static const char wrap_open[] = "<xmppfs-raw xmlns='jabber:client'>";
static const char wrap_close[] = "</xmppfs-raw>";

typedef struct {
	XML_Parser p;
	const char *data; /* the user's bytes */
	int depth;
	XML_Index start;  /* of the current top-level element, in the wrapper */
	int start_count;  /* bytes of its start tag (all of <presence/>) */
	GPtrArray *out;
	char *why;        /* the first refusal */
} Check;

static void refuse(Check *c, const char *why)
{
	if (!c->why)
		c->why = g_strdup(why);
	XML_StopParser(c->p, XML_FALSE);
}

static bool is_stanza(const char *name)
{
	/* names arrive as "namespace|local" (namespace processing on) */
	const char *local = strrchr(name, '|');

	local = local ? local + 1 : name;
	return !strcmp(local, "message") || !strcmp(local, "presence") ||
	       !strcmp(local, "iq");
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	Check *c = ud;

	if (c->depth == 1) {
		if (!is_stanza(name) ||
		    !g_str_has_prefix(name, "jabber:client|"))
			refuse(c, "not a stanza: only <message>, <presence> and "
				  "<iq> may be written");
		c->start = XML_GetCurrentByteIndex(c->p);
		c->start_count = XML_GetCurrentByteCount(c->p);
	}
	c->depth++;
}

static void on_end(void *ud, const XML_Char *name)
{
	Check *c = ud;

	if (--c->depth == 1) {
		XML_Index end = XML_GetCurrentByteIndex(c->p) +
				XML_GetCurrentByteCount(c->p);
		if (end <= c->start) /* an empty element: one tag */
			end = c->start + c->start_count;
		gsize off = c->start - (XML_Index)strlen(wrap_open);
		g_ptr_array_add(c->out, g_strndup(c->data + off,
						  end - c->start));
	}
}

static void on_text(void *ud, const XML_Char *s, int len)
{
	Check *c = ud;

	if (c->depth != 1)
		return;
	for (int i = 0; i < len; i++)
		if (!g_ascii_isspace(s[i]))
			refuse(c, "text outside a stanza");
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sys,
		       const XML_Char *pub, int internal)
{
	refuse(ud, "a DTD is not allowed in XMPP");
}

static void on_comment(void *ud, const XML_Char *data)
{
	refuse(ud, "a comment is not allowed in XMPP");
}

static void on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	refuse(ud, "a processing instruction is not allowed in XMPP");
}

static void on_entity(void *ud, const XML_Char *name, int is_param,
		      const XML_Char *value, int len, const XML_Char *base,
		      const XML_Char *sys, const XML_Char *pub,
		      const XML_Char *notation)
{
	refuse(ud, "an entity declaration is not allowed in XMPP");
}

static bool parse(Check *c, const char *s, gsize len, bool final)
{
	return XML_Parse(c->p, s, (int)len, final) == XML_STATUS_OK;
}

GPtrArray *xmlcheck_stanzas(const char *data, gsize len, GError **err)
{
	Check c = {.data = data};
	bool ok;

	if (len > G_MAXINT / 2 || memchr(data, '\0', len)) {
		g_set_error(err, XMLCHECK_ERROR, 0, "not text");
		return NULL;
	}
	c.p = XML_ParserCreateNS("UTF-8", '|');
	c.out = g_ptr_array_new_with_free_func(g_free);
	XML_SetUserData(c.p, &c);
	XML_SetElementHandler(c.p, on_start, on_end);
	XML_SetCharacterDataHandler(c.p, on_text);
	XML_SetStartDoctypeDeclHandler(c.p, on_doctype);
	XML_SetCommentHandler(c.p, on_comment);
	XML_SetProcessingInstructionHandler(c.p, on_pi);
	XML_SetEntityDeclHandler(c.p, on_entity);
	c.depth = 0;
	ok = parse(&c, wrap_open, strlen(wrap_open), false) &&
	     parse(&c, data, len, false) &&
	     parse(&c, wrap_close, strlen(wrap_close), true);
	if (!ok && !c.why)
		c.why = g_strdup_printf(
			"not well-formed XML: %s at byte %ld",
			XML_ErrorString(XML_GetErrorCode(c.p)),
			(long)(XML_GetCurrentByteIndex(c.p) -
			       (XML_Index)strlen(wrap_open)));
	if (!c.why && c.out->len == 0)
		c.why = g_strdup("no stanza");
	XML_ParserFree(c.p);
	if (c.why) {
		g_set_error(err, XMLCHECK_ERROR, 0, "%s", c.why);
		g_free(c.why);
		g_ptr_array_unref(c.out);
		return NULL;
	}
	return c.out;
}
