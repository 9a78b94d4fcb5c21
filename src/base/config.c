/* config.c - the account key file (SPEC "Mounting").
 *
 * Two passes: every group is read and checked first, and the password
 * commands run only once the whole file is known to be valid, so a typo in
 * the last group costs no trip to a password manager for the first.
 *
 * Error messages are built in one place (set_error) and forced onto one
 * printable line there, whatever the file, group, key or value held.  No
 * message ever quotes a password, nor a line that may hold one. */
#include "base/config.h"
#include "base/jid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILE_MAX (1024 * 1024)           /* a config is never this large */
#define MESSAGE_LIMIT_MAX (16 * 1024 * 1024)
#define PING_INTERVAL_MAX 86400
#define ERROR_MAX 512                    /* bytes of message kept */
#define VALUE_SHOWN 64                   /* bytes of a value quoted */
/* Keep "nick[de]" and the like, which GKeyFile would drop unseen unless
 * they match the locale, so they are refused as unknown keys. */
#define KF_FLAGS G_KEY_FILE_KEEP_TRANSLATIONS

G_DEFINE_QUARK(cfg-error-quark, cfg_error)

bool cfg_allow_commands = true;

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
static char *shown(const char *value)
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
static void G_GNUC_PRINTF(6, 7)
set_error(GError **err, CfgError code, const char *path, const char *group,
	  const char *key, const char *fmt, ...)
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

static void account_free(CfgAccount *a)
{
	if (!a)
		return;
	g_free(a->jid);
	cfg_password_free(a->password);
	g_free(a->host);
	g_free(a->ca_file);
	g_free(a->resource);
	g_free(a->nick);
	g_free(a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CfgAccount, account_free)

static void room_free(CfgRoom *r)
{
	if (!r)
		return;
	g_free(r->jid);
	cfg_password_free(r->password);
	g_free(r->nick);
	g_free(r);
}

void cfg_free(CfgFile *cfg)
{
	if (!cfg)
		return;
	g_free(cfg->path);
	if (cfg->accounts)
		g_ptr_array_unref(cfg->accounts);
	if (cfg->rooms)
		g_ptr_array_unref(cfg->rooms);
	g_free(cfg);
}

const CfgRoom *cfg_room(const CfgAccount *a, const char *room)
{
	for (guint i = 0; a->rooms && i < a->rooms->len; i++) {
		const CfgRoom *r = g_ptr_array_index(a->rooms, i);
		if (!strcmp(r->jid, room))
			return r;
	}
	return NULL;
}

char *cfg_default_path(void)
{
	return g_build_filename(g_get_user_config_dir(), "xmppfs", "config",
				NULL);
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
	set_error(err, code, r->path, r->group, key, "%s", msg);
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
	g_autofree char *v = shown(value);

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
	g_autofree char *v = shown(value);
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
	g_autofree char *v = shown(value);

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
	g_autofree char *v = shown(value);
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
	g_autofree char *v = shown(value);
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

static bool parse_auto_approve(Reader *r, const char *key, const char *value,
			       GError **err)
{
	g_autofree char *v = shown(value);

	if (!strcmp(value, "true") || !strcmp(value, "false")) {
		r->acct->auto_approve = !strcmp(value, "true");
		return true;
	}
	key_error(r, key, err, CFG_ERROR_KEY, "not true or false: %s", v);
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
	{ "auto_approve", parse_auto_approve },
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

/* Read one group as an account; its password_command, if any, is handed
 * back in @command for the second pass. */
static CfgAccount *read_account(GKeyFile *kf, const char *path, guint mode,
				const char *group, char **command,
				GError **err)
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
		set_error(err, CFG_ERROR_GROUP, path, group, NULL,
			  "not a bare JID: %s", jerr->message);
		return NULL;
	}
	acct->tls = CFG_TLS_REQUIRED;
	acct->message_limit = CFG_MESSAGE_LIMIT_DEFAULT;
	acct->ping_interval = CFG_PING_INTERVAL_DEFAULT;
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

#define ROOM_PREFIX "room "

/* Read a group [room ROOM]: only password and nick, with the same
 * checks as an account's (a password needs a file of mode 0600). */
static CfgRoom *read_room(GKeyFile *kf, const char *path, guint mode,
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
		set_error(err, CFG_ERROR_GROUP, path, group, NULL,
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

/* Offset just past line @n (1-based), or @len. */
static gsize line_end(const char *data, gsize len, gsize n)
{
	gsize off = 0;

	while (n-- > 0 && off < len) {
		const char *nl = memchr(data + off, '\n', len - off);

		off = nl ? (gsize)(nl - data) + 1 : len;
	}
	return off;
}

static bool parses(const char *data, gsize len)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();

	return g_key_file_load_from_data(kf, data, len, KF_FLAGS, NULL);
}

/* GKeyFile's messages quote the bad line but give no number.  Its errors
 * are per line, so the shortest failing prefix of the file ends at the bad
 * line: find it by bisection. */
static gsize error_line(const char *data, gsize len)
{
	gsize lo = 1, hi = 1;

	for (gsize i = 0; i < len; i++)
		hi += data[i] == '\n';
	while (lo < hi) {
		gsize mid = lo + (hi - lo) / 2;

		if (parses(data, line_end(data, len, mid)))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The 1-based number of the line holding offset @off. */
static gsize line_of(const char *data, gsize off)
{
	gsize line = 1;

	for (gsize i = 0; i < off; i++)
		line += data[i] == '\n';
	return line;
}

/* Whether @message quotes line @line and that line may hold a password
 * ("password: hunter2"), which must not reach a log that way. */
static bool quotes_password(const char *data, gsize len, gsize line,
			    const char *message)
{
	gsize start = line_end(data, len, line - 1);
	gsize end = line_end(data, len, line);
	g_autofree char *text = g_strndup(data + start, end - start);

	g_strstrip(text);
	return g_str_has_prefix(text, "password") && strstr(message, text);
}

static GKeyFile *parse_file(const char *data, gsize len, const char *path,
			    GError **err)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) kerr = NULL;
	const char *nul = memchr(data, '\0', len);
	gsize line;

	if (nul) {
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			  "line %zu: contains a NUL byte",
			  line_of(data, (gsize)(nul - data)));
		return NULL;
	}
	if (g_key_file_load_from_data(kf, data, len, KF_FLAGS, &kerr))
		return g_steal_pointer(&kf);
	line = error_line(data, len);
	if (quotes_password(data, len, line, kerr->message))
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			  "line %zu: cannot be parsed (not shown: it may hold "
			  "a password)", line);
	else
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			  "line %zu: %s", line, kerr->message);
	return NULL;
}

