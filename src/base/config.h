/* config.h - the account key file (SPEC "Mounting") as plain data.
 * Pure apart from reading the file and running password_command. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define CFG_ERROR (cfg_error_quark())
GQuark cfg_error_quark(void);

typedef enum {
	CFG_ERROR_FILE,     /* cannot read or parse the file */
	CFG_ERROR_GROUP,    /* a group name that is not a bare JID */
	CFG_ERROR_KEY,      /* unknown key, or a value of the wrong form */
	CFG_ERROR_PASSWORD, /* no password, unsafe mode, command failed */
	CFG_ERROR_EMPTY,    /* no accounts */
} CfgError;

typedef enum {
	CFG_TLS_REQUIRED, /* STARTTLS, mandatory (default) */
	CFG_TLS_DIRECT,   /* XEP-0368 direct TLS */
	CFG_TLS_PLAINTEXT /* tls = insecure-plaintext */
} CfgTls;

/* omemo_trust: how a device whose key is new is trusted (README: the risk
 * of each). */
typedef enum {
	CFG_OMEMO_TOFU,   /* trusted until the user decided on a device of
			   * that contact by hand; then undecided (default) */
	CFG_OMEMO_BLIND,  /* every new key trusted */
	CFG_OMEMO_MANUAL, /* nothing trusted until the user says so */
} CfgOmemoTrust;

#define CFG_MESSAGE_LIMIT_DEFAULT (64 * 1024)
/* quiet for this long: ping; no answer in ACCT_PING_TIMEOUT_S: the link is
 * dead.  30 + 20 s: a dead link is noticed within a minute. */
#define CFG_PING_INTERVAL_DEFAULT 30
/* SPEC: "No answer in 30 s gives ETIMEDOUT" (the `iq` file) */
#define CFG_IQ_TIMEOUT_DEFAULT 30
/* a joined room quiet for this long is asked whether it still has us
 * (XEP-0410).  Five minutes: a room that lost us (its service restarted)
 * is noticed within that, and what it said meanwhile comes from its
 * archive at the rejoin, so a longer wait costs only lateness; one iq per
 * quiet room per five minutes costs nothing, and a busy room is never
 * asked.  (XEP-0410 suggests 15 minutes; clients use 5 to 15.) */
#define CFG_ROOM_PING_DEFAULT 300
/* a file fetched (downloads = true) is at most this large by default */
#define CFG_DOWNLOAD_MAX_DEFAULT (10 * 1024 * 1024)

typedef struct {
	char *jid;       /* normalized bare JID: the group name */
	char *password;  /* from password or the first line of password_command */
	char *host;      /* NULL: SRV lookup of the domain */
	guint16 port;    /* 0: default (5222, or 5223 for direct TLS) */
	CfgTls tls;
	char *ca_file;   /* NULL: system CAs only */
	char *resource;  /* never NULL: given, or "xmppfs-" + 8 random hex */
	bool resource_given; /* the key was there (not a random default) */
	char *nick;      /* never NULL: given, or the localpart */
	gsize message_limit;   /* bytes; key message_limit */
	guint ping_interval;   /* seconds; key ping_interval; 0 disables */
	bool auto_approve;     /* approve subscription requests; default no */
	char *tls_fingerprint; /* "AA:BB:..." (SHA-256 of the server's
				* certificate): exactly that one is accepted,
				* any other refused; NULL: none */
	bool queue_when_failed; /* accept messages while the login is refused
				 * (they wait in the outbox); default no */
	bool receipts;   /* answer delivery receipt requests (XEP-0184) of
			  * those who may see our presence; default yes */
	bool chat_states; /* send chat states (XEP-0085); default no */
	guint iq_timeout; /* seconds an `iq` request waits; key iq_timeout */
	guint room_ping;  /* seconds a joined room may be quiet before we ask
			   * it whether it still has us; key room_ping; 0
			   * disables */
	bool downloads;   /* fetch files sent with a link (XEP-0066) into the
			   * conversation's files/; default no */
	guint64 download_max; /* bytes; a larger file is not fetched */
	bool omemo;       /* OMEMO end-to-end encryption (features/omemo.c):
			   * keys made and published, conversations with
			   * contacts who have devices encrypted; default no */
	CfgOmemoTrust omemo_trust; /* how a new device is trusted */
	const GPtrArray *rooms; /* of CfgRoom*: borrowed from the CfgFile */
} CfgAccount;

/* A group [room ROOM]: how every account joins ROOM. */
typedef struct {
	char *jid;      /* normalized bare JID of the room */
	char *password; /* NULL: none */
	char *nick;     /* NULL: the account's nick */
} CfgRoom;

typedef struct {
	char *path;
	GPtrArray *accounts; /* of CfgAccount*, in file order */
	GPtrArray *rooms;    /* of CfgRoom*, in file order */
} CfgFile;

/* The account @jid (a normalized bare JID) of @cfg, or NULL. */
CfgAccount *cfg_account_of(const CfgFile *cfg, const char *jid);
/* Whether @a and @b (the same account read twice, as a reload does) would
 * connect and behave the same: every key, the password and the [room]
 * groups compared.  A random default resource is not a change: @a, the
 * newer, takes @b's when neither names one (so it is not const). */
bool cfg_account_same(CfgAccount *a, const CfgAccount *b);

/* The group of @room (a normalized bare JID), or NULL. */
const CfgRoom *cfg_room(const CfgAccount *a, const char *room);

/* $XDG_CONFIG_HOME/xmppfs/config */
char *cfg_default_path(void);

/* Read and validate @path; run each password_command.  The error message
 * is one line naming the file, the group and the key:
 *   "FILE: [alice@example.org] port: not a port number: 'abc'"  */
CfgFile *cfg_load(const char *path, GError **err);
/* The same, from a string (for tests and fuzzing); @path names it in
 * messages, and @mode stands for the file's mode for the password check. */
CfgFile *cfg_load_data(const char *data, gsize len, const char *path,
		       guint mode, GError **err);
/* A SHA-256 fingerprint as "AA:BB:...:FF" (32 bytes) from @text: hex
 * digits with or without colons, an optional "SHA256:" before; NULL when
 * it is not one.  Any thread. */
char *cfg_fingerprint(const char *text);
void cfg_free(CfgFile *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CfgFile, cfg_free)

/* Overwrite and free a password string. */
void cfg_password_free(char *password);

/* When false, a password_command is not run but is an error
 * (CFG_ERROR_PASSWORD).  True by default; the fuzz target clears it so
 * arbitrary input can never run a shell command. */
extern bool cfg_allow_commands;
