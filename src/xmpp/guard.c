/* guard.c - look at what libstrophe reads before it parses it.
 *
 * libstrophe 0.12 hands every byte from the server to expat, which
 * accepts a DTD and expands nested entities (a 747-byte "billion laughs"
 * burnt 14 s of CPU in one call, on the pool thread, freezing every
 * account).  RFC 6120 forbids DTDs in XMPP.  xmppfs defines recv() and
 * SSL_read() itself: libstrophe's calls reach these first (as select()
 * in pool.c), and when the caller is an account's coroutine on the pool
 * thread, the bytes read are checked with guard_input before libstrophe
 * sees them, and the account learns whether more may wait inside OpenSSL
 * (acct_note_read).  A DTD ends the connection: the read reports the end
 * of the stream and the account's error says why.  Every other caller
 * gets the library's function unchanged. */
#include <dlfcn.h>
#include <string.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "xmpp/account_int.h"
#include "xmpp/pool.h"

typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef int (*ssl_read_fn)(SSL *, void *, int);

/* [pool] Check bytes libstrophe is about to parse: false when they hold
 * a DTD (<!DOCTYPE, <!ENTITY), which RFC 6120 forbids and which expat
 * would expand for many seconds of CPU; the link is then dropped. */
static bool guard_input(Account *a, const char *buf, size_t len);

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static recv_fn real;
	Account *a;
	ssize_t n;

	if (!real)
		real = (recv_fn)dlsym(RTLD_NEXT, "recv");
	n = real(fd, buf, len, flags);
	if (n > 0 && !(flags & MSG_PEEK) && (a = pool_current_account())) {
		if (!guard_input(a, buf, n))
			return 0;
		acct_note_read(a, (size_t)n == len);
	}
	return n;
}

int SSL_read(SSL *ssl, void *buf, int num)
{
	static ssl_read_fn real;
	Account *a;
	int n;

	if (!real)
		real = (ssl_read_fn)dlsym(RTLD_NEXT, "SSL_read");
	n = real(ssl, buf, num);
	if (n > 0 && (a = pool_current_account())) {
		if (!guard_input(a, buf, n))
			return 0;
		/* what OpenSSL holds back is invisible to poll(2) */
		acct_note_read(a, n == num || SSL_has_pending(ssl));
	}
	return n;
}

static bool has_dtd(const char *buf, size_t len)
{
	static const char *const bad[] = {"<!DOCTYPE", "<!ENTITY", "<!ELEMENT",
					  "<!ATTLIST"};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
		if (memmem(buf, len, bad[i], strlen(bad[i])))
			return true;
	return false;
}

static bool guard_input(Account *a, const char *buf, size_t len)
{
	char joined[sizeof a->guard_tail + 16];
	size_t head = MIN(len, sizeof joined - a->guard_tail_len);

	if (a->doctype)
		return false;
	/* a marker split between two reads: the kept tail plus the start */
	memcpy(joined, a->guard_tail, a->guard_tail_len);
	memcpy(joined + a->guard_tail_len, buf, head);
	if (has_dtd(joined, a->guard_tail_len + head) || has_dtd(buf, len)) {
		a->doctype = true;
		acct_abort(a);
		return false;
	}
	if (len >= sizeof a->guard_tail) {
		memcpy(a->guard_tail, buf + len - sizeof a->guard_tail,
		       sizeof a->guard_tail);
		a->guard_tail_len = sizeof a->guard_tail;
	} else {
		size_t keep = MIN(a->guard_tail_len,
				  sizeof a->guard_tail - len);
		memmove(a->guard_tail, a->guard_tail + a->guard_tail_len - keep,
			keep);
		memcpy(a->guard_tail + keep, buf, len);
		a->guard_tail_len = keep + len;
	}
	return true;
}