/* GKeyFile merges a repeated group into the first silently; an account
 * written twice is a mistake, so look for repeated headers in the text.
 * The file has parsed, so every line that starts with '[' (after the
 * whitespace GKeyFile strips) is a header. */
static bool check_repeated_groups(const char *data, gsize len,
				  const char *path, GError **err)
{
	g_autofree char *text = g_strndup(data, len);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (size_t i = 0; lines[i]; i++) {
		char *line = g_strstrip(lines[i]);
		size_t n = strlen(line);

		if (n < 2 || line[0] != '[' || line[n - 1] != ']')
			continue;
		line[n - 1] = '\0';
		if (!g_hash_table_add(seen, line + 1)) {
			set_error(err, CFG_ERROR_GROUP, path, line + 1, NULL,
				  "appears twice (again on line %zu)", i + 1);
			return false;
		}
	}
	return true;
}

/* Why a password command that printed a first line of @n bytes gave no
 * password, or NULL when it did. */
static char *command_failure(int status, size_t n)
{
	if (WIFSIGNALED(status))
		return g_strdup_printf("killed by signal %d",
				       WTERMSIG(status));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return g_strdup_printf("exited with status %d",
				       WEXITSTATUS(status));
	if (n == 0)
		return g_strdup("printed no password on its first line");
	return NULL;
}

static bool run_password_command(const char *path, const char *group,
				 const char *command, CfgAccount *acct,
				 GError **err)
{
	const char *argv[] = { "/bin/sh", "-c", command, NULL };
	const char *key = "password_command";
	g_autoptr(GError) serr = NULL;
	g_autofree char *why = NULL;
	char *out = NULL;
	size_t n;
	int status;

	if (!cfg_allow_commands) {
		set_error(err, CFG_ERROR_PASSWORD, path, group, key,
			  "running commands is disabled");
		return false;
	}
	/* stdin and stderr are the user's, so the command can prompt and
	 * complain; the environment is ours, unchanged. */
	if (!g_spawn_sync(NULL, (char **)argv, NULL,
			  G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &out, NULL,
			  &status, &serr)) {
		set_error(err, CFG_ERROR_PASSWORD, path, group, key, "%s",
			  serr->message);
		return false;
	}
	n = strcspn(out, "\n");
	if (n > 0 && out[n - 1] == '\r')
		n--;
	why = command_failure(status, n);
	if (!why)
		acct->password = g_strndup(out, n);
	cfg_password_free(out);
	if (why) {
		set_error(err, CFG_ERROR_PASSWORD, path, group, key, "%s", why);
		return false;
	}
	return true;
}

/* An account read in the first pass, waiting for its password. */
typedef struct {
	const char *group;
	char *command;
} Pending;

static void pending_free(Pending *p)
{
	g_free(p->command);
	g_free(p);
}

