/* text.h - checks for text that goes into XML: pure, any thread. */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* True when @s (@len bytes) is valid UTF-8 without NUL, without control
 * characters other than TAB (and LF when @allow_lf), and without the
 * characters XML 1.0 forbids (U+FFFE, U+FFFF, C1 controls). */
bool text_is_clean(const char *s, gsize len, bool allow_lf);
