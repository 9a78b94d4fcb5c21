/* account.h - one XMPP account: its connection, login, own presence,
 * events and shared state (the core's files, in the order core.c lists).
 * What its features offer the files is in their own headers (chat.h,
 * contacts.h, block.h, muc.h, iqfile.h).
 *
 * Functions marked [pool] run only on the pool thread (they call
 * libstrophe); [any] functions read a snapshot under the account's lock
 * and may be called from FUSE threads. */
#pragma once

#include <glib.h>
#include <poll.h>
#include <stdbool.h>

#include "base/config.h"
#include "store/history.h"
#include "store/outbox.h"
#include "store/roster.h"

typedef struct Account Account;
typedef struct Pool Pool;
typedef struct PoolReq PoolReq;

typedef enum {
	ACCT_OFFLINE,
	ACCT_CONNECTING,
	ACCT_ONLINE,
	ACCT_FAILED, /* login or certificate refused: no retry until asked */
} AcctState;

/* The own presence a user can set through `status`. */
typedef enum {
	ACCT_SHOW_AVAILABLE,
	ACCT_SHOW_CHAT,
	ACCT_SHOW_AWAY,
	ACCT_SHOW_XA,
	ACCT_SHOW_DND,
	ACCT_SHOW_OFFLINE,   /* close the stream and stay offline */
	ACCT_SHOW_RECONNECT, /* any other word: reconnect now */
} AcctShow;

#define ACCT_LOGIN_TIMEOUT_S 15
#define ACCT_TLS_TIMEOUT_S 10
#define ACCT_PING_TIMEOUT_S 20
#define ACCT_STATUS_TEXT_MAX 1024

/* The account, its logs under DATA_DIR/JID/contacts and its outbox
 * DATA_DIR/JID/outbox (what an earlier mount left there is sent first). */
Account *acct_new(const CfgAccount *cfg, Pool *pool, const char *data_dir,
		  GError **err);
/* [any] The settings in use (they change only when a connection starts,
 * after a reload: pool_reload); what it returns stays valid until the
 * pool is freed, but is not updated. */
const CfgAccount *acct_cfg(const Account *a);
/* [any] The conversations' logs. */
HistSet *acct_hists(Account *a);
/* [any] The roster, presence and pending requests. */
Roster *acct_roster(Account *a);
/* [any] The events log (`events` reads it like a stream). */
Hist *acct_events(Account *a);
/* [any] The log of received stanzas read by `raw`; it is written only
 * while someone reads: acct_raw_readers(+1/-1) counts them. */
Hist *acct_raw(Account *a);
void acct_raw_readers(Account *a, int delta);
/* [pool] Send stanzas a user wrote to `raw` (checked by xmlcheck);
 * 0 or -ENOTCONN. */
int acct_send_raw(Account *a, GPtrArray *stanzas);
/* [any] Append "TIME<TAB>KIND<TAB>JID<TAB>TEXT" lines to `events` (one
 * per line of @text). */
void acct_event(Account *a, const char *kind, const char *jid,
		const char *text);
/* [any] The same with "@who<TAB>" before each line of @text (@who holds
 * no TAB): a room's events name the nick so. */
void acct_event_by(Account *a, const char *kind, const char *jid,
		   const char *who, const char *text);
/* [any] What chat_send and its kin (muc_send, muc_send_private) share: the @n bodies to @to of @type
 * go into the outbox with one write, their records (from @sender, now)
 * into @h (NULL: none) with another, then to the pool: all or none.  A
 * full disk fails it with -ENOSPC and nothing is sent.  *seq: the last
 * one's place in the outbox; @k: their kind and how they go out (NULL:
 * plain messages in the clear).  acct_accept_kind: one message of a kind
 * (a correction, a reaction, ...). */
int acct_accept_kind(Account *a, const char *to, const char *type,
		     const OutboxKind *k, const char *body, Hist *h,
		     const char *sender, guint64 *seq);
int acct_accept(Account *a, const char *to, const char *type,
		const OutboxKind *k, const char *const *bodies, guint n,
		Hist *h, const char *sender, guint64 *seq);
/* [any] The errno a GFileError stands for (EIO when none). */
int acct_errno_of(const GError *err);
/* [any] The outbox (for fsync: see outbox_watch). */
Outbox *acct_outbox(Account *a);
/* [pool] Send @item (taken) when online, and keep it until acknowledged. */
void acct_queue_message(Account *a, OutboxItem *item);

/* [any] Parse what was written to `status` (one line, no newline).
 * 0, -EINVAL (empty or too long) or -EILSEQ (not clean UTF-8). */
int acct_parse_status(const char *line, AcctShow *show, char **text);

/* [any] The text of the `connection` and `status` files. */
char *acct_connection_text(Account *a);
char *acct_status_text(Account *a);
/* [any] The server refused the login or its certificate failed, so a
 * message would only wait for a fix nobody knows is needed: refused
 * (ENOTCONN), unless the account has queue_when_failed. */
bool acct_refuses_messages(Account *a);
/* [any] The state now, with the last error (new, or NULL) in *error and
 * in *retrying whether an attempt failed and the next one waits: what
 * main.c tells the user about each account's first login. */
AcctState acct_first_verdict(Account *a, char **error, bool *retrying);
/* [any] Seconds since the epoch of the last state change. */
gint64 acct_since(Account *a);

/* [pool] Create the account's libstrophe context (first thing the pool
 * thread does). */
void acct_attach(Account *a);
/* [pool] Start connecting (after mount, after `status`, on retry). */
void acct_connect(Account *a);
/* [pool] Use @cfg (a reload's, kept by the pool) from the next
 * connection on, and start that connection now: the account reconnects
 * unless it is offline by request or closing for unmount. */
void acct_reconfigure(Account *a, const CfgAccount *cfg);
/* [pool] Apply a `status` write. */
void acct_set_show(Account *a, AcctShow show, const char *text);
/* [pool] The resolver thread's answer for attempt @gen. @addrs holds
 * "ADDRESS PORT" strings; NULL with @error when nothing was found. */
void acct_resolved(Account *a, guint gen, GPtrArray *addrs,
		   const char *error);
/* [pool] Let libstrophe work on this account's connection until it makes
 * no more progress, then tidy up after a disconnect. */
void acct_run(Account *a);
/* [pool] Fill @pfd with the socket and events to wait for; false if the
 * account has no socket. */
bool acct_pollfd(Account *a, struct pollfd *pfd);
/* [pool] The next moment (monotonic µs) the account needs acct_tick, or
 * G_MAXINT64.  *ticking is set when libstrophe has timers running (login,
 * close) and wants acct_run about once a second. */
gint64 acct_deadline(Account *a, bool *ticking);
void acct_tick(Account *a, gint64 now);
/* [pool] A number that changes with each new connection (its socket may
 * have the number of the one before). */
guint64 acct_conn_serial(Account *a);
/* [pool] After acct_run: true when it must run again at once, whatever
 * its socket and timers say. */
bool acct_wants_run(Account *a);
/* [pool] libstrophe just read from the server, and more may be waiting
 * where poll(2) cannot see it (inside OpenSSL): run it again. */
void acct_note_read(Account *a, bool more);
/* [pool] Shut the socket down without calling libstrophe: ends a login
 * that waits inside the library. */
void acct_abort(Account *a);
/* [pool] Begin a clean close for unmount; acct_closed() says when done. */
void acct_shutdown(Account *a);
bool acct_closed(Account *a);
void acct_free(Account *a);
/* The stanza chain its features register their handlers in. */
typedef struct Dispatch Dispatch;
Dispatch *acct_dispatch(Account *a);
