/* libFuzzer target for xmlcheck_stanzas: whatever a user writes to raw.
 * Invariant: each stanza it returns is itself accepted as one stanza with
 * the same text. */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "base/xmlcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GPtrArray) out =
		xmlcheck_stanzas((const char *)data, size, NULL);

	for (guint i = 0; out && i < out->len; i++) {
		const char *s = g_ptr_array_index(out, i);
		g_autoptr(GPtrArray) again = xmlcheck_stanzas(s, strlen(s), NULL);
		if (!again || again->len != 1 ||
		    strcmp(g_ptr_array_index(again, 0), s))
			__builtin_trap();
	}
	return 0;
}
