/* main.c - options, configuration, mount, then the FUSE loop.
 *
 * Order matters: everything that can fail because of the user's input
 * (options, the config file, password commands) is checked before the
 * mount, so a mistake never leaves a half-working mount behind.  The pool
 * thread starts only after the fork into the background, since fork()
 * keeps only the calling thread.
 *
 * Then, as sshfs does, the first logins decide: for up to
 * XFS_FIRST_LOGIN_WAIT_S each account's first attempt is watched (while
 * the mount already answers); one the server refused (password,
 * certificate) is one line on stderr, a network failure a warning line
 * (xmppfs is offline-first: it retries, and messages wait in the outbox).
 * When no account can log in, the mount goes and the status is 1; in the
 * background, the parent waits for this verdict and exits with it.
 *
 * SIGHUP reads the config again (pool_reload) instead of unmounting, as
 * libfuse's handlers would; see "SIGHUP" below. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
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
	/* -o uid=,gid=,umask= (for allow_other): whose the files are, and
	 * what group and others may do */
	unsigned uid, gid, umask;
	int uid_set, gid_set, umask_set;
	/* the words that are no option: [SOURCE] MOUNTPOINT (mount(8)
	 * calls helpers as "xmppfs SOURCE MOUNTPOINT -o OPTS") */
	char *words[3];
	int n_words;
} Options;

#define XFS_FIRST_LOGIN_WAIT_S 10
/* More accounts than this still logging in: one line says how many. */
#define XFS_FIRST_LOGIN_LINES 5

/* ---- into the background, with a verdict for the parent ---- */

/* Like fuse_daemonize(), but the parent stays until the child says how
 * the first logins went (daemon_report), and exits with that status:
 * a mount that cannot work fails where the user typed it.  Returns the
 * child's end of the pipe (the parent never returns). */
static int daemon_start(void)
{
	int fds[2];
	pid_t pid;
	char status;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		perror("xmppfs: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("xmppfs: fork");
		exit(1);
	}
	if (pid > 0) {
		ssize_t r;
		close(fds[1]);
		do
			r = read(fds[0], &status, 1);
		while (r < 0 && errno == EINTR);
		/* nothing: the child died before it could say (its own
		 * message is on stderr) */
		_exit(r == 1 ? (unsigned char)status : 1);
	}
	close(fds[0]);
	if (setsid() < 0)
		perror("xmppfs: setsid");
	if (chdir("/") < 0)
		perror("xmppfs: chdir /");
	return fds[1];
}

/* Tell the waiting parent @status (once; -1: in the foreground, nothing
 * waits) and leave the terminal. */
