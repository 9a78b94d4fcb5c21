/* strophe012.c - what libstrophe 0.12 (Debian 12 ships 0.12.2) tells an
 * application only in its log, read here and nowhere else.
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
 * Nothing here counts stanzas or decides that a message was delivered
 * (sm.c does, from what xmppfs itself sends and receives).  A hint missed
 * because a later version words its log differently costs a worse error
 * message, a watchdog that fires later, or acknowledgement by ping
 * instead of XEP-0198: never a message.  With -d the XML stream goes to
 * xmppfs's log from here too, passwords hidden. */
#include <string.h>
#include <strophe.h>

#include "account_int.h"
#include "log.h"

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
