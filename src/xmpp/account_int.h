/* account_int.h - inside the account layer: struct Account and what
 * its files (account.c, muc.c, mam.c, block.c) share.  Nothing else
 * includes it; everything here runs on the pool thread unless it says otherwise
 * (POOL_ASSERT), and only the account layer's files may call libstrophe
 * (the meson test strophe-confined checks it). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <strophe.h>

#include "base/jid.h"
#include "store/fdcache.h"
#include "store/history.h"
#include "store/outbox.h"
#include "store/rooms.h"
#include "store/roster.h"
#include "xmpp/account.h"
#include "xmpp/dispatch.h"
#include "xmpp/feature.h"
#include "xmpp/sm.h"
#include "xmpp/watchdog.h"

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_CONFERENCE "jabber:x:conference"
#define NS_SID "urn:xmpp:sid:0"
#define NS_MAM "urn:xmpp:mam:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"

/* The outbox type of a private message to a room's occupant; its `to`
 * is ROOM/NICK with the nick %-escaped, as the journal's fields are
 * separated by spaces. */
#define OUTBOX_TYPE_PRIVATE "chat-muc"

struct Account {
	/* The settings in use.  Written on the pool thread only, when a
	 * connection starts (acct_connect takes cfg_next), and atomically:
	 * other threads read it with acct_cfg().  Every settings it ever
	 * pointed to lives until pool_free (the mount's CfgFile in main.c,
	 * reloaded ones in Pool.configs), so a reader holding an old pointer
	 * reads valid memory; the JID never changes. */
	const CfgAccount *cfg;
	/* a reload's settings for the next connection, NULL: none; pool
	 * thread only (acct_reconfigure) */
	const CfgAccount *cfg_next;
	/* the newest settings handed to this account (what the next reload
	 * compares with); protected by Pool.reload_lock (core.c) */
	const CfgAccount *cfg_latest;
	Pool *pool;            /* immutable */

	/* shared: protected by lock */
	GMutex lock;
	AcctState state;
	char *bound_jid;
	char *server;   /* "ADDRESS:PORT" of the current or last attempt */
	char *tls_desc; /* "on, certificate sha256 ..." */
	char *error;    /* last error, NULL when none */
	bool error_is_log; /* that error is a log failure's (acct_log_note) */
	gint64 since;   /* unix seconds of the last state change */
	gint64 retry_at_unix;
	AcctShow show;  /* never OFFLINE/RECONNECT: see want_online */
	char *show_text;
	bool want_online;

	/* pool thread only */
	xmpp_ctx_t *ctx;
	xmpp_log_t xlog;
	xmpp_conn_t *conn;
	int fd;          /* libstrophe's socket, -1 when none */
	guint64 conn_serial; /* connections made (acct_conn_serial) */
	int fd_dup;      /* ours, for the watchdog and forced drops */
	WdSlot wd;
	bool conn_dead;  /* disconnected: release after run_once returns */
	bool read_more;  /* the last read may have left data buffered */
	bool was_online; /* this attempt reached CONNECT */
	bool tcp_up;     /* this attempt's TCP connect succeeded */
	bool in_tls;     /* inside the TLS handshake (blocking in 0.12) */
	gint64 login_deadline; /* monotonic µs */
	bool shutting;   /* unmount: do not reconnect */
	bool reconnect_asked; /* `status` asked to drop and reconnect now */
	guint gen;       /* attempt number; stale resolver answers are dropped */
	bool resolving;
	GPtrArray *addrs; /* candidates of this attempt: "ADDRESS PORT" */
	guint addr_next;
	gint64 retry_at;  /* monotonic µs; 0 when no retry is scheduled */
	guint backoff_s;
	gint64 online_at; /* monotonic µs of the last CONNECT */
	guint progress;   /* bumped by every stanza libstrophe reports */
	/* why the current attempt failed, collected while it runs */
	char *cert_error;
	char *auth_error;
	bool parse_error;
	bool doctype;      /* the server sent a DTD */
	char guard_tail[8]; /* the last bytes checked, for a split "<!DOC" */
	size_t guard_tail_len;
	bool no_mechanism; /* no SASL mechanism in common with the server */
	bool oversize;
	guint stanzas;        /* complete stanzas received */
	guint stanzas_mark;   /* stanzas at the last size check */
	guint64 bytes_mark;   /* bytes consumed at the last new stanza */
	gint64 close_at;      /* closing: end the stream by then (µs) */
	bool going_offline;   /* our unavailable presence is sent */
	guint64 messages_sent; /* by this mount (OutMsg.sent_no) */
	Sm sm;                /* stream management (sm.c) */
	gint64 last_rx;       /* monotonic µs of the last data from the server */
	gint64 ping_due;      /* keep-alive: an answer is due by then; 0: none */
	bool ping_dead;       /* the keep-alive ping went unanswered */

