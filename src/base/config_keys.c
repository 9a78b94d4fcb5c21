/* config_keys.c - one group of the key file read and checked: an
 * account's keys (a table of parsers, one per key), its defaults, and a
 * [room ROOM] group's.  config.c reads the file and calls these once
 * per group; the password commands are its, run in the second pass.
 *
 * Above config_text.c (its messages), below config.c. */
#include "base/config_int.h"
#include "base/jid.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MESSAGE_LIMIT_MAX (16 * 1024 * 1024)
#define PING_INTERVAL_MAX 86400
#define ROOM_PING_MAX 86400

void cfg_account_free(CfgAccount *a)
{
	if (!a)
		return;
	g_free(a->jid);
	cfg_password_free(a->password);
	g_free(a->host);
	g_free(a->ca_file);
	g_free(a->tls_fingerprint);
	g_free(a->resource);
	g_free(a->nick);
	g_free(a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CfgAccount, cfg_account_free)

void cfg_room_free(CfgRoom *r)
{
	if (!r)
		return;
	g_free(r->jid);
	cfg_password_free(r->password);
	g_free(r->nick);
	g_free(r);
}

/* One group being read. */
typedef struct {
	const char *path;
	guint mode;
	const char *group;  /* as written, for messages */
	CfgAccount *acct;
	Jid *jid;           /* acct->jid in parts */
	char *command;      /* password_command, run in the second pass */
} Reader;

static void G_GNUC_PRINTF(5, 6)
key_error(const Reader *r, const char *key, GError **err, CfgError code,
	  const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	cfg_set_error(err, code, r->path, r->group, key, "%s", msg);
}

static bool has_space_or_control(const char *s)
{
	for (const char *p = s; *p; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (g_unichar_isspace(c) || g_unichar_iscntrl(c))
			return true;
	}
	return false;
}

static bool parse_password(Reader *r, const char *key, const char *value,
			   GError **err)
{
	if ((r->mode & 077) != 0) {
		key_error(r, key, err, CFG_ERROR_PASSWORD,
			  "password is readable by others; chmod 600 %s or "
			  "use password_command", r->path);
		return false;
	}
	if (!*value) {
		key_error(r, key, err, CFG_ERROR_PASSWORD, "empty");
		return false;
	}
	r->acct->password = g_strdup(value);
	return true;
}

static bool parse_command(Reader *r, const char *key, const char *value,
			  GError **err)
{
	if (!*value) {
		key_error(r, key, err, CFG_ERROR_KEY, "empty");
		return false;
	}
	r->command = g_strdup(value);
	return true;
}

static bool parse_host(Reader *r, const char *key, const char *value,
		       GError **err)
{
	g_autofree char *v = cfg_shown(value);

	if (!*value || has_space_or_control(value)) {
		key_error(r, key, err, CFG_ERROR_KEY, "not a host name: %s", v);
		return false;
	}
	r->acct->host = g_strdup(value);
	return true;
}

static bool parse_port(Reader *r, const char *key, const char *value,
		       GError **err)
{
	g_autofree char *v = cfg_shown(value);
	guint64 n;

	if (!g_ascii_string_to_unsigned(value, 10, 1, G_MAXUINT16, &n, NULL)) {
		key_error(r, key, err, CFG_ERROR_KEY, "not a port number: %s",
			  v);
		return false;
	}
	r->acct->port = (guint16)n;
	return true;
}

static bool parse_tls(Reader *r, const char *key, const char *value,
		      GError **err)
{
	static const struct {
		const char *name;
		CfgTls tls;
	} modes[] = {
		{ "required", CFG_TLS_REQUIRED },
		{ "direct", CFG_TLS_DIRECT },
		{ "insecure-plaintext", CFG_TLS_PLAINTEXT },
	};
	g_autofree char *v = cfg_shown(value);

	for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
		if (!strcmp(value, modes[i].name)) {
			r->acct->tls = modes[i].tls;
			return true;
		}
	}
	key_error(r, key, err, CFG_ERROR_KEY,
		  "not one of required, direct, insecure-plaintext: %s", v);
	return false;
}

/* Relative to the config file, not to the working directory, which a
 * daemon leaves for "/". */
static char *resolve_path(const char *config_path, const char *value)
{
	g_autofree char *dir = NULL;
	g_autofree char *abs_dir = NULL;

	if (g_path_is_absolute(value))
		return g_strdup(value);
	dir = g_path_get_dirname(config_path);
	abs_dir = g_canonicalize_filename(dir, NULL);
	return g_canonicalize_filename(value, abs_dir);
}

