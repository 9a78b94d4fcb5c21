/* write.c - what is written to a file becomes requests: messages (`send`
 * line by line, `post` whole at the last close), values and lines of
 * control files, raw stanzas, an iq; flush reports what the last close
 * would refuse; fsync waits for the server's acknowledgement. */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/aesgcm.h"
#include "base/log.h"
#include "base/text.h"
#include "base/xmlcheck.h"
#include "features/chat.h"
#include "features/iqfile.h"
#include "features/muc.h"
#include "features/omemo.h"
#include "features/profile.h"
#include "features/upload.h"
#include "fs/park.h"

/* Run every complete line in h->wbuf; the first error wins and the rest of
 * the buffer is dropped so a bad write changes nothing after it. */
static int run_lines(Xfs *x, Handle *h, bool flush_all)
{
	const FileOps *fo = node_ops(h->node);
	int ret = 0;

	for (;;) {
		char *nl = memchr(h->wbuf->str, '\n', h->wbuf->len);
		gsize n = nl ? (gsize)(nl - h->wbuf->str) : h->wbuf->len;
		if (!nl && (!flush_all || h->wbuf->len == 0))
			break;
		bool has_nul = memchr(h->wbuf->str, '\0', n) != NULL;
		g_autofree char *line = g_strndup(h->wbuf->str, n);
		g_string_erase(h->wbuf, 0, nl ? n + 1 : n);
		if (n && line[n - 1] == '\r')
			line[n - 1] = '\0';
		ret = has_nul ? -EILSEQ : fo->line(x, h->node->acct, line);
		if (ret) {
			g_string_truncate(h->wbuf, 0);
			break;
		}
	}
	return ret;
}

/* A body may be sent: not over the account's limit, clean UTF-8. */
static int check_body(Account *a, const char *s, gsize len, bool allow_lf)
{
	if (len > acct_cfg(a)->message_limit)
		return -EFBIG;
	if (memchr(s, '\0', len) || !text_is_clean(s, len, allow_lf))
		return -EILSEQ;
	return 0;
}

/* Messages from @h's file: to the room, an occupant or a contact; all or
 * none. */
/* Messages numbered @first to @last went through @h (h->lock held, or
 * alone at release): an fsync asks the outbox about them. */
typedef struct {
	guint64 first, last;
} SeqRange;

static void note_sent(Handle *h, guint64 first, guint64 last)
{
	SeqRange *r;

	if (!h->sent)
		h->sent = g_array_new(FALSE, FALSE, sizeof(SeqRange));
	r = h->sent->len
		    ? &g_array_index(h->sent, SeqRange, h->sent->len - 1)
		    : NULL;
	if (r && r->last + 1 == first) {
		r->last = last; /* no other writer came between */
	} else {
		SeqRange n = {first, last};
		g_array_append_val(h->sent, n);
	}
}

static int send_bodies(Handle *h, const char *const *bodies, guint n)
{
	const TreeNode *nd = h->node;
	int ret;

	if (node_in_private(nd)) {
		g_autofree char *nick = node_private_nick(nd);
		ret = muc_send_private(nd->acct, node_private_room(nd), nick,
				       bodies, n, &h->last_seq);
	} else if (node_in_room(nd)) {
		ret = muc_send(nd->acct, nd->jid, bodies, n, &h->last_seq);
	} else {
		ret = chat_send(nd->acct, nd->jid, bodies, n, &h->last_seq);
	}
	/* one write's messages are numbered one after the other */
	if (!ret && n)
		note_sent(h, h->last_seq - n + 1, h->last_seq);
	return ret;
}

static int send_body(Handle *h, const char *body)
{
	return send_bodies(h, &body, 1);
}

/* `send`: every complete line is checked before any is sent, and they
 * are accepted together (acct_accept), so a write with one bad line, or
 * one the disk has no room for, sends nothing.  Empty lines are no
 * messages. */
