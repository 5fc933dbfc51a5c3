/*
 * metrics.c: counters of `joey serve` and their Prometheus text (format 0.0.4).
 *
 * Finished runs add their counts per destination; running jobs add their live counts
 * when rendered, so rows and requests move during a run. Request latency comes from
 * the Braze connector (dest_stats.latency_*) of finished runs.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "server/serverp.h"

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
}

void metrics_release(struct metrics *m)
{
	while (m->dests) {
		struct metric_dest *n = m->dests->next;
		free(m->dests->dest_id);
		free(m->dests);
		m->dests = n;
	}
	pthread_mutex_destroy(&m->lock);
}

void metrics_http(struct metrics *m, unsigned status)
{
	unsigned cls = status / 100;
	pthread_mutex_lock(&m->lock);
	m->http_requests[cls >= 1 && cls <= 5 ? cls : 0]++;
	pthread_mutex_unlock(&m->lock);
}

static struct metric_dest *dest_entry(struct metrics *m, const char *dest_id)
{
	struct metric_dest **pp = &m->dests;
	for (; *pp; pp = &(*pp)->next) {
		int c = strcmp((*pp)->dest_id, dest_id);
		if (!c)
			return *pp;
		if (c > 0)
			break;
	}
	struct metric_dest *d = xcalloc(1, sizeof(*d));
	d->dest_id = xstrdup(dest_id);
	d->next = *pp;
	*pp = d;
	return d;
}

void metrics_run_finished(struct metrics *m, const char *dest_id, enum run_status st, const struct run_counts *c,
			  const struct dest_stats *ds)
{
	pthread_mutex_lock(&m->lock);
	if (ds) {
		for (int i = 0; i < DEST_LATENCY_BUCKETS; i++)
			m->latency_buckets[i] += ds->latency[i];
		m->latency_count += ds->latency_count;
		m->latency_sum += ds->latency_sum_s;
	}
	struct metric_dest *d = dest_entry(m, dest_id);
	if ((unsigned)st < 4)
		d->runs[st]++;
	run_counts_add(&d->rows, c);
	pthread_mutex_unlock(&m->lock);
}

/* Label values are destination ids: escape \ " and newline as the format asks. */
static void label(struct strbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_addch(b, '\\'), strbuf_addch(b, *v);
		else if (*v == '\n')
			strbuf_addstr(b, "\\n");
		else
			strbuf_addch(b, *v);
	}
}

