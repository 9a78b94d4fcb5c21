/* dirs.c - directory changes: mkdir and rmdir under contacts/ (a roster
 * item) and rooms/ (join, leave), each answered once the server did it. */
#include "fs/fs_int.h"

#include <errno.h>
#include <string.h>

#include "base/jid.h"
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
		fuse_reply_err(req, -ret);
		return;
	}
	if (!dir || dir->kind != NODE_CONTACTS) {
		fuse_reply_err(req, dir ? EPERM : ENOENT);
		return;
	}
	if (!roster_has(acct_roster(dir->acct), name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* the roster item goes; the conversation's log stays on disk */
	c.jid = (char *)name;
	ret = contacts_change(x->pool, dir->acct, &c);
	fuse_reply_err(req, -ret);
}