static int send_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	Account *a = h->node->acct;
	gsize before = h->wbuf->len;
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	const char *p, *end, *nl;
	int ret = 0;

	g_string_append_len(h->wbuf, data, size);
	p = h->wbuf->str;
	end = p + h->wbuf->len;
	for (; !ret && (nl = memchr(p, '\n', end - p)); p = nl + 1) {
		gsize n = nl - p;
		if (n && p[n - 1] == '\r')
			n--; /* a CRLF line end: the CR is no part of it */
		ret = check_body(a, p, n, false);
		if (!ret && n)
			g_ptr_array_add(lines, g_strndup(p, n));
	}
	if (!ret && (gsize)(end - p) > acct_cfg(a)->message_limit)
		ret = -EFBIG;
	if (ret) {
		/* a refused line takes what earlier writes gave of it along */
		g_string_truncate(h->wbuf, 0);
		return ret;
	}
	if (lines->len &&
	    (ret = send_bodies(h, (const char *const *)lines->pdata,
			       lines->len))) {
		/* not stored (a full disk): as if this write never came, so
		 * that the same write again does what it would have */
		g_string_truncate(h->wbuf, before);
		return ret;
	}
	g_string_erase(h->wbuf, 0, p - h->wbuf->str);
	return 0;
}

/* A CR right before a LF is a line end's (CRLF: a file from Windows, a
 * network tool): dropped.  Any other CR stays, and is refused. */
static void drop_cr_before_lf(GString *b)
{
	gsize out = 0;

	for (gsize i = 0; i < b->len; i++)
		if (!(b->str[i] == '\r' && i + 1 < b->len &&
		      b->str[i + 1] == '\n'))
			b->str[out++] = b->str[i];
	g_string_truncate(b, out);
}

/* `post`: collect; the message goes at release. */
static int post_write(Handle *h, const char *data, size_t size)
{
	Account *a = h->node->acct;

	if (h->failed)
		return -EIO;
	g_string_append_len(h->wbuf, data, size);
	/* one trailing newline is not part of the message */
	if (h->wbuf->len > acct_cfg(a)->message_limit + 1) {
		h->failed = true;
		g_string_truncate(h->wbuf, 0);
		return -EFBIG;
	}
	return 0;
}

/* Files where each line written is one request. */
static bool per_line(const TreeNode *n)
{
	return n->kind == NODE_SUBSCRIPTION || n->kind == NODE_INVITE ||
	       n->kind == NODE_KICK || n->kind == NODE_BAN ||
	       n->kind == NODE_RETRACT || n->kind == NODE_REACT ||
	       n->kind == NODE_ROOM_RETRACT || n->kind == NODE_ROOM_REACT ||
	       n->kind == NODE_MODERATE || n->kind == NODE_OMEMO ||
	       n->kind == NODE_DEVICES;
}

/* Files where all that is written between open and close is one message
 * (as `post`): a correction, a reply. */
static bool at_close(const TreeNode *n)
{
	return n->kind == NODE_CORRECT || n->kind == NODE_REPLY ||
	       n->kind == NODE_ROOM_CORRECT || n->kind == NODE_ROOM_REPLY ||
	       n->kind == NODE_OWN_VCARD;
}

/* name and groups: what was written through the descriptor so far is
 * the value (one trailing newline dropped), applied at each write, which
 * returns the server's answer; printf may write one group per call.
 * subscription, invite, kick and ban: each complete line is one value. */
