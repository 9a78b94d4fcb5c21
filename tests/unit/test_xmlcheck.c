/* Table-driven tests of xmlcheck_stanzas: what may be written to `raw`. */
#include <glib.h>
#include <string.h>

#include "base/xmlcheck.h"

typedef struct {
	const char *name;
	const char *in;
	int n;                  /* stanzas expected; -1: refused */
	const char *first;      /* the first stanza's exact text, or NULL */
} Case;

static const Case cases[] = {
	{"message", "<message to='b@x'><body>hi</body></message>", 1,
	 "<message to='b@x'><body>hi</body></message>"},
	{"presence-empty", "<presence/>", 1, "<presence/>"},
	{"iq", "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
	 1, NULL},
	{"two-with-newline", "<presence/>\n<message to='a@b'/>\n", 2,
	 "<presence/>"},
	{"three", "<presence/><presence type='unavailable'/><iq/>", 3, NULL},
	{"spaces-around", "  \n<presence/>\t \n", 1, "<presence/>"},
	{"entities", "<message><body>&lt;&amp;&gt;&#x1F600;</body></message>",
	 1, "<message><body>&lt;&amp;&gt;&#x1F600;</body></message>"},
	{"explicit-ns", "<message xmlns='jabber:client'/>", 1, NULL},
	{"prefix-inside", "<message><x:y xmlns:x='urn:a'/></message>", 1, NULL},
	{"empty", "", -1, NULL},
	{"only-space", "  \n", -1, NULL},
	{"not-a-stanza", "<foo/>", -1, NULL},
	{"one-good-one-bad", "<presence/><foo/>", -1, NULL},
	{"unclosed", "<message><body>hi</body>", -1, NULL},
	{"unbalanced", "<message></iq>", -1, NULL},
	{"text-between", "<presence/>hello<presence/>", -1, NULL},
	{"doctype", "<!DOCTYPE x [<!ENTITY a 'b'>]><presence/>", -1, NULL},
	{"entity-undefined", "<message><body>&nope;</body></message>", -1,
	 NULL},
	{"comment", "<!-- hi --><presence/>", -1, NULL},
	{"pi", "<?foo bar?><presence/>", -1, NULL},
	{"xml-decl", "<?xml version='1.0'?><presence/>", -1, NULL},
	{"other-ns", "<message xmlns='jabber:server'/>", -1, NULL},
	{"close-wrapper", "</xmppfs-raw><presence/>", -1, NULL},
	{"stream-close", "</stream:stream>", -1, NULL},
	{"bad-utf8", "<message><body>\xff</body></message>", -1, NULL},
	{"control-char", "<message><body>\x01</body></message>", -1, NULL},
	{"cdata", "<message><body><![CDATA[<x>]]></body></message>", 1, NULL},
	{"attr-lt", "<message to='<'/>", -1, NULL},
};

static void test_case(gconstpointer data)
{
	const Case *c = data;
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) out = xmlcheck_stanzas(c->in, strlen(c->in), &err);

	if (c->n < 0) {
		g_assert_null(out);
		g_assert_nonnull(err);
		return;
	}
	g_assert_no_error(err);
	g_assert_nonnull(out);
	g_assert_cmpuint(out->len, ==, (guint)c->n);
	if (c->first)
		g_assert_cmpstr(g_ptr_array_index(out, 0), ==, c->first);
}

static void test_nul(void)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) out = xmlcheck_stanzas("<presence/>\0", 12, &err);

	g_assert_null(out);
	g_assert_nonnull(err);
}

int main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/xmlcheck/%s", cases[i].name);
		g_test_add_data_func(path, &cases[i], test_case);
	}
	g_test_add_func("/xmlcheck/nul", test_nul);
	return g_test_run();
}
