/* resolve.c - where an account connects: its configured host, or the SRV
 * records of its domain (RFC 6120 §3.2), looked up on a short-lived
 * thread of its own, since the lookups block; the answer comes back to
 * the pool thread as a request (pool_post_resolved), for acct_resolved.
 * conn.c asks (acct_connect) and then tries the addresses in turn; this
 * file calls only the pool. */
#include "xmpp/account_int.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <netdb.h>
#include <sys/socket.h>

#include "xmpp/pool.h"

static guint16 default_port(const CfgAccount *cfg)
{
	if (cfg->port)
		return cfg->port;
	return cfg->tls == CFG_TLS_DIRECT ? 5223 : 5222;
}

typedef struct {
	Account *a;
	Pool *pool;
	guint gen;
	char *host; /* NULL: SRV lookup of domain */
	char *domain;
	guint16 port;
	bool direct;
} ResolveJob;

static void add_addresses(GPtrArray *out, const char *host, guint16 port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char buf[NI_MAXHOST];

	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return;
	for (ai = res; ai; ai = ai->ai_next)
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof buf,
				NULL, 0, NI_NUMERICHOST) == 0)
			g_ptr_array_add(out,
					g_strdup_printf("%s %u", buf, port));
	freeaddrinfo(res);
}

/* RFC 6120 §3.2: the SRV records of the domain, else the domain itself.
 * Blocking lookups, so this runs on its own short-lived thread. */
static gpointer resolve_thread(gpointer data)
{
	ResolveJob *job = data;
	GPtrArray *addrs = g_ptr_array_new_with_free_func(g_free);

	if (job->host) {
		add_addresses(addrs, job->host, job->port);
	} else {
		g_autoptr(GResolver) r = g_resolver_get_default();
		GList *srv = g_resolver_lookup_service(
			r, job->direct ? "xmpps-client" : "xmpp-client", "tcp",
			job->domain, NULL, NULL);
		for (GList *l = srv; l; l = l->next)
			add_addresses(addrs, g_srv_target_get_hostname(l->data),
				      g_srv_target_get_port(l->data));
		g_resolver_free_targets(srv);
		if (addrs->len == 0)
			add_addresses(addrs, job->domain, job->port);
	}
	g_autofree char *err =
		addrs->len ? NULL
			   : g_strdup_printf("cannot resolve %s",
					     job->host ? job->host : job->domain);
	pool_post_resolved(job->pool, job->a, job->gen, addrs, err);
	g_free(job->host);
	g_free(job->domain);
	g_free(job);
	return NULL;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

void acct_resolve(Account *a)
{
	const CfgAccount *cfg = a->cfg;
	ResolveJob *job;

	POOL_ASSERT();
	job = g_new0(ResolveJob, 1);
	job->a = a;
	job->pool = a->pool;
	job->gen = a->gen;
	job->host = g_strdup(cfg->host);
	g_autofree char *domain = g_strdup(strchr(cfg->jid, '@')
						   ? strchr(cfg->jid, '@') + 1
						   : cfg->jid);
	job->domain = g_steal_pointer(&domain);
	job->port = default_port(cfg);
	job->direct = cfg->tls == CFG_TLS_DIRECT;
	a->resolving = true;
	g_thread_unref(g_thread_new("xmppfs-resolve", resolve_thread, job));
}

GPtrArray *acct_literal_address(const CfgAccount *cfg)
{
	GPtrArray *addrs;

	if (!cfg->host || !is_ip_literal(cfg->host))
		return NULL;
	addrs = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(addrs, g_strdup_printf("%s %u", cfg->host,
					       default_port(cfg)));
	return addrs;
}