static void daemon_report(int *fd, int status)
{
	char c = (char)status;
	int null;

	if (*fd < 0)
		return;
	if (write(*fd, &c, 1) != 1)
		perror("xmppfs: telling the parent");
	close(*fd);
	*fd = -1;
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/* ---- the first logins ---- */

typedef struct {
	Pool *pool;
	struct fuse_session *se;
	int report_fd;  /* the parent's pipe; -1 in the foreground */
	gint none_works; /* atomic: every account was refused */
	gint stop;       /* atomic: unmounted meanwhile, nothing to tell */
	GThread *thread;
} FirstLogins;

/* One line for @a's first attempt once it is decided; true then. */
static bool tell_first_login(Account *a, guint *refused)
{
	g_autofree char *error = NULL;
	bool retrying;
	const char *jid = acct_cfg(a)->jid;
	AcctState st = acct_first_verdict(a, &error, &retrying);

	if (st == ACCT_ONLINE)
		return true;
	if (st == ACCT_FAILED) {
		fprintf(stderr,
			"xmppfs: %s: %s; not retried until you fix it and "
			"write 'reconnect' to %s/status\n",
			jid, error ? error : "the login was refused", jid);
		(*refused)++;
		return true;
	}
	if (retrying && error) {
		fprintf(stderr,
			"xmppfs: warning: %s: %s; retrying (messages written "
			"meanwhile wait in its outbox)\n",
			jid, error);
		return true;
	}
	return false;
}

static gpointer first_logins_run(gpointer data)
{
	FirstLogins *f = data;
	guint n = pool_n_accounts(f->pool), told = 0, refused = 0;
	g_autofree bool *done = g_new0(bool, n);
	gint64 deadline = g_get_monotonic_time() +
			  XFS_FIRST_LOGIN_WAIT_S * G_USEC_PER_SEC;

	for (;;) {
		/* read before the states: a change after it ends the wait */
		guint64 seen = pool_state_serial(f->pool);
		for (guint i = 0; i < n; i++)
			if (!done[i] &&
			    (done[i] = tell_first_login(pool_account(f->pool, i),
							&refused)))
				told++;
		if (told == n || g_get_monotonic_time() >= deadline)
			break;
		if (g_atomic_int_get(&f->stop))
			return NULL;
		pool_state_wait(f->pool, seen, deadline);
	}
	if (n - told > XFS_FIRST_LOGIN_LINES) {
		/* a thousand accounts logging in: one line, not a page */
		fprintf(stderr,
			"xmppfs: warning: %u accounts not online after %d s; "
			"still trying (ACCOUNT/connection says how far each "
			"got)\n",
			n - told, XFS_FIRST_LOGIN_WAIT_S);
	} else {
		for (guint i = 0; i < n; i++)
			if (!done[i])
				fprintf(stderr,
					"xmppfs: warning: %s: not online "
					"after %d s; still trying\n",
					acct_cfg(pool_account(f->pool, i))->jid,
					XFS_FIRST_LOGIN_WAIT_S);
	}
	if (n && refused == n) {
		fprintf(stderr, "xmppfs: no account can log in: unmounted\n");
		g_atomic_int_set(&f->none_works, 1);
		/* the FUSE loop ends when its mount is gone; run_session
		 * reports after it */
		fuse_session_unmount(f->se);
		return NULL;
	}
	daemon_report(&f->report_fd, 0);
	return NULL;
}

/* ---- SIGHUP: read the config again ---- */

/* fuse_set_signal_handlers makes SIGHUP end the FUSE loop, like SIGTERM;
 * for a daemon it conventionally means "read your config again", and
 * that is what it does here (pool_reload).  The handler, installed over
 * libfuse's, only writes a byte to a pipe (async-signal-safe); the
 * reloader thread reads it and reloads, since password commands block
 * and neither the FUSE loop nor the pool thread may wait for them.
 * Every thread but the main one has SIGHUP blocked (run_session), so
 * the handler never interrupts the pool's or a lookup's system calls. */
typedef struct {
	int fds[2];     /* the handler writes fds[1]; -1: none */
	Pool *pool;
	GThread *thread;
	gint stop;      /* atomic: reloader_stop asks the thread to end */
} Reloader;

static Reloader reloader = {.fds = {-1, -1}};

static void hup_handler(int sig)
{
	int saved = errno;
	char c = 'h';

	(void)sig;
	/* full (EAGAIN): reloads are due already, one will read the file */
	if (write(reloader.fds[1], &c, 1) < 0) {
	}
	errno = saved;
}

static gpointer reloader_run(gpointer data)
{
	Reloader *r = data;
	char buf[256];

	for (;;) {
		ssize_t n = read(r->fds[0], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		/* (no end of file to wait for: the parent that waits for
		 * daemon_report holds the other end too) */
		if (n <= 0 || g_atomic_int_get(&r->stop))
			return NULL;
		/* any number of signals meanwhile: one reload */
		xfs_info("SIGHUP: reading the config again");
		pool_reload(r->pool, NULL);
	}
}

/* Before the mount: the pipe and the handler.  When the pipe cannot be
 * made, SIGHUP is ignored rather than left to unmount. */
static void reloader_install(void)
{
	struct sigaction sa = {.sa_handler = hup_handler,
			       .sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	if (pipe2(reloader.fds, O_CLOEXEC) < 0) {
		xfs_warn("no pipe for SIGHUP (%s): it is ignored, and a "
			 "changed config needs a remount", g_strerror(errno));
		reloader.fds[0] = reloader.fds[1] = -1;
		sa.sa_handler = SIG_IGN;
	} else {
		/* above 1024, kept for sockets (fdcache.h) */
		reloader.fds[0] = fdcache_high(reloader.fds[0]);
		reloader.fds[1] = fdcache_high(reloader.fds[1]);
		fcntl(reloader.fds[1], F_SETFL, O_NONBLOCK);
	}
	sigaction(SIGHUP, &sa, NULL);
}

/* After the pool started: the thread that reloads. */
static void reloader_start(Pool *pool)
{
	if (reloader.fds[0] < 0)
		return;
	reloader.pool = pool;
	reloader.thread = g_thread_new("reloader", reloader_run, &reloader);
}

/* Before the pool stops: no more reloads (a SIGHUP during the close is
 * ignored), the one under way finished. */
static void reloader_stop(void)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};
	char c = 's';

	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	g_atomic_int_set(&reloader.stop, 1);
	/* full (EAGAIN): the thread has bytes to wake it already */
	if (reloader.fds[1] >= 0 && write(reloader.fds[1], &c, 1) < 0 &&
	    errno != EAGAIN)
		xfs_warn("cannot stop the reloader: %s", g_strerror(errno));
	if (reloader.thread)
		g_thread_join(reloader.thread);
	if (reloader.fds[1] >= 0)
		close(reloader.fds[1]);
	if (reloader.fds[0] >= 0)
		close(reloader.fds[0]);
	reloader = (Reloader){.fds = {-1, -1}};
}

static const struct fuse_opt opt_spec[] = {
	{"--config %s", offsetof(Options, config), 0},
	{"--config=%s", offsetof(Options, config), 0},
	{"--data-dir %s", offsetof(Options, data_dir), 0},
	{"--data-dir=%s", offsetof(Options, data_dir), 0},
	/* the same as mount options, for fstab and mount -t fuse.xmppfs */
	{"config=%s", offsetof(Options, config), 0},
	{"data_dir=%s", offsetof(Options, data_dir), 0},
	{"uid=%u", offsetof(Options, uid), 0},
	{"uid=", offsetof(Options, uid_set), 1},
	{"gid=%u", offsetof(Options, gid), 0},
	{"gid=", offsetof(Options, gid_set), 1},
	{"umask=%o", offsetof(Options, umask), 0},
	{"umask=", offsetof(Options, umask_set), 1},
	FUSE_OPT_END,
};

/* The words that are no option are collected; main() hands the
 * mountpoint back to libfuse. */
static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	Options *opt = data;

	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (opt->n_words >= (int)G_N_ELEMENTS(opt->words)) {
		fprintf(stderr, "xmppfs: too many arguments: %s (see --help)\n",
			arg);
		return -1;
	}
	opt->words[opt->n_words++] = g_strdup(arg);
	return 0;
}