static int value_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	const FileOps *fo = node_ops(h->node);
	g_autofree char *v = NULL;
	gsize len, before = h->wbuf->len;
	int ret;

	if (h->wbuf->len + size > 64 * 1024)
		return -EFBIG;
	if (memchr(data, '\0', size))
		return -EILSEQ;
	if (at_close(h->node)) {
		g_string_append_len(h->wbuf, data, size);
		return 0; /* sent by the opener's close (write_flush) */
	}
	if (per_line(h->node) && h->skip_rest) {
		const char *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) + 1 : size;
		h->skip_rest = !nl;
		data += n;
		size -= n;
	}
	g_string_append_len(h->wbuf, data, size);
	if (per_line(h->node)) {
		char *nl;
		while ((nl = memchr(h->wbuf->str, '\n', h->wbuf->len))) {
			g_autofree char *word =
				g_strndup(h->wbuf->str, nl - h->wbuf->str);
			g_string_erase(h->wbuf, 0, nl - h->wbuf->str + 1);
			ret = fo->value(x, h->node->acct, h->node->jid, word);
			if (ret) {
				/* the lines after it are not sent; the start of
				 * a line still open must not make another line
				 * with what the next write brings */
				h->skip_rest = h->wbuf->len &&
					       h->wbuf->str[h->wbuf->len - 1] != '\n';
				g_string_truncate(h->wbuf, 0);
				return ret;
			}
		}
		return 0;
	}
	len = h->wbuf->len;
	if (len && h->wbuf->str[len - 1] == '\n')
		len--;
	v = g_strndup(h->wbuf->str, len);
	ret = fo->value(x, h->node->acct, h->node->jid, v);
	if (ret) /* a failed write is not part of the next one's value (a
		  * buffered writer retries the same bytes) */
		g_string_truncate(h->wbuf, before);
	return ret;
}

/* A file copied into a conversation: its bytes where they were written,
 * in a file of the data directory; more than the upload service takes
 * is EFBIG at once, not after a long copy. */
static int upload_write(Handle *h, const char *data, size_t size, off_t off)
{
	gint64 max = upload_max(h->node->acct);

	if (h->failed || h->sent_file)
		return h->failed ? h->upload_err : -EBADF;
	if (max > 0 && (guint64)off + size > (guint64)max) {
		h->failed = true;
		return h->upload_err = -EFBIG;
	}
	if ((guint64)off + size > (guint64)__atomic_load_n(&h->node->size,
							   __ATOMIC_RELAXED))
		__atomic_store_n(&h->node->size, (gint64)(off + size),
				 __ATOMIC_RELAXED); /* (only writer: h->lock) */
	while (size) {
		ssize_t n = pwrite(h->fd, data, size, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			h->failed = true;
			return h->upload_err = -errno;
		}
		data += n;
		size -= (size_t)n;
		off += n;
	}
	return 0;
}

int write_truncate(Handle *h, off_t size)
{
	gint64 max = upload_max(h->node->acct);
	int ret = 0;

	g_mutex_lock(&h->lock);
	if (h->failed || h->sent_file) {
		ret = h->failed ? h->upload_err : -EBADF;
	} else if (max > 0 && size > max) {
		h->failed = true;
		ret = h->upload_err = -EFBIG;
	} else if (ftruncate(h->fd, size) < 0) {
		ret = -errno;
	} else {
		__atomic_store_n(&h->node->size, (gint64)size,
				 __ATOMIC_RELAXED);
	}
	g_mutex_unlock(&h->lock);
	return ret;
}

typedef struct {
	Account *a;
	const char *jid, *name;
	int step; /* the last tenth told */
} Progress;

/* An `upload` event at each tenth of the way. */
static int upload_progress(guint64 done, guint64 total, void *data)
{
	Progress *p = data;
	int step = total ? (int)(done * 10 / total) : 0;
	g_autofree char *text = NULL;

	if (step > p->step && step < 10) {
		p->step = step;
		text = g_strdup_printf("%s: %d%%", p->name, step * 10);
		acct_event(p->a, "upload", p->jid, text);
	}
	return 0;
}

/* @name as events tell it: a control character (a newline would start a
 * record of its own that reads as another event; an escape sequence
 * acts on the terminal that shows it) as '?'. */