static bool parse_ca_file(Reader *r, const char *key, const char *value,
			  GError **err)
{
	g_autofree char *file = NULL;
	struct stat st;

	if (!*value) {
		key_error(r, key, err, CFG_ERROR_KEY, "empty");
		return false;
	}
	file = resolve_path(r->path, value);
	if (stat(file, &st) < 0 || access(file, R_OK) < 0) {
		key_error(r, key, err, CFG_ERROR_KEY, "%s: %s", file,
			  g_strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		key_error(r, key, err, CFG_ERROR_KEY, "%s: not a regular file",
			  file);
		return false;
	}
	r->acct->ca_file = g_steal_pointer(&file);
	return true;
}

/* A MUC nick is a resourcepart too, so both get the JID rules and are
 * kept in the normalized form the server will see. */
static char *resourcepart(Reader *r, const char *key, const char *value,
			  GError **err)
{
	g_autoptr(GError) jerr = NULL;
	char *part = jid_normalize_resource(value, &jerr);

	if (!part)
		key_error(r, key, err, CFG_ERROR_KEY, "%s", jerr->message);
	return part;
}

static bool parse_resource(Reader *r, const char *key, const char *value,
			   GError **err)
{
	r->acct->resource = resourcepart(r, key, value, err);
	r->acct->resource_given = true;
	return r->acct->resource != NULL;
}

static bool parse_nick(Reader *r, const char *key, const char *value,
		       GError **err)
{
	r->acct->nick = resourcepart(r, key, value, err);
	return r->acct->nick != NULL;
}

static bool parse_message_limit(Reader *r, const char *key,
				const char *value, GError **err)
{
	g_autofree char *v = cfg_shown(value);
	guint64 n;

	if (!g_ascii_string_to_unsigned(value, 10, 1, MESSAGE_LIMIT_MAX, &n,
					NULL)) {
		key_error(r, key, err, CFG_ERROR_KEY,
			  "not a byte count from 1 to %d: %s",
			  MESSAGE_LIMIT_MAX, v);
		return false;
	}
	r->acct->message_limit = (gsize)n;
	return true;
}

static bool parse_ping_interval(Reader *r, const char *key,
				const char *value, GError **err)
{
	g_autofree char *v = cfg_shown(value);
	guint64 n;

	if (!g_ascii_string_to_unsigned(value, 10, 0, PING_INTERVAL_MAX, &n,
					NULL)) {
		key_error(r, key, err, CFG_ERROR_KEY,
			  "not a number of seconds from 0 to %d: %s",
			  PING_INTERVAL_MAX, v);
		return false;
	}
	r->acct->ping_interval = (guint)n;
	return true;
}

static bool parse_iq_timeout(Reader *r, const char *key, const char *value,
			     GError **err)
{
	g_autofree char *v = cfg_shown(value);
	guint64 n;

	if (!g_ascii_string_to_unsigned(value, 10, 1, 3600, &n, NULL)) {
		key_error(r, key, err, CFG_ERROR_KEY,
			  "not a number of seconds from 1 to 3600: %s", v);
		return false;
	}
	r->acct->iq_timeout = (guint)n;
	return true;
}

static bool parse_room_ping(Reader *r, const char *key, const char *value,
			    GError **err)
{
	g_autofree char *v = cfg_shown(value);
	guint64 n;

	if (!g_ascii_string_to_unsigned(value, 10, 0, ROOM_PING_MAX, &n,
					NULL)) {
		key_error(r, key, err, CFG_ERROR_KEY,
			  "not a number of seconds from 0 to %d: %s",
			  ROOM_PING_MAX, v);
		return false;
	}
	r->acct->room_ping = (guint)n;
	return true;
}

static bool parse_download_max(Reader *r, const char *key,
			       const char *value, GError **err)
{
	g_autofree char *v = cfg_shown(value);
	guint64 n;

	/* up to 4 GiB: a file held on disk per conversation */
	if (!g_ascii_string_to_unsigned(value, 10, 1, G_GUINT64_CONSTANT(1) << 32,
					&n, NULL)) {
		key_error(r, key, err, CFG_ERROR_KEY,
			  "not a number of bytes from 1 to 4294967296: %s", v);
		return false;
	}
	r->acct->download_max = n;
	return true;
}

static bool parse_bool(Reader *r, const char *key, const char *value,
		       bool *out, GError **err)
{
	g_autofree char *v = cfg_shown(value);

	if (!strcmp(value, "true") || !strcmp(value, "false")) {
		*out = !strcmp(value, "true");
		return true;
	}
	key_error(r, key, err, CFG_ERROR_KEY, "not true or false: %s", v);
	return false;
}

static bool parse_tls_fingerprint(Reader *r, const char *key,
				  const char *value, GError **err)
{
	g_autofree char *v = cfg_shown(value);

	g_free(r->acct->tls_fingerprint);
	r->acct->tls_fingerprint = cfg_fingerprint(value);
	if (r->acct->tls_fingerprint)
		return true;
	key_error(r, key, err, CFG_ERROR_KEY,
		  "not a SHA-256 fingerprint (SHA256:AA:BB:..., 32 bytes): %s",
		  v);
	return false;
}

static bool parse_auto_approve(Reader *r, const char *key, const char *value,
			       GError **err)
{
	return parse_bool(r, key, value, &r->acct->auto_approve, err);
}

static bool parse_queue_when_failed(Reader *r, const char *key,
				    const char *value, GError **err)
{
	return parse_bool(r, key, value, &r->acct->queue_when_failed, err);
}

static bool parse_receipts(Reader *r, const char *key, const char *value,
			   GError **err)
{
	return parse_bool(r, key, value, &r->acct->receipts, err);
}

static bool parse_downloads(Reader *r, const char *key, const char *value,
			    GError **err)
{
	return parse_bool(r, key, value, &r->acct->downloads, err);
}

static bool parse_chat_states(Reader *r, const char *key, const char *value,
			      GError **err)
{
	return parse_bool(r, key, value, &r->acct->chat_states, err);
}

static bool parse_omemo(Reader *r, const char *key, const char *value,
			GError **err)
{
	return parse_bool(r, key, value, &r->acct->omemo, err);
}

static bool parse_omemo_trust(Reader *r, const char *key, const char *value,
			      GError **err)
{
	static const struct {
		const char *name;
		CfgOmemoTrust trust;
	} modes[] = {
		{ "tofu", CFG_OMEMO_TOFU },
		{ "blind", CFG_OMEMO_BLIND },
		{ "manual", CFG_OMEMO_MANUAL },
	};
	g_autofree char *v = cfg_shown(value);

	for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
		if (!strcmp(value, modes[i].name)) {
			r->acct->omemo_trust = modes[i].trust;
			return true;
		}
	}
	key_error(r, key, err, CFG_ERROR_KEY,
		  "not one of tofu, blind, manual: %s", v);
	return false;
}

