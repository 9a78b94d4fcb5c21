/* stream.h - a reader of a `stream` file: a cursor into a conversation's
 * log that answers reads as records arrive.
 *
 * A read with nothing new does not hold a FUSE worker thread: the request
 * is parked and answered later from the thread that appends the record
 * (STYLE.md, threads rule 5), or with EINTR when the reader is
 * interrupted.  Nothing is buffered per reader: what it has not read yet
 * is in the log on disk. */
#pragma once

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "store/history.h"

typedef struct StreamReader StreamReader;

/* A reader that sees what is appended to @h from now on. */
StreamReader *stream_open(Hist *h);
/* At release: no read of it can be pending any more. */
void stream_close(StreamReader *r);
/* Answer @req now when there is something to read, with EAGAIN when
 * @nonblock, else later. */
void stream_read(StreamReader *r, fuse_req_t req, size_t size, bool nonblock);
/* FUSE poll: readable when records wait; @ph (may be NULL) is notified
 * when one arrives. */
void stream_poll(StreamReader *r, fuse_req_t req, struct fuse_pollhandle *ph);
