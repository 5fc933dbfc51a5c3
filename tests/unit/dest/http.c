/*
 * http.c: tests for src/dest/http.c against a small HTTP/1.1 server on a thread of
 * its own (127.0.0.1, keep-alive): every request carries exactly its own headers (the
 * client keeps one header list per API key and bulk flag, and one of its own for a
 * request past the kept keys), many requests in flight complete once each (libcurl's
 * sockets watched with epoll; a request on a warm connection changes nothing in the
 * epoll set), and bodies arrive whole; connections the server closes
 * while they are idle (still in the epoll set) are replaced, and new sockets that get
 * their numbers are watched.
 */
#include "support/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "dest/http.h"

#define MAX_SEEN 256

static struct {
	int lfd, port;
	pthread_mutex_t mu;
	char *seen[MAX_SEEN]; /* each request's header block, request line and Host removed */
	size_t n_seen;
	int close_after; /* close each connection after its first answer (an idle timeout) */
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* One connection: requests until the client closes it; each answered 200 with its body length. */
static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct strbuf in = STRBUF_INIT;
	char buf[65536];
	for (;;) {
		char *end;
		while (!(end = strstr(in.buf, "\r\n\r\n"))) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				goto out;
			strbuf_add(&in, buf, (size_t)n);
		}
		size_t head = (size_t)(end - in.buf) + 4, body = 0;
		const char *cl = strstr(in.buf, "\r\nContent-Length: ");
		if (cl && cl < end)
			body = strtoul(cl + 18, NULL, 10);
		while (in.len < head + body) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				goto out;
			strbuf_add(&in, buf, (size_t)n);
		}
		/* the headers after the request line, without Host (its port changes) and
		 * Accept-Encoding (what this libcurl can decode) */
		struct strbuf h = STRBUF_INIT;
		const char *line = strstr(in.buf, "\r\n") + 2;
		while (line < end + 2) {
			const char *eol = strstr(line, "\r\n");
			if (strncasecmp(line, "Host:", 5) && strncasecmp(line, "Accept-Encoding:", 16))
				strbuf_add(&h, line, (size_t)(eol - line + 2));
			line = eol + 2;
		}
		pthread_mutex_lock(&srv.mu);
		if (srv.n_seen < MAX_SEEN)
			srv.seen[srv.n_seen++] = strbuf_detach(&h, NULL);
		pthread_mutex_unlock(&srv.mu);
		strbuf_release(&h);
		char num[24], reply[128];
		int nl = snprintf(num, sizeof(num), "%zu", body);
		int rn = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", nl, num);
		if (write(fd, reply, (size_t)rn) != rn || srv.close_after)
			goto out;
		memmove(in.buf, in.buf + head + body, in.len - head - body);
		strbuf_setlen(&in, in.len - head - body);
	}
out:
	close(fd);
	strbuf_release(&in);
	return NULL;
}

static void *accept_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(srv.lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static void server_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(srv.lfd >= 0);
	assert_int_equal(bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv.lfd, 64), 0);
	assert_int_equal(getsockname(srv.lfd, (struct sockaddr *)&a, &al), 0);
	srv.port = ntohs(a.sin_port);
	pthread_t t;
	pthread_create(&t, NULL, accept_main, NULL);
	pthread_detach(t);
}

struct done_ctx {
	int done[MAX_SEEN];
	long status[MAX_SEEN];
	char body[MAX_SEEN][16];
};

static void on_done(void *ctx, struct http_request *req, const struct http_response *res)
{
	struct done_ctx *d = ctx;
	int i = (int)(intptr_t)req->user;
	d->done[i]++;
	d->status[i] = res->status;
	snprintf(d->body[i], sizeof(d->body[i]), "%.*s", (int)res->body.len, res->body.ptr);
}

/*
 * Run hc until nothing is pending; then each of req[0 .. n) (req[i].user is i) was
 * answered once, 200, with its body's length (what the test server answers).
 */
static void run_answered(struct http_client *hc, struct done_ctx *d, const struct http_request *req, int n)
{
	while (http_pending(hc))
		http_run(hc, 100, on_done, d);
	for (int i = 0; i < n; i++) {
		char want[24];
		snprintf(want, sizeof(want), "%zu", req[i].body.len);
		assert_int_equal(d->done[i], 1);
		assert_int_equal(d->status[i], 200);
		assert_string_equal(d->body[i], want);
	}
}