/* mount(8)'s SOURCE: a config file's path, or any word without a slash
 * (say "xmppfs"), which leaves the config to --config / config= or the
 * default.  -1 when it cannot be. */
static int take_source(Options *opt, const char *source)
{
	if (!strchr(source, '/'))
		return 0;
	if (opt->config && strcmp(opt->config, source)) {
		fprintf(stderr,
			"xmppfs: two configs: %s (the source) and %s "
			"(config=); give one\n",
			source, opt->config);
		return -1;
	}
	if (!opt->config)
		opt->config = g_strdup(source);
	return 0;
}

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
	FirstLogins first = {.report_fd = -1};
	sigset_t hup;
	int ret = 1;

	se = fuse_session_new(args, xfs_ops(), sizeof *xfs_ops(), x);
	if (!se)
		return 1;
	x->se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	reloader_install(); /* over libfuse's SIGHUP */
	if (fuse_session_mount(se, fo->mountpoint) != 0)
		goto out_signals;
	first.pool = x->pool;
	first.se = se;
	first.report_fd = fo->foreground ? -1 : daemon_start();
	xfs_log_init(fo->foreground, fo->debug);
	for (guint i = 0; data_locks && i < data_locks->len; i++)
		datalock_note_pid(g_array_index(data_locks, int, i),
				  fo->mountpoint); /* the daemon's pid now */
	/* fuse_set_signal_handlers ignores SIGPIPE; make sure of it */
	signal(SIGPIPE, SIG_IGN);
	/* the threads made from here on (and theirs) leave SIGHUP to this
	 * one: see "SIGHUP" above */
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hup, NULL);
	wd_start();
	if (pool_start(x->pool) != 0) {
		pthread_sigmask(SIG_UNBLOCK, &hup, NULL);
		xfs_err("cannot start the connection pool thread");
		goto out_unmount;
	}
	first.thread = g_thread_new("first-logins", first_logins_run, &first);
	reloader_start(x->pool);
	pthread_sigmask(SIG_UNBLOCK, &hup, NULL);
	if (fo->singlethread) {
		/* -s: one thread serves every request; a read that waits is
		 * parked (park.h), so it holds nobody else */
		ret = fuse_session_loop(se) != 0;
	} else {
		lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, fo->clone_fd);
		/* UINT_MAX: not given, keep libfuse's defaults */
		if (fo->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc,
						       fo->max_idle_threads);
		if (fo->max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(lc, fo->max_threads);
		ret = fuse_session_loop_mt(se, lc) != 0;
		fuse_loop_cfg_destroy(lc);
	}
	g_atomic_int_set(&first.stop, 1);
	pool_state_bump(x->pool); /* ends first_logins_run's wait */
	g_thread_join(first.thread);
	if (g_atomic_int_get(&first.none_works))
		ret = 1;
	reloader_stop();
	pool_stop(x->pool);
