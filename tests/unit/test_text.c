/* Table-driven tests of text_is_clean: what may go into an XML body. */
#include <glib.h>

#include "base/text.h"

typedef struct {
	const char *name;
	const char *s;
	gssize len; /* -1: strlen */
	bool allow_lf;
	bool clean;
} Case;

static const Case cases[] = {
	{"ascii", "hello", -1, false, true},
	{"empty", "", -1, false, true},
	{"tab", "a\tb", -1, false, true},
	{"lf-allowed", "a\nb", -1, true, true},
	{"lf-refused", "a\nb", -1, false, false},
	{"cr", "a\rb", -1, true, false},
	{"bell", "a\ab", -1, true, false},
	{"esc", "\x1b[31m", -1, true, false},
	{"del", "a\x7f", -1, true, false},
	{"c1-control", "a\xc2\x85", -1, true, false},
	{"nul-inside", "a\0b", 3, true, false},
	{"emoji", "\xf0\x9f\x98\x80", -1, false, true},
	{"markup", "<b>&amp;]]>'\"", -1, false, true},
	{"latin1-byte", "caf\xe9", -1, false, false},
	{"truncated-utf8", "\xe2\x82", -1, false, false},
	{"overlong", "\xc0\xaf", -1, false, false},
	{"surrogate", "\xed\xa0\x80", -1, false, false},
	{"fffe", "\xef\xbf\xbe", -1, false, false},
	{"ffff", "\xef\xbf\xbf", -1, false, false},
	{"cjk", "\xe4\xbd\xa0\xe5\xa5\xbd", -1, false, true},
};

static void test_case(gconstpointer data)
{
	const Case *c = data;
	gsize len = c->len < 0 ? strlen(c->s) : (gsize)c->len;

	g_assert_cmpint(text_is_clean(c->s, len, c->allow_lf), ==, c->clean);
}

int main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/text/clean/%s", cases[i].name);
		g_test_add_data_func(path, &cases[i], test_case);
	}
	return g_test_run();
}
