/* httpconn.c: joey serve's listening socket and the deadline of every request (httpconn.h). */
#include "server/httpconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"

#define SWEEP_MS 500
#define LINGER_MS 1000
#define LINGER_MAX_BYTES ((size_t)4 << 20)

/* ---- the listening socket ---- */

static bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == IN_LOOPBACKNET;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* getaddrinfo for host as --listen gives it ("[::1]": the brackets go). */
static int resolve(const char *host, unsigned port, struct addrinfo **ai)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	char hostbuf[256], portbuf[16];
	if (host[0] == '[') {
		snprintf(hostbuf, sizeof(hostbuf), "%s", host + 1);
		char *e = strchr(hostbuf, ']');
		if (e)
			*e = 0;
		host = hostbuf;
	}
	snprintf(portbuf, sizeof(portbuf), "%u", port);
	*ai = NULL;
	int rc = getaddrinfo(host, portbuf, &hints, ai);
	if (!rc && !*ai)
		rc = EAI_NONAME;
	return rc;
}

bool httpconn_host_is_loopback(const char *host)
{
	struct addrinfo *ai;
	bool all = true;
	if (resolve(host, 0, &ai))
		return false;
	for (const struct addrinfo *p = ai; p; p = p->ai_next)
		all = all && addr_is_loopback(p->ai_addr);
	freeaddrinfo(ai);
	return all;
}

enum jerr httpconn_listen(const char *host, unsigned port, struct httpconn_listener *out, struct jerror *err)
{
	struct addrinfo *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	int on = 1, fd, gai;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if ((gai = resolve(host, port, &ai))) {
		jerror_set(err, JERR_USAGE, "cannot listen on \"%s\": %s", host, gai_strerror(gai));
		jerror_hint(err, "give --listen HOST:PORT with an address of this machine, e.g. 127.0.0.1:8020");
		return JERR_USAGE;
	}
	if (ai->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr, sizeof(addr));
	else if (ai->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr, sizeof(addr));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (ai->ai_family == AF_INET6) /* "::" means IPv6 only, as libmicrohttpd does it */
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	}
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		int e = errno;
		jerror_set(err, JERR_IO, "cannot listen on %s port %u: %s", addr, port, strerror(e));
		jerror_detail(err, "the address may be in use by another process, or not an address of this machine");
		jerror_hint(err, "pick another port with --listen HOST:PORT");
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return JERR_IO;
	}
	freeaddrinfo(ai);
	out->fd = fd;
	out->family = ss.ss_family;
	out->loopback = addr_is_loopback((struct sockaddr *)&ss);
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a6->sin6_addr, addr, sizeof(addr));
		snprintf(out->desc, sizeof(out->desc), "[%s]:%u", addr, (unsigned)ntohs(a6->sin6_port));
	} else {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a4->sin_addr, addr, sizeof(addr));
		snprintf(out->desc, sizeof(out->desc), "%s:%u", addr, (unsigned)ntohs(a4->sin_port));
	}
	return JERR_OK;
}

/* ---- deadlines ---- */

/* One accepted connection (its socket context), in hc.conns until libmicrohttpd closes it. */
struct tracked {
	struct tracked *prev, *next;
	int fd;
	struct sockaddr_storage addr; /* the client's address (family AF_UNSPEC: unknown) */
	int64_t since;    /* ms, monotonic: when this phase began */
	int64_t deadline; /* ms, monotonic; 0: busy (joey is answering), none */
	bool sending;     /* the phase is the taking of an answer (httpconn_sending) */
	bool closing;     /* shut down by us; libmicrohttpd reports the close later */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t sweeper;
	bool running, stop;
	struct tracked *conns;
	size_t n_waiting; /* not busy, not closing */
	int64_t request_ms;
} hc = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
	 .request_ms = HTTPCONN_REQUEST_S * 1000 };

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_waiting(const struct tracked *t)
{
	return t->deadline && !t->closing;
}

