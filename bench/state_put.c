/*
 * state_put.c: bench helper: the CPU the state store's write path costs, alone.
 * Usage: bench_state_put STATE_PATH N ROWS_PER_COMMIT
 * Writes N confirmed records (integer keys 1..N, payloads shaped like bench/export.sh's
 * users, about 230 bytes) into a fresh destination of STATE_PATH (an SQLite file or a
 * postgresql:// URL), ROWS_PER_COMMIT to a transaction with the run row's progress in
 * each, as `joey run` writes Braze's answers; then prints the process CPU (user +
 * system) per row. ROWS_PER_COMMIT 75 is one transaction per /users/track response.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "state/state.h"

#include "bench_time.h"

static int fail(const struct jerror *e)
{
	fprintf(stderr, "bench_state_put: %s%s%s\n", e->msg.buf, e->detail.len ? ": " : "", e->detail.buf);
	return 1;
}

int main(int argc, char **argv)
{
	struct state *st = NULL;
	struct jerror e = JERROR_INIT;
	struct strbuf p = STRBUF_INIT;
	struct run_counts counts = { 0 };
	int64_t run_id = 0;
	unsigned char hash[STATE_HASH_LEN];

	if (argc != 4) {
		fprintf(stderr, "usage: bench_state_put STATE_PATH N ROWS_PER_COMMIT\n");
		return 2;
	}
	long n = atol(argv[2]), per = atol(argv[3]);
	if (n <= 0 || per <= 0) {
		fprintf(stderr, "bench_state_put: N and ROWS_PER_COMMIT must be positive\n");
		return 2;
	}
	if (state_open(argv[1], STATE_OPEN_CREATE, &st, &e) || state_run_start(st, "bench", "run", &run_id, &e))
		return fail(&e);
	double c0 = cpu_s(), w0 = wall_s();
	for (long i = 1; i <= n;) {
		if (state_begin(st, &e))
			return fail(&e);
		for (long k = 0; k < per && i <= n; k++, i++) {
			strbuf_reset(&p);
			strbuf_addf(&p,
				    "{\"attributes\":{\"age\":%ld,\"city\":\"City%ld\",\"country\":\"%c%c\",\"email\":\"user%ld@"
				    "example.com\",\"external_id\":\"%ld\",\"first_name\":\"First%ld\",\"last_name\":\"Last%ld\","
				    "\"score\":%ld.%ld,\"signup\":\"2020-09-13T12:27:17.000Z\",\"vip\":%s},\"groups\":[%s]}",
				    18 + i % 60, i % 5000, (char)('A' + i % 26), (char)('A' + (i / 26) % 26), i, i, i % 997,
				    i % 991, (i % 1000) / 10, i % 10, i % 7 ? "false" : "true", i % 7 ? "" : "\"VIP\"");
			state_hash(p.buf, p.len, hash);
			struct rkey key = { .is_int = true, .i = i };
			if (state_put(st, "bench", &key, (struct slice){ p.buf, p.len }, hash, true, &e))
				return fail(&e);
			counts.created++;
		}
		if (state_run_progress(st, run_id, &counts, &e) || state_commit(st, &e))
			return fail(&e);
	}
	double c1 = cpu_s(), w1 = wall_s();
	state_close(st);
	double c2 = cpu_s();
	printf("%ld rows, %ld per commit: %.2f s CPU (%.2f us/row), %.2f s wall; closing (checkpoint) %.2f s CPU\n", n,
	       per, c1 - c0, (c1 - c0) * 1e6 / (double)n, w1 - w0, c2 - c1);
	strbuf_release(&p);
	return 0;
}