/* The headers request i of the test below must carry (keys[i % 7], bulk on odd i). */
static const char *const keys[7] = { "key-a", "key-b", NULL, "key-c", "key-d", "key-e", "key-f" };

static void expected_headers(int i, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_addstr(out, "User-Agent: joey/0.1\r\n");
	strbuf_addstr(out, "Content-Type: application/json\r\nAccept: application/json\r\n");
	if (i % 2)
		strbuf_addstr(out, "X-Braze-Bulk: true\r\n");
	if (keys[i % 7])
		strbuf_addf(out, "Authorization: Bearer %s\r\n", keys[i % 7]);
	strbuf_addf(out, "Content-Length: %d\r\n", i + 1);
}

static void test_headers_per_key_and_bulk(void **s)
{
	enum { N = 60 }; /* seven keys (more than the client keeps lists for), bulk or not */
	static struct http_request req[N];
	static char body[N][N + 1];
	struct done_ctx d = { 0 };
	char url[64];
	server_start();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/users/track", srv.port);
	struct http_client_opts o = { .max_connections = 8 };
	struct http_client *hc = http_client_new(&o);
	uint64_t changes = 0;
	for (int round = 0; round < 2; round++) { /* the second on warm connections and kept lists */
		memset(&d, 0, sizeof(d));
		changes = http_set_changes(hc);
		for (int i = 0; i < N; i++) {
			memset(body[i], 'x', (size_t)i + 1);
			req[i] = (struct http_request){ .method = "POST", .url = url, .auth_bearer = keys[i % 7],
							.body = { body[i], (size_t)i + 1 }, .bulk = i % 2,
							.user = (void *)(intptr_t)i };
			http_submit(hc, &req[i]);
		}
		run_answered(hc, &d, req, N);
		/* warm connections stay in the epoll set: no change per request (two each before) */
		if (round == 1)
			assert_true(http_set_changes(hc) - changes < N / 4);
	}
	http_client_free(hc);

	/* every request's headers, whatever order they arrived in */
	pthread_mutex_lock(&srv.mu);
	assert_int_equal(srv.n_seen, 2 * N);
	struct strbuf want = STRBUF_INIT;
	int matched[N] = { 0 };
	for (size_t k = 0; k < srv.n_seen; k++) {
		int hit = -1;
		for (int i = 0; i < N && hit < 0; i++) {
			expected_headers(i, &want);
			if (!strcmp(srv.seen[k], want.buf))
				hit = i;
		}
		if (hit < 0)
			fail_msg("unexpected headers:\n%s", srv.seen[k]);
		matched[hit]++;
		free(srv.seen[k]);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(matched[i], 2);
	srv.n_seen = 0;
	pthread_mutex_unlock(&srv.mu);
	strbuf_release(&want);
}

/*
 * The server closes every connection once it has answered, while the client keeps it
 * as idle (and in its epoll set): each round finds the last round's connections closed,
 * opens new ones (taking the closed sockets' numbers) and every request still gets its
 * answer once. A socket the client took for one it still knew would never be watched:
 * its request would time out.
 */
static void test_idle_connections_closed_by_server(void **s)
{
	enum { N = 6, ROUNDS = 8 };
	static struct http_request req[N];
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/users/track", srv.port);
	srv.close_after = 1;
	struct http_client_opts o = { .max_connections = N, .timeout_ms = 5000 };
	struct http_client *hc = http_client_new(&o);
	for (int round = 0; round < ROUNDS; round++) {
		struct done_ctx d = { 0 };
		for (int i = 0; i < N; i++) {
			req[i] = (struct http_request){ .method = "POST", .url = url, .body = SLICE_LIT("{}"),
							.user = (void *)(intptr_t)i };
			http_submit(hc, &req[i]);
		}
		run_answered(hc, &d, req, N);
		usleep(20000); /* the server's closes arrive while the connections are idle */
		http_run(hc, 0, on_done, &d); /* nothing pending: only the idle sockets' events */
	}
	http_client_free(hc);
	srv.close_after = 0;
	pthread_mutex_lock(&srv.mu);
	for (size_t k = 0; k < srv.n_seen; k++)
		free(srv.seen[k]);
	srv.n_seen = 0;
	pthread_mutex_unlock(&srv.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_per_key_and_bulk),
		cmocka_unit_test(test_idle_connections_closed_by_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
