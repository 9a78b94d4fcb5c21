/* fsops.c - the FUSE low-level operations: file operations become reads of
 * account state or requests to the pool.  Nothing here calls libstrophe.
 * This file holds the operation table and what looks at names: lookup,
 * getattr, setattr, the listings of directories; the other operations are
 * in dirs.c, handle.c and write.c (fs_int.h says which calls which). */
#include "fs/fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "base/jid.h"
#include "base/util.h"
#include "features/muc.h"
#include "features/files.h"
#include "features/omemo.h"
#include "features/profile.h"

/* Occupants (but us) and everyone we had a private conversation with. */
static GPtrArray *private_names(Account *a, const char *room)
{
	HistSet *s = muc_private_hists(a, room);
	GPtrArray *names = s ? hist_set_names(s)
			     : g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) occ = rooms_occupant_nicks(muc_rooms(a), room);
	g_autofree char *mine = rooms_nick(muc_rooms(a), room);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < names->len; i++)
		g_hash_table_add(seen, g_ptr_array_index(names, i));
	for (guint i = 0; i < occ->len; i++) {
		char *f;
		if (!g_strcmp0(occ->pdata[i], mine))
			continue;
		f = jid_to_filename(occ->pdata[i]);
		if (f && !g_hash_table_contains(seen, f)) {
			g_ptr_array_add(names, f);
			g_hash_table_add(seen, f);
		} else {
			g_free(f);
		}
	}
	g_ptr_array_sort(names, util_cmp_strp);
	return names;
}

/* Roster items and everyone with a conversation, sorted, once each. */
static GPtrArray *contact_names(Account *a)
{
	GPtrArray *names = hist_set_names(acct_hists(a));
	g_autoptr(GPtrArray) roster = roster_jids(acct_roster(a));
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < names->len; i++)
		g_hash_table_add(seen, g_ptr_array_index(names, i));
	for (guint i = 0; i < roster->len; i++) {
		char *j = g_ptr_array_index(roster, i);
		if (!g_hash_table_contains(seen, j))
			g_ptr_array_add(names, g_strdup(j));
	}
	g_ptr_array_sort(names, util_cmp_strp);
	return names;
}

/* Every valid JID resolves under contacts/, so the lookup the kernel makes
 * before FUSE_MKDIR would find the name and fail the mkdir with EEXIST;
 * FUSE lookups carry no intent.  A lookup made from inside mkdir(2) of a
 * JID that is not in the roster is answered ENOENT instead, so mkdir
 * reaches dirs_mkdir.  Unreadable /proc: resolve as usual. */
static bool caller_in_mkdir(fuse_req_t req)
{
	g_autofree char *path =
		g_strdup_printf("/proc/%d/syscall", (int)fuse_req_ctx(req)->pid);
	g_autofree char *text = NULL;
	long nr;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return false;
	nr = strtol(text, NULL, 10);
#ifdef SYS_mkdir
	if (nr == SYS_mkdir)
		return true;
#endif
	return nr == SYS_mkdirat;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent), *n;

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (dir->kind == NODE_CONTACTS &&
	    !roster_has(acct_roster(dir->acct), name) && caller_in_mkdir(req)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (dir->kind == NODE_ROOMS)
		n = rooms_has(muc_rooms(dir->acct), name)
			    ? tree_room(x->tree, dir, name)
			    : NULL;
	else if (dir->kind == NODE_PRIVATES)
		n = node_private(x, dir, name);
	else if (dir->kind == NODE_FILES)
		n = node_file(x, dir, name);
	else
		n = dir->kind == NODE_CONTACTS ? node_contact(x, dir, name)
					       : tree_child(x->tree, dir, name);
	if (!n || !node_visible(n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	node_reply_entry(req, x, n);
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
	node_fill_attr(x, n, &st);
	fuse_reply_attr(req, &st, tree_is_dir(n) ? 1.0 : 0.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *n = tree_get(x->tree, ino);
	const FileOps *fo = n ? node_ops(n) : NULL;
	struct stat st;
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
			  FUSE_SET_ATTR_CTIME;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* `echo x > status` truncates first: a no-op for a control file */
	if ((to_set & FUSE_SET_ATTR_SIZE) &&
	    !(fo && (fo->line || fo->value || n->kind == NODE_OWN_AVATAR ||
		     n->kind == NODE_UPLOAD))) {
		fuse_reply_err(req, tree_is_dir(n) ? EISDIR : EACCES);
		return;
	}
	if (to_set & ~(times | FUSE_SET_ATTR_SIZE)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* a file being copied in takes its size from its own descriptor
	 * (cp of a sparse file: the hole at the end); a truncate by name
	 * is another writer's, while the copy is still going */
	if ((to_set & FUSE_SET_ATTR_SIZE) && n->kind == NODE_UPLOAD) {
		int err = fi ? -write_truncate((Handle *)(uintptr_t)fi->fh,
					       attr->st_size)
			     : EBUSY;
		if (err) {
			fuse_reply_err(req, err);
			return;
		}
	}
	node_fill_attr(x, n, &st);
	fuse_reply_attr(req, &st, 0.0);
}

/* `stream` -> `.stream`: see NODE_LINK. */
static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	TreeNode *n = tree_get(xfs_of(req)->tree, ino);
	g_autofree char *to = NULL;

	if (!n || n->kind != NODE_LINK) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	to = g_strconcat(".", n->name, NULL);
	fuse_reply_readlink(req, to);
}

/* What the tree refuses.  Its files are its own, each named by what it
 * is: none is made, linked, renamed or removed by name.  Making a name
 * is refused as a directory one may not write to refuses it (EACCES:
 * touch, mkfifo, ln, ln -s); renaming or removing one of the tree's own
 * files is not an operation they have (EPERM: mv, rm).  Never ENOSYS,
 * which reads as something xmppfs has not got to. */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EACCES);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent);
	TreeNode *n = dir && dir->kind == NODE_ACCOUNT
			      ? tree_child(x->tree, dir, name)
			      : NULL;

	/* cp face.png ACCOUNT/avatar.png: our avatar, set at close */
	if (n && n->kind == NODE_OWN_AVATAR) {
		handle_create(req, x, n, fi);
		return;
	}
	/* cp report.pdf contacts/JID/ (or rooms/ROOM/): a file sent, at
	 * close; a name of the conversation's own files is not one */
	if (dir && dir->kind == NODE_CONTACT && name[0] != '.') {
		/* an encrypted conversation no trusted device can read
		 * takes no file: refused before a byte is copied */
		const char *enc = NULL;
		int ret = omemo_send_mode(dir->acct, dir->jid, &enc);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
	}
	if (dir && (dir->kind == NODE_CONTACT || dir->kind == NODE_ROOM) &&
	    name[0] != '.' && strlen(name) <= 255 &&
	    g_utf8_validate(name, -1, NULL) &&
	    (n = tree_upload(x->tree, dir, name))) {
		handle_create(req, x, n, fi);
		return;
	}
	fuse_reply_err(req, EACCES);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, EACCES);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, EACCES);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent);
	TreeNode *n = dir && dir->kind == NODE_ACCOUNT
			      ? tree_child(x->tree, dir, name)
			      : NULL;

	/* rm contacts/JID/files/NAME: a fetched file goes */
	if (dir && dir->kind == NODE_FILES) {
		g_autofree char *path = files_path(dir->acct, dir->jid, name);
		fuse_reply_err(req, !path ? ENOENT
				   : unlink(path) ? errno : 0);
		return;
	}
	/* rm ACCOUNT/avatar.png: our avatar taken back */
	if (n && n->kind == NODE_OWN_AVATAR) {
		fuse_reply_err(req, node_visible(n)
					    ? -profile_remove_avatar(x->pool,
								     n->acct)
					    : ENOENT);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, EPERM);
}

