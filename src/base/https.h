/* https.h - HTTP/1.1 over TLS, enough for HTTP File Upload (XEP-0363):
 * PUT a file to an upload slot, GET a file from a URL.
 *
 * Blocking.  Each call resolves the host, connects, sends one request,
 * reads one response and closes (Connection: close), waiting in poll(2)
 * with deadlines.  Run it on a worker thread: on the pool thread it
 * would stall every account for as long as a transfer takes.  Calls
 * share nothing, so any number of threads may run them at once.  Pure
 * (OpenSSL and GLib; no FUSE, no XMPP).
 *
 * Only https:// URLs are fetched: XEP-0363 requires TLS of the upload
 * service, and a file sent in clear would be readable on the way.
 *
 * What goes wrong comes back as -errno, and @err (HTTP_ERROR, code the
 * same errno) says what in words, with the HTTP status and reason when
 * there is one:
 *   EINVAL           a malformed URL, or a header or content type with a
 *                    control character (CR/LF: header injection), or one
 *                    of the framing headers we write ourselves (Host,
 *                    Content-Length, Transfer-Encoding, Connection, ...)
 *   EPROTONOSUPPORT  a URL (or a redirect) that is not https://
 *   EHOSTUNREACH     the host name does not resolve
 *   ECONNREFUSED,    connect(2)'s own errno, from the last address tried
 *    ENETUNREACH...
 *   ETIMEDOUT        no progress for timeout_s (connect, TLS handshake,
 *                    response head, any read or write of the body)
 *   EPERM            the server's certificate was not accepted (chain or
 *                    host name); the reason is in @err
 *   EPROTO           TLS failed otherwise, or the response is not HTTP
 *                    we can read (bad framing, an unknown Transfer-
 *                    Encoding, a head over 16 KiB)
 *   ECONNRESET       the connection ended before the response did
 *   ELOOP            more than HTTPS_MAX_REDIRECTS redirects (GET)
 *   EFBIG            HTTP 413, or a download over max_bytes
 *   EIO              the file at fd ended before @size bytes (PUT)
 *   ECANCELED        the progress callback asked to stop (or its errno)
 *   errno of read(2) of the file, write(2) of the download
 *   and an HTTP status that is no success, as http_status_errno maps it
 *   (http.h): 401/403 EACCES, 404/410 ENOENT, 409 EEXIST, 413 EFBIG,
 *   5xx EIO, 507 ENOSPC, ...
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "base/http.h"

/* GET follows this many redirects (301, 302, 303, 307, 308), each to an
 * https:// URL; PUT follows none, since a file may be read only once. */
#define HTTPS_MAX_REDIRECTS 3

/* Without a timeout_s of its own: 30 s, as an iq waits. */
#define HTTPS_TIMEOUT_S 30

/* Called after each piece of the body goes out or comes in: @done bytes
 * of @total (for a GET, 0 when the size is not known in advance).  Not
 * called while a wait for the network lasts.  Return 0 to go on; any
 * other value stops the transfer, which then returns it if it is a
 * negative errno and -ECANCELED otherwise. */
typedef int (*HttpsProgress)(guint64 done, guint64 total, void *data);

/* Zero (or a NULL pointer) is the safe default for each field. */
typedef struct {
	/* PEM file of the CAs to trust; NULL: the system's store */
	const char *ca_file;
	/* true: no check of the certificate's chain or name (tests only) */
	bool insecure;
	/* the longest wait for any one step, in s; 0: HTTPS_TIMEOUT_S */
	guint timeout_s;
	/* connect here (a name or address) instead of to the URL's host,
	 * as the account's `host` key does: the URL's host is still the
	 * name in SNI, in the certificate check and in Host.  Applies to
	 * redirects to that same host only. */
	const char *connect_host;
} HttpsOpts;

/* PUT @size bytes read from @fd (from its current offset; streamed, not
 * held in memory) to @url, with @content_type (NULL:
 * application/octet-stream) and @headers ("Name: value" strings,
 * NULL-terminated, may be NULL): those of the upload slot, which the
 * caller has already limited to the ones XEP-0363 allows.  0 once the
 * server answers 2xx (201 Created, for XEP-0363); otherwise -errno (see
 * above).  A server that answers before the whole body is sent (413, 401)
 * is heard: the upload stops and its status is returned. */
int https_put(const HttpsOpts *o, const char *url, int fd, guint64 size,
	      const char *content_type, const char *const *headers,
	      HttpsProgress cb, void *data, GError **err);

/* GET @url and write the body to @fd_out: 0 on 2xx, else -errno.
 * A body longer than @max_bytes is refused with -EFBIG: at once when the
 * response says its length, or when the bytes received pass it (some of
 * it may have been written to @fd_out by then, as on any failure: the
 * caller truncates or removes what it opened).  Content-Length, chunked,
 * and bodies ended by the close of the connection are read; redirects
 * are followed (HTTPS_MAX_REDIRECTS). */
int https_get(const HttpsOpts *o, const char *url, int fd_out,
	      guint64 max_bytes, HttpsProgress cb, void *data, GError **err);
