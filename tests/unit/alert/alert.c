/* Tests for src/alert/alert.c: the delivery pump and joey run's ending against a channel that hangs. */
#include "support/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alert/alert.h"
#include "state/alerts.h"

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening socket nobody accepts from: connections open, no answer ever comes. */
static int hanging_server(int *port)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

struct fixture {
	char *dir, *state_path;
	int fd;
	struct config *cfg;
	struct state *st;
};

static void setup_hanging(struct fixture *f)
{
	struct jerror err = JERROR_INIT;
	struct config_opts co = { 0 };
	char text[512];
	int port;

	f->fd = hanging_server(&port);
	f->dir = tu_mkdtemp();
	snprintf(text, sizeof(text),
		 "{\"class\":\"Alert\",\"id\":\"ops\",\"type\":\"webhook\",\"triggers\":{\"runFailed\":true},"
		 "\"options\":{\"url\":\"http://127.0.0.1:%d/hook\",\"secret\":\"s\"}}",
		 port);
	tu_write(f->dir, "cfg/alerts/ops.json", text);
	snprintf(text, sizeof(text), "%s/cfg", f->dir);
	if (config_load(text, &co, &f->cfg, &err) || f->cfg->n_errors)
		fail_msg("config: %s %s", err.msg.buf, err.detail.buf);
	f->state_path = malloc(strlen(f->dir) + 16);
	snprintf(f->state_path, strlen(f->dir) + 16, "%s/state.db", f->dir);
	if (state_open(f->state_path, STATE_OPEN_CREATE, &f->st, &err))
		fail_msg("state: %s %s", err.msg.buf, err.detail.buf);
	jerror_release(&err);
}

static void teardown(struct fixture *f)
{
	state_close(f->st);
	config_free(f->cfg);
	close(f->fd);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f->state_path);
}

static void enqueue(struct fixture *f, int n)
{
	struct jerror err = JERROR_INIT;
	for (int i = 0; i < n; i++)
		assert_int_equal(state_alert_enqueue(f->st, 0, "ops", NULL, "test", "{\"event\":\"alert.test\"}", ms_now(),
						     NULL, &err),
				 JERR_OK);
	jerror_release(&err);
}

/* How many attempts the pending messages had: each claimed (at a far time) and released. */
static int attempts_so_far(struct fixture *f, int *n_pending)
{
	struct jerror err = JERROR_INIT;
	struct state_alert_claimed c;
	int max = 0;
	bool found;
	*n_pending = 0;
	state_alert_claimed_init(&c);
	for (;;) {
		assert_int_equal(state_alert_claim(f->st, ms_now() + 86400000, 3600000, 0, &c, &found, &err), JERR_OK);
		if (!found)
			break;
		(*n_pending)++;
		if (c.attempts - 1 > max)
			max = c.attempts - 1;
		assert_int_equal(state_alert_done(f->st, c.id, "x", 0, ms_now(), &err), JERR_OK);
	}
	state_alert_claimed_release(&c);
	jerror_release(&err);
	return max;
}

/* One pump call tries each due message once, even when a failed one is due again
 * before the call ends (a channel that hangs until its timeout, a short backoff). */
static void test_pump_tries_each_message_once(void **unused)
{
	(void)unused;
	struct fixture f;
	struct jerror err = JERROR_INIT;
	struct alert_opts o;
	size_t sent = 9;
	int pending;

	setup_hanging(&f);
	enqueue(&f, 2);
	alert_opts_defaults(&o);
	o.timeout_ms = 300;
	o.retry_base_ms = 50;
	o.max_attempts = 6;
	assert_int_equal(alert_pump(f.cfg, f.st, &o, &sent, &err), JERR_OK);
	assert_int_equal(sent, 0);
	assert_int_equal(attempts_so_far(&f, &pending), 1);
	assert_int_equal(pending, 2); /* both wait for their next attempt, neither given up */
	jerror_release(&err);
	teardown(&f);
}

/*
 * joey run's ending (a wait of 1 s) with three messages to a channel that hangs, at
 * timeout_ms per request (0: alert_opts_defaults' retries): how long it took, the most
 * attempts a message had, and how many are still queued.
 */
static int64_t finish_run_hanging(long timeout_ms, bool fast_retries, int *attempts, int *pending)
{
	struct fixture f;
	struct alert_opts o;
	struct run r = { 0 };

	setup_hanging(&f);
	enqueue(&f, 3);
	alert_opts_defaults(&o);
	o.timeout_ms = timeout_ms;
	if (fast_retries) {
		o.retry_base_ms = 100;
		o.max_attempts = 10;
	}
	int64_t t0 = ms_now();
	alert_finish_run(f.cfg, f.st, &r, &o, 1000);
	int64_t took = ms_now() - t0;
	*attempts = attempts_so_far(&f, pending);
	teardown(&f);
	return took;
}

/* joey run's ending gives up retrying when its wait is over. */
static void test_finish_run_keeps_to_its_wait(void **unused)
{
	(void)unused;
	int attempts, pending;
	/* the first pass (3 x 300 ms), then retries until 1 s (and one request cut at
	 * most a second after it): not a pass after pass while backoffs are shorter */
	int64_t took = finish_run_hanging(300, true, &attempts, &pending);
	assert_true(took < 6000); /* loose: the counts below say what happened */
	assert_true(attempts <= 2);
	assert_int_equal(pending, 3);
}

/*
 * Channels that hang, at the default 30 s timeout: the first try of each message is cut
 * at the wait (a second at least), so three of them cost about the wait plus three
 * seconds; before, each first try took its whole timeout (90 s for three).
 */
static void test_finish_run_first_tries_keep_to_its_wait(void **unused)
{
	(void)unused;
	int attempts, pending;
	int64_t took = finish_run_hanging(30000, false, &attempts, &pending);
	assert_true(took < 20000); /* loose: one timeout is 30 s */
	assert_int_equal(attempts, 1);
	assert_int_equal(pending, 3); /* each tried once, each still queued */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pump_tries_each_message_once),
		cmocka_unit_test(test_finish_run_keeps_to_its_wait),
		cmocka_unit_test(test_finish_run_first_tries_keep_to_its_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
