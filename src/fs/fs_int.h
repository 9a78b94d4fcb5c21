/* fs_int.h - what the files of src/fs share and nothing outside it sees:
 * a descriptor (Handle), the table of files with a text or a value
 * (FileOps), and the operations each file gives fsops.c's table.
 *
 * Calls go one way, down this list, never back (tests/unit/layers.py
 * fails a call cycle):
 *   fsops.c   the operation table; lookup, getattr, setattr, readdir
 *   dirs.c    mkdir and rmdir: roster items and rooms
 *   handle.c  a descriptor's life: open, read, poll, release; the kernel's
 *             page cache of logs
 *   write.c   writes, flush, the last message at release, fsync
 *   node.c    what a node is as a file: its mode, text, value, log,
 *             attributes; names of contacts and occupants
 * handle.c calls write.c (release sends what a descriptor still holds);
 * everything calls node.c.  Below them: stream.c and iqcall.c (parked
 * reads), park.c (one way for a request to wait; write.c's fsync uses it
 * too) and tree.c. */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/fsops.h"
#include "fs/iqcall.h"
#include "fs/stream.h"
#include "fs/tree.h"
#include "store/history.h"

typedef struct {
	NodeKind kind;
	mode_t mode;
	char *(*text)(Account *a, const char *jid);
	/* a line written to a control file (status) */
	int (*line)(Xfs *x, Account *a, const char *line);
	/* a whole write to a roster file: one value, answered by the server */
	int (*value)(Xfs *x, Account *a, const char *jid, const char *value);
} FileOps;

typedef struct {
	TreeNode *node;
	char *text;    /* snapshot taken at open, for reads */
	gsize len;
	GString *wbuf; /* written bytes not yet ending in a newline */
	GMutex lock;   /* protects wbuf and failed: one descriptor, many threads */
	bool failed;   /* post, an avatar: a write failed, nothing will be
			* sent */
	bool skip_rest; /* per-line files: a failed write dropped the start
			 * of a line; its rest, up to the newline, goes too */
	guint64 last_seq; /* outbox place of the last message sent through it */
	GArray *sent;  /* of SeqRange: its messages no fsync answered for
			* yet (write.c); under lock */
	pid_t opener;  /* the thread that opened it */
	pid_t opener_proc; /* and its process (write_opener_of) */
	Hist *hist;    /* log: NULL while the conversation has none */
	StreamReader *reader; /* stream */
	IqCall *call;  /* iq: this descriptor's request */
	int fd;        /* an upload: the file written, until it goes (or
			* -1); sent once (sent_file), under lock */
	bool sent_file;
	int upload_err; /* an upload: why it failed (-errno), told again
			 * at close */
} Handle;

static inline Xfs *xfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A file of a room, of a private conversation in a room, or of a
 * conversation: whose logs it reads. */
static inline bool node_in_room(const TreeNode *n)
{
	return n->parent && n->parent->kind == NODE_ROOM;
}

static inline bool node_in_private(const TreeNode *n)
{
	return n->parent && n->parent->kind == NODE_PRIVATE;
}

/* rooms/ROOM/private/NICK/FILE -> ROOM */
static inline const char *node_private_room(const TreeNode *n)
{
	return n->parent->parent->jid;
}

/* node.c */
/* The table entry of a file, NULL for a directory. */
const FileOps *node_ops(const TreeNode *n);
/* Whether @n is there: an avatar's name only for the type kept. */
bool node_visible(const TreeNode *n);
/* The file that holds an avatar node's bytes, NULL when it has none. */
char *node_avatar_path(const TreeNode *n);
/* The file that holds a fetched file's bytes (NODE_FILE). */
char *node_file_path(const TreeNode *n);
/* @files' file @name when it is there (a fetched file), else NULL. */
TreeNode *node_file(Xfs *x, TreeNode *files, const char *name);
/* The log a file of @n reads (made with @create), or NULL. */
Hist *node_hist(const TreeNode *n, bool create, GError **err);
void node_fill_attr(Xfs *x, const TreeNode *n, struct stat *st);
/* Answer a lookup (or mkdir) with @n. */
void node_reply_entry(fuse_req_t req, Xfs *x, const TreeNode *n);
/* The directory of contacts/NAME, NULL when NAME is no normalized bare
 * JID. */
TreeNode *node_contact(Xfs *x, TreeNode *contacts, const char *name);
/* The directory of rooms/ROOM/private/NAME, NULL when NAME is no nick's
 * file name in normalized form. */
TreeNode *node_private(Xfs *x, TreeNode *privates, const char *name);
/* The nick of rooms/ROOM/private/NAME/FILE (to free). */
char *node_private_nick(const TreeNode *n);

/* dirs.c */
void dirs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode);
void dirs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);

/* handle.c */
void handle_init(void *userdata, struct fuse_conn_info *conn);
void handle_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* create(2) of @n, a file that takes what is written (our avatar, a
 * file to send). */
void handle_create(fuse_req_t req, Xfs *x, TreeNode *n,
		   struct fuse_file_info *fi);
void handle_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void handle_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		 struct fuse_pollhandle *ph);
void handle_release(fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi);

/* write.c */
void write_op(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
	      off_t off, struct fuse_file_info *fi);
void write_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void write_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
/* The last close: the last line of `send`, the message of `post`. */
void write_final(Handle *h);
/* Note @req's caller as @h's opener (at open and create). */
void write_opener_of(Handle *h, fuse_req_t req);
/* ftruncate of a file being copied into a conversation (cp of a sparse
 * file sets the size after its last data: the hole at its end): 0, or
 * -EFBIG past the upload service's limit, -EBADF once sent. */
int write_truncate(Handle *h, off_t size);
