/*
 * httpconn.h: the sockets of `joey serve` below HTTP: the listening socket, and a
 * deadline for every request on every accepted connection (httpd.c is the only user).
 *
 *   httpconn_host_is_loopback(host)    before binding: does --listen's host name only
 *                                      loopback addresses? (server_open's first answer)
 *   httpconn_listen(host, port, &l)    bind and listen; l.loopback says whether the
 *                                      address actually bound is loopback: the server's
 *                                      loopback rules follow it, never the --listen text
 *   httpconn_start() ... httpconn_stop()
 *                                      the sweeper thread that closes late requests
 *   httpconn_notify                    MHD_OPTION_NOTIFY_CONNECTION: tracks each connection
 *   httpconn_busy / _sending / _waiting
 *                                      the phases of a request, from httpd.c's handlers
 *
 * Deadlines (design): a client has HTTPCONN_REQUEST_S seconds from accept, or from the
 * end of its previous answer on a kept-alive connection, to send a whole request
 * (headers and body); then HTTPCONN_SEND_S seconds to take the answer. While joey works
 * on a request (a plan may take long) there is no deadline. A connection past its
 * deadline is shut down by the sweeper (within half a second). libmicrohttpd's own
 * timeout only closes connections idle for 15 s: one byte every few seconds keeps a
 * connection open for ever without this.
 * Capacity: at most HTTPCONN_MAX_WAITING connections wait for (or receive) a request or
 * take an answer at once. A new connection beyond that closes the one that has waited
 * longest, so a flood of slow clients cannot keep a quick one (/healthz) out: it is
 * answered in milliseconds, long before the flood can push it out in turn.
 * One client address holds at most HTTPCONN_MAX_PER_ADDR connections: beyond that, a
 * new one closes the connection of that address that has waited longest for a request,
 * else the one that has taken longest over its answer (a client that never reads), else
 * (all being answered) the new one is closed. So one address cannot hold more than its
 * share, and on loopback (where every local client is 127.0.0.1) one local process
 * holding partial requests, or answers it does not read, cannot lock the others out.
 */
#ifndef JOEY_HTTPCONN_H
#define JOEY_HTTPCONN_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/compat.h"
#include "base/error.h"

#define HTTPCONN_REQUEST_S 30       /* default; JOEY_HTTP_REQUEST_TIMEOUT (seconds) overrides */
#define HTTPCONN_SEND_S 300
#define HTTPCONN_MAX_WAITING 256
#define HTTPCONN_MAX_PER_ADDR 64
#define HTTPCONN_MAX_CONNECTIONS 512 /* libmicrohttpd's hard limit: waiting + busy */

struct httpconn_listener {
	int fd;             /* listening, owned until handed to libmicrohttpd */
	int family;         /* AF_INET or AF_INET6 */
	bool loopback;      /* the bound address is a loopback address */
	char desc[128];     /* the bound address: "127.0.0.1:8020", "[::1]:8020" */
};

/*
 * Does host (as given to --listen: a name, an address, "[v6]") resolve only to loopback
 * addresses (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? false if it does not resolve.
 */
bool httpconn_host_is_loopback(const char *host);

/*
 * Resolve host, bind its first address with port (0: any free port) and listen. On
 * failure: JERR_USAGE (does not resolve) or JERR_IO (cannot bind), nothing left open.
 */
enum jerr httpconn_listen(const char *host, unsigned port, struct httpconn_listener *out,
			  struct jerror *err) JOEY_WUR;

/* Start/stop the sweeper. Start before libmicrohttpd, stop after it has stopped. */
void httpconn_start(void);
void httpconn_stop(void);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls unused). */
void httpconn_notify(void *cls, struct MHD_Connection *con, void **socket_context,
		     enum MHD_ConnectionNotificationCode toe);

/* The request is in: no deadline while joey answers it. */
void httpconn_busy(struct MHD_Connection *con);
/* The answer is queued: HTTPCONN_SEND_S to take it. */
void httpconn_sending(struct MHD_Connection *con);
/* The answer is sent (or the request ended): the next request's deadline starts. */
void httpconn_waiting(struct MHD_Connection *con);

/*
 * Send data[0..len) (a whole HTTP answer, "Connection: close") on con's socket
 * ourselves, shut the writing side, and drop what the client still sends for at most a
 * second, so the answer is not lost to a reset; the caller then returns MHD_NO, which
 * closes the connection. For an answer libmicrohttpd cannot queue (mid-upload). Under
 * TLS nothing is written: the connection is only closed.
 */
void httpconn_send_and_close(struct MHD_Connection *con, const char *data, size_t len);

#endif
