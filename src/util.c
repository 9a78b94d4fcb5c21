/* util.c - see util.h. */
#include "util.h"

#include <errno.h>
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
