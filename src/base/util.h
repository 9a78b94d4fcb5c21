/* util.h - small helpers shared by modules.  Pure. */
#pragma once

#include <glib.h>

/* write(2) all of @data, retrying after EINTR and short writes; 0 or
 * -errno. */
int util_write_all(int fd, const char *data, gsize len);

/* Bytes that came on the socket @fd and are not read yet, or -errno. */
int util_unread_bytes(int fd);

/* For g_ptr_array_sort of strings: it passes pointers to the elements. */
gint util_cmp_strp(gconstpointer a, gconstpointer b);
