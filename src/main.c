/* main.c - options, configuration, mount, then the FUSE loop.
 *
 * Order matters: everything that can fail because of the user's input
 * (options, the config file, password commands) is checked before the
 * mount, so a mistake never leaves a half-working mount behind.  The pool
 * thread starts only after fuse_daemonize(), since fork() keeps only the
 * calling thread. */
#include <errno.h>
#include <limits.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "features/featureset.h"
#include "fs/fsops.h"
#include "fs/tree.h"
#include "store/datalock.h"
#include "store/fdcache.h"
#include "xmpp/pool.h"
#include "xmpp/watchdog.h"

typedef struct {
	char *config;
	char *data_dir;
} Options;

static const struct fuse_opt opt_spec[] = {
	{"--config %s", offsetof(Options, config), 0},
	{"--config=%s", offsetof(Options, config), 0},
	{"--data-dir %s", offsetof(Options, data_dir), 0},
	{"--data-dir=%s", offsetof(Options, data_dir), 0},
	FUSE_OPT_END,
};

static void usage(const char *prog)
{
	printf("usage: %s [options] MOUNTPOINT\n\n"
	       "Mount XMPP accounts as a directory.\n\n"
	       "    --config FILE      accounts (default "
	       "$XDG_CONFIG_HOME/xmppfs/config)\n"
	       "    --data-dir DIR     logs and outbox (default "
	       "$XDG_DATA_HOME/xmppfs)\n"
	       "    -f                 stay in the foreground\n"
	       "    -d                 debug: foreground, log the XML stream "
	       "to stderr\n"
	       "    -o OPT[,OPT...]    mount options\n"
	       "    -h, --help         this help\n"
	       "    -V, --version      print the version\n\n"
	       "See xmppfs(1).  FUSE options:\n",
	       prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* Paths are used after fuse_daemonize() changed to "/". */
static char *absolute(const char *path)
{
	return g_canonicalize_filename(path, NULL);
}

static int make_data_dirs(const char *data_dir, const CfgFile *cfg)
{
	for (guint i = 0; i < cfg->accounts->len; i++) {
		const CfgAccount *ac = g_ptr_array_index(cfg->accounts, i);
		g_autofree char *dir = g_build_filename(data_dir, ac->jid, NULL);
		if (g_mkdir_with_parents(dir, 0700) < 0) {
			fprintf(stderr, "xmppfs: cannot create %s: %s\n", dir,
				g_strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Each account's socket must stay below 1024 (libstrophe's select);
 * every file descriptor of xmppfs goes above when the limit allows
 * (fdcache.h).  So: the soft limit raised to the hard one, and the files
 * kept open at once bounded by what is left. */
#define XFS_ACCOUNTS_MAX 1000

static void size_descriptors(guint accounts)
{
	rlim_t lim = fdcache_raise_limit();
	/* per account below 1024 when nothing may go above: its socket,
	 * the login's watchdog dup, the data lock; and a margin */
	rlim_t fixed = 3 * (rlim_t)accounts + 64;

	if (lim >= 4096)
		fdcache_set_capacity(256);
	else
		fdcache_set_capacity(lim > fixed + 16 ? (guint)(lim - fixed) : 16);
}

/* The locks of the accounts' data directories, held for the life of the
 * process (datalock.h). */
static GArray *data_locks;

static int lock_data_dirs(const char *data_dir, const CfgFile *cfg,
			  const char *mountpoint)
{
	data_locks = g_array_new(FALSE, FALSE, sizeof(int));
	for (guint i = 0; i < cfg->accounts->len; i++) {
		const CfgAccount *ac = g_ptr_array_index(cfg->accounts, i);
		g_autofree char *dir = g_build_filename(data_dir, ac->jid, NULL);
		g_autoptr(GError) err = NULL;
		int fd = datalock_take(dir, mountpoint, &err);
		if (fd < 0) {
			fprintf(stderr, "xmppfs: %s\n", err->message);
			return -1;
		}
		g_array_append_val(data_locks, fd);
	}
	return 0;
}

static void unlock_data_dirs(void)
{
	for (guint i = 0; data_locks && i < data_locks->len; i++)
		close(g_array_index(data_locks, int, i));
	g_clear_pointer(&data_locks, g_array_unref);
}

static int run_session(struct fuse_args *args,
		       const struct fuse_cmdline_opts *fo, Xfs *x)
{
	struct fuse_session *se;
	struct fuse_loop_config *lc;
	int ret = 1;

	se = fuse_session_new(args, xfs_ops(), sizeof *xfs_ops(), x);
	if (!se)
		return 1;
	x->se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, fo->mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(fo->foreground);
	xfs_log_init(fo->foreground, fo->debug);
	for (guint i = 0; data_locks && i < data_locks->len; i++)
		datalock_note_pid(g_array_index(data_locks, int, i),
				  fo->mountpoint); /* the daemon's pid now */
	/* fuse_set_signal_handlers ignores SIGPIPE; make sure of it */
	signal(SIGPIPE, SIG_IGN);
	wd_start();
	if (pool_start(x->pool) != 0) {
		xfs_err("cannot start the connection pool thread");
		goto out_unmount;
	}
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(lc, fo->clone_fd);
	/* UINT_MAX: not given, keep libfuse's defaults */
	if (fo->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(lc, fo->max_idle_threads);
	if (fo->max_threads != UINT_MAX)
		fuse_loop_cfg_set_max_threads(lc, fo->max_threads);
	ret = fuse_session_loop_mt(se, lc) != 0;
	fuse_loop_cfg_destroy(lc);
	pool_stop(x->pool);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret;
}

/* No config at @path: say what to put there (stderr; a template a user
 * can copy, as ssh's and sshfs's users are used to). */
static void missing_config(const char *path)
{
	fprintf(stderr,
		"xmppfs: %s: no such file; create it, readable by you only "
		"(chmod 600), with one group per account, for example:\n"
		"\n"
		"[you@example.org]\n"
		"password_command = pass show xmpp/you@example.org\n"
		"# or: password = ... (the file must then be mode 600)\n"
		"# host = xmpp.example.org   (when DNS SRV does not say)\n"
		"# ca_file = /path/to/ca.pem (a server with its own CA)\n"
		"\n"
		"or name another with --config FILE (see xmppfs(1), "
		"CONFIGURATION)\n",
		path);
}

static int run(struct fuse_args *args, struct fuse_cmdline_opts *fo,
	       Options *opt)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(CfgFile) cfg = NULL;
	g_autofree char *config_path = NULL, *data_dir = NULL;
	Xfs x = {0};
	int ret;

	if (!fo->mountpoint) {
		fprintf(stderr, "xmppfs: no mountpoint given (see --help)\n");
		return 2;
	}
	config_path = opt->config ? absolute(opt->config) : cfg_default_path();
	cfg = cfg_load(config_path, &err);
	if (!cfg && !g_file_test(config_path, G_FILE_TEST_EXISTS)) {
		missing_config(config_path);
		return 1;
	}
	if (!cfg) {
		fprintf(stderr, "xmppfs: %s\n", err->message);
		return 1;
	}
	if (cfg->accounts->len > XFS_ACCOUNTS_MAX) {
		fprintf(stderr,
			"xmppfs: %s: %u accounts; one mount serves at most %d "
			"(libstrophe 0.12 waits on sockets with select(), which "
			"takes descriptors below 1024 only): split them over "
			"several mounts\n",
			config_path, cfg->accounts->len, XFS_ACCOUNTS_MAX);
		return 1;
	}
	size_descriptors(cfg->accounts->len);
	data_dir = opt->data_dir
			   ? absolute(opt->data_dir)
			   : g_build_filename(g_get_user_data_dir(), "xmppfs",
					      NULL);
	if (make_data_dirs(data_dir, cfg) != 0)
		return 1;
	{
		g_autofree char *mp = absolute(fo->mountpoint);
		if (lock_data_dirs(data_dir, cfg, mp) != 0) {
			unlock_data_dirs();
			return 1;
		}
	}
	fuse_opt_add_arg(args, "-odefault_permissions,fsname=xmppfs");

	x.pool = pool_new(cfg, data_dir, &err);
	if (!x.pool) {
		fprintf(stderr, "xmppfs: %s\n", err->message);
		unlock_data_dirs();
		return 1;
	}
	for (guint i = 0; i < pool_n_accounts(x.pool); i++)
		featureset_attach(pool_account(x.pool, i));
	x.tree = tree_new(x.pool);
	x.uid = getuid();
	x.gid = getgid();
	x.mount_time = time(NULL);
	ret = run_session(args, fo, &x);
	tree_free(x.tree);
	pool_free(x.pool);
	unlock_data_dirs();
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts fo = {0};
	Options opt = {0};
	int ret = 2;

	if (fuse_opt_parse(&args, &opt, opt_spec, NULL) != 0 ||
	    fuse_parse_cmdline(&args, &fo) != 0)
		goto out;
	ret = 0;
	if (fo.show_help)
		usage(argv[0]);
	else if (fo.show_version)
		printf("xmppfs %s\nFUSE library version %s\n", XFS_VERSION,
		       fuse_pkgversion());
	else
		ret = run(&args, &fo, &opt);
out:
	free(fo.mountpoint);
	free(opt.config);
	free(opt.data_dir);
	fuse_opt_free_args(&args);
	return ret;
}