/* First pass: every group, checked; @pending gets one entry per account. */
static bool read_accounts(GKeyFile *kf, const char *path, guint mode,
			  char **groups, CfgFile *cfg, GPtrArray *pending,
			  GError **err)
{
	g_autoptr(GHashTable) jids = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) rooms = g_hash_table_new(g_str_hash, g_str_equal);

	for (size_t i = 0; groups[i]; i++) {
		Pending *p = g_new0(Pending, 1);
		CfgAccount *acct;
		const char *other;

		if (g_str_has_prefix(groups[i], ROOM_PREFIX)) {
			CfgRoom *room = read_room(kf, path, mode, groups[i],
						  err);
			g_free(p);
			if (!room)
				return false;
			g_ptr_array_add(cfg->rooms, room);
			other = g_hash_table_lookup(rooms, room->jid);
			if (other) {
				set_error(err, CFG_ERROR_GROUP, path, groups[i],
					  NULL, "the same room as [%s]", other);
				return false;
			}
			g_hash_table_insert(rooms, room->jid, groups[i]);
			continue;
		}
		p->group = groups[i];
		g_ptr_array_add(pending, p);
		acct = read_account(kf, path, mode, groups[i], &p->command,
				    err);
		if (!acct)
			return false;
		g_ptr_array_add(cfg->accounts, acct);
		other = g_hash_table_lookup(jids, acct->jid);
		if (other) {
			set_error(err, CFG_ERROR_GROUP, path, groups[i], NULL,
				  "the same account as [%s]", other);
			return false;
		}
		g_hash_table_insert(jids, acct->jid, groups[i]);
	}
	return true;
}

CfgFile *cfg_load_data(const char *data, gsize len, const char *path,
		       guint mode, GError **err)
{
	g_autoptr(GKeyFile) kf = NULL;
	g_autoptr(CfgFile) cfg = NULL;
	g_autoptr(GPtrArray) pending = NULL;
	g_auto(GStrv) groups = NULL;

	kf = parse_file(data, len, path, err);
	if (!kf || !check_repeated_groups(data, len, path, err))
		return NULL;
	groups = g_key_file_get_groups(kf, NULL);
	if (!groups || !groups[0]) {
		set_error(err, CFG_ERROR_EMPTY, path, NULL, NULL,
			  "no accounts; add a group such as "
			  "[alice@example.org]");
		return NULL;
	}
	cfg = g_new0(CfgFile, 1);
	cfg->path = g_strdup(path);
	cfg->accounts = g_ptr_array_new_with_free_func(
		(GDestroyNotify)account_free);
	pending = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
	cfg->rooms = g_ptr_array_new_with_free_func((GDestroyNotify)room_free);
	if (!read_accounts(kf, path, mode, groups, cfg, pending, err))
		return NULL;
	if (!cfg->accounts->len) {
		set_error(err, CFG_ERROR_EMPTY, path, NULL, NULL,
			  "no accounts, only rooms; add a group such as "
			  "[alice@example.org]");
		return NULL;
	}
	for (guint i = 0; i < cfg->accounts->len; i++)
		((CfgAccount *)cfg->accounts->pdata[i])->rooms = cfg->rooms;
	for (guint i = 0; i < cfg->accounts->len; i++) {
		Pending *p = pending->pdata[i];

		if (p->command && !run_password_command(path, p->group,
				p->command, cfg->accounts->pdata[i], err))
			return NULL;
	}
	return g_steal_pointer(&cfg);
}

/* Read all of @fd, a regular file of @size bytes. */
static char *read_all(int fd, gsize size, gsize *len)
{
	char *buf = g_malloc(size + 1);
	gsize got = 0;

	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			explicit_bzero(buf, got);
			g_free(buf);
			errno = saved;
			return NULL;
		}
		if (n == 0)
			break;
		got += (gsize)n;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

CfgFile *cfg_load(const char *path, GError **err)
{
	CfgFile *cfg = NULL;
	struct stat st;
	char *data;
	gsize len;
	/* Non-blocking, so a FIFO named as the config cannot hang us before
	 * fstat tells it apart; the mode checked is that of the file read. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL, "%s",
			  g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL, "%s",
			  g_strerror(errno));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			  "not a regular file");
		goto close_fd;
	}
	if (st.st_size > FILE_MAX) {
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			  "larger than %d bytes", FILE_MAX);
		goto close_fd;
	}
	data = read_all(fd, (gsize)st.st_size, &len);
	if (!data) {
		set_error(err, CFG_ERROR_FILE, path, NULL, NULL, "%s",
			  g_strerror(errno));
		goto close_fd;
	}
	cfg = cfg_load_data(data, len, path, st.st_mode & 07777, err);
	explicit_bzero(data, len);
	g_free(data);
close_fd:
	close(fd);
	return cfg;
}
