/* text.c - see text.h.  libstrophe escapes markup but passes invalid UTF-8
 * and forbidden control characters through, and the server then closes
 * the stream: everything a user writes is checked here first. */
#include "base/text.h"

bool text_is_clean(const char *s, gsize len, bool allow_lf)
{
	const char *end = s + len;

	if (!g_utf8_validate_len(s, len, NULL))
		return false;
	for (const char *p = s; p < end; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (c == '\t' || (c == '\n' && allow_lf))
			continue;
		if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
			return false;
		if (c == 0xfffe || c == 0xffff)
			return false;
	}
	return true;
}
