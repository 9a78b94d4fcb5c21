/* rawclient - the baseline that scripts/bench measures xmppfs against.
 *
 * A small XMPP client on libstrophe alone, with the same TLS set-up as
 * xmppfs (STARTTLS required, the test bed's certificate as extra trust
 * anchor, an IP address as host so no DNS is involved).  It also carries
 * the other parties of the benchmark (the counting receiver and the echo
 * peer) and the two file-side drivers that run the same timing code
 * against a mounted xmppfs, so both sides are measured by one program.
 *
 *   rawclient [-j JID] [-H HOST] [-p PORT] [-c CAFILE] [-n] MODE ARGS...
 *
 * The socket gets TCP_NODELAY unless -n is given (see sockopt()).
 *
 * The password comes from the environment (RAWCLIENT_PASSWORD), never
 * from the command line.  Times are CLOCK_MONOTONIC seconds, the clock of
 * Python's time.monotonic(), so the orchestrator can compare stamps taken
 * in different processes.
 *
 * XMPP modes (each logs in first; "online" means the initial presence and
 * a ping were answered, so the server has processed everything before):
 *   login                  print "online T" and log out
 *   send TO N MARKER       print "start T", send N chat messages
 *                          "MARKER 1".."MARKER N" as fast as the server
 *                          takes them, then a ping; print "done T" once
 *                          the ping is answered (the server has routed all)
 *   recv-count N MARKER SECS
 *                          print "ready"; count distinct messages
 *                          "MARKER i" (1 <= i <= N) until all N arrived or
 *                          SECS passed; print "received K of N first T
 *                          last T dups D cpu S"
 *   echo-peer              print "ready"; send every chat message body
 *                          back to its sender until SIGTERM/SIGINT
 *   rtt TO N MARKER        print "ready"; N round trips one at a time
 *                          against an echo peer; print "rtts_us V..."
 *   idle                   print "ready"; run libstrophe's own loop
 *                          (xmpp_run_once with 1 s, like xmpp_run) until
 *                          SIGTERM/SIGINT
 * File modes (no XMPP: they drive a mounted xmppfs):
 *   fs-send PATH N MARKER  open PATH, print "start T", write N lines
 *                          "MARKER i\n" with one write(2) each, close,
 *                          print "done T"
 *   fs-rtt SEND STREAM PEER N MARKER
 *                          open STREAM, then SEND; N times: write
 *                          "MARKER i\n" to SEND and read STREAM until the
 *                          record PEER<TAB>MARKER i arrives; print
 *                          "rtts_us V..."
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("rawclient: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static long parse_long(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static void print_rtts(long *us, long n)
{
	printf("rtts_us");
	for (long i = 0; i < n; i++)
		printf(" %ld", us[i]);
	printf("\n");
	fflush(stdout);
	qsort(us, (size_t)n, sizeof *us, cmp_long);
	if (n)
		fprintf(stderr, "rawclient: %ld round trips, median %ld us\n",
			n, us[n / 2]);
}

/* ---- XMPP side ---- */

enum { ST_CONNECTING, ST_SYNCING, ST_READY, ST_DONE, ST_FAILED };

typedef struct {
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	int state;
	int ping_seq;
	bool ping_answered;
	/* recv-count */
	const char *marker;
	size_t marker_len;
	long n;
	unsigned char *seen;
	long distinct, dups;
	double first, last;
	/* rtt */
	const char *want_body;
	bool got_echo;
	/* echo-peer */
	long echoed;
} Client;

static void strophe_log(void *ud, xmpp_log_level_t level, const char *area,
			const char *msg)
{
	(void)ud;
	if (level >= XMPP_LEVEL_WARN)
		fprintf(stderr, "rawclient: libstrophe %s: %s\n", area, msg);
	else if (getenv("RAWCLIENT_DEBUG"))
		fprintf(stderr, "rawclient: %s %s\n", area, msg);
}

static int ping_answer(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	Client *c = ud;

	(void)conn;
	(void)st;
	c->ping_answered = true;
	if (c->state == ST_SYNCING)
		c->state = ST_READY;
	return 0;
}

/* A ping to the server: its answer means every stanza sent before it on
 * this stream has been processed. */
