/* strophe012.c - what libstrophe 0.12 (Debian 12 ships 0.12.2) tells an
 * application only in its log, read here and nowhere else; and (at the
 * end) the trust store it would load again for every connection.
 *
 * Each account's context has this file's log handler.  Version 0.12 has
 * no API for these facts, and no handler of the application sees a
 * stanza before the session is bound (handler.c skips user handlers
 * until `authenticated`):
 *
 *   "connection successful"       the TCP connect is done
 *   "proceeding with TLS"         the STARTTLS handshake begins: a stall
 *                                 in it blocks (see pool.c), so the TLS
 *                                 watchdog starts
 *   "SENT: ..." during TLS        the handshake is over (the stream is
 *                                 opened again over it)
 *   "RECV: <stream:features"      what the server offers: stream
 *                                 management (sm.c) and roster versioning
 *   "RECV: <failure xmlns=SASL"   why the login was refused
 *   "... auth failed", "Cannot authenticate"   the same, in other words
 *   "parse error"                 the server sent malformed XML: 0.12
 *                                 stops reading and never disconnects
 *
 * (And one thing it does not tell at all: strophe012.h.)
 *
 * Nothing here counts stanzas or decides that a message was delivered
 * (sm.c does, from what xmppfs itself sends and receives).  A hint missed
 * because a later version words its log differently costs a worse error
 * message, a watchdog that fires later, or acknowledgement by ping
 * instead of XEP-0198: never a message.  With -d the XML stream goes to
 * xmppfs's log from here too, passwords hidden. */
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <string.h>
#include <strophe.h>
#include <sys/stat.h>

#include "base/log.h"
#include "xmpp/account_int.h"
#include "xmpp/pool.h"

static bool starts(const char *msg, const char *prefix)
{
	return !strncmp(msg, prefix, strlen(prefix));
}

/* "RECV: <failure xmlns='..sasl'><not-authorized/><text>why</text>" ->
 * "not-authorized: why". */
static char *sasl_failure(const char *msg)
{
	const char *cond = strstr(msg, "\"><");
	const char *text = strstr(msg, "<text");
	g_autofree char *c = NULL, *t = NULL;

	if (!cond)
		return NULL;
	cond += 3;
	c = g_strndup(cond, strcspn(cond, "/> "));
	if (text && (text = strchr(text, '>')))
		t = g_strndup(text + 1, strcspn(text + 1, "<"));
	return t && *t ? g_strdup_printf("%s: %s", c, t) : g_steal_pointer(&c);
}

static void hint(Account *a, const char *msg)
{
	if (starts(msg, "RECV: <stream:features")) {
		acct_lib_features(a, strstr(msg, "urn:xmpp:sm:3") != NULL,
				  strstr(msg, "urn:xmpp:features:rosterver") !=
					  NULL);
	} else if (starts(msg, "RECV: <failure xmlns=\"" XMPP_NS_SASL)) {
		g_autofree char *why = sasl_failure(msg);
		if (why)
			acct_lib_auth_failed(a, why);
	} else if (starts(msg, "SENT: ")) {
		acct_lib_sent(a);
	} else if (starts(msg, "parse error")) {
		acct_lib_parse_error(a);
	} else if (!strcmp(msg, "connection successful")) {
		acct_lib_tcp_up(a);
	} else if (!strcmp(msg, "proceeding with TLS")) {
		acct_lib_tls_begins(a);
	} else if (g_str_has_suffix(msg, " auth failed")) {
		acct_lib_auth_failed(a, msg);
	} else if (strstr(msg, "Cannot authenticate")) {
		acct_lib_no_mechanism(a);
	}
}

void strophe012_log(void *ud, xmpp_log_level_t level, const char *area,
		    const char *msg)
{
	Account *a = ud;

	(void)level;
	hint(a, msg);
	if (!xfs_log_xml())
		return;
	/* SASL PLAIN carries the password in base64: never log it; nor a
	 * room's password, in a join or an invitation */
	if (strstr(msg, "<auth ") || strstr(msg, "<response "))
		msg = "[authentication data not shown]";
	else if (strstr(msg, "<password>") || strstr(msg, " password="))
		msg = "[a stanza with a room password, not shown]";
	xfs_debug("%s %s: %s", acct_cfg(a)->jid, area, msg);
}

/* ---- one trust store for every connection ----
 *
 * libstrophe 0.12 makes an SSL_CTX for each connection (tls_new) and
 * calls SSL_CTX_set_default_verify_paths on it, which reads the system's
 * whole CA bundle (Debian's: 144 certificates) into a fresh store: about
 * 40 ms of CPU and 840 KB for every login, 74 % of a login's cost.  Then
 * SSL_CTX_load_verify_locations adds the account's ca_file.  xmppfs
 * defines both here: called by libstrophe (from an account's coroutine
 * on the pool thread), they give the context a store shared by every
 * connection with the same ca_file, built once (the system's CAs, plus
 * that file, read again when it changes).  Verification is OpenSSL's as
 * before, against the same certificates; only the loading is shared.
 * Every other caller gets OpenSSL's functions unchanged. */


typedef struct {
	X509_STORE *store;
	gint64 mtime; /* of the ca_file it holds, to notice a new one */
} SharedStore;

static void shared_store_free(gpointer p)
{
	SharedStore *s = p;

	X509_STORE_free(s->store);
	g_free(s);
}

static gint64 file_mtime(const char *path)
{
	struct stat st;

	return path && stat(path, &st) == 0
		       ? (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC +
				 st.st_mtim.tv_nsec / 1000
		       : 0;
}

/* The store for @cafile (NULL: the system's only); pool thread only. */
static X509_STORE *shared_store(const char *cafile)
{
	static GHashTable *stores; /* ca_file ("" for none) -> SharedStore */
	const char *key = cafile ? cafile : "";
	gint64 mtime = file_mtime(cafile);
	SharedStore *s;
	X509_STORE *st;

	if (!stores)
		stores = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       shared_store_free);
	s = g_hash_table_lookup(stores, key);
	if (s && s->mtime == mtime)
		return s->store;
	st = X509_STORE_new();
	if (!st || !X509_STORE_set_default_paths(st) ||
	    (cafile && !X509_STORE_load_file(st, cafile))) {
		X509_STORE_free(st);
		return NULL;
	}
	s = g_new0(SharedStore, 1);
	s->store = st;
	s->mtime = mtime;
	g_hash_table_replace(stores, g_strdup(key), s);
	return st;
}

static bool from_strophe(void)
{
	return pool_current_account() != NULL;
}

int SSL_CTX_set_default_verify_paths(SSL_CTX *ctx)
{
	static int (*real)(SSL_CTX *);
	X509_STORE *st;

	if (!from_strophe()) {
		if (!real)
			real = (int (*)(SSL_CTX *))dlsym(
				RTLD_NEXT, "SSL_CTX_set_default_verify_paths");
		return real(ctx);
	}
	if (!(st = shared_store(NULL)))
		return 0;
	SSL_CTX_set1_cert_store(ctx, st);
	return 1;
}

int SSL_CTX_load_verify_locations(SSL_CTX *ctx, const char *cafile,
				  const char *capath)
{
	static int (*real)(SSL_CTX *, const char *, const char *);
	X509_STORE *st;

	if (!from_strophe() || capath) {
		if (!real)
			real = (int (*)(SSL_CTX *, const char *, const char *))
				dlsym(RTLD_NEXT, "SSL_CTX_load_verify_locations");
		return real(ctx, cafile, capath);
	}
	if (!(st = shared_store(cafile)))
		return 0;
	SSL_CTX_set1_cert_store(ctx, st);
	return 1;
}