	/* its features (feature.h) and the stanza chain (dispatch.h): made
	 * before the pool runs, fixed after */
	GPtrArray *features;
	GPtrArray *states;    /* each feature's own (Feature.state_size) */
	Dispatch *dispatch;
	char *dir;            /* DATA/JID */
	/* conversations: any thread, locks of their own */
	HistSet *hists;
	Outbox *outbox;
	Roster *roster;
	Hist *events;
	GMutex events_lock;      /* around appends to events: */
	GString *events_backlog; /* what could not be written yet */
	guint events_dropped;    /* past EVENTS_BACKLOG_MAX */
	Hist *raw;
	gint raw_readers; /* atomic */
	/* pool thread only */
	bool rosterver;       /* the server offers roster versioning */
	guint iq_next;
	/* messages to send, pool thread only: OutMsg*, oldest first */
	GQueue outq;     /* not sent on this stream yet */
	GQueue inflight; /* sent, waiting for an acknowledgement (sm.c) */
	GQueue held;     /* sent by an earlier mount or on a stream that was
			  * lost, unacknowledged: until the archive is asked
			  * which the server has (mam.c) */
	/* messages that could not be logged (a full disk), pool thread */
	guint log_failures;   /* every failure counts (never reset) */
	gint64 log_gap_since; /* conversations: unix s of the first failure
			       * since all was logged; 0: none */
	bool log_error_shown; /* connection and events say so */
	gint64 log_retry_at;  /* monotonic µs: ask the archive again */
};

/* A message on its way: accepted (in the outbox), sent or not yet. */
typedef struct OutMsg {
	OutboxItem *item;
	/* set when it was last sent (sm_track): */
	guint64 sent_no; /* the order of sending in this mount (0: not sent
			  * by this mount): see mam.c's outbox check */
	guint32 seq;     /* its count among the stanzas of its stream */
	gint64 sent_at;  /* unix seconds */
} OutMsg;

/* ---- login.c, for strophe012.c: what libstrophe 0.12 tells only in
 * its log ---- */

void acct_lib_features(Account *a, bool sm, bool rosterver);
void acct_lib_auth_failed(Account *a, const char *why);
void acct_lib_sent(Account *a);
void acct_lib_parse_error(Account *a);
void acct_lib_tcp_up(Account *a);
void acct_lib_tls_begins(Account *a);
void acct_lib_no_mechanism(Account *a);
/* strophe012.c: the log handler of every account's context. */
void strophe012_log(void *ud, xmpp_log_level_t level, const char *area,
		    const char *msg);

/* ---- the core (account.c, conn.c, login.c, keepalive.c, resolve.c,
 * outgoing.c, core.c), within itself and for the features ---- */

void acct_set_state(Account *a, AcctState st, const char *error);
/* *@field = @value (taken) under the lock. */
void acct_set_str(Account *a, char **field, char *value);
/* One line of XML: newlines inside as character references. */
char *acct_one_line(const char *xml);
/* A received stanza for `raw` readers, as one line. */
void acct_raw_record(Account *a, xmpp_stanza_t *st);
/* An empty result to @iq, or an error with @condition (pushes from our
 * own server carry no 'from': answered all the same). */
xmpp_stanza_t *acct_answer(Account *a, xmpp_stanza_t *iq,
			   const char *condition);
/* A result to @iq with a <query xmlns=@ns/> in *@query. */
xmpp_stanza_t *acct_query_reply(Account *a, xmpp_stanza_t *iq,
				const char *ns, xmpp_stanza_t **query);
/* Send our presence (acct_own_presence). */
void acct_send_presence(Account *a);
/* A stanza larger than this ends the connection: libstrophe would buffer
 * it without limit, at a cost that grows with the square of its size.  A
 * legitimate 5,000-item roster is about 300 KB. */
#define ACCT_STANZA_MAX_BYTES (1u << 20)
/* login.c, for conn.c: the attempt's failure notes and stream state
 * cleared; a new connection with the account's settings, callbacks and
 * login deadline; the socket to look at or shut down (the watchdog's dup
 * during the login, libstrophe's after; -1: none); the connection
 * released; the context and connection freed at acct_free. */
void acct_attempt_reset(Account *a);
xmpp_conn_t *acct_conn_new(Account *a);
int acct_sock(Account *a);
void acct_conn_release(Account *a);
/* keepalive.c, for conn.c: the keep-alive's next moment (monotonic µs,
 * G_MAXINT64: none) and its turn; the seconds a ping's answer may take;
 * drop a link whose unfinished stanza passed ACCT_STANZA_MAX_BYTES. */