static void send_ping(Client *c)
{
	char id[32];
	xmpp_stanza_t *iq, *ping;

	snprintf(id, sizeof id, "sync%d", ++c->ping_seq);
	iq = xmpp_iq_new(c->ctx, "get", id);
	ping = xmpp_stanza_new(c->ctx);
	xmpp_stanza_set_name(ping, "ping");
	xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
	xmpp_stanza_add_child(iq, ping);
	xmpp_stanza_release(ping);
	c->ping_answered = false;
	xmpp_id_handler_add(c->conn, ping_answer, id, c);
	xmpp_send(c->conn, iq);
	xmpp_stanza_release(iq);
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event,
			 int error, xmpp_stream_error_t *se, void *ud)
{
	Client *c = ud;

	(void)se;
	if (event == XMPP_CONN_CONNECT) {
		xmpp_stanza_t *pres = xmpp_presence_new(c->ctx);
		xmpp_send(conn, pres);
		xmpp_stanza_release(pres);
		c->state = ST_SYNCING;
		send_ping(c);
	} else {
		if (c->state != ST_DONE)
			fprintf(stderr, "rawclient: disconnected (event %d, "
				"error %d)\n", (int)event, error);
		c->state = c->state == ST_DONE ? ST_DONE : ST_FAILED;
	}
}

static bool keep_nagle; /* -n */

/* TCP_NODELAY, as an interactive client should have: with Nagle on, a
 * small stanza written while an earlier one is unacknowledged waits for
 * the peer's delayed ACK (40 ms on Linux).  -n keeps Nagle, to measure
 * what a client without this option sees. */
static int sockopt(xmpp_conn_t *conn, void *sock)
{
	int one = 1;

	(void)conn;
	if (!keep_nagle &&
	    setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one,
		       sizeof one) < 0)
		fprintf(stderr, "rawclient: TCP_NODELAY: %s\n", strerror(errno));
	return 0;
}

static int certfail(const xmpp_tlscert_t *cert, const char *errormsg)
{
	(void)cert;
	fprintf(stderr, "rawclient: certificate refused: %s\n", errormsg);
	return 0;
}

/* One turn of the loop: write what is queued, wait up to @ms for input. */
static void turn(Client *c, unsigned long ms)
{
	xmpp_run_once(c->ctx, ms);
}

static void client_open(Client *c, const char *jid, const char *host,
			long port, const char *cafile)
{
	static xmpp_log_t log = {strophe_log, NULL};
	const char *pw = getenv("RAWCLIENT_PASSWORD");
	double deadline;

	if (!jid || !host)
		die("-j JID and -H HOST are required for this mode");
	if (!pw)
		die("RAWCLIENT_PASSWORD is not set");
	xmpp_initialize();
	c->ctx = xmpp_ctx_new(NULL, &log);
	c->conn = xmpp_conn_new(c->ctx);
	xmpp_conn_set_flags(c->conn, XMPP_CONN_FLAG_MANDATORY_TLS);
	xmpp_conn_set_jid(c->conn, jid);
	xmpp_conn_set_pass(c->conn, pw);
	if (cafile)
		xmpp_conn_set_cafile(c->conn, cafile);
	xmpp_conn_set_certfail_handler(c->conn, certfail);
	xmpp_conn_set_sockopt_callback(c->conn, sockopt);
	c->state = ST_CONNECTING;
	if (xmpp_connect_client(c->conn, host, (unsigned short)port,
				conn_handler, c) != XMPP_EOK)
		die("could not start connecting to %s:%ld", host, port);
	deadline = now() + 20;
	while (c->state != ST_READY) {
		if (c->state == ST_FAILED)
			die("login failed");
		if (now() > deadline)
			die("login timed out");
		turn(c, 10);
	}
}

static void client_close(Client *c)
{
	double deadline = now() + 3;

	c->state = ST_DONE;
	xmpp_disconnect(c->conn);
	while (xmpp_conn_is_connected(c->conn) && now() < deadline)
		turn(c, 10);
	xmpp_conn_release(c->conn);
	xmpp_ctx_free(c->ctx);
	xmpp_shutdown();
}

static void client_check(Client *c)
{
	if (c->state == ST_FAILED)
		die("connection lost");
}

/* Is @body "MARKER i" with 1 <= i <= n?  Returns i, or 0. */
static long marked_index(Client *c, const char *body)
{
	char *end;
	long i;

	if (!body || strncmp(body, c->marker, c->marker_len) ||
	    body[c->marker_len] != ' ')
		return 0;
	i = strtol(body + c->marker_len + 1, &end, 10);
	if (*end || i < 1 || i > c->n)
		return 0;
	return i;
}

static int on_count(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	Client *c = ud;
	char *body = xmpp_message_get_body(st);
	long i = marked_index(c, body);

	(void)conn;
	if (i) {
		double t = now();
		if (c->seen[i - 1]) {
			c->dups++;
		} else {
			c->seen[i - 1] = 1;
			if (!c->distinct)
				c->first = t;
			c->distinct++;
			c->last = t;
		}
	}
	if (body)
		xmpp_free(c->ctx, body);
	return 1;
}

