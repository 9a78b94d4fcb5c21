/* strophe012.h - a quirk of libstrophe 0.12 (Debian 12 ships 0.12.2)
 * that its log does not show either (the others: strophe012.c).
 *
 * xmpp_conn_send_queue_len counts only what the application queued, and
 * of that not the element being written.  So the stream's opening, which
 * libstrophe queues itself once the TCP connect is done, waited for the
 * next timer, 1 s per login (login.c, tcp_connected, takes another turn
 * at once).  And a stanza too large for one write (an avatar, a 64 KiB
 * message), when it is the last one queued, looks sent once its first
 * part is out: the pool asks for no POLLOUT (conn.c, acct_pollfd), and the rest
 * waits for the next event on the stream, 20 s and more.  So sm.c, the
 * one place that hands libstrophe a stanza, queues a space after any
 * stanza of more than STROPHE012_PARTIAL_WRITE_MIN bytes: whitespace
 * between stanzas means nothing, keeps the count above zero while the
 * stanza is being written, and a space that waits itself delays nothing.
 * test_profile's avatar near the size limit took 21 s without it. */
#pragma once

#define STROPHE012_PARTIAL_WRITE_MIN 2048
#define STROPHE012_TRAILER " "