/* Close t's connection: libmicrohttpd's thread sees the end of the stream. Under hc.lock. */
static void cut(struct tracked *t, const char *why)
{
	if (is_waiting(t))
		hc.n_waiting--;
	t->closing = true;
	/* the fd is still open: libmicrohttpd closes it only after telling us (under hc.lock) */
	shutdown(t->fd, SHUT_RDWR);
	log_debug("http: closed a connection: %s", why);
}

/* Set t's phase (deadline_ms 0: busy; sending: the answer is being taken). Under hc.lock. */
static void set_phase(struct tracked *t, int64_t deadline_ms, bool sending)
{
	if (t->closing)
		return;
	if (is_waiting(t))
		hc.n_waiting--;
	t->sending = sending;
	t->since = mono_ms();
	t->deadline = deadline_ms ? t->since + deadline_ms : 0;
	if (is_waiting(t))
		hc.n_waiting++;
}

/* Do a and b hold the same client address (the port aside)? An unknown one matches none. */
static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return false;
}

/*
 * Keep t's address within HTTPCONN_MAX_PER_ADDR connections: the one of them that has
 * waited longest for a request makes room (it has sent no whole request since accept
 * or since its last answer), else the one that has taken longest over its answer (a
 * client that asks and never reads: refusing the new one instead let 64 such
 * connections lock every local client out for HTTPCONN_SEND_S); if all of them are
 * being answered, t is closed. t is not in hc.conns yet and has no phase. Under hc.lock.
 */
static void cap_address(struct tracked *t)
{
	struct tracked *old = NULL, *slow = NULL;
	size_t n = 0;
	if (t->addr.ss_family != AF_INET && t->addr.ss_family != AF_INET6)
		return;
	for (struct tracked *p = hc.conns; p; p = p->next) {
		if (p->closing || !same_addr(&p->addr, &t->addr))
			continue;
		n++;
		if (is_waiting(p) && !p->sending && (!old || p->since < old->since))
			old = p;
		if (is_waiting(p) && p->sending && (!slow || p->since < slow->since))
			slow = p;
	}
	if (n < HTTPCONN_MAX_PER_ADDR)
		return;
	if (old)
		cut(old, "its address has the most connections allowed and this one had waited longest for a request");
	else if (slow)
		cut(slow, "its address has the most connections allowed and this one had taken longest over its answer");
	else
		cut(t, "its address has the most connections allowed, all of them being answered");
}

static void *sweep_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hc.lock);
	while (!hc.stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)SWEEP_MS * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&hc.wake, &hc.lock, &ts);
		int64_t now = mono_ms();
		for (struct tracked *t = hc.conns; t; t = t->next)
			if (is_waiting(t) && now >= t->deadline)
				cut(t, "the request (or the taking of its answer) went past its deadline");
	}
	pthread_mutex_unlock(&hc.lock);
	return NULL;
}

void httpconn_start(void)
{
	const char *env = getenv("JOEY_HTTP_REQUEST_TIMEOUT");
	char *end;
	unsigned long v = env ? strtoul(env, &end, 10) : 0;
	pthread_mutex_lock(&hc.lock);
	hc.request_ms = HTTPCONN_REQUEST_S * 1000;
	if (env && *env && !*end && v >= 1 && v <= 3600)
		hc.request_ms = (int64_t)v * 1000;
	else if (env)
		log_warn("JOEY_HTTP_REQUEST_TIMEOUT=\"%s\" ignored: give whole seconds from 1 to 3600", env);
	hc.stop = false;
	hc.running = pthread_create(&hc.sweeper, NULL, sweep_main, NULL) == 0;
	pthread_mutex_unlock(&hc.lock);
	if (!hc.running)
		log_warn("http: no request deadlines: the sweeper thread did not start");
}