static char *shown_name(const char *name)
{
	char *s = g_strdup(name);

	for (char *c = s; *c; c++)
		if ((guchar)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return s;
}

/* The opener's close of a file copied into a conversation: a slot from
 * the upload service, the PUT, and the link as a message (with XEP-0066
 * out-of-band data) through the outbox; the close's result is the first
 * failure.  Once: a later close (of a copy) finds it sent or failed. */
static int upload_send(Xfs *x, Handle *h)
{
	TreeNode *n = h->node;
	Account *a = n->acct;
	const char *jid = n->jid;
	g_autofree char *name = shown_name(n->name);
	const char *type = upload_type_of(n->name);
	g_auto(UploadSlot) slot = {0};
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL, *link = NULL;
	Progress prog = {a, jid, name, 0};
	const char *enc = NULL;
	guint8 key[AESGCM_KEY], iv[AESGCM_IV];
	int fd = h->fd, encfd = -1;
	guint64 esize;
	off_t size;
	int ret;

	/* (a later close, of a copy: touch closes a dup of what it
	 * opened last, and must hear that nothing was sent too) */
	if (h->sent_file)
		return h->failed ? h->upload_err : 0;
	if (h->failed)
		return h->upload_err; /* (a write said it first) */
	size = lseek(h->fd, 0, SEEK_END);
	/* nothing to send (yet): a shell's `> FILE` opens, dup2()s and
	 * closes the first descriptor before any write; cp of an empty
	 * file hears ENODATA, and a later close may still send */
	if (size == 0)
		return -ENODATA;
	h->sent_file = true;
	if (size < 0) {
		ret = -errno;
		goto failed;
	}
	/* an encrypted conversation's file is encrypted too, and its link
	 * goes inside an encrypted message (XEP-0454): the server keeps
	 * only ciphertext */
	if (n->parent->kind == NODE_CONTACT &&
	    (ret = omemo_send_mode(a, jid, &enc)))
		goto failed;
	if (enc) {
		if ((ret = aesgcm_new_key(key, iv)))
			goto failed;
		if ((encfd = upload_tmpfile(a)) < 0) {
			ret = encfd;
			goto failed;
		}
		if ((ret = aesgcm_encrypt_fd(h->fd, encfd, key, iv, &esize)))
			goto failed;
		fd = encfd;
		size = (off_t)esize;
		type = "application/octet-stream";
	}
	ret = upload_slot(x->pool, a, n->name, (guint64)size, type, &slot);
	if (ret)
		goto failed;
	ret = upload_put(a, &slot, fd, (guint64)size, type, upload_progress,
			 &prog, &err);
	if (ret)
		goto failed;
	if (enc) {
		const char *bodies[1];
		guint64 seq;
		link = aesgcm_url(slot.get, iv, key);
		bodies[0] = link;
		ret = chat_send(a, jid, bodies, 1, &seq);
	} else {
		ret = n->parent->kind == NODE_ROOM
			      ? muc_about(a, jid, "oob", slot.get)
			      : chat_send_oob(a, jid, slot.get);
	}
	if (ret)
		goto failed;
	if (encfd >= 0)
		close(encfd);
	explicit_bzero(key, sizeof key);
	text = g_strdup_printf("%s: sent, %s", name, slot.get);
	acct_event(a, "upload", jid, text);
	return 0;
failed:
	if (encfd >= 0)
		close(encfd);
	explicit_bzero(key, sizeof key);
	text = g_strdup_printf("%s: not sent: %s", name,
			       err ? err->message : g_strerror(-ret));
	acct_event(a, "upload", jid, text);
	h->failed = true;
	return h->upload_err = ret;
}

/* raw: each write is one or more complete stanzas, all checked before
 * any is sent; what is not well-formed XML or not a stanza is EINVAL and
 * nothing is sent, so no write can break the stream. */
static int raw_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	g_autoptr(GError) err = NULL;
	GPtrArray *stanzas;

	if (size > 1024 * 1024)
		return -EFBIG;
	if (!(stanzas = xmlcheck_stanzas(data, size, &err))) {
		xfs_info("%s: raw write refused: %s",
			 acct_cfg(h->node->acct)->jid, err->message);
		return -EINVAL;
	}
	return pool_send_raw(x->pool, h->node->acct, stanzas);
}

