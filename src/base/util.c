/* util.c - see util.h. */
#include "base/util.h"

#include <errno.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int util_write_all(int fd, const char *data, gsize len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= n;
	}
	return 0;
}

int util_unread_bytes(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCINQ, &n) == 0 ? n : -errno;
}

gint util_cmp_strp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}
