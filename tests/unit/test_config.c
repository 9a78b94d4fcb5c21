/* test_config.c - the account key file, table-driven.
 *
 * Each case is a key file, the mode it stands for, and either the first
 * account it must yield or the error code and the words the one-line
 * message must contain.  "@DIR@" in a case is a fresh temporary directory
 * and "@CA@" a readable file in it. */
#include "base/config.h"

#include <glib/gstdio.h>
#include <string.h>

#define PATH "test.conf"
#define OK (-1)          /* Case.code of a case that loads */
#define PING_ZERO (-1)   /* Want.ping for 0; 0 means the default */

typedef struct {
	const char *jid;
	const char *password;
	const char *host;
	guint port;
	CfgTls tls;
	bool has_ca;
	const char *resource; /* NULL: "xmppfs-" and 8 hex digits */
	const char *nick;
	gsize limit;          /* 0: the default */
	int ping;             /* 0: the default */
	guint iq;             /* 0: the default (SPEC's 30 s) */
	int receipts;         /* 0: the default (on), -1 off */
	int room_ping;        /* 0: the default (300 s), PING_ZERO for 0 */
	bool downloads;       /* default off */
	guint64 download_max; /* 0: the default (10 MiB) */
	bool omemo;           /* default off */
	CfgOmemoTrust omemo_trust; /* default tofu (0) */
} Want;

typedef struct {
	const char *name;
	const char *data;
	gsize len;            /* 0: strlen(data) */
	guint mode;
	int code;             /* OK or a CfgError */
	const char *words[4]; /* in the message */
	const char *absent;   /* not in the message */
	Want want;            /* the first account, when OK */
	guint n_accounts;     /* 0: 1 */
} Case;

#define ALICE "[alice@example.org]\n"
#define PW "password = secret\n"
#define G "[alice@example.org]"
#define V(...) .want = { .jid = "alice@example.org", __VA_ARGS__ }
#define E(c, ...) .code = c, .words = { __VA_ARGS__ }