/* iq: one <iq type='get|set'/>; its answer is read on this descriptor. */
/* [pool] iqfile.c's answer to the request a descriptor wrote. */
static void iq_answered(void *call, const char *line, int err)
{
	iqcall_finish(call, line, err);
}

static void iq_call_unref(void *call)
{
	iqcall_unref(call);
}

static int iq_write(Xfs *x, Handle *h, const char *data, size_t size)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) stanzas = NULL;
	int ret;

	if (size > 1024 * 1024)
		return -EFBIG;
	stanzas = xmlcheck_stanzas(data, size, &err);
	if (!stanzas || stanzas->len != 1 ||
	    !g_str_has_prefix(g_ptr_array_index(stanzas, 0), "<iq"))
		return -EINVAL;
	if (iqcall_pending(h->call))
		return -EBUSY; /* one request at a time per descriptor */
	iqcall_start(h->call);
	ret = iqfile_send(x->pool, h->node->acct,
			  g_ptr_array_index(stanzas, 0), iq_answered,
			  iqcall_ref(h->call), iq_call_unref);
	if (ret)
		iqcall_finish(h->call, NULL, 0); /* nothing to wait for */
	return ret;
}

void write_op(fuse_req_t req, fuse_ino_t ino, const char *data,
	      size_t size, off_t off, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	int ret;

	if (!h->wbuf) {
		fuse_reply_err(req, EBADF);
		return;
	}
	g_mutex_lock(&h->lock);
	switch (h->node->kind) {
	case NODE_SEND:
		ret = send_write(x, h, data, size);
		break;
	case NODE_POST:
		ret = post_write(h, data, size);
		break;
	case NODE_RAW:
		ret = raw_write(x, h, data, size);
		break;
	case NODE_IQ:
		ret = iq_write(x, h, data, size);
		break;
	case NODE_UPLOAD:
		ret = upload_write(h, data, size, off);
		break;
	case NODE_OWN_AVATAR:
		/* the image, set at close (write_flush); each byte where it
		 * was written (pwrite, a copy with holes) */
		if ((guint64)off + size > PROFILE_AVATAR_MAX) {
			h->failed = true; /* no part of it goes out at close */
			g_string_truncate(h->wbuf, 0);
			ret = -EFBIG;
			break;
		}
		if (h->failed) {
			ret = -EFBIG;
			break;
		}
		if ((gsize)off > h->wbuf->len) {
			gsize had = h->wbuf->len;
			g_string_set_size(h->wbuf, off);
			memset(h->wbuf->str + had, 0, off - had);
		}
		if ((gsize)off + size > h->wbuf->len)
			g_string_set_size(h->wbuf, off + size);
		memcpy(h->wbuf->str + off, data, size);
		ret = 0;
		break;
	default:
		/* a value file (name, read, nick, ...), answered as a whole or
		 * line by line; else a control file of lines (status) */
		if (node_ops(h->node)->value) {
			ret = value_write(x, h, data, size);
			break;
		}
		if (!node_ops(h->node)->line) {
			ret = -EBADF; /* (open lets no such write through) */
			break;
		}
		if (h->wbuf->len + size > ACCT_STATUS_TEXT_MAX + 1) {
			ret = -EFBIG;
			break;
		}
		g_string_append_len(h->wbuf, data, size);
		ret = run_lines(x, h, false);
	}
	g_mutex_unlock(&h->lock);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

/* The process of the thread @tid (FUSE tells threads, not processes),
 * or @tid when /proc cannot say. */
static pid_t process_of(pid_t tid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)tid);
	g_autofree char *text = NULL;
	const char *t;

	if (!g_file_get_contents(path, &text, NULL, NULL) ||
	    !(t = strstr(text, "\nTgid:")))
		return tid;
	return (pid_t)strtol(t + strlen("\nTgid:"), NULL, 10);
}

void write_opener_of(Handle *h, fuse_req_t req)
{
	h->opener = fuse_req_ctx(req)->pid;
	/* (a reader's close sends nothing: no need to ask) */
	h->opener_proc = h->wbuf ? process_of(h->opener) : h->opener;
}