static int on_echo(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	Client *c = ud;
	const char *type = xmpp_stanza_get_type(st);
	const char *from = xmpp_stanza_get_from(st);
	char *body;

	if ((type && !strcmp(type, "error")) || !from)
		return 1;
	body = xmpp_message_get_body(st);
	if (body) {
		xmpp_stanza_t *reply = xmpp_message_new(c->ctx, "chat", from,
							NULL);
		xmpp_message_set_body(reply, body);
		xmpp_send(conn, reply);
		xmpp_stanza_release(reply);
		xmpp_free(c->ctx, body);
		c->echoed++;
	}
	return 1;
}

static int on_rtt(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	Client *c = ud;
	char *body = xmpp_message_get_body(st);

	(void)conn;
	if (body && c->want_body && !strcmp(body, c->want_body))
		c->got_echo = true;
	if (body)
		xmpp_free(c->ctx, body);
	return 1;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void mode_send(Client *c, const char *to, long n, const char *marker)
{
	double t0, deadline;
	char body[256], id[64];

	t0 = now();
	out("start %.6f\n", t0);
	for (long i = 1; i <= n; i++) {
		xmpp_stanza_t *msg;

		/* an id as long as xmppfs's "xfs-" + UUID, for equal sizes */
		snprintf(id, sizeof id, "raw-%08lx-0000-4000-8000-000000000000",
			 i);
		snprintf(body, sizeof body, "%s %ld", marker, i);
		msg = xmpp_message_new(c->ctx, "chat", to, id);
		xmpp_message_set_body(msg, body);
		xmpp_send(c->conn, msg);
		xmpp_stanza_release(msg);
		/* let libstrophe write while we queue, as a real client would */
		if (i % 64 == 0)
			turn(c, 0);
	}
	send_ping(c);
	deadline = now() + 600;
	while (!c->ping_answered && now() < deadline) {
		client_check(c);
		turn(c, 10);
	}
	if (!c->ping_answered)
		die("the server never answered the final ping");
	out("done %.6f\n", now());
}

static void mode_recv_count(Client *c, long n, const char *marker, long secs)
{
	double deadline;

	c->marker = marker;
	c->marker_len = strlen(marker);
	c->n = n;
	c->seen = calloc((size_t)n + 1, 1);
	xmpp_handler_add(c->conn, on_count, NULL, "message", NULL, c);
	out("ready\n");
	deadline = now() + (double)secs;
	while (c->distinct < n && now() < deadline && !stop_flag) {
		client_check(c);
		turn(c, 5);
	}
	out("received %ld of %ld first %.6f last %.6f dups %ld cpu %.3f\n",
	    c->distinct, n, c->first, c->last, c->dups, cpu_seconds());
	free(c->seen);
}

static void mode_echo_peer(Client *c)
{
	xmpp_handler_add(c->conn, on_echo, NULL, "message", NULL, c);
	out("ready\n");
	while (!stop_flag) {
		client_check(c);
		turn(c, 100);
	}
	out("echoed %ld\n", c->echoed);
}

static void mode_rtt(Client *c, const char *to, long n, const char *marker)
{
	long *us = calloc((size_t)n + 1, sizeof *us);
	char body[256];

	xmpp_handler_add(c->conn, on_rtt, NULL, "message", NULL, c);
	out("ready\n");
	for (long i = 0; i < n; i++) {
		xmpp_stanza_t *msg;
		double t0, deadline;

		snprintf(body, sizeof body, "%s %ld", marker, i + 1);
		c->want_body = body;
		c->got_echo = false;
		t0 = now();
		msg = xmpp_message_new(c->ctx, "chat", to, NULL);
		xmpp_message_set_body(msg, body);
		xmpp_send(c->conn, msg);
		xmpp_stanza_release(msg);
		deadline = t0 + 10;
		while (!c->got_echo) {
			client_check(c);
			if (now() > deadline)
				die("no echo of '%s' in 10 s", body);
			turn(c, 50);
		}
		us[i] = (long)((now() - t0) * 1e6 + 0.5);
	}
	print_rtts(us, n);
	free(us);
}

static void mode_idle(Client *c)
{
	out("ready\n");
	while (!stop_flag) {
		client_check(c);
		turn(c, 1000);
	}
}

/* ---- file side ---- */

static void write_all(int fd, const char *buf, size_t len, const char *path)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write %s: %s", path, strerror(errno));
		buf += w;
		len -= (size_t)w;
	}
}

static void mode_fs_send(const char *path, long n, const char *marker)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	char line[256];
	double t0;

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	t0 = now();
	out("start %.6f\n", t0);
	for (long i = 1; i <= n; i++) {
		int len = snprintf(line, sizeof line, "%s %ld\n", marker, i);
		write_all(fd, line, (size_t)len, path);
	}
	if (close(fd) < 0)
		die("close %s: %s", path, strerror(errno));
	out("done %.6f\n", now());
}

