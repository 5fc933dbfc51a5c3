/* bench.c: braze-sim-bench, a libcurl-multi load generator for braze-sim's /users/track. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
	CURL *h;
	char *body;
};

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A /users/track body of `per` attribute objects shaped like joey's first sync of
 * bench/export.sh's users: external id, email, names, country, city, age, score, vip,
 * signup date, and the VIP group (`{"add": [...]}`) for every 7th user. Ids cycle over
 * `users` profiles: a first pass over fresh ids creates them, a second one updates.
 */
static char *make_body(long req, long per, long users)
{
	size_t cap = (size_t)per * 400 + 64, len = 0;
	char *b = malloc(cap);
	len += (size_t)snprintf(b + len, cap - len, "{\"attributes\":[");
	for (long i = 0; i < per; i++) {
		long id = (req * per + i) % users;
		len += (size_t)snprintf(b + len, cap - len,
					"%s{\"external_id\":\"%ld\",\"email\":\"user%ld@example.com\",\"first_name\":\"First%ld\","
					"\"last_name\":\"Last%ld\",\"country\":\"%c%c\",\"city\":\"City%ld\",\"age\":%ld,"
					"\"score\":%ld.%ld,\"vip\":%s,\"signup\":\"2021-03-%02ldT10:20:30Z\"%s}",
					i ? "," : "", id, id, id % 997, id % 991, (char)('A' + id % 26),
					(char)('A' + (id / 26) % 26), id % 5000, 18 + id % 60, (id % 1000) / 10,
					id % 10, id % 7 ? "false" : "true", 1 + id % 28,
					id % 7 ? "" : ",\"groups\":{\"add\":[\"VIP\"]}");
	}
	snprintf(b + len, cap - len, "]}");
	return b;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: braze-sim-bench URL REQUESTS [CONCURRENCY=16] [OBJECTS=75] [USERS=100000]\n");
		return 2;
	}
	const char *base = argv[1];
	long total = atol(argv[2]), conc = argc > 3 ? atol(argv[3]) : 16, per = argc > 4 ? atol(argv[4]) : 75;
	long users = argc > 5 ? atol(argv[5]) : 100000, started = 0, done = 0, failed = 0;
	char url[512];
	snprintf(url, sizeof(url), "%s/users/track", base);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *m = curl_multi_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Authorization: Bearer demo-key");
	struct slot *slots = calloc((size_t)conc, sizeof(*slots));
	double t0 = now_s();
	for (long i = 0; i < conc && started < total; i++, started++) {
		slots[i].h = curl_easy_init();
		slots[i].body = make_body(started, per, users);
		curl_easy_setopt(slots[i].h, CURLOPT_URL, url);
		curl_easy_setopt(slots[i].h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(slots[i].h, CURLOPT_POSTFIELDS, slots[i].body);
		curl_easy_setopt(slots[i].h, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
		curl_multi_add_handle(m, slots[i].h);
	}
	while (done < total) {
		int running, q;
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 100, NULL);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(m, &q))) {
			struct slot *s;
			long code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK || code != 201)
				failed++;
			done++;
			curl_multi_remove_handle(m, s->h);
			if (started < total) {
				free(s->body);
				s->body = make_body(started++, per, users);
				curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
				curl_multi_add_handle(m, s->h);
			}
		}
	}
	double dt = now_s() - t0;
	printf("%ld requests (%ld failed) of %ld objects in %.2f s: %.0f requests/s, %.0f objects/s\n", total, failed,
	       per, dt, (double)total / dt, (double)(total * per) / dt);
	for (long i = 0; i < conc; i++) {
		if (slots[i].h)
			curl_easy_cleanup(slots[i].h);
		free(slots[i].body);
	}
	free(slots);
	curl_slist_free_all(hdrs);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