/* Whether @req comes from the process that opened @h: from any of its
 * threads, as a program may close in another thread than the one that
 * opened (a thread pool, Go's runtime); then the close is the opener's
 * and sends, where otherwise nothing would (an upload, an avatar). */
static bool by_opener(fuse_req_t req, const Handle *h)
{
	pid_t pid = fuse_req_ctx(req)->pid;

	return pid == h->opener || process_of(pid) == h->opener_proc;
}

/* Every close of a descriptor flushes, also of copies a child inherited,
 * so a message is never sent here (release is the last close); what
 * would fail then is reported now, as the close's error, and then nothing
 * is sent.  (A character split between two processes' writes would fail
 * at the first one's close: a price for reporting bad text at close.) */
static int flush_check(Handle *h)
{
	Account *a = h->node->acct;
	bool post = h->node->kind == NODE_POST;
	gsize len = h->wbuf->len;

	if (post && h->failed)
		return -EIO;
	if (post) {
		drop_cr_before_lf(h->wbuf);
		len = h->wbuf->len;
	}
	if (post && len && h->wbuf->str[len - 1] == '\n')
		len--;
	if (len > acct_cfg(a)->message_limit)
		return -EFBIG;
	if (memchr(h->wbuf->str, '\0', len) ||
	    !text_is_clean(h->wbuf->str, len, post)) {
		h->failed = post;
		if (!post)
			g_string_truncate(h->wbuf, 0);
		return -EILSEQ;
	}
	return 0;
}

typedef struct {
	fuse_req_t req;
	Handle *h;
} UploadClose;

static gpointer upload_close_run(gpointer data)
{
	UploadClose *c = data;
	int ret;

	g_mutex_lock(&c->h->lock);
	ret = upload_send(xfs_of(c->req), c->h);
	g_mutex_unlock(&c->h->lock);
	fuse_reply_err(c->req, -ret);
	g_free(c);
	return NULL;
}

/* The opener's close of a file to send: the slot, the PUT and the
 * message take as long as the network does, so they run on a thread of
 * their own, which answers the close; a FUSE worker waiting out a
 * stalled upload service would be one fewer for every other file of the
 * mount (ten stalled copies took them all).  The handle lives on until
 * the answer: the kernel releases it only after its flush is answered. */
static void upload_close(fuse_req_t req, Handle *h)
{
	UploadClose *c = g_new(UploadClose, 1);
	GThread *t;

	c->req = req;
	c->h = h;
	t = g_thread_try_new("xmppfs-upload", upload_close_run, c, NULL);
	if (t)
		g_thread_unref(t);
	else
		upload_close_run(c); /* (no thread: here, then) */
}

void write_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	int ret = 0;

	if (h->wbuf && h->node->kind == NODE_UPLOAD && by_opener(req, h)) {
		upload_close(req, h);
		return;
	}
	if (h->wbuf) {
		g_mutex_lock(&h->lock);
		if (h->node->kind == NODE_SEND || h->node->kind == NODE_POST) {
			ret = flush_check(h);
			/* the opener's own close sends now, so two posts in a row
			 * go in order (release comes after close returned, and
			 * two releases may run at once); a child closing a copy
			 * it inherited leaves it to release */
			if (!ret && by_opener(req, h)) {
				write_final(h);
				g_string_truncate(h->wbuf, 0);
			}
		}
		else if (h->node->kind == NODE_UPLOAD) {
			/* a child's copy of the descriptor sends nothing */
		}
		else if (h->node->kind == NODE_OWN_AVATAR) {
			if (h->wbuf->len && !h->failed &&
			    by_opener(req, h)) {
				const char *ext = strchr(h->node->name, '.') + 1;
				ret = profile_set_avatar(xfs_of(req)->pool,
							 h->node->acct, ext,
							 h->wbuf->str,
							 h->wbuf->len);
				g_string_truncate(h->wbuf, 0);
			}
		}
		else if (at_close(h->node)) {
			if (h->wbuf->len && by_opener(req, h)) {
				gsize len = h->wbuf->len;
				g_autofree char *v = NULL;
				if (h->wbuf->str[len - 1] == '\n')
					len--;
				v = g_strndup(h->wbuf->str, len);
				g_string_truncate(h->wbuf, 0);
				ret = node_ops(h->node)->value(xfs_of(req),
							       h->node->acct,
							       h->node->jid, v);
			}
		}
		else if (node_ops(h->node)->line)
			ret = run_lines(xfs_of(req), h, true);
		else if (per_line(h->node) && h->wbuf->len) {
			/* a last line without its newline */
			g_autofree char *word = g_strndup(h->wbuf->str,
							  h->wbuf->len);
			g_string_truncate(h->wbuf, 0);
			ret = node_ops(h->node)->value(xfs_of(req),
						       h->node->acct,
						       h->node->jid, word);
		}
		g_mutex_unlock(&h->lock);
	}
	fuse_reply_err(req, -ret);
}

