/* fsops.c - the FUSE low-level operations: file operations become reads of
 * account state or requests to the pool.  Nothing here calls libstrophe.
 *
 * Small state files (`connection`, `status`) are opened with direct_io:
 * each open takes a snapshot of the text, getattr reports the size of the
 * current text, and the kernel caches nothing, so `cat` always sees one
 * consistent version and never a stale or zero size. */
#include "fsops.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

typedef struct {
	NodeKind kind;
	mode_t mode;
	char *(*text)(Account *a);
	int (*line)(Xfs *x, Account *a, const char *line);
} FileOps;

typedef struct {
	TreeNode *node;
	char *text;    /* snapshot taken at open, for reads */
	gsize len;
	GString *wbuf; /* written bytes not yet ending in a newline */
	GMutex lock;   /* protects wbuf: one descriptor, many threads */
} Handle;

static int status_line(Xfs *x, Account *a, const char *line)
{
	AcctShow show;
	g_autofree char *text = NULL;
	int r = acct_parse_status(line, &show, &text);

	if (r)
		return r;
	return pool_set_show(x->pool, a, show, text);
}

static const FileOps file_ops[] = {
	{NODE_CONNECTION, 0400, acct_connection_text, NULL},
	{NODE_STATUS, 0600, acct_status_text, status_line},
};

static const FileOps *ops_of(const TreeNode *n)
{
	for (guint i = 0; i < G_N_ELEMENTS(file_ops); i++)
		if (file_ops[i].kind == n->kind)
			return &file_ops[i];
	return NULL;
}

static Xfs *xfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(Xfs *x, const TreeNode *n, struct stat *st)
{
	const FileOps *fo = ops_of(n);

	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_uid = x->uid;
	st->st_gid = x->gid;
	st->st_atime = st->st_mtime = st->st_ctime = x->mount_time;
	if (tree_is_dir(n)) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | (fo ? fo->mode : 0400);
	st->st_nlink = 1;
	if (fo && fo->text) {
		g_autofree char *text = fo->text(n->acct);
		st->st_size = strlen(text);
		st->st_mtime = st->st_ctime = acct_since(n->acct);
	}
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

static void reply_entry(fuse_req_t req, Xfs *x, const TreeNode *n)
{
	struct fuse_entry_param e = {0};

	e.ino = n->ino;
	e.generation = 1;
	fill_attr(x, n, &e.attr);
	/* accounts never change while mounted; file attributes always may */
	e.entry_timeout = 1.0;
	e.attr_timeout = tree_is_dir(n) ? 1.0 : 0.0;
	fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent), *n;

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	n = tree_child(x->tree, dir, name);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, x, n);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(x, n, &st);
	fuse_reply_attr(req, &st, tree_is_dir(n) ? 1.0 : 0.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	const FileOps *fo = n ? ops_of(n) : NULL;
	struct stat st;
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
			  FUSE_SET_ATTR_CTIME;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* `echo x > status` truncates first: a no-op for a control file */
	if ((to_set & FUSE_SET_ATTR_SIZE) && !(fo && fo->line)) {
		fuse_reply_err(req, tree_is_dir(n) ? EISDIR : EACCES);
		return;
	}
	if (to_set & ~(times | FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fill_attr(x, n, &st);
	fuse_reply_attr(req, &st, 0.0);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, ino);
	g_autoptr(GPtrArray) names = NULL;
	g_autofree char *buf = NULL;
	size_t used = 0;

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	names = tree_list(x->tree, dir);
	g_ptr_array_insert(names, 0, g_strdup(".."));
	g_ptr_array_insert(names, 0, g_strdup("."));
	buf = g_malloc(size);
	for (guint i = off; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		TreeNode *c = tree_child(x->tree, dir, name);
		struct stat st = {.st_ino = c ? c->ino : ino,
				  .st_mode = (!c || tree_is_dir(c)) ? S_IFDIR
								    : S_IFREG};
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						name, &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	const FileOps *fo = n ? ops_of(n) : NULL;
	int acc = fi->flags & O_ACCMODE;
	Handle *h;

	if (!fo) {
		fuse_reply_err(req, n ? EISDIR : ENOENT);
		return;
	}
	if ((acc != O_RDONLY && !fo->line) || (acc != O_WRONLY && !fo->text)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	h = g_new0(Handle, 1);
	h->node = n;
	g_mutex_init(&h->lock);
	if (acc != O_WRONLY) {
		h->text = fo->text(n->acct);
		h->len = strlen(h->text);
	}
	if (acc != O_RDONLY)
		h->wbuf = g_string_new(NULL);
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	if (!h->text) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if ((gsize)off >= h->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Reply from a copy: as soon as the kernel has the reply the reader
	 * may close, and op_release free h->text, while fuse_reply_buf (and
	 * ASan's check after writev) still looks at the buffer. */
	gsize n = MIN(size, h->len - off);
	g_autofree char *copy = g_memdup2(h->text + off, n);
	fuse_reply_buf(req, copy, n);
}

/* Run every complete line in h->wbuf; the first error wins and the rest of
 * the buffer is dropped so a bad write changes nothing after it. */
static int run_lines(Xfs *x, Handle *h, bool flush_all)
{
	const FileOps *fo = ops_of(h->node);
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

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	int ret;

	if (!h->wbuf) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (size > ACCT_STATUS_TEXT_MAX + 1 ||
	    h->wbuf->len + size > ACCT_STATUS_TEXT_MAX + 1) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	g_mutex_lock(&h->lock);
	g_string_append_len(h->wbuf, data, size);
	ret = run_lines(x, h, false);
	g_mutex_unlock(&h->lock);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;
	int ret = 0;

	if (h->wbuf) {
		g_mutex_lock(&h->lock);
		ret = run_lines(xfs_of(req), h, true);
		g_mutex_unlock(&h->lock);
	}
	fuse_reply_err(req, -ret);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	Handle *h = (Handle *)(uintptr_t)fi->fh;

	g_free(h->text);
	if (h->wbuf)
		g_string_free(h->wbuf, TRUE);
	g_mutex_clear(&h->lock);
	g_free(h);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096,
			     .f_namemax = 3071};

	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops xfs_lowlevel_ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.statfs = op_statfs,
};

const struct fuse_lowlevel_ops *xfs_ops(void)
{
	return &xfs_lowlevel_ops;
}
