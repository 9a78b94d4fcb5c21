/* util.h - small helpers shared by modules that write files.  Pure. */
#pragma once

#include <glib.h>

/* write(2) all of @data, retrying after EINTR and short writes; 0 or
 * -errno. */
int util_write_all(int fd, const char *data, gsize len);