/* The last close: the last line of `send`, the message of `post`. */
void write_final(Handle *h)
{
	Account *a = h->node->acct;
	GString *b = h->wbuf;
	bool post = h->node->kind == NODE_POST;
	int ret;

	if (post && h->failed)
		return;
	/* after flush_check (the opener's close) this finds nothing; at
	 * release it may not have run on every byte: a write in another
	 * thread can land after the close that flushed */
	if (post)
		drop_cr_before_lf(b);
	if (post && b->len && b->str[b->len - 1] == '\n')
		g_string_truncate(b, b->len - 1);
	if (b->len == 0)
		return;
	ret = check_body(a, b->str, b->len, post);
	if (!ret)
		ret = send_body(h, b->str);
	if (ret)
		xfs_warn("%s: message to %s not sent at close: %s",
			 acct_cfg(a)->jid, h->node->jid, g_strerror(-ret));
}

/* fsync on send/post: answered once the server acknowledged every message
 * written through the descriptor, from the thread that sees the ack; with
 * the error of one that can never go out (a room that put us out, or
 * refused it), if any.  A waiting fsync holds no FUSE thread (park.h); an
 * interrupt answers EINTR.  Who answers is whoever takes the request out
 * of fsync_waits: the ack (fsync_acked), the interrupt (fsync_cancel), or
 * write_fsync itself.  Lock order: fsync_lock, then park.c's. */
static GMutex fsync_lock;
static GHashTable *fsync_waits; /* fuse_req_t -> FsyncWait, under fsync_lock */

/* A waiting fsync: its outbox watch, and what it answers for. */
typedef struct {
	guint64 token;
	Handle *h;     /* valid until the answer: the kernel holds the file */
	guint64 upto;
} FsyncWait;

/* The error of the first of @h's messages up to @upto that could never
 * go out and left the outbox before a watch could hear of it (a room's
 * refusal that came before the fsync); 0 if none. */
static int sent_failed(Handle *h, Outbox *o, guint64 upto)
{
	int err = 0;

	g_mutex_lock(&h->lock);
	for (guint i = 0; h->sent && i < h->sent->len && !err; i++) {
		SeqRange *r = &g_array_index(h->sent, SeqRange, i);
		if (r->first > upto)
			break;
		err = outbox_failed(o, NULL, r->first - 1, MIN(r->last, upto));
	}
	g_mutex_unlock(&h->lock);
	return err;
}

/* An fsync answered for @h's messages up to @upto: a later one answers
 * only for what came after (an error is told once). */
static void sent_answered(Handle *h, guint64 upto)
{
	guint drop = 0;

	g_mutex_lock(&h->lock);
	while (h->sent && drop < h->sent->len) {
		SeqRange *r = &g_array_index(h->sent, SeqRange, drop);
		if (r->first > upto)
			break;
		if (r->last > upto) {
			r->first = upto + 1;
			break;
		}
		drop++;
	}
	if (drop)
		g_array_remove_range(h->sent, 0, drop);
	g_mutex_unlock(&h->lock);
}

