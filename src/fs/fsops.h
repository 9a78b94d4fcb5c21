/* fsops.h - the FUSE low-level operations of xmppfs. */
#pragma once

#include <fuse_lowlevel.h>
#include <sys/types.h>
#include <time.h>

#include "fs/tree.h"
#include "xmpp/pool.h"

/* The userdata of the FUSE session. */
typedef struct {
	Tree *tree;
	Pool *pool;
	uid_t uid; /* files belong to the mounting user (or -o uid=, gid=) */
	gid_t gid;
	int umask; /* -o umask=: group and others get the owner's bits but
		    * these; -1: the owner's only */
	time_t mount_time;
	struct fuse_session *se; /* for the kernel cache's invalidations */
} Xfs;

const struct fuse_lowlevel_ops *xfs_ops(void);
