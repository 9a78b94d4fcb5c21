/* config_text.c - the text of the key file's messages, and of its
 * secrets: every error message is built here (cfg_set_error) and forced
 * onto one printable line, whatever the file, group, key or value held;
 * values are quoted short (cfg_shown); passwords are wiped when freed.
 * No message ever quotes a password, nor a line that may hold one.
 * And the one form of a certificate's fingerprint (cfg_fingerprint), for
 * the tls_fingerprint key and for what `connection` shows.
 *
 * The lowest of the config files: config_keys.c and config.c call it, it
 * calls neither. */
#include "base/config_int.h"

#include <stdarg.h>
#include <string.h>

#define ERROR_MAX 512                    /* bytes of message kept */
#define VALUE_SHOWN 64                   /* bytes of a value quoted */

G_DEFINE_QUARK(cfg-error-quark, cfg_error)

/* Control characters (C0 and C1) and bytes that are not UTF-8 become
 * \xNN, so a message cannot span lines or drive a terminal. */
static char *one_line(const char *s)
{
	GString *out = g_string_new(NULL);
	const char *p = s;

	while (*p && out->len < ERROR_MAX) {
		gunichar c = g_utf8_get_char_validated(p, -1);

		if (c == (gunichar)-1 || c == (gunichar)-2) {
			g_string_append_printf(out, "\\x%02x", (guchar)*p++);
			continue;
		}
		if (g_unichar_iscntrl(c))
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_len(out, p, g_utf8_next_char(p) - p);
		p = g_utf8_next_char(p);
	}
	if (*p)
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

/* A value for a message: quoted, and cut so a long one stays readable. */
char *cfg_shown(const char *value)
{
	size_t len = strlen(value);

	if (len <= VALUE_SHOWN)
		return g_strdup_printf("'%s'", value);
	len = VALUE_SHOWN;
	while (len > 0 && ((guchar)value[len] & 0xc0) == 0x80)
		len--;
	return g_strdup_printf("'%.*s...'", (int)len, value);
}

/* "FILE: msg", "FILE: [group]: msg" or "FILE: [group] key: msg". */
void cfg_set_error(GError **err, CfgError code, const char *path,
		   const char *group, const char *key, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	g_autofree char *full = NULL;
	g_autofree char *line = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (group && key)
		full = g_strdup_printf("%s: [%s] %s: %s", path, group, key,
				       msg);
	else if (group)
		full = g_strdup_printf("%s: [%s]: %s", path, group, msg);
	else
		full = g_strdup_printf("%s: %s", path, msg);
	line = one_line(full);
	g_set_error_literal(err, CFG_ERROR, code, line);
}

void cfg_password_free(char *password)
{
	if (!password)
		return;
	explicit_bzero(password, strlen(password));
	g_free(password);
}

char *cfg_fingerprint(const char *text)
{
	GString *s = g_string_new(NULL);
	guint digits = 0;

	if (!g_ascii_strncasecmp(text, "SHA256:", 7))
		text += 7;
	for (const char *p = text; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!g_ascii_isxdigit(*p) || digits == 64) {
			g_string_free(s, TRUE);
			return NULL;
		}
		if (digits && digits % 2 == 0)
			g_string_append_c(s, ':');
		g_string_append_c(s, g_ascii_toupper(*p));
		digits++;
	}
	if (digits != 64) {
		g_string_free(s, TRUE);
		return NULL;
	}
	return g_string_free(s, FALSE);
}