typedef bool (*KeyParser)(Reader *r, const char *key, const char *value,
			  GError **err);

static const struct {
	const char *name;
	KeyParser parse;
} keys[] = {
	{ "password", parse_password },
	{ "password_command", parse_command },
	{ "host", parse_host },
	{ "port", parse_port },
	{ "tls", parse_tls },
	{ "ca_file", parse_ca_file },
	{ "resource", parse_resource },
	{ "nick", parse_nick },
	{ "message_limit", parse_message_limit },
	{ "ping_interval", parse_ping_interval },
	{ "iq_timeout", parse_iq_timeout },
	{ "room_ping", parse_room_ping },
	{ "download_max", parse_download_max },
	{ "downloads", parse_downloads },
	{ "auto_approve", parse_auto_approve },
	{ "queue_when_failed", parse_queue_when_failed },
	{ "receipts", parse_receipts },
	{ "chat_states", parse_chat_states },
	{ "omemo", parse_omemo },
	{ "omemo_trust", parse_omemo_trust },
	{ "tls_fingerprint", parse_tls_fingerprint },
};

static KeyParser find_key(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		if (!strcmp(keys[i].name, name))
			return keys[i].parse;
	return NULL;
}

/* GKeyFile keeps every copy of a repeated key and answers with the last;
 * a repeat is more likely a mistake than an override, so refuse it. */
static bool read_key(Reader *r, GKeyFile *kf, const char *key,
		     GHashTable *seen, GError **err)
{
	KeyParser parse = find_key(key);
	g_autoptr(GError) kerr = NULL;
	char *value;
	bool ok;

	if (!parse) {
		key_error(r, key, err, CFG_ERROR_KEY, "unknown key");
		return false;
	}
	if (!g_hash_table_add(seen, (gpointer)key)) {
		key_error(r, key, err, CFG_ERROR_KEY, "set twice");
		return false;
	}
	/* GLib's messages repeat the key and may quote the value, which
	 * must not happen to a password; and on a bad escape sequence it
	 * sets @kerr but still returns a value. */
	value = g_key_file_get_string(kf, r->group, key, &kerr);
	if (kerr) {
		cfg_password_free(value);
		key_error(r, key, err, CFG_ERROR_KEY, "%s",
			  kerr->code == G_KEY_FILE_ERROR_UNKNOWN_ENCODING
			  ? "not valid UTF-8" : "an invalid escape sequence "
			  "(valid: \\s \\n \\t \\r \\\\)");
		return false;
	}
	ok = parse(r, key, value, err);
	cfg_password_free(value);
	return ok;
}