static const Case cases[] = {
	/* What loads. */
	{ "minimal", ALICE PW, 0, 0600, OK,
	  V(.password = "secret", .nick = "alice") },
	{ "mode-0400", ALICE PW, 0, 0400, OK,
	  V(.password = "secret", .nick = "alice") },
	{ "mode-0700", ALICE PW, 0, 0700, OK,
	  V(.password = "secret", .nick = "alice") },
	{ "every-key", ALICE PW "host = 127.0.0.1\nport = 5223\n"
	  "tls = direct\nca_file = @CA@\nresource = laptop\nnick = Alice\n"
	  "message_limit = 1000\nping_interval = 30\n", 0, 0600, OK,
	  V(.password = "secret", .host = "127.0.0.1", .port = 5223,
	    .tls = CFG_TLS_DIRECT, .has_ca = true, .resource = "laptop",
	    .nick = "Alice", .limit = 1000, .ping = 30) },
	{ "tls-required", ALICE PW "tls = required\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .tls = CFG_TLS_REQUIRED) },
	{ "tls-plaintext", ALICE PW "tls = insecure-plaintext\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice",
	    .tls = CFG_TLS_PLAINTEXT) },
	{ "port-min", ALICE PW "port = 1\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .port = 1) },
	{ "port-max", ALICE PW "port = 65535\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .port = 65535) },
	{ "limit-min", ALICE PW "message_limit = 1\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .limit = 1) },
	{ "limit-max", ALICE PW "message_limit = 16777216\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .limit = 16777216) },
	{ "ping-zero", ALICE PW "ping_interval = 0\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .ping = PING_ZERO) },
	{ "ping-max", ALICE PW "ping_interval = 86400\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .ping = 86400) },
	{ "iq-timeout", ALICE PW "iq_timeout = 3\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .iq = 3) },
	{ "room-ping", ALICE PW "room_ping = 2\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .room_ping = 2) },
	{ "room-ping-off", ALICE PW "room_ping = 0\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .room_ping = PING_ZERO) },
	{ "room-ping-max", ALICE PW "room_ping = 86400\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .room_ping = 86400) },
	{ "downloads", ALICE PW "downloads = true\ndownload_max = 2048\n", 0,
	  0600, OK, V(.password = "secret", .nick = "alice", .downloads = true,
		      .download_max = 2048) },
	{ "omemo", ALICE PW "omemo = true\nomemo_trust = manual\n", 0, 0600,
	  OK, V(.password = "secret", .nick = "alice", .omemo = true,
		.omemo_trust = CFG_OMEMO_MANUAL) },
	{ "omemo-blind", ALICE PW "omemo_trust = blind\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice",
	    .omemo_trust = CFG_OMEMO_BLIND) },
	{ "receipts-off", ALICE PW "receipts = false\n", 0, 0600, OK,
	  V(.password = "secret", .nick = "alice", .receipts = -1) },
	{ "resource-spaces-slash", ALICE PW "resource = my laptop/1\n", 0,
	  0600, OK, V(.password = "secret", .nick = "alice",
		      .resource = "my laptop/1") },
	{ "escapes", ALICE "password = \\sa\\tb\n", 0, 0600, OK,
	  V(.password = " a\tb", .nick = "alice") },
	{ "normalized-group", "[Alice@Example.ORG]\n" PW, 0, 0600, OK,
	  V(.password = "secret", .nick = "alice") },
	{ "crlf", "[alice@example.org]\r\npassword = secret\r\n", 0, 0600,
	  OK, V(.password = "secret", .nick = "alice") },
	{ "comments", "# accounts\n\n" ALICE "# pw\n" PW, 0, 0600, OK,
	  V(.password = "secret", .nick = "alice") },
	{ "two-accounts", ALICE PW "[bob@example.net]\n" PW, 0, 0600, OK,
	  V(.password = "secret", .nick = "alice"), .n_accounts = 2 },
	{ "command", ALICE "password_command = printf 'pw\\nsecond'\n", 0,
	  0644, OK, V(.password = "pw", .nick = "alice") },
	{ "command-crlf", ALICE "password_command = printf 'pw\\r\\n'\n", 0,
	  0644, OK, V(.password = "pw", .nick = "alice") },
	{ "command-no-newline", ALICE "password_command = printf pw\n", 0,
	  0644, OK, V(.password = "pw", .nick = "alice") },

	/* The password keys. */
	{ "mode-0644", ALICE PW, 0, 0644, E(CFG_ERROR_PASSWORD, G,
	  "password:", "readable by others", "chmod 600 " PATH),
	  .absent = "secret" },
	{ "mode-0640", ALICE PW, 0, 0640, E(CFG_ERROR_PASSWORD, G,
	  "password:", "readable by others") },
	{ "mode-0602", ALICE PW, 0, 0602, E(CFG_ERROR_PASSWORD, G,
	  "password:", "readable by others") },
	{ "mode-0620", ALICE PW, 0, 0620, E(CFG_ERROR_PASSWORD, G,
	  "password:", "readable by others") },
	{ "password-empty", ALICE "password =\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, G, "password:", "empty") },
	{ "password-bad-utf8", ALICE "password = se\xffret\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "password:", "UTF-8"), .absent = "ffret" },
	{ "password-bad-escape", ALICE "password = se\\qret\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "password:", "escape"), .absent = "qret" },
	{ "no-password", ALICE "host = h\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, G, "password", "password_command") },
	{ "both-passwords", ALICE PW "password_command = echo x\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, G, "password", "password_command") },
	{ "command-exit", ALICE "password_command = exit 3\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, G, "password_command:", "status 3") },
	{ "command-exit-output", ALICE "password_command = echo pw; exit 1\n",
	  0, 0600, E(CFG_ERROR_PASSWORD, G, "password_command:", "status 1"),
	  .absent = "pw" },
	{ "command-signal", ALICE "password_command = kill -9 $$\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, G, "password_command:", "signal 9") },
	{ "command-no-output", ALICE "password_command = true\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, G, "password_command:", "no password") },
	{ "command-empty-line", ALICE "password_command = printf '\\nx'\n",
	  0, 0600, E(CFG_ERROR_PASSWORD, G, "password_command:",
		     "no password") },
	{ "command-cr-only", ALICE "password_command = printf '\\r\\n'\n",
	  0, 0600, E(CFG_ERROR_PASSWORD, G, "password_command:",
		     "no password") },
	{ "command-empty", ALICE "password_command =\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "password_command:", "empty") },
	/* The first pass sees the bad port before any command runs. */
	{ "command-not-run-early", ALICE "password_command = touch @DIR@/ran\n"
	  "[bob@example.org]\n" PW "port = x\n", 0, 0600,
	  E(CFG_ERROR_KEY, "[bob@example.org]", "port:") },

	/* Values of the wrong form. */
	{ "port-abc", ALICE PW "port = abc\n", 0, 0600,
	  E(CFG_ERROR_KEY, PATH ": " G " port: not a port number: 'abc'") },
	{ "port-zero", ALICE PW "port = 0\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "port:", "'0'") },
	{ "port-big", ALICE PW "port = 65536\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "port:", "'65536'") },
	{ "port-negative", ALICE PW "port = -1\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "port:", "'-1'") },
	{ "port-suffix", ALICE PW "port = 22x\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "port:", "'22x'") },
	{ "port-empty", ALICE PW "port =\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "port:", "''") },
	{ "tls-unknown", ALICE PW "tls = starttls\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "tls:", "'starttls'", "required") },
	{ "tls-case", ALICE PW "tls = Required\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "tls:", "'Required'") },
	{ "host-empty", ALICE PW "host =\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "host:") },
	{ "host-space", ALICE PW "host = a b\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "host:", "'a b'") },
	{ "ca-missing", ALICE PW "ca_file = @DIR@/nope.pem\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "ca_file:", "nope.pem", "No such file") },
	{ "ca-directory", ALICE PW "ca_file = @DIR@\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "ca_file:", "not a regular file") },
	{ "ca-empty", ALICE PW "ca_file =\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "ca_file:", "empty") },
	{ "resource-empty", ALICE PW "resource =\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "resource:", "empty") },
	{ "resource-control", ALICE PW "resource = a\\tb\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "resource:", "control") },
	{ "nick-empty", ALICE PW "nick =\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "nick:", "empty") },
	{ "nick-newline", ALICE PW "nick = a\\nb\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "nick:", "control") },
	{ "nick-bad-utf8", ALICE PW "nick = \xff\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "nick:", "UTF-8") },
	{ "nick-bad-escape", ALICE PW "nick = a\\q\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "nick:", "escape") },
	{ "limit-zero", ALICE PW "message_limit = 0\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "message_limit:", "'0'") },
	{ "limit-big", ALICE PW "message_limit = 16777217\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "message_limit:", "'16777217'") },
	{ "limit-unit", ALICE PW "message_limit = 64k\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "message_limit:", "'64k'") },
	{ "iq-timeout-zero", ALICE PW "iq_timeout = 0\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "iq_timeout:", "'0'") },
	{ "room-ping-big", ALICE PW "room_ping = 86401\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "room_ping:", "'86401'") },
	{ "download-max-zero", ALICE PW "download_max = 0\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "download_max:", "'0'") },
	{ "omemo-trust-bad", ALICE PW "omemo_trust = always\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "omemo_trust:", "'always'") },
	{ "downloads-yes", ALICE PW "downloads = yes\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "downloads:", "'yes'") },
	{ "room-ping-negative", ALICE PW "room_ping = -5\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "room_ping:", "'-5'") },
	{ "room-ping-unit", ALICE PW "room_ping = 5m\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "room_ping:", "'5m'") },
	{ "ping-big", ALICE PW "ping_interval = 86401\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "ping_interval:", "'86401'") },
	{ "ping-negative", ALICE PW "ping_interval = -1\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "ping_interval:", "'-1'") },
	{ "ping-fraction", ALICE PW "ping_interval = 1.5\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "ping_interval:", "'1.5'") },

	/* Keys. */
	{ "unknown-key", ALICE PW "prot = 5222\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "prot:", "unknown key") },
	{ "key-case", ALICE PW "Port = 5222\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "Port:", "unknown key") },
	{ "locale-key", ALICE PW "nick[de] = x\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "nick[de]:", "unknown key") },
	{ "key-twice", ALICE PW "port = 1\nport = 2\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "port:", "twice") },
	{ "key-control", ALICE PW "k\x01y = v\n", 0, 0600,
	  E(CFG_ERROR_KEY, G, "k\\x01y:", "unknown key"), .absent = "\x01" },

	/* tls_fingerprint: a SHA-256, any of its usual spellings. */
	{ "fingerprint-bad", ALICE PW "tls_fingerprint = SHA256:AB:CD\n", 0,
	  0600, E(CFG_ERROR_KEY, G, "tls_fingerprint:", "not a SHA-256") },
	{ "fingerprint-not-hex", ALICE PW "tls_fingerprint = "
	  "zz00000000000000000000000000000000000000000000000000000000000000\n",
	  0, 0600, E(CFG_ERROR_KEY, G, "tls_fingerprint:", "not a SHA-256") },

	/* Groups. */
	{ "group-space", "[alice@exa mple.org]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[alice@exa mple.org]:", "not a bare JID") },
	{ "group-empty-local", "[@example.org]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[@example.org]:", "not a bare JID") },
	{ "group-domain-only", "[tester]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[tester]:", "not an account", "[you@tester]") },
	{ "group-domain-only-dotted", "[example.org]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[example.org]:", "a local part") },
	{ "group-resource", "[alice@example.org/x]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[alice@example.org/x]:", "not a bare JID") },
	{ "group-quote", "[a\"b@example.org]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[a\"b@example.org]:", "not a bare JID") },
	{ "duplicate-normalized", "[Alice@Example.org]\n" PW ALICE PW, 0,
	  0600, E(CFG_ERROR_GROUP, G ":", "[Alice@Example.org]") },
	{ "duplicate-exact", ALICE PW "[bob@example.org]\n" PW ALICE, 0,
	  0600, E(CFG_ERROR_GROUP, G ":", "twice", "line 5") },

	/* Room groups. */
#define RG "[room r@muc.example.org]\n"
	{ "room-unknown-key", ALICE PW RG "host = x\n", 0, 0600,
	  E(CFG_ERROR_KEY, "[room r@muc.example.org] host:", "unknown key",
	    "password and nick") },
	{ "room-no-local", ALICE PW "[room muc.example.org]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[room muc.example.org]:", "no localpart") },
	{ "room-bad-jid", ALICE PW "[room a b@muc.example.org]\n" PW, 0, 0600,
	  E(CFG_ERROR_GROUP, "[room a b@muc.example.org]:", "not a room") },
	{ "room-resource", ALICE PW "[room r@muc.example.org/n]\n" PW, 0,
	  0600, E(CFG_ERROR_GROUP, "not a room") },
	{ "room-password-mode", ALICE PW RG PW, 0, 0644,
	  E(CFG_ERROR_PASSWORD, "[alice@example.org] password:", "chmod") },
	{ "room-password-mode-only", "[alice@example.org]\n"
	  "password_command = echo x\n" RG PW, 0, 0644,
	  E(CFG_ERROR_PASSWORD, "[room r@muc.example.org] password:",
	    "chmod"), .absent = "secret" },
	{ "room-empty-password", ALICE PW RG "password =\n", 0, 0600,
	  E(CFG_ERROR_PASSWORD, "[room r@muc.example.org] password:",
	    "empty") },
	{ "room-bad-nick", ALICE PW RG "nick = a\tb\n", 0, 0600,
	  E(CFG_ERROR_KEY, "[room r@muc.example.org] nick:") },
	{ "room-twice", ALICE PW RG "[room R@muc.example.org]\n", 0, 0600,
	  E(CFG_ERROR_GROUP, "[room R@muc.example.org]:", "same room",
	    "[room r@muc.example.org]") },
	{ "room-only", RG PW, 0, 0600, E(CFG_ERROR_EMPTY, "only rooms") },
	{ "room-set-twice", ALICE PW RG "nick = a\nnick = b\n", 0, 0600,
	  E(CFG_ERROR_KEY, "nick:", "twice") },

	/* The file. */
	{ "empty", "", 0, 0600, E(CFG_ERROR_EMPTY, PATH ": ", "no accounts") },
	{ "only-comments", "# nothing\n\n", 0, 0600,
	  E(CFG_ERROR_EMPTY, "no accounts") },
	{ "not-a-line", ALICE PW "foo\n", 0, 0600,
	  E(CFG_ERROR_FILE, PATH ": line 3: ", "foo") },
	{ "key-before-group", "port = 1\n" ALICE PW, 0, 0600,
	  E(CFG_ERROR_FILE, PATH ": line 1: ") },
	{ "bad-group-line", ALICE PW "\n[bob@example.org\n", 0, 0600,
	  E(CFG_ERROR_FILE, PATH ": line 4: ") },
	{ "password-line-hidden", ALICE "password hunter2\n", 0, 0600,
	  E(CFG_ERROR_FILE, PATH ": line 2: ", "not shown"),
	  .absent = "hunter2" },
	{ "nul-byte", ALICE "host = a\0b\n" PW, sizeof(ALICE "host = a\0b\n"
	  PW) - 1, 0600, E(CFG_ERROR_FILE, PATH ": line 2: ", "NUL") },
	{ "control-in-line", ALICE PW "\x1b[31m\n", 0, 0600,
	  E(CFG_ERROR_FILE, "line 3", "\\x1b"), .absent = "\x1b" },
};

static char *tmp_dir;
static char *ca_path;

static char *expand(const char *data, gsize *len)
{
	GString *s = g_string_new_len(data, (gssize)*len);

	g_string_replace(s, "@CA@", ca_path, 0);
	g_string_replace(s, "@DIR@", tmp_dir, 0);
	*len = s->len;
	return g_string_free(s, FALSE);
}

static void check_resource(const char *resource, const char *want)
{
	if (want) {
		g_assert_cmpstr(resource, ==, want);
		return;
	}
	g_assert_true(g_str_has_prefix(resource, "xmppfs-"));
	g_assert_cmpuint(strlen(resource), ==, strlen("xmppfs-") + 8);
	for (const char *p = resource + strlen("xmppfs-"); *p; p++)
		g_assert_true(g_ascii_isxdigit(*p) && !g_ascii_isupper(*p));
}

static void check_account(const CfgAccount *a, const Want *w)
{
	g_assert_cmpstr(a->jid, ==, w->jid);
	g_assert_cmpstr(a->password, ==, w->password);
	g_assert_cmpstr(a->host, ==, w->host);
	g_assert_cmpuint(a->port, ==, w->port);
	g_assert_cmpint(a->tls, ==, w->tls);
	if (w->has_ca)
		g_assert_cmpstr(a->ca_file, ==, ca_path);
	else
		g_assert_null(a->ca_file);
	check_resource(a->resource, w->resource);
	g_assert_cmpstr(a->nick, ==, w->nick);
	g_assert_cmpuint(a->message_limit, ==,
			 w->limit ? w->limit : CFG_MESSAGE_LIMIT_DEFAULT);
	g_assert_cmpuint(a->ping_interval, ==,
			 w->ping == PING_ZERO ? 0 :
			 w->ping ? (guint)w->ping : CFG_PING_INTERVAL_DEFAULT);
	g_assert_cmpuint(a->iq_timeout, ==, w->iq ? w->iq : 30);
	/* five minutes, as the README says */
	g_assert_true(a->downloads == w->downloads);
	g_assert_cmpuint(a->download_max, ==,
			 w->download_max ? w->download_max : 10 * 1024 * 1024);
	g_assert_cmpuint(a->room_ping, ==,
			 w->room_ping == PING_ZERO ? 0 :
			 w->room_ping ? (guint)w->room_ping : 300);
	g_assert_true(a->receipts == (w->receipts >= 0));
	g_assert_false(a->chat_states);
	g_assert_true(a->omemo == w->omemo);
	g_assert_cmpint(a->omemo_trust, ==, w->omemo_trust);
}

static void check_error(const GError *err, const Case *c)
{
	g_assert_nonnull(err);
	g_test_message("%s", err->message);
	g_assert_error(err, CFG_ERROR, c->code);
	g_assert_true(g_str_has_prefix(err->message, PATH ": "));
	g_assert_null(strchr(err->message, '\n'));
	for (size_t i = 0; i < G_N_ELEMENTS(c->words) && c->words[i]; i++)
		g_assert_nonnull(strstr(err->message, c->words[i]));
	if (c->absent)
		g_assert_null(strstr(err->message, c->absent));
}

static void test_case(gconstpointer data)
{
	const Case *c = data;
	gsize len = c->len ? c->len : strlen(c->data);
	g_autofree char *text = expand(c->data, &len);
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = cfg_load_data(text, len, PATH, c->mode, &err);
	g_autofree char *ran = g_build_filename(tmp_dir, "ran", NULL);

	g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
	if (c->code != OK) {
		g_assert_null(cfg);
		check_error(err, c);
		return;
	}
	g_assert_no_error(err);
	g_assert_nonnull(cfg);
	g_assert_cmpstr(cfg->path, ==, PATH);
	g_assert_cmpuint(cfg->accounts->len, ==,
			 c->n_accounts ? c->n_accounts : 1);
	check_account(cfg->accounts->pdata[0], &c->want);
}

/* Lengths at the JID limit, too long to write in the table. */
static void test_long_values(void)
{
	static const char *const keys[] = { "resource", "nick" };

	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		for (gsize n = 1023; n <= 1024; n++) {
			g_autofree char *v = g_strnfill(n, 'r');
			g_autofree char *text = g_strdup_printf(
				ALICE PW "%s = %s\n", keys[i], v);
			g_autoptr(GError) err = NULL;
			g_autoptr(CfgFile) cfg = cfg_load_data(
				text, strlen(text), PATH, 0600, &err);

			if (n == 1023) {
				g_assert_no_error(err);
				continue;
			}
			g_assert_null(cfg);
			g_assert_error(err, CFG_ERROR, CFG_ERROR_KEY);
			g_assert_nonnull(strstr(err->message, keys[i]));
			g_assert_cmpuint(strlen(err->message), <, 1024);
		}
	}
}

static void test_random_resource(void)
{
	const char *text = ALICE PW;
	g_autoptr(CfgFile) a = cfg_load_data(text, strlen(text), PATH, 0600,
					     NULL);
	g_autoptr(CfgFile) b = cfg_load_data(text, strlen(text), PATH, 0600,
					     NULL);
	const CfgAccount *x, *y;

	g_assert_nonnull(a);
	g_assert_nonnull(b);
	x = a->accounts->pdata[0];
	y = b->accounts->pdata[0];
	g_assert_cmpstr(x->resource, !=, y->resource);
}

static void test_commands_disabled(void)
{
	const char *text = ALICE "password_command = touch @DIR@/ran\n";
	gsize len = strlen(text);
	g_autofree char *data = expand(text, &len);
	g_autofree char *ran = g_build_filename(tmp_dir, "ran", NULL);
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = NULL;

	cfg_allow_commands = false;
	cfg = cfg_load_data(data, len, PATH, 0600, &err);
	cfg_allow_commands = true;
	g_assert_null(cfg);
	g_assert_error(err, CFG_ERROR, CFG_ERROR_PASSWORD);
	g_assert_nonnull(strstr(err->message, G " password_command: "));
	g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
}

static char *write_file(const char *name, const char *text, int mode)
{
	char *path = g_build_filename(tmp_dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
	return path;
}

static void test_load_file(void)
{
	g_autofree char *good = write_file("good.conf", ALICE PW, 0600);
	g_autofree char *bad = write_file("bad.conf", ALICE PW, 0644);
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = cfg_load(good, &err);
	const CfgAccount *a;

	g_assert_no_error(err);
	g_assert_cmpstr(cfg->path, ==, good);
	a = cfg->accounts->pdata[0];
	g_assert_cmpstr(a->password, ==, "secret");
	g_assert_null(cfg_load(bad, &err));
	g_assert_error(err, CFG_ERROR, CFG_ERROR_PASSWORD);
	g_assert_true(g_str_has_prefix(err->message, bad));
	g_assert_nonnull(strstr(err->message, "chmod 600"));
	g_unlink(good);
	g_unlink(bad);
}

static void test_load_errors(void)
{
	g_autofree char *missing = g_build_filename(tmp_dir, "nope", NULL);
	const char *paths[] = { missing, tmp_dir };
	const char *words[] = { "No such file", "not a regular file" };

	for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
		g_autoptr(GError) err = NULL;

		g_assert_null(cfg_load(paths[i], &err));
		g_assert_error(err, CFG_ERROR, CFG_ERROR_FILE);
		g_assert_true(g_str_has_prefix(err->message, paths[i]));
		g_assert_nonnull(strstr(err->message, words[i]));
	}
}

/* A relative ca_file is found next to the config, not in the cwd. */
static void test_relative_ca(void)
{
	g_autofree char *conf = write_file("rel.conf",
					   ALICE PW "ca_file = ca.pem\n", 0600);
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = cfg_load(conf, &err);
	const CfgAccount *a;

	g_assert_no_error(err);
	a = cfg->accounts->pdata[0];
	g_assert_cmpstr(a->ca_file, ==, ca_path);
	g_unlink(conf);
}

static void test_default_path(void)
{
	g_autofree char *path = cfg_default_path();
	g_autofree char *want = g_build_filename(g_get_user_config_dir(),
						 "xmppfs", "config", NULL);

	g_assert_cmpstr(path, ==, want);
}

/* [room ROOM] groups: found by every account, normalized, optional keys. */
static void test_rooms(void)
{
	static const char text[] =
		RG "password = hush\nnick = Al Ice\n" ALICE PW
		"[room Other@MUC.example.org]\nnick = x\n"
		"[bob@example.org]\n" PW "[room Third@muc.example.org]\n";
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg =
		cfg_load_data(text, strlen(text), PATH, 0600, &err);
	const CfgRoom *r;

	g_assert_no_error(err);
	g_assert_cmpuint(cfg->accounts->len, ==, 2);
	g_assert_cmpuint(cfg->rooms->len, ==, 3);
	for (guint i = 0; i < 2; i++) {
		const CfgAccount *a = cfg->accounts->pdata[i];
		r = cfg_room(a, "r@muc.example.org");
		g_assert_nonnull(r);
		g_assert_cmpstr(r->password, ==, "hush");
		g_assert_cmpstr(r->nick, ==, "Al Ice");
		r = cfg_room(a, "other@muc.example.org");
		g_assert_nonnull(r);
		g_assert_null(r->password);
		g_assert_cmpstr(r->nick, ==, "x");
		r = cfg_room(a, "third@muc.example.org");
		g_assert_nonnull(r);
		g_assert_null(r->password);
		g_assert_null(r->nick);
		g_assert_null(cfg_room(a, "Other@MUC.example.org"));
		g_assert_null(cfg_room(a, "alice@example.org"));
	}
}

/* A reload compares an account read again with the one in use: a random
 * resource is no change (the new one takes the old), anything else is. */
static void test_same(void)
{
	static const struct {
		const char *old, *new;
		bool same;
	} pairs[] = {
		{ ALICE PW, ALICE PW, true },
		{ ALICE PW, ALICE "\n# a comment\n" PW, true },
		{ ALICE PW, ALICE "password = other\n", false },
		{ ALICE PW, ALICE PW "port = 5223\n", false },
		{ ALICE PW, ALICE PW "host = 127.0.0.1\n", false },
		{ ALICE PW, ALICE PW "tls = direct\n", false },
		{ ALICE PW, ALICE PW "nick = Al\n", false },
		{ ALICE PW, ALICE PW "resource = r\n", false },
		{ ALICE PW "resource = r\n", ALICE PW "resource = r\n", true },
		{ ALICE PW "resource = r\n", ALICE PW, false },
		{ ALICE PW, ALICE PW "tls_fingerprint = "
		  "abababababababababababababababababababababababababababababababab\n", false },
		{ ALICE PW, ALICE PW "message_limit = 100\n", false },
		{ ALICE PW, ALICE PW "[room r@muc.example.org]\n", false },
		{ ALICE PW "[room r@muc.example.org]\n",
		  ALICE PW "[room r@muc.example.org]\nnick = n\n", false },
		{ ALICE PW "[room r@muc.example.org]\n",
		  "[room r@muc.example.org]\n" ALICE PW, true },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(pairs); i++) {
		g_autoptr(CfgFile) a = cfg_load_data(
			pairs[i].old, strlen(pairs[i].old), PATH, 0600, NULL);
		g_autoptr(CfgFile) b = cfg_load_data(
			pairs[i].new, strlen(pairs[i].new), PATH, 0600, NULL);
		CfgAccount *x, *y;

		g_assert_nonnull(a);
		g_assert_nonnull(b);
		x = cfg_account_of(a, "alice@example.org");
		y = cfg_account_of(b, "alice@example.org");
		g_assert_nonnull(x);
		g_assert_null(cfg_account_of(b, "bob@example.org"));
		if (cfg_account_same(y, x) != pairs[i].same)
			g_error("case %zu: %s -> %s: same should be %d", i,
				pairs[i].old, pairs[i].new, pairs[i].same);
		if (!x->resource_given && !y->resource_given)
			g_assert_cmpstr(x->resource, ==, y->resource);
	}
}

static void test_fingerprint_forms(void)
{
	const char *want = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
			   "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
	const char *same[] = {
		"SHA256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:"
		"EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
		"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		"sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234"
		"56789",
	};
	const char *bad[] = {"", "SHA256:", "AB:CD", "abcdef0123456789abcdef0123"
			     "456789abcdef0123456789abcdef012345678900"};

	for (guint i = 0; i < G_N_ELEMENTS(same); i++) {
		g_autofree char *fp = cfg_fingerprint(same[i]);
		g_assert_cmpstr(fp, ==, want);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_null(cfg_fingerprint(bad[i]));
}

static void test_password_free(void)
{
	cfg_password_free(NULL);
	cfg_password_free(g_strdup("secret"));
	cfg_free(NULL);
}

int main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmp_dir = g_dir_make_tmp("test_config-XXXXXX", NULL);
	g_assert_nonnull(tmp_dir);
	ca_path = g_build_filename(tmp_dir, "ca.pem", NULL);
	g_assert_true(g_file_set_contents(ca_path, "not checked\n", -1,
					  NULL));
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *name = g_strconcat("/config/load/",
						    cases[i].name, NULL);

		g_test_add_data_func(name, &cases[i], test_case);
	}
	g_test_add_func("/config/long-values", test_long_values);
	g_test_add_func("/config/random-resource", test_random_resource);
	g_test_add_func("/config/commands-disabled", test_commands_disabled);
	g_test_add_func("/config/file/load", test_load_file);
	g_test_add_func("/config/file/errors", test_load_errors);
	g_test_add_func("/config/file/relative-ca", test_relative_ca);
	g_test_add_func("/config/default-path", test_default_path);
	g_test_add_func("/config/password-free", test_password_free);
	g_test_add_func("/config/fingerprint-forms", test_fingerprint_forms);
	g_test_add_func("/config/rooms", test_rooms);
	g_test_add_func("/config/same", test_same);
	rc = g_test_run();
	g_unlink(ca_path);
	g_rmdir(tmp_dir);
	g_free(ca_path);
	g_free(tmp_dir);
	return rc;
}