static void mode_fs_rtt(const char *send_path, const char *stream_path,
			const char *peer, long n, const char *marker)
{
	int sfd = open(stream_path, O_RDONLY | O_CLOEXEC);
	int wfd;
	long *us = calloc((size_t)n + 1, sizeof *us);
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);
	char want[512], line[256];

	if (sfd < 0)
		die("open %s: %s", stream_path, strerror(errno));
	wfd = open(send_path, O_WRONLY | O_CLOEXEC);
	if (wfd < 0)
		die("open %s: %s", send_path, strerror(errno));
	out("ready\n");
	for (long i = 0; i < n; i++) {
		int len = snprintf(line, sizeof line, "%s %ld\n", marker, i + 1);
		size_t wlen;
		bool found = false;
		double t0;

		/* the record is TIME TAB PEER TAB BODY: match from the TAB */
		wlen = (size_t)snprintf(want, sizeof want, "\t%s\t%s %ld\n",
					peer, marker, i + 1);
		t0 = now();
		write_all(wfd, line, (size_t)len, send_path);
		while (!found) {
			ssize_t r;
			char *p, *nl;

			if (have == cap)
				die("a record longer than %zu bytes", cap);
			r = read(sfd, buf + have, cap - have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				die("read %s: %s", stream_path,
				    r ? strerror(errno) : "end of file");
			have += (size_t)r;
			/* look at complete lines only */
			p = buf;
			while ((nl = memchr(p, '\n', have - (size_t)(p - buf)))) {
				size_t l = (size_t)(nl - p) + 1;
				if (l >= wlen && !memcmp(nl + 1 - wlen, want, wlen)) {
					char *tab = memchr(p, '\t', l);
					if (tab == nl + 1 - wlen)
						found = true;
				}
				p = nl + 1;
			}
			memmove(buf, p, have - (size_t)(p - buf));
			have -= (size_t)(p - buf);
		}
		us[i] = (long)((now() - t0) * 1e6 + 0.5);
	}
	close(wfd);
	close(sfd);
	print_rtts(us, n);
	free(us);
	free(buf);
}

static void usage(void)
{
	fputs("usage: rawclient [-j JID] [-H HOST] [-p PORT] [-c CAFILE] [-n] MODE "
	      "ARGS...\n"
	      "modes: login | send TO N MARKER | recv-count N MARKER SECS |\n"
	      "       echo-peer | rtt TO N MARKER | idle |\n"
	      "       fs-send PATH N MARKER | fs-rtt SEND STREAM PEER N MARKER\n"
	      "The password is taken from RAWCLIENT_PASSWORD.\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *jid = NULL, *host = NULL, *cafile = NULL, *mode;
	long port = 5222;
	Client c = {0};
	int opt;

	while ((opt = getopt(argc, argv, "+j:H:p:c:nh")) != -1) {
		switch (opt) {
		case 'j': jid = optarg; break;
		case 'H': host = optarg; break;
		case 'p': port = parse_long(optarg, "port"); break;
		case 'c': cafile = optarg; break;
		case 'n': keep_nagle = true; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	mode = argv[0];
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(mode, "fs-send") && argc == 4) {
		mode_fs_send(argv[1], parse_long(argv[2], "N"), argv[3]);
		return 0;
	}
	if (!strcmp(mode, "fs-rtt") && argc == 6) {
		mode_fs_rtt(argv[1], argv[2], argv[3],
			    parse_long(argv[4], "N"), argv[5]);
		return 0;
	}

	if (!strcmp(mode, "login") && argc == 1) {
		client_open(&c, jid, host, port, cafile);
		out("online %.6f\n", now());
	} else if (!strcmp(mode, "send") && argc == 4) {
		long n = parse_long(argv[2], "N");
		client_open(&c, jid, host, port, cafile);
		mode_send(&c, argv[1], n, argv[3]);
	} else if (!strcmp(mode, "recv-count") && argc == 4) {
		long n = parse_long(argv[1], "N");
		long secs = parse_long(argv[3], "SECS");
		client_open(&c, jid, host, port, cafile);
		mode_recv_count(&c, n, argv[2], secs);
	} else if (!strcmp(mode, "echo-peer") && argc == 1) {
		client_open(&c, jid, host, port, cafile);
		mode_echo_peer(&c);
	} else if (!strcmp(mode, "rtt") && argc == 4) {
		long n = parse_long(argv[2], "N");
		client_open(&c, jid, host, port, cafile);
		mode_rtt(&c, argv[1], n, argv[3]);
	} else if (!strcmp(mode, "idle") && argc == 1) {
		client_open(&c, jid, host, port, cafile);
		mode_idle(&c);
	} else {
		usage();
	}
	client_close(&c);
	return 0;
}