/* With fsync_lock held. */
static void fsync_untable(fuse_req_t req)
{
	g_hash_table_remove(fsync_waits, req);
	park_remove(req);
}

/* Take @req out of fsync_waits: its wait (the caller frees it), or NULL
 * when another path answers it. */
static FsyncWait *fsync_take(fuse_req_t req)
{
	FsyncWait *w;

	g_mutex_lock(&fsync_lock);
	w = fsync_waits ? g_hash_table_lookup(fsync_waits, req) : NULL;
	if (w)
		fsync_untable(req);
	g_mutex_unlock(&fsync_lock);
	return w;
}

/* Answer @req for @w's messages, with @err. */
static void fsync_answer(fuse_req_t req, FsyncWait *w, int err)
{
	sent_answered(w->h, w->upto);
	g_free(w);
	fuse_reply_err(req, err);
}

static void fsync_acked(void *data, int err)
{
	FsyncWait *w = fsync_take(data);

	if (w)
		fsync_answer(data, w, err);
}

/* [interrupt] park.c answers EINTR when @req was still waiting; what it
 * waited for stays to be answered by the next fsync. */
static bool fsync_cancel(void *outbox, fuse_req_t req)
{
	FsyncWait *w = fsync_take(req);

	if (!w)
		return false;
	outbox_unwatch(outbox, w->token);
	g_free(w);
	return true;
}

/* The outbox outlives every fsync on it: no reference needed. */
static const ParkClass fsync_park = {.cancel = fsync_cancel};

void write_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	Outbox *o = acct_outbox(h->node->acct);
	FsyncWait *w, *mine = NULL;
	guint64 token, upto;
	bool interrupted = false;
	int err;

	if (!h->wbuf) {
		fuse_reply_err(req, 0);
		return;
	}
	g_mutex_lock(&h->lock);
	upto = h->last_seq;
	g_mutex_unlock(&h->lock);
	if (!upto) {
		fuse_reply_err(req, 0);
		return;
	}
	w = g_new0(FsyncWait, 1);
	w->h = h;
	w->upto = upto;
	if ((err = sent_failed(h, o, upto))) {
		fsync_answer(req, w, err);
		return;
	}
	if (!park_arm(req)) {
		g_free(w);
		return;
	}
	/* in the table before the watch, so an ack at once finds it */
	g_mutex_lock(&fsync_lock);
	if (!fsync_waits)
		fsync_waits = g_hash_table_new(NULL, NULL);
	g_hash_table_insert(fsync_waits, req, w);
	park_add(req, o, &fsync_park);
	g_mutex_unlock(&fsync_lock);
	/* from here @w is whoever takes it out of fsync_waits */
	if (!outbox_watch(o, upto, fsync_acked, req, &token)) {
		if ((w = fsync_take(req)))
			fsync_answer(req, w, sent_failed(h, o, upto));
		return;
	}
	/* still waiting: the token for an interrupt to unwatch, and an
	 * interrupt that came before park_add (park.h) */
	g_mutex_lock(&fsync_lock);
	if ((w = g_hash_table_lookup(fsync_waits, req))) {
		w->token = token;
		interrupted = fuse_req_interrupted(req);
		if (interrupted) {
			fsync_untable(req);
			mine = w;
		}
	}
	g_mutex_unlock(&fsync_lock);
	if (!w) {
		/* answered already: by the ack (the watch is gone), or by an
		 * interrupt that had no token to unwatch: this one goes now,
		 * before it could answer a later request at this address */
		outbox_unwatch(o, token);
		return;
	}
	if (interrupted) {
		outbox_unwatch(o, token);
		g_free(mine);
		fuse_reply_err(req, EINTR);
		return;
	}
	/* a refusal between the first look and the watch: the watch did not
	 * hear of it */
	if ((err = sent_failed(h, o, upto)) && (w = fsync_take(req))) {
		outbox_unwatch(o, w->token);
		fsync_answer(req, w, err);
	}
}
