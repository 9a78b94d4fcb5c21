/* dirs.c - directory changes: mkdir and rmdir under contacts/ (a roster
 * item) and rooms/ (join, leave), each answered once the server did it;
 * rmdir of a conversation that is no roster item forgets its log. */
#include "fs/fs_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
#include "base/log.h"
#include "features/bookmarks.h"
#include "features/contacts.h"
#include "features/muc.h"

/* mkdir rooms/ROOM: join; answered when the server confirmed. */
static void room_mkdir(fuse_req_t req, Xfs *x, TreeNode *dir, const char *name)
{
	g_autofree char *norm = jid_normalize_bare(name, NULL);
	int ret;

	if (!norm || strcmp(norm, name) || !strchr(name, '@')) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = muc_request(x->pool, dir->acct, name, ACCT_ROOM_JOIN, NULL);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	bookmarks_joined(x->pool, dir->acct, name); /* (it logs a failure) */
	node_reply_entry(req, x, tree_room(x->tree, dir, name));
}

void dirs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent), *n;
	RosterChange c = {.add = true};
	int ret;

	if (dir && dir->kind == NODE_ROOMS) {
		room_mkdir(req, x, dir, name);
		return;
	}
	if (!dir || dir->kind != NODE_CONTACTS) {
		fuse_reply_err(req, dir ? EPERM : ENOENT);
		return;
	}
	if (!(n = node_contact(x, dir, name))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (roster_has(acct_roster(dir->acct), name)) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	/* a roster item, and a request for their presence */
	c.jid = (char *)name;
	ret = contacts_change(x->pool, dir->acct, &c);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	node_reply_entry(req, x, n);
}

/* rmdir of a conversation that is no roster item (a typo, a stranger, a
 * removed contact): its log moves to the trash in the data directory and
 * it is listed no more.  A new message starts a new log. */
static void forget(fuse_req_t req, Xfs *x, TreeNode *conv, HistSet *s)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *to = NULL;
	const char *jid = acct_cfg(conv->acct)->jid;
	int ret = s ? hist_set_forget(s, conv->name, &to, &err) : -ENOENT;

	if (ret && ret != -ENOENT)
		xfs_warn("%s: rmdir %s: %s", jid, conv->name,
			 err ? err->message : g_strerror(-ret));
	else if (!ret)
		xfs_info("%s: %s forgotten; its log is in %s", jid, conv->name,
			 to);
	if (!ret)
		tree_detach(x->tree, conv->parent, conv->name);
	fuse_reply_err(req, -ret);
}

void dirs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	Xfs *x = xfs_of(req);
	TreeNode *dir = tree_get(x->tree, parent);
	RosterChange c = {.remove = true};
	int ret;

	if (dir && dir->kind == NODE_ROOMS) {
		/* leave; the room's log stays on disk */
		ret = rooms_has(muc_rooms(dir->acct), name)
			      ? muc_request(x->pool, dir->acct, name,
					  ACCT_ROOM_LEAVE, NULL)
			      : -ENOENT;
		if (!ret) {
			bookmarks_left(x->pool, dir->acct, name);
			tree_detach(x->tree, dir, name);
		}
		fuse_reply_err(req, -ret);
		return;
	}
	if (dir && dir->kind == NODE_PRIVATES) {
		TreeNode *conv = node_private(x, dir, name);
		if (!conv)
			fuse_reply_err(req, ENOENT);
		else
			forget(req, x, conv,
			       muc_private_hists(dir->acct, dir->jid));
		return;
	}
	if (!dir || dir->kind != NODE_CONTACTS) {
		fuse_reply_err(req, dir ? EPERM : ENOENT);
		return;
	}
	if (!roster_has(acct_roster(dir->acct), name)) {
		TreeNode *conv = node_contact(x, dir, name);
		if (!conv)
			fuse_reply_err(req, ENOENT);
		else
			forget(req, x, conv, acct_hists(dir->acct));
		return;
	}
	/* the roster item goes; the conversation's log stays on disk (a
	 * second rmdir forgets it) */
	c.jid = (char *)name;
	ret = contacts_change(x->pool, dir->acct, &c);
	if (!ret)
		tree_detach(x->tree, dir, name);
	fuse_reply_err(req, -ret);
}
