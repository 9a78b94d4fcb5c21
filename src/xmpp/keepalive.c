/* keepalive.c - whether the link lives: XEP-0199 keep-alive pings on a
 * quiet link, and the stanza size limit (a stanza larger than
 * ACCT_STANZA_MAX_BYTES ends the connection).  Either drops the link by
 * shutting its socket down; conn.c's disconnect path does the rest.
 *
 * Below conn.c, above sm.c and login.c.  Pool thread only. */
#include "xmpp/account_int.h"

#include <string.h>
#include <strophe.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/socket.h>

#include "base/util.h"

#define KEEPALIVE_BEAT_S 5

/* The server sent something that waits unread on the socket. */
static bool sock_waiting(Account *a)
{
	return acct_sock(a) >= 0 && util_unread_bytes(acct_sock(a)) > 0;
}

/* Bytes libstrophe has taken from the socket: received minus queued. */
static bool consumed_bytes(int fd, guint64 *out)
{
	struct tcp_info ti = {0};
	socklen_t len = sizeof ti;
	int inq;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) +
			  sizeof ti.tcpi_bytes_received ||
	    (inq = util_unread_bytes(fd)) < 0)
		return false;
	*out = ti.tcpi_bytes_received - (guint64)inq;
	return true;
}

/* Drop the link when more than ACCT_STANZA_MAX_BYTES arrived without a single
 * complete stanza. */
void acct_check_stanza_size(Account *a)
{
	guint64 used;

	if (acct_sock(a) < 0 || !consumed_bytes(acct_sock(a), &used))
		return;
	if (a->stanzas != a->stanzas_mark || used < a->bytes_mark) {
		a->stanzas_mark = a->stanzas;
		a->bytes_mark = used;
	} else if (used - a->bytes_mark > ACCT_STANZA_MAX_BYTES) {
		a->oversize = true;
		shutdown(acct_sock(a), SHUT_RDWR);
	}
}

/* XEP-0199 keep-alive: when the link has been quiet for ping_interval
 * seconds, ping the server; no answer (nor anything else) within
 * ACCT_PING_TIMEOUT_S and the link is dead: drop it, the reconnect logic
 * takes over.  A link that dies without FIN or RST is otherwise never
 * noticed.  Idle, that is one wake-up per interval. */
gint64 acct_keepalive_due(Account *a)
{
	gint64 due;

	if (a->state != ACCT_ONLINE || !a->conn || a->conn_dead ||
	    !a->cfg->ping_interval)
		return G_MAXINT64;
	if (a->ping_due)
		return a->ping_due;
	due = a->last_rx + (gint64)a->cfg->ping_interval * G_USEC_PER_SEC;
	/* idle accounts ping on a common beat, so a thousand of them wake
	 * the pool a few times a minute, not a thousand */
	if (a->cfg->ping_interval >= 4 * KEEPALIVE_BEAT_S)
		due = (due / (KEEPALIVE_BEAT_S * G_USEC_PER_SEC) + 1) *
		      (KEEPALIVE_BEAT_S * G_USEC_PER_SEC);
	return due;
}

/* Seconds to wait for the answer: ACCT_PING_TIMEOUT_S, less for a short
 * interval (a server should answer within it), never under 5. */
gint64 acct_ping_timeout(Account *a)
{
	return CLAMP((gint64)a->cfg->ping_interval, 5, ACCT_PING_TIMEOUT_S);
}

void acct_keepalive(Account *a, gint64 now)
{
	xmpp_stanza_t *iq;
	g_autofree char *id = NULL;
	gint64 due = acct_keepalive_due(a);

	if (now < due)
		return;
	if (a->ping_due && sock_waiting(a)) {
		/* an answer is here, unread (a busy pool): not dead */
		a->ping_due = now + G_USEC_PER_SEC / 2;
		return;
	}
	if (a->ping_due) {
		a->ping_dead = true;
		a->ping_due = 0;
		acct_abort(a);
		return;
	}
	id = acct_next_id(a);
	iq = acct_ping_new(a, id);
	sm_send(a, iq);
	xmpp_stanza_release(iq);
	a->ping_due = now + acct_ping_timeout(a) * G_USEC_PER_SEC;
}
