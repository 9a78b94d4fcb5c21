/* test_connlife.c - an account's connection life without an XMPP server,
 * under the sanitizers: connect, fail, try the next address, fail again,
 * retry after the backoff, stop, free.
 *
 * The account's server name resolves (getaddrinfo, defined here for the
 * resolver thread) to two addresses: 127.0.0.1, where a listener of this
 * test accepts and closes at once, and 127.0.0.2, where nothing listens.
 * A double free in the disconnect path (the account's error freed, then
 * set_state freeing it again) hit exactly this: a server with two or more
 * addresses down for two rounds. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/config.h"
#include "store/history.h"
#include "xmpp/account.h"
#include "xmpp/pool.h"
#include "xmpp/watchdog.h"

#define HOST "two-addresses.test"

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
		      struct addrinfo **);

/* HOST is 127.0.0.1 and 127.0.0.2; any other name is libc's. */
int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res)
{
	static gai_fn real;
	struct addrinfo *one = NULL, *two = NULL;
	int ret;

	if (!real)
		real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (!node || strcmp(node, HOST))
		return real(node, service, hints, res);
	if ((ret = real("127.0.0.1", service, hints, &one)) != 0)
		return ret;
	if ((ret = real("127.0.0.2", service, hints, &two)) != 0) {
		freeaddrinfo(one);
		return ret;
	}
	for (struct addrinfo *p = one;; p = p->ai_next)
		if (!p->ai_next) {
			p->ai_next = two;
			break;
		}
	*res = one;
	return 0;
}

/* A listener that takes each connection and closes it at once. */
typedef struct {
	int fd;
	guint16 port;
	GThread *thread;
	gint accepted; /* atomic */
	gint stop;     /* atomic */
} Closer;

static gpointer closer_run(gpointer data)
{
	Closer *c = data;

	while (!g_atomic_int_get(&c->stop)) {
		int s = accept(c->fd, NULL, NULL);
		if (s < 0)
			continue;
		g_atomic_int_inc(&c->accepted);
		close(s);
	}
	return NULL;
}

static void closer_start(Closer *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	struct timeval tv = {0, 100000};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	g_assert_cmpint(c->fd, >=, 0);
	g_assert_cmpint(bind(c->fd, (struct sockaddr *)&sa, sizeof sa), ==, 0);
	g_assert_cmpint(listen(c->fd, 16), ==, 0);
	g_assert_cmpint(getsockname(c->fd, (struct sockaddr *)&sa, &len), ==, 0);
	/* accept wakes now and then to see whether to stop */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	c->port = ntohs(sa.sin_port);
	c->thread = g_thread_new("closer", closer_run, c);
}

static void closer_stop(Closer *c)
{
	g_atomic_int_set(&c->stop, 1);
	g_thread_join(c->thread);
	close(c->fd);
}

static guint count_lines(const char *text, const char *needle)
{
	guint n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* The account's `events` so far. */
static char *events_text(Account *a)
{
	Hist *h = acct_events(a);
	goffset size = hist_size(h);
	char *buf = g_malloc0(size + 1);

	g_assert_cmpint(hist_pread(h, buf, size, 0), ==, size);
	return buf;
}

static void test_two_addresses_down_for_two_rounds(void)
{
	g_autofree char *dir = g_dir_make_tmp("connlife-XXXXXX", NULL);
	g_autofree char *cfgpath = g_build_filename(dir, "config", NULL);
	g_autofree char *data = g_build_filename(dir, "data", NULL);
	g_autofree char *text = NULL, *events = NULL, *conn = NULL, *rm = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = NULL;
	Closer closer = {0};
	Pool *pool;
	Account *a;
	gint64 deadline;

	closer_start(&closer);
	text = g_strdup_printf("[alice@%s]\npassword = x\nhost = %s\n"
			       "port = %u\n",
			       HOST, HOST, closer.port);
	g_assert_true(g_file_set_contents_full(cfgpath, text, -1,
					       G_FILE_SET_CONTENTS_NONE, 0600,
					       NULL));
	cfg = cfg_load(cfgpath, &err);
	g_assert_no_error(err);
	pool = pool_new(cfg, data, &err);
	g_assert_no_error(err);
	a = pool_account(pool, 0);
	wd_start();
	g_assert_cmpint(pool_start(pool), ==, 0);
	/* round 1: both addresses; the backoff (1 s +-25 %); round 2 */
	deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
	for (;;) {
		g_free(events);
		events = events_text(a);
		if (count_lines(events, "could not connect") >= 2 &&
		    g_atomic_int_get(&closer.accepted) >= 2)
			break;
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(20000);
	}
	conn = acct_connection_text(a);
	g_test_message("after two rounds:\n%s", conn);
	g_assert_nonnull(strstr(conn, "error: "));
	g_assert_cmpuint(count_lines(events, "login failed"), >=, 2);
	pool_stop(pool);
	pool_free(pool);
	closer_stop(&closer);
	rm = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(rm), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/connlife/two-addresses-down-for-two-rounds",
			test_two_addresses_down_for_two_rounds);
	return g_test_run();
}
