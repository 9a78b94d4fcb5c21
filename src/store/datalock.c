/* datalock.c - see datalock.h. */
#include "store/datalock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/util.h"
#include "store/fdcache.h"

void datalock_note_pid(int fd, const char *mountpoint)
{
	g_autofree char *text =
		g_strdup_printf("%ld %s\n", (long)getpid(), mountpoint);

	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, text, strlen(text), 0);
}

/* "process 123 (mounted on /x)" from what the holder wrote. */
static char *holder(int fd)
{
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	char *sp;

	if (n <= 0)
		return g_strdup("another process");
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	sp = strchr(buf, ' ');
	if (!sp)
		return g_strdup_printf("process %s", buf);
	*sp = '\0';
	return g_strdup_printf("process %s (xmppfs mounted on %s)", buf, sp + 1);
}

int datalock_take(const char *dir, const char *mountpoint, GError **err)
{
	g_autofree char *path = g_build_filename(dir, "lock", NULL);
	int fd = fdcache_high(open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));

	if (fd < 0) {
		int e = errno;
		g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
			    "cannot lock %s: %s", dir, g_strerror(e));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		g_autofree char *who = e == EWOULDBLOCK ? holder(fd) : NULL;
		if (who)
			g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_EXIST,
				    "%s is in use by %s; one mount at a time may "
				    "use an account's data (unmount it, or give "
				    "this one another --data-dir)",
				    dir, who);
		else
			g_set_error(err, G_FILE_ERROR,
				    g_file_error_from_errno(e),
				    "cannot lock %s: %s", dir, g_strerror(e));
		close(fd);
		return -1;
	}
	datalock_note_pid(fd, mountpoint);
	return fd;
}