static bool check_password_keys(Reader *r, GError **err)
{
	if (r->acct->password && r->command) {
		key_error(r, "password", err, CFG_ERROR_PASSWORD,
			  "both password and password_command are set; "
			  "keep one");
		return false;
	}
	if (!r->acct->password && !r->command) {
		key_error(r, "password", err, CFG_ERROR_PASSWORD,
			  "not set; add password_command, or password in a "
			  "file of mode 0600");
		return false;
	}
	return true;
}

static void set_defaults(Reader *r)
{
	CfgAccount *a = r->acct;

	if (!a->resource)
		a->resource = g_strdup_printf("xmppfs-%08x", g_random_int());
	if (!a->nick)
		a->nick = g_strdup(r->jid->local ? r->jid->local
				   : r->jid->domain);
}

static bool read_keys(Reader *r, GKeyFile *kf, GError **err)
{
	g_auto(GStrv) names = g_key_file_get_keys(kf, r->group, NULL, NULL);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (size_t i = 0; names && names[i]; i++)
		if (!read_key(r, kf, names[i], seen, err))
			return false;
	return check_password_keys(r, err);
}

CfgAccount *cfg_read_account(GKeyFile *kf, const char *path, guint mode,
			     const char *group, char **command, GError **err)
{
	g_autoptr(CfgAccount) acct = g_new0(CfgAccount, 1);
	g_autoptr(Jid) jid = NULL;
	g_autoptr(GError) jerr = NULL;
	Reader r = { path, mode, group, acct, NULL, NULL };
	bool ok;

	acct->jid = jid_normalize_bare(group, &jerr);
	if (acct->jid)
		jid = jid_parse(acct->jid, &jerr);
	if (!jid) {
		cfg_set_error(err, CFG_ERROR_GROUP, path, group, NULL,
			      "not a bare JID: %s", jerr->message);
		return NULL;
	}
	if (!jid->local) {
		/* "[tester]" would log in as the server "tester" and look
		 * its name up on the network for ever */
		cfg_set_error(err, CFG_ERROR_GROUP, path, group, NULL,
			      "not an account: an account's JID has a local "
			      "part and a domain, such as [you@%s]",
			      jid->domain);
		return NULL;
	}
	acct->tls = CFG_TLS_REQUIRED;
	acct->message_limit = CFG_MESSAGE_LIMIT_DEFAULT;
	acct->ping_interval = CFG_PING_INTERVAL_DEFAULT;
	acct->receipts = true;
	acct->iq_timeout = CFG_IQ_TIMEOUT_DEFAULT;
	acct->room_ping = CFG_ROOM_PING_DEFAULT;
	acct->download_max = CFG_DOWNLOAD_MAX_DEFAULT;
	r.jid = jid;
	ok = read_keys(&r, kf, err);
	if (!ok) {
		g_free(r.command);
		return NULL;
	}
	set_defaults(&r);
	*command = r.command;
	return g_steal_pointer(&acct);
}

CfgRoom *cfg_read_room(GKeyFile *kf, const char *path, guint mode,
		       const char *group, GError **err)
{
	g_autoptr(CfgAccount) scratch = g_new0(CfgAccount, 1);
	g_autoptr(Jid) jid = NULL;
	g_autoptr(GError) jerr = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_auto(GStrv) names = g_key_file_get_keys(kf, group, NULL, NULL);
	g_autofree char *norm =
		jid_normalize_bare(group + strlen(ROOM_PREFIX), &jerr);
	Reader r = { path, mode, group, scratch, NULL, NULL };
	CfgRoom *room;

	if (norm)
		jid = jid_parse(norm, &jerr);
	if (jid && !jid->local)
		g_set_error(&jerr, CFG_ERROR, CFG_ERROR_GROUP,
			    "'%s' has no localpart", norm);
	if (!jid || !jid->local) {
		cfg_set_error(err, CFG_ERROR_GROUP, path, group, NULL,
			      "not a room's bare JID: %s", jerr->message);
		return NULL;
	}
	r.jid = jid;
	for (size_t i = 0; names && names[i]; i++) {
		if (strcmp(names[i], "password") && strcmp(names[i], "nick")) {
			key_error(&r, names[i], err, CFG_ERROR_KEY,
				  "unknown key (a room has password and nick)");
			return NULL;
		}
		if (!read_key(&r, kf, names[i], seen, err))
			return NULL;
	}
	room = g_new0(CfgRoom, 1);
	room->jid = g_steal_pointer(&norm);
	room->password = g_steal_pointer(&scratch->password);
	room->nick = g_steal_pointer(&scratch->nick);
	return room;
}
