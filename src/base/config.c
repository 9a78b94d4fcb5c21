/* config.c - the account key file (SPEC "Mounting"): the file read, parsed
 * and checked as a whole, its password commands run.
 *
 * Two passes: every group is read and checked first, and the password
 * commands run only once the whole file is known to be valid, so a typo in
 * the last group costs no trip to a password manager for the first.
 *
 * Each group is read by config_keys.c; every message is built by
 * config_text.c, which keeps passwords out of them. */
#include "base/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILE_MAX (1024 * 1024)           /* a config is never this large */
/* Keep "nick[de]" and the like, which GKeyFile would drop unseen unless
 * they match the locale, so they are refused as unknown keys. */
#define KF_FLAGS G_KEY_FILE_KEEP_TRANSLATIONS

bool cfg_allow_commands = true;

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

CfgAccount *cfg_account_of(const CfgFile *cfg, const char *jid)
{
	for (guint i = 0; i < cfg->accounts->len; i++) {
		CfgAccount *a = g_ptr_array_index(cfg->accounts, i);
		if (!strcmp(a->jid, jid))
			return a;
	}
	return NULL;
}

static bool rooms_same(const GPtrArray *a, const GPtrArray *b)
{
	guint na = a ? a->len : 0, nb = b ? b->len : 0;

	if (na != nb)
		return false;
	for (guint i = 0; i < na; i++) {
		const CfgRoom *x = g_ptr_array_index(a, i);
		const CfgRoom *y = g_ptr_array_index(b, i);
		if (strcmp(x->jid, y->jid) ||
		    g_strcmp0(x->password, y->password) ||
		    g_strcmp0(x->nick, y->nick))
			return false;
	}
	return true;
}

bool cfg_account_same(CfgAccount *a, const CfgAccount *b)
{
	if (!a->resource_given && !b->resource_given) {
		/* both random: one reload must not give a new resource */
		g_free(a->resource);
		a->resource = g_strdup(b->resource);
	}
	return !strcmp(a->jid, b->jid) &&
	       !g_strcmp0(a->password, b->password) &&
	       !g_strcmp0(a->host, b->host) && a->port == b->port &&
	       a->tls == b->tls && !g_strcmp0(a->ca_file, b->ca_file) &&
	       !strcmp(a->resource, b->resource) &&
	       !strcmp(a->nick, b->nick) &&
	       a->message_limit == b->message_limit &&
	       a->ping_interval == b->ping_interval &&
	       a->iq_timeout == b->iq_timeout &&
	       a->room_ping == b->room_ping &&
	       a->downloads == b->downloads &&
	       a->download_max == b->download_max &&
	       a->auto_approve == b->auto_approve &&
	       !g_strcmp0(a->tls_fingerprint, b->tls_fingerprint) &&
	       a->queue_when_failed == b->queue_when_failed &&
	       a->receipts == b->receipts &&
	       a->chat_states == b->chat_states &&
	       a->omemo == b->omemo && a->omemo_trust == b->omemo_trust &&
	       rooms_same(a->rooms, b->rooms);
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
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			      "line %zu: contains a NUL byte",
			      line_of(data, (gsize)(nul - data)));
		return NULL;
	}
	if (g_key_file_load_from_data(kf, data, len, KF_FLAGS, &kerr))
		return g_steal_pointer(&kf);
	line = error_line(data, len);
	if (quotes_password(data, len, line, kerr->message))
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			      "line %zu: cannot be parsed (not shown: it may "
			      "hold a password)", line);
	else
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
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
			cfg_set_error(err, CFG_ERROR_GROUP, path, line + 1,
				      NULL, "appears twice (again on line %zu)",
				      i + 1);
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
		cfg_set_error(err, CFG_ERROR_PASSWORD, path, group, key,
			      "running commands is disabled");
		return false;
	}
	/* stdin and stderr are the user's, so the command can prompt and
	 * complain; the environment is ours, unchanged. */
	if (!g_spawn_sync(NULL, (char **)argv, NULL,
			  G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &out, NULL,
			  &status, &serr)) {
		cfg_set_error(err, CFG_ERROR_PASSWORD, path, group, key, "%s",
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
		cfg_set_error(err, CFG_ERROR_PASSWORD, path, group, key, "%s",
			      why);
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
			CfgRoom *room = cfg_read_room(kf, path, mode,
						      groups[i], err);
			g_free(p);
			if (!room)
				return false;
			g_ptr_array_add(cfg->rooms, room);
			other = g_hash_table_lookup(rooms, room->jid);
			if (other) {
				cfg_set_error(err, CFG_ERROR_GROUP, path,
					      groups[i], NULL,
					      "the same room as [%s]", other);
				return false;
			}
			g_hash_table_insert(rooms, room->jid, groups[i]);
			continue;
		}
		p->group = groups[i];
		g_ptr_array_add(pending, p);
		acct = cfg_read_account(kf, path, mode, groups[i],
					&p->command, err);
		if (!acct)
			return false;
		g_ptr_array_add(cfg->accounts, acct);
		other = g_hash_table_lookup(jids, acct->jid);
		if (other) {
			cfg_set_error(err, CFG_ERROR_GROUP, path, groups[i],
				      NULL, "the same account as [%s]", other);
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
		cfg_set_error(err, CFG_ERROR_EMPTY, path, NULL, NULL,
			      "no accounts; add a group such as "
			      "[alice@example.org]");
		return NULL;
	}
	cfg = g_new0(CfgFile, 1);
	cfg->path = g_strdup(path);
	cfg->accounts = g_ptr_array_new_with_free_func(
		(GDestroyNotify)cfg_account_free);
	pending = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
	cfg->rooms = g_ptr_array_new_with_free_func(
		(GDestroyNotify)cfg_room_free);
	if (!read_accounts(kf, path, mode, groups, cfg, pending, err))
		return NULL;
	if (!cfg->accounts->len) {
		cfg_set_error(err, CFG_ERROR_EMPTY, path, NULL, NULL,
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
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL, "%s",
			      g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL, "%s",
			      g_strerror(errno));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			      "not a regular file");
		goto close_fd;
	}
	if (st.st_size > FILE_MAX) {
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL,
			      "larger than %d bytes", FILE_MAX);
		goto close_fd;
	}
	data = read_all(fd, (gsize)st.st_size, &len);
	if (!data) {
		cfg_set_error(err, CFG_ERROR_FILE, path, NULL, NULL, "%s",
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
