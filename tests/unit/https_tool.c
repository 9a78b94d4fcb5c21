/* https_tool - https_put and https_get from the command line, for the
 * integration tests (tests/integration/test_https_upload.py) that take a
 * slot from the testbed's Prosody and move files through it.
 *
 *   https_tool put URL FILE [OPTION...]
 *   https_tool get URL OUT [--max BYTES] [OPTION...]
 *     --ca FILE        trust this CA file (default: the system's store)
 *     --connect HOST   connect here instead of to the URL's host
 *     --header LINE    "Name: value" (put; repeatable)
 *     --type TYPE      Content-Type (put)
 *     --size BYTES     Content-Length to announce (put; default: FILE's)
 *     --timeout S      per-step timeout
 *
 * Exit status 0, or the errno https_* returned, with "https_tool: -N
 * (strerror): message" on stderr; 255 for a usage or local file error.  On success it prints "ok BYTES
 * CALLS" (bytes done, progress calls).  Linked with the core, as xmppfs
 * is, so the core's definitions of recv(), SSL_read() and the CA loaders
 * for libstrophe are in place while it runs. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/https.h"

typedef struct {
	guint64 done;
	guint calls;
} Count;

static int count(guint64 done, guint64 total, void *data)
{
	Count *c = data;

	c->done = done;
	c->calls++;
	return 0;
}

int main(int argc, char *argv[])
{
	g_autofree char *ca = NULL, *connect = NULL, *type = NULL;
	g_auto(GStrv) headers = NULL;
	gint64 size = -1, max = G_MAXINT64;
	gint timeout = 0;
	GOptionEntry entries[] = {
		{"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "CA file", "FILE"},
		{"connect", 0, 0, G_OPTION_ARG_STRING, &connect, "connect to",
		 "HOST"},
		{"header", 0, 0, G_OPTION_ARG_STRING_ARRAY, &headers, "header",
		 "LINE"},
		{"type", 0, 0, G_OPTION_ARG_STRING, &type, "Content-Type",
		 "TYPE"},
		{"size", 0, 0, G_OPTION_ARG_INT64, &size, "Content-Length",
		 "BYTES"},
		{"max", 0, 0, G_OPTION_ARG_INT64, &max, "most bytes to get",
		 "BYTES"},
		{"timeout", 0, 0, G_OPTION_ARG_INT, &timeout, "timeout", "S"},
		{NULL},
	};
	g_autoptr(GOptionContext) ctx =
		g_option_context_new("put|get URL FILE");
	g_autoptr(GError) err = NULL;
	HttpsOpts o = {0};
	Count n = {0};
	struct stat st;
	int fd, rc;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc != 4 ||
	    (strcmp(argv[1], "put") && strcmp(argv[1], "get"))) {
		fprintf(stderr, "usage: https_tool put|get URL FILE [OPTION...]"
			"%s%s\n", err ? ": " : "", err ? err->message : "");
		return 255;
	}
	o.ca_file = ca;
	o.connect_host = connect;
	o.timeout_s = (guint)MAX(timeout, 0);
	if (!strcmp(argv[1], "put")) {
		fd = open(argv[3], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			perror(argv[3]);
			return 255;
		}
		rc = https_put(&o, argv[2], fd, size >= 0 ? (guint64)size :
			       (guint64)st.st_size, type,
			       (const char *const *)headers, count, &n, &err);
	} else {
		fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600);
		if (fd < 0) {
			perror(argv[3]);
			return 255;
		}
		rc = https_get(&o, argv[2], fd, (guint64)MAX(max, 0), count, &n,
			       &err);
	}
	close(fd);
	if (rc) {
		fprintf(stderr, "https_tool: %d (%s): %s\n", rc, g_strerror(-rc),
			err ? err->message : "(no message)");
		return -rc;
	}
	printf("ok %" G_GUINT64_FORMAT " %u\n", n.done, n.calls);
	return 0;
}
