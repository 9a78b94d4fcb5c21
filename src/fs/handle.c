/* handle.c - a descriptor's life: open makes its Handle (a snapshot of a
 * state file's text, a log, a stream reader, an iq call), read answers
 * from it, poll, release frees it.  A log's pages stay in the kernel's
 * cache (keep_cache); only the page its end was in is dropped when it
 * grows (log_grew). */
#include "fs/fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "features/upload.h"
#include "features/vcard.h"

/* The session, for log_grew (set at init). */
static struct fuse_session *the_session;

/* A log grew from @from: the kernel's cached page with the old end is
 * stale (it ended there); the pages before it are not (the log only
 * grows).  Called with no lock of ours held (history.c), and never from
 * a request on the log itself (nothing writes to `log`). */
static void log_grew(void *data, goffset from, goffset to)
{
	const TreeNode *n = data;

	(void)to;
	if (the_session)
		fuse_lowlevel_notify_inval_inode(the_session, n->ino,
						 from & ~(goffset)4095, 0);
}

void handle_init(void *userdata, struct fuse_conn_info *conn)
{
	Xfs *x = userdata;

	the_session = x->se;
	/* a log's mtime changes with every record: auto_inval_data would
	 * drop all of its cached pages each time; log_grew drops the one */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

void handle_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	const FileOps *fo = n ? node_ops(n) : NULL;
	int acc = fi->flags & O_ACCMODE;
	Handle *h;

	if (!fo) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((acc != O_RDONLY && !(fo->mode & 0200)) ||
	    (acc != O_WRONLY && !(fo->mode & 0400))) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (n->kind == NODE_UPLOAD) {
		/* (made by create: an open of its name while it is busy is
		 * another writer) */
		fuse_reply_err(req, EBUSY);
		return;
	}
	h = g_new0(Handle, 1);
	h->node = n;
	h->fd = -1;
	g_mutex_init(&h->lock);
	if (acc != O_WRONLY && fo->text) {
		h->text = fo->text(n->acct, n->jid);
		h->len = strlen(h->text);
	}
	if (acc != O_RDONLY)
		h->wbuf = g_string_new(NULL);
	if (n->kind == NODE_CONTACT_VCARD) {
		/* asked of the contact's server now: an open waits for it */
		int err = 0;
		h->text = vcard_fetch(x->pool, n->acct, n->jid, &err);
		if (!h->text) {
			g_mutex_clear(&h->lock);
			g_free(h);
			fuse_reply_err(req, -err);
			return;
		}
		h->len = strlen(h->text);
	}
	if (n->kind == NODE_FILE) {
		/* a fetched file: read where it is, however large */
		g_autofree char *path = node_file_path(n);
		h->fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		if (h->fd < 0) {
			int err = path ? errno : ENOENT;
			g_mutex_clear(&h->lock);
			g_free(h);
			fuse_reply_err(req, err);
			return;
		}
	}
	if (acc != O_WRONLY && (n->kind == NODE_AVATAR ||
				n->kind == NODE_OWN_AVATAR)) {
		/* an image: its bytes as they are now */
		g_autofree char *path = node_avatar_path(n);
		if (!path || !g_file_get_contents(path, &h->text, &h->len,
						  NULL)) {
			if (h->wbuf)
				g_string_free(h->wbuf, TRUE);
			g_mutex_clear(&h->lock);
			g_free(h);
			fuse_reply_err(req, ENOENT);
			return;
		}
	}
	if (n->kind == NODE_LOG || n->kind == NODE_IDS)
		h->hist = node_hist(n, false, NULL);
	if (n->kind == NODE_EVENTLOG)
		h->hist = acct_events(n->acct);
	if (n->kind == NODE_EVENTS) {
		h->hist = acct_events(n->acct);
		h->reader = stream_open(h->hist);
	}
	/* stream, events, raw, iq read from a cursor of their own and
	 * ignore offsets; seeking is allowed and harmless, so that head -n1
	 * (which seeks back after a line) works on them */
	if (n->kind == NODE_IQ)
		h->call = iqcall_new();
	if (n->kind == NODE_RAW) {
		if (acc != O_WRONLY) {
			h->hist = acct_raw(n->acct);
			h->reader = stream_open(h->hist);
			acct_raw_readers(n->acct, +1);
		}
	}
	if (n->kind == NODE_STREAM) {
		g_autoptr(GError) err = NULL;
		h->hist = node_hist(n, true, &err);
		if (!h->hist) {
			xfs_warn("open %s/stream: %s", n->jid, err->message);
			g_mutex_clear(&h->lock);
			g_free(h);
			fuse_reply_err(req, EIO);
			return;
		}
		h->reader = stream_open(h->hist);
	}
	write_opener_of(h, req);
	fi->fh = (uintptr_t)h;
	if (n->kind == NODE_LOG || n->kind == NODE_EVENTLOG) {
		/* append-only: what the kernel cached stays right, but for
		 * the page the end was in (log_grew) */
		if (h->hist)
			hist_observe(h->hist, log_grew, n);
		fi->keep_cache = 1;
	} else {
		fi->direct_io = 1;
	}
	fuse_reply_open(req, fi);
}

