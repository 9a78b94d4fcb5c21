/* tree.h - the node tree of the mount: which names exist, their kinds and
 * inode numbers.  No FUSE, no XMPP: fsops.c and node.c turn nodes into replies.
 * Any thread; the tree has its own lock, taken only inside tree.c. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xmpp/pool.h"

typedef enum {
	NODE_ROOT,
	NODE_ACCOUNT,    /* alice@example.org/ */
	NODE_CONNECTION, /* alice@example.org/connection */
	NODE_STATUS,     /* alice@example.org/status */
	NODE_CONTACTS,   /* alice@example.org/contacts/ */
	NODE_CONTACT,    /* .../contacts/bob@example.org/ */
	NODE_SEND,       /* .../contacts/bob@example.org/send */
	NODE_POST,
	NODE_LOG,
	NODE_IDS,        /* .../log.ids: the log's records' ids */
	NODE_STREAM,
	NODE_PRESENCE,
	NODE_NAME,
	NODE_GROUPS,
	NODE_SUBSCRIPTION,
	NODE_BLOCKED,    /* .../contacts/bob@example.org/blocked */
	NODE_DELIVERED,  /* .../contacts/JID/delivered (receipts.c) */
	NODE_DISPLAYED,  /* .../contacts/JID/displayed */
	NODE_READ,       /* .../contacts/JID/read */
	NODE_UNREAD,     /* .../contacts/JID/unread */
	NODE_UNREAD_ALL, /* alice@example.org/unread */
	NODE_CORRECT,    /* .../contacts/JID/correct (chat.c) */
	NODE_RETRACT,
	NODE_REACT,
	NODE_REPLY,
	NODE_CHATSTATE,  /* .../contacts/JID/chatstate */
	NODE_ROOM_CORRECT, /* .../rooms/ROOM/correct (muc_out.c) */
	NODE_ROOM_RETRACT,
	NODE_ROOM_REACT,
	NODE_ROOM_REPLY,
	NODE_MODERATE,   /* .../rooms/ROOM/moderate (muc_request.c) */
	NODE_ROOM_READ,  /* .../rooms/ROOM/read (receipts.c) */
	NODE_ROOM_UNREAD,
	NODE_BLOCKLIST,  /* alice@example.org/blocked */
	NODE_EVENTS,     /* alice@example.org/events */
	NODE_EVENTLOG,   /* alice@example.org/log: the events as a log */
	NODE_RAW,        /* alice@example.org/raw */
	NODE_IQ,         /* alice@example.org/iq */
	NODE_ROOMS,      /* alice@example.org/rooms/ */
	NODE_ROOM,       /* .../rooms/room@conference.example.org/ */
	NODE_NICK,
	NODE_SUBJECT,
	NODE_OCCUPANTS,
	NODE_INVITE,     /* .../rooms/ROOM/invite */
	NODE_KICK,       /* .../rooms/ROOM/kick */
	NODE_BAN,        /* .../rooms/ROOM/ban */
	NODE_PRIVATES,   /* .../rooms/ROOM/private/ */
	NODE_PRIVATE,    /* .../rooms/ROOM/private/NICK/ (a file name) */
	NODE_OWN_NICK,   /* alice@example.org/nick (profile.c) */
	NODE_CONTACT_NICK, /* .../contacts/JID/nick: the one they chose */
	/* an avatar: alice@example.org/avatar.EXT (ours: cp sets it, rm
	 * takes it back) or .../contacts/JID/avatar.EXT (theirs); one name
	 * per type, only the one of the avatar kept is there (node_visible) */
	NODE_OWN_AVATAR,
	NODE_AVATAR,
	/* a file being copied into a conversation (cp FILE contacts/JID/):
	 * there while open, uploaded and sent at close (XEP-0363) */
	NODE_UPLOAD,
	/* .../contacts/JID/files/ (and rooms/ROOM/files/): the files sent
	 * with a link, fetched (files.c; downloads = true); rm removes one */
	NODE_FILES,
	NODE_FILE,
	NODE_OWN_VCARD,     /* alice@example.org/vcard (vcard.c) */
	NODE_CONTACT_VCARD, /* .../contacts/JID/vcard: asked for at open */
	/* OMEMO (omemo.c): alice@example.org/omemo (our device first, then
	 * our other devices) and .../contacts/JID/devices, written to with
	 * "trust ID" / "distrust ID" lines; .../contacts/JID/encryption */
	NODE_OMEMO,
	NODE_DEVICES,
	NODE_ENCRYPTION,
	/* `stream`, `events`, `raw`: a symbolic link to the hidden `.NAME`
	 * that is the file, so that what walks a tree (cp -r, rsync -a, tar,
	 * grep -r, find) copies the link and never blocks reading a stream
	 * that does not end; cat, tail -f and > follow it */
	NODE_LINK,
} NodeKind;

typedef struct TreeNode TreeNode;
struct TreeNode {
	guint64 ino;     /* immutable */
	NodeKind kind;   /* immutable */
	char *name;      /* immutable */
	TreeNode *parent;
	Account *acct;   /* the account it belongs to; NULL for the root */
	/* the contact's or room's bare JID (its name), under contacts/ and
	 * rooms/; in rooms/ROOM/private/NICK/ the NICK directory's name */
	const char *jid;
	GPtrArray *children; /* of TreeNode*, directories only */
	GHashTable *by_name; /* name -> TreeNode* of children, directories */
	gint files_made; /* atomic: a conversation's files are made (tree.c) */
	gint busy;       /* atomic: NODE_UPLOAD: descriptors open on it */
	gint64 size;     /* __atomic: NODE_UPLOAD: its size as written, for
			  * stat (a >> writer appends at the size the kernel
			  * was last told) */
};

#define TREE_ROOT_INO 1

typedef struct Tree Tree;

/* The root with one directory per account of @pool. */
Tree *tree_new(Pool *pool);
void tree_free(Tree *t);
TreeNode *tree_get(Tree *t, guint64 ino);
TreeNode *tree_child(Tree *t, TreeNode *dir, const char *name);
/* The directory of @jid (a normalized bare JID) in @contacts, made on
 * first use; its files are made when first looked up or listed. */
TreeNode *tree_contact(Tree *t, TreeNode *contacts, const char *jid);
/* The directory of @room (a normalized bare JID) in @rooms, likewise. */
TreeNode *tree_room(Tree *t, TreeNode *rooms, const char *room);
/* The directory of the private conversation @name (a nick as
 * jid_to_filename gives it) in @privates, likewise. */
TreeNode *tree_private(Tree *t, TreeNode *privates, const char *name);
/* The file @name being copied into the conversation @dir (NODE_UPLOAD),
 * made on first use; NULL when @name is one of the conversation's own
 * files. */
TreeNode *tree_upload(Tree *t, TreeNode *dir, const char *name);
/* The fetched file @name in @files (NODE_FILES), made on first use. */
TreeNode *tree_file(Tree *t, TreeNode *files, const char *name);
/* After an rmdir of @dir's child @name: the name no longer leads to that
 * node (the kernel marked its inode dead: lookups in it fail), so the
 * next use of the name makes a new node, with a new inode number.  The
 * old node lives on for requests that still name it by number. */
void tree_detach(Tree *t, TreeNode *dir, const char *name);
/* Names of @dir's children, in order, but the hidden ones that links
 * point to (a snapshot to free). */
GPtrArray *tree_list(Tree *t, TreeNode *dir);
bool tree_is_dir(const TreeNode *n);
