/* xmlcheck.h - what a user writes to `raw`: one or more complete stanzas.
 * Pure, any thread (expat; nothing of libstrophe). */
#pragma once

#include <glib.h>

#define XMLCHECK_ERROR (xmlcheck_error_quark())
GQuark xmlcheck_error_quark(void);

/* Split @data into its top-level elements, each a <message>, <presence>
 * or <iq>, with only whitespace between them.  NULL with @err when the
 * text is not well-formed XML, holds a DTD, comment or processing
 * instruction, or an element of another name; then nothing may be sent.
 * On success, an array of the stanzas' exact texts (g_free each). */
GPtrArray *xmlcheck_stanzas(const char *data, gsize len, GError **err);