void handle_create(fuse_req_t req, Xfs *x, TreeNode *n,
		   struct fuse_file_info *fi)
{
	struct fuse_entry_param e = {0};
	Handle *h;

	if ((fi->flags & O_ACCMODE) == O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	h = g_new0(Handle, 1);
	h->node = n;
	h->fd = -1;
	if (n->kind == NODE_UPLOAD) {
		/* one copy of a name at a time */
		if (!g_atomic_int_compare_and_exchange(&n->busy, 0, 1)) {
			g_free(h);
			fuse_reply_err(req, EBUSY);
			return;
		}
		__atomic_store_n(&n->size, 0, __ATOMIC_RELAXED);
		h->fd = upload_tmpfile(n->acct);
		if (h->fd < 0) {
			int err = -h->fd;
			g_atomic_int_set(&n->busy, 0);
			g_free(h);
			fuse_reply_err(req, err);
			return;
		}
	}
	g_mutex_init(&h->lock);
	h->wbuf = g_string_new(NULL);
	write_opener_of(h, req);
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	e.ino = n->ino;
	e.generation = 1;
	node_fill_attr(x, n, &e.attr);
	fuse_reply_create(req, &e, fi);
}

/* A log, or its log.ids (read as it is on disk, no page kept:
 * direct_io). */
static void read_log(fuse_req_t req, Handle *h, size_t size, off_t off)
{
	g_autofree char *buf = g_malloc(MAX(size, 1));
	bool ids = h->node->kind == NODE_IDS;
	gssize n = 0;

	/* a conversation that began after the open */
	if (!h->hist && (h->hist = node_hist(h->node, false, NULL)) && !ids)
		hist_observe(h->hist, log_grew, h->node);
	if (h->hist)
		n = ids ? hist_ids_pread(h->hist, buf, size, off)
			: hist_pread(h->hist, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, n);
}

void handle_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (h->reader) {
		stream_read(h->reader, req, size, fi->flags & O_NONBLOCK);
		return;
	}
	if (h->call) {
		iqcall_read(h->call, req, size, fi->flags & O_NONBLOCK);
		return;
	}
	if (h->node->kind == NODE_LOG || h->node->kind == NODE_EVENTLOG ||
	    h->node->kind == NODE_IDS) {
		read_log(req, h, size, off);
		return;
	}
	if (h->node->kind == NODE_FILE) {
		g_autofree char *buf = g_malloc(MAX(size, 1));
		ssize_t n = pread(h->fd, buf, size, off);
		if (n < 0)
			fuse_reply_err(req, errno);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		return;
	}
	/* a file one writes to reads as empty (node.c) */
	if (!h->text || (gsize)off >= h->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Reply from a copy: as soon as the kernel has the reply the reader
	 * may close, and handle_release free h->text, while fuse_reply_buf (and
	 * ASan's check after writev) still looks at the buffer. */
	gsize n = MIN(size, h->len - off);
	g_autofree char *copy = g_memdup2(h->text + off, n);
	fuse_reply_buf(req, copy, n);
}

void handle_release(fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (h->wbuf && (h->node->kind == NODE_SEND || h->node->kind == NODE_POST))
		write_final(h);
	if (h->reader)
		stream_close(h->reader);
	if (h->reader && h->node->kind == NODE_RAW)
		acct_raw_readers(h->node->acct, -1);
	if (h->call)
		iqcall_unref(h->call);
	if (h->fd >= 0)
		close(h->fd);
	if (h->node->kind == NODE_UPLOAD)
		g_atomic_int_set(&h->node->busy, 0); /* its name goes */
	g_free(h->text);
	if (h->wbuf)
		g_string_free(h->wbuf, TRUE);
	if (h->sent)
		g_array_unref(h->sent);
	g_mutex_clear(&h->lock);
	g_free(h);
	fuse_reply_err(req, 0);
}

void handle_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		 struct fuse_pollhandle *ph)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (h->reader) {
		stream_poll(h->reader, req, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
}