out_unmount:
	fuse_session_unmount(se);
	/* a verdict nobody gave yet (a failed start, or an unmount within
	 * the first seconds): the mount is gone now */
	daemon_report(&first.report_fd, ret ? 1 : 0);
out_signals:
	reloader_stop(); /* (again: the failed paths) */
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
	/* the type is fuse.xmppfs whatever the binary is called (libfuse
	 * takes the subtype from argv[0]), so findmnt -t and fstab agree */
	fuse_opt_add_arg(args,
			 "-odefault_permissions,fsname=xmppfs,subtype=xmppfs");

	x.pool = pool_new(cfg, data_dir, &err);
	if (!x.pool) {
		fprintf(stderr, "xmppfs: %s\n", err->message);
		unlock_data_dirs();
		return 1;
	}
	for (guint i = 0; i < pool_n_accounts(x.pool); i++)
		featureset_attach(pool_account(x.pool, i));
	x.tree = tree_new(x.pool);
	x.uid = opt->uid_set ? opt->uid : getuid();
	x.gid = opt->gid_set ? opt->gid : getgid();
	x.umask = opt->umask_set ? (int)(opt->umask & 0777) : -1;
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

	if (fuse_opt_parse(&args, &opt, opt_spec, opt_proc) != 0)
		goto out;
	/* [SOURCE] MOUNTPOINT: the mountpoint goes back to libfuse */
	if (opt.n_words == 3) {
		fprintf(stderr, "xmppfs: too many arguments (see --help)\n");
		goto out;
	}
	if (opt.n_words == 2 && take_source(&opt, opt.words[0]) != 0)
		goto out;
	if (opt.n_words)
		fuse_opt_add_arg(&args, opt.words[opt.n_words - 1]);
	if (fuse_parse_cmdline(&args, &fo) != 0)
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
	for (int i = 0; i < opt.n_words; i++)
		g_free(opt.words[i]);
	fuse_opt_free_args(&args);
	return ret;
}