/* ".", ".." and the children of @dir, sorted where they are dynamic. */
static GPtrArray *list_dir(Xfs *x, TreeNode *dir)
{
	GPtrArray *names;

	if (dir->kind == NODE_CONTACTS) {
		names = contact_names(dir->acct);
		for (guint i = 0; i < names->len; i++)
			tree_contact(x->tree, dir, g_ptr_array_index(names, i));
	} else if (dir->kind == NODE_ROOMS) {
		names = rooms_list(muc_rooms(dir->acct));
		for (guint i = 0; i < names->len; i++)
			tree_room(x->tree, dir, g_ptr_array_index(names, i));
	} else if (dir->kind == NODE_FILES) {
		names = files_list(dir->acct, dir->jid);
		for (guint i = 0; i < names->len; i++)
			tree_file(x->tree, dir, g_ptr_array_index(names, i));
	} else if (dir->kind == NODE_PRIVATES) {
		names = private_names(dir->acct, dir->jid);
		for (guint i = 0; i < names->len; i++)
			tree_private(x->tree, dir, g_ptr_array_index(names, i));
	} else {
		names = tree_list(x->tree, dir);
		for (guint i = names->len; i-- > 0;) {
			TreeNode *c = tree_child(x->tree, dir,
						 g_ptr_array_index(names, i));
			if (c && !node_visible(c))
				g_ptr_array_remove_index(names, i);
		}
	}
	g_ptr_array_insert(names, 0, g_strdup(".."));
	g_ptr_array_insert(names, 0, g_strdup("."));
	return names;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, ino);

	if (!dir || !tree_is_dir(dir)) {
		fuse_reply_err(req, dir ? ENOTDIR : ENOENT);
		return;
	}
	fi->fh = (uintptr_t)list_dir(x, dir);
	fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	if (fi->fh)
		g_ptr_array_unref((GPtrArray *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
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
	if (fi->fh) {
		/* the listing taken at opendir: pages of one readdir agree */
		names = g_ptr_array_ref((GPtrArray *)(uintptr_t)fi->fh);
	} else {
		names = list_dir(x, dir);
	}
	buf = g_malloc(size);
	for (guint i = off; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		TreeNode *c = tree_child(x->tree, dir, name);
		struct stat st = {.st_ino = c ? c->ino : ino,
				  .st_mode = (!c || tree_is_dir(c)) ? S_IFDIR
					     : c->kind == NODE_LINK ? S_IFLNK
								    : S_IFREG};
		size_t need = fuse_add_direntry(req, buf + used, size - used,
						name, &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096,
			     .f_namemax = 3071};

	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops xfs_lowlevel_ops = {
	.init = handle_init,
	.lookup = op_lookup,
	.readlink = op_readlink,
	.mkdir = dirs_mkdir,
	.rmdir = dirs_rmdir,
	.mknod = op_mknod,
	.create = op_create,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rename = op_rename,
	.poll = handle_poll,
	.fsync = write_fsync,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = handle_open,
	.read = handle_read,
	.write = write_op,
	.flush = write_flush,
	.release = handle_release,
	.statfs = op_statfs,
};

const struct fuse_lowlevel_ops *xfs_ops(void)
{
	return &xfs_lowlevel_ops;
}