void httpconn_stop(void)
{
	pthread_mutex_lock(&hc.lock);
	hc.stop = true;
	pthread_cond_signal(&hc.wake);
	bool running = hc.running;
	hc.running = false;
	pthread_mutex_unlock(&hc.lock);
	if (running)
		pthread_join(hc.sweeper, NULL);
}

void httpconn_notify(void *cls, struct MHD_Connection *con, void **socket_context,
		     enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ai = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		struct tracked *t = xcalloc(1, sizeof(*t));
		t->fd = ci ? ci->connect_fd : -1;
		if (ai && ai->client_addr && ai->client_addr->sa_family == AF_INET)
			memcpy(&t->addr, ai->client_addr, sizeof(struct sockaddr_in));
		else if (ai && ai->client_addr && ai->client_addr->sa_family == AF_INET6)
			memcpy(&t->addr, ai->client_addr, sizeof(struct sockaddr_in6));
		pthread_mutex_lock(&hc.lock);
		if (t->fd >= 0) /* may close t */
			cap_address(t);
		/* full: the connection that has waited longest makes room */
		while (!t->closing && hc.n_waiting >= HTTPCONN_MAX_WAITING) {
			struct tracked *old = NULL;
			for (struct tracked *p = hc.conns; p; p = p->next)
				if (is_waiting(p) && (!old || p->since < old->since))
					old = p;
			if (!old)
				break;
			cut(old, "the server is full and this connection had waited longest");
		}
		set_phase(t, hc.request_ms, false);
		t->next = hc.conns;
		if (hc.conns)
			hc.conns->prev = t;
		hc.conns = t;
		if (t->fd < 0) /* cannot be cut: do not count it */
			cut(t, "no socket");
		pthread_mutex_unlock(&hc.lock);
		*socket_context = t;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct tracked *t = *socket_context;
		if (!t)
			return;
		pthread_mutex_lock(&hc.lock);
		if (is_waiting(t))
			hc.n_waiting--;
		if (t->prev)
			t->prev->next = t->next;
		else
			hc.conns = t->next;
		if (t->next)
			t->next->prev = t->prev;
		pthread_mutex_unlock(&hc.lock);
		free(t);
		*socket_context = NULL;
	}
}

static struct tracked *tracked_of(struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void phase(struct MHD_Connection *con, int64_t deadline_ms, bool sending)
{
	struct tracked *t = tracked_of(con);
	if (!t)
		return;
	pthread_mutex_lock(&hc.lock);
	set_phase(t, deadline_ms, sending);
	pthread_mutex_unlock(&hc.lock);
}

void httpconn_busy(struct MHD_Connection *con)
{
	phase(con, 0, false);
}

void httpconn_sending(struct MHD_Connection *con)
{
	phase(con, (int64_t)HTTPCONN_SEND_S * 1000, true);
}

void httpconn_waiting(struct MHD_Connection *con)
{
	pthread_mutex_lock(&hc.lock);
	int64_t ms = hc.request_ms;
	pthread_mutex_unlock(&hc.lock);
	phase(con, ms, false);
}

void httpconn_send_and_close(struct MHD_Connection *con, const char *data, size_t len)
{
	const union MHD_ConnectionInfo *ti = MHD_get_connection_info(con, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
	if ((ti && ti->tls_session) || !ci)
		return;
	int fd = ci->connect_fd;
	int64_t end = mono_ms() + LINGER_MS;
	size_t sent = 0, dropped = 0;
	char buf[16384];

	/* the socket is non-blocking: wait for room, within the same second */
	while (sent < len) {
		ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return;
		int64_t left = end - mono_ms();
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return;
	}
	shutdown(fd, SHUT_WR);
	/* linger: closing with unread input would reset the connection, and the client
	 * (still sending) could lose the answer */
	while (dropped < LINGER_MAX_BYTES) {
		int64_t left = end - mono_ms();
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			break;
		if (n > 0)
			dropped += (size_t)n;
	}
}