gint64 acct_keepalive_due(Account *a);
void acct_keepalive(Account *a, gint64 now);
gint64 acct_ping_timeout(Account *a);
void acct_check_stanza_size(Account *a);
/* For core.c: the connection fields at acct_new (conn.c); the connection
 * and the context freed at acct_free (login.c). */
void acct_conn_init(Account *a);
void acct_conn_free(Account *a);
/* resolve.c, for conn.c's acct_connect: the one address of an account
 * whose host is an IP address, "ADDRESS PORT" (new; NULL: it has none);
 * else a lookup of this attempt (Account.gen) on a thread of its own,
 * whose answer comes to acct_resolved through the pool. */
GPtrArray *acct_literal_address(const CfgAccount *cfg);
void acct_resolve(Account *a);
/* account.c: the features' hooks, in their order (feature.h). */
void acct_features_online(Account *a);
void acct_features_offline(Account *a);
gint64 acct_features_due(Account *a);
void acct_features_tick(Account *a, gint64 now);
void acct_features_presence_changed(Account *a);
bool acct_features_outgoing(Account *a, OutMsg *m);
/* Every feature's own_message hook, in order; true when one set the body
 * (or wants none). */
bool acct_features_own_message(Account *a, xmpp_stanza_t *msg,
				const OutboxItem *it);
/* outgoing.c: send @msg (taken) with @it's body. */
void acct_send_message(Account *a, xmpp_stanza_t *msg, const OutboxItem *it);

/* What mam_log_failed and muc_log_failed share: the failure counts, the
 * account shows it (once, while any gap lasts; @err 0: nothing to show)
 * and the retry timer runs (mam.c). */
void acct_log_note(Account *a, const char *where, int err);
/* No gap is left anywhere (its features say): the error goes, held
 * events are written. */
void acct_log_clear(Account *a);

/* A child element <@name>@text</@name> of @parent. */
/* A new child @name (in @ns, NULL: the parent's) of @parent, which owns
 * it: returned to add to. */
xmpp_stanza_t *acct_add_child(Account *a, xmpp_stanza_t *parent,
			      const char *name, const char *ns);
void acct_add_text_child(Account *a, xmpp_stanza_t *parent, const char *name,
			 const char *text);
/* A message of ours: @id as its id and as its origin-id (XEP-0359), which
 * servers and rooms keep when they give it an id of their own; the
 * archive check (mam.c) and a room's reflection find it by either. */
xmpp_stanza_t *acct_message_new(Account *a, const char *type, const char *to,
			       const char *id);
/* Our presence (show, status, caps), directed to @to when not NULL. */
xmpp_stanza_t *acct_own_presence(Account *a, const char *to);
/* A ping (XEP-0199) of our server with @id. */
xmpp_stanza_t *acct_ping_new(Account *a, const char *id);
/* The text of @el as it is (newlines and all), newly allocated; NULL
 * when @el is NULL or has none. */
char *acct_text(xmpp_stanza_t *el);
/* The text of @st's child @name on one line (TAB, CR, LF as spaces),
 * NULL when it has none. */
char *acct_child_text(xmpp_stanza_t *st, const char *name);
/* The errno of a stanza error (errmap.c); EIO when it names none. */
int acct_error_errno(xmpp_stanza_t *st);
/* "KIND CONDITION[ TEXT]" for an error stanza, as `events` shows it. */
char *acct_error_event_text(xmpp_stanza_t *st, const char *kind);
/* "[error: CONDITION] TEXT BODY" for a bounced message. */
char *acct_error_text(xmpp_stanza_t *msg);
/* A fresh id for a stanza we send. */
char *acct_next_id(Account *a);
/* A request waiting for the server, kept in a table of its kind (the
 * iq file's requests, rooms' joins and changes), starts with this. */
typedef struct {
	gint64 deadline; /* monotonic µs: it ends with ETIMEDOUT then */
} WaitHead;
/* The earliest deadline in a table whose values start with a WaitHead,
 * G_MAXINT64 when it is empty. */
gint64 acct_waits_due(GHashTable *waits);
void acct_outmsg_free(OutMsg *m);
/* Send what waits in outq (when online). */
void acct_flush_outq(Account *a);
/* The held messages go out again, but those whose id is
 * in @sent (NULL: none), which the server has already. */
void acct_release_held(Account *a, GHashTable *sent);
/* @st comes from our own account's side: no 'from', or our bare JID.
 * (An id handler fires for any stanza with the id, from anyone.) */
bool acct_from_self(Account *a, xmpp_stanza_t *st);
/* On a stream that is up and not closing. */
bool acct_is_online(Account *a);
/* The domain of the account's JID: its server. */
const char *acct_domain(Account *a);