static void head(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *metrics_render(struct server *s)
{
	struct strbuf b = STRBUF_INIT;
	struct metrics *m = &s->metrics;
	static const char *const status_names[4] = { "running", "success", "failed", "interrupted" };
	static const char *const http_cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };

	/* live counts of running jobs, per destination */
	struct metric_dest *live = NULL;
	size_t active = 0, queued;
	pthread_mutex_lock(&s->lock);
	for (struct active_job *aj = s->jobs; aj; aj = aj->next) {
		if (aj->finished)
			continue;
		active++;
		for (size_t i = 0; i < aj->job.n_dests; i++) {
			struct metric_dest *d = xcalloc(1, sizeof(*d));
			d->dest_id = xstrdup(aj->dests[i].dest_id);
			d->rows = aj->dests[i].counts;
			d->next = live;
			live = d;
		}
	}
	queued = sched_queue_depth(s->sched);
	bool cfg_error = s->config_error != NULL;
	pthread_mutex_unlock(&s->lock);

	pthread_mutex_lock(&m->lock);
	for (struct metric_dest *l = live; l; l = l->next)
		(void)dest_entry(m, l->dest_id);

	head(&b, "joey_runs_total", "counter", "Finished destination runs by outcome.");
	for (struct metric_dest *d = m->dests; d; d = d->next)
		for (int st = 1; st < 4; st++) {
			strbuf_addstr(&b, "joey_runs_total{destination=\"");
			label(&b, d->dest_id);
			strbuf_addf(&b, "\",status=\"%s\"} %llu\n", status_names[st], (unsigned long long)d->runs[st]);
		}
	head(&b, "joey_rows_total", "counter", "Records handled by outcome (finished and running runs).");
	for (struct metric_dest *d = m->dests; d; d = d->next) {
		struct run_counts c = d->rows;
		for (struct metric_dest *l = live; l; l = l->next)
			if (!strcmp(l->dest_id, d->dest_id))
				run_counts_add(&c, &l->rows);
		const struct {
			const char *name;
			uint64_t v;
		} rows[] = { { "created", c.created },	   { "updated", c.updated },	 { "deleted", c.deleted },
			     { "unsubscribed", c.unsubscribed }, { "unchanged", c.unchanged }, { "failed", c.failed },
			     { "skipped", c.skipped } };
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			strbuf_addstr(&b, "joey_rows_total{destination=\"");
			label(&b, d->dest_id);
			strbuf_addf(&b, "\",outcome=\"%s\"} %llu\n", rows[i].name, (unsigned long long)rows[i].v);
		}
	}
	const struct {
		const char *name, *help;
		size_t off;
	} per_dest[] = {
		{ "joey_braze_requests_total", "HTTP requests sent to Braze.", offsetof(struct run_counts, requests) },
		{ "joey_braze_throttled_total", "Braze answers 429 (rate limited).", offsetof(struct run_counts, throttled) },
		{ "joey_braze_retries_total", "Requests sent again after an error or a timeout.", offsetof(struct run_counts, retries) },
		{ "joey_braze_data_points_total", "Billable data points sent to Braze.", offsetof(struct run_counts, data_points) },
	};
	for (size_t k = 0; k < sizeof(per_dest) / sizeof(per_dest[0]); k++) {
		head(&b, per_dest[k].name, "counter", per_dest[k].help);
		for (struct metric_dest *d = m->dests; d; d = d->next) {
			uint64_t v = *(const uint64_t *)((const char *)&d->rows + per_dest[k].off);
			for (struct metric_dest *l = live; l; l = l->next)
				if (!strcmp(l->dest_id, d->dest_id))
					v += *(const uint64_t *)((const char *)&l->rows + per_dest[k].off);
			strbuf_addf(&b, "%s{destination=\"", per_dest[k].name);
			label(&b, d->dest_id);
			strbuf_addf(&b, "\"} %llu\n", (unsigned long long)v);
		}
	}
	head(&b, "joey_braze_request_duration_seconds", "histogram", "Latency of answered Braze requests.");
	uint64_t cum = 0;
	for (int i = 0; i < DEST_LATENCY_BUCKETS; i++) {
		cum += m->latency_buckets[i];
		strbuf_addf(&b, "joey_braze_request_duration_seconds_bucket{le=\"%g\"} %llu\n", dest_latency_bounds[i],
			    (unsigned long long)cum);
	}
	strbuf_addf(&b, "joey_braze_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		    (unsigned long long)m->latency_count);
	strbuf_addf(&b, "joey_braze_request_duration_seconds_sum %.6f\n", m->latency_sum);
	strbuf_addf(&b, "joey_braze_request_duration_seconds_count %llu\n", (unsigned long long)m->latency_count);

	head(&b, "joey_http_requests_total", "counter", "API and UI requests answered, by status class.");
	for (int i = 0; i < 6; i++)
		strbuf_addf(&b, "joey_http_requests_total{code=\"%s\"} %llu\n", http_cls[i],
			    (unsigned long long)m->http_requests[i]);
	head(&b, "joey_config_reloads_total", "counter", "Configs installed after a reload or an API write.");
	strbuf_addf(&b, "joey_config_reloads_total %llu\n", (unsigned long long)m->config_reloads);
	head(&b, "joey_config_reload_failures_total", "counter", "Reloads refused because the config was invalid.");
	strbuf_addf(&b, "joey_config_reload_failures_total %llu\n", (unsigned long long)m->config_reload_failures);
	pthread_mutex_unlock(&m->lock);

	head(&b, "joey_runs_active", "gauge", "Jobs running now.");
	strbuf_addf(&b, "joey_runs_active %zu\n", active);
	head(&b, "joey_queue_depth", "gauge", "Destinations waiting to run.");
	strbuf_addf(&b, "joey_queue_depth %zu\n", queued);
	head(&b, "joey_config_error", "gauge", "1 when the last reload failed and an older config is in use.");
	strbuf_addf(&b, "joey_config_error %d\n", cfg_error ? 1 : 0);

	while (live) {
		struct metric_dest *n = live->next;
		free(live->dest_id);
		free(live);
		live = n;
	}
	return strbuf_detach(&b, NULL);
}
