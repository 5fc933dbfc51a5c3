/*
 * run_print.c: the report of a finished run (struct run, run.h): run_ok, the text
 * for a terminal and the JSON for --json and the API. Borrows r; writes to out.
 */
#include <string.h>

#include "base/strbuf.h"
#include "engine/run.h"

bool run_ok(const struct run *r)
{
	for (size_t i = 0; i < r->n_dests; i++)
		if (r->dests[i].status != RUN_SUCCESS)
			return false;
	return true;
}

const char *run_outcome_name(enum run_status status, const char *error, const struct run_counts *c)
{
	uint64_t went = c->created + c->updated + c->deleted + c->unsubscribed + c->unchanged + c->skipped;
	if (status == RUN_FAILED && c->failed && went && error && !strcmp(error, RUN_ERROR_ROWS_FAILED))
		return "completed_with_failures";
	return run_status_name(status);
}

const char *run_outcome_words(char *buf, size_t n, enum run_status status, const char *error,
			      const struct run_counts *c)
{
	const char *name = run_outcome_name(status, error, c);
	if (strcmp(name, "completed_with_failures"))
		snprintf(buf, n, "%s", name);
	else
		snprintf(buf, n, "completed with %llu failed row%s", (unsigned long long)c->failed,
			 c->failed == 1 ? "" : "s");
	return buf;
}

/* The run error a destination's run row gets (run_dest.c writes the same). */
static const char *dest_error(const struct run_dest *rd)
{
	return rd->err.msg.len ? rd->err.msg.buf
	       : rd->unreadable ? "rows unreadable"
	       : rd->counts.failed ? RUN_ERROR_ROWS_FAILED : NULL;
}

void run_print_text(const struct run *r, FILE *out)
{
	for (size_t i = 0; i < r->n_dests; i++) {
		const struct run_dest *rd = &r->dests[i];
		const struct run_counts *c = &rd->counts;
		char words[64];
		fprintf(out, "destination \"%s\": %s\n", rd->dest->id,
			run_outcome_words(words, sizeof(words), rd->status, dest_error(rd), c));
		fprintf(out, "  created %llu, updated %llu, deleted %llu, unsubscribed %llu, unchanged %llu, failed %llu",
			(unsigned long long)c->created, (unsigned long long)c->updated, (unsigned long long)c->deleted,
			(unsigned long long)c->unsubscribed, (unsigned long long)c->unchanged,
			(unsigned long long)c->failed);
		if (c->skipped)
			fprintf(out, ", not in Braze %llu", (unsigned long long)c->skipped);
		fprintf(out, "\n  requests %llu, 429s %llu, retries %llu, data points %llu, %.2f s\n",
			(unsigned long long)c->requests, (unsigned long long)c->throttled,
			(unsigned long long)c->retries, (unsigned long long)c->data_points, rd->elapsed_s);
		if (rd->stats.inflight_peak > 1)
			fprintf(out, "  up to %u requests in flight (window %u of at most %u; latency %.0f ms)\n",
				rd->stats.inflight_peak, rd->stats.window_peak, rd->stats.window_max,
				rd->stats.latency_srtt_ms);
		if (rd->err.msg.len) {
			fprintf(out, "  error: %s\n", rd->err.msg.buf);
			if (rd->err.detail.len)
				fprintf(out, "  detail: %s\n", rd->err.detail.buf);
			if (rd->err.hint.len)
				fprintf(out, "  hint: %s\n", rd->err.hint.buf);
		}
		if (rd->unreadable) {
			fprintf(out, "  completed with %llu rows unreadable: their records are unknown, so %llu deletes, "
				     "unsubscribes or group exits were held back\n",
				(unsigned long long)rd->unreadable, (unsigned long long)rd->doubt_held);
			fprintf(out, "  hint: fix the rows named above (and in 'joey status --destination %s'); the next "
				     "run reads them again\n",
				rd->dest->id);
		}
		if (c->failed)
			fprintf(out, "  hint: 'joey status --destination %s' lists the failed records; the next run retries them\n",
				rd->dest->id);
		if (rd->sync_log && rd->sync_log_status && !strcmp(rd->sync_log_status, "complete"))
			fprintf(out, "  sync log: complete, %llu record rows written to app \"%s\"\n",
				(unsigned long long)rd->sync_log_rows, rd->dest->sync_log_app->id);
		else if (rd->sync_log && rd->sync_log_status)
			fprintf(out, "  sync log: pending, %llu record rows written to app \"%s\", %llu wait in the state store "
				     "for a later run: %s\n",
				(unsigned long long)rd->sync_log_rows, rd->dest->sync_log_app->id,
				(unsigned long long)rd->sync_log_pending, rd->sync_log_error.buf);
	}
	for (size_t m = 0; m < r->n_models; m++) {
		const struct run_model *rm = &r->models[m];
		fprintf(out, "model \"%s\": ", rm->model->id);
		if (rm->incremental)
			fprintf(out, "incremental since %s", rm->since.buf);
		else
			fputs("full read", out);
		fprintf(out, " (schedule \"%s\"); ", rm->schedule->id);
		if (rm->mark_saved)
			fprintf(out, "mark now %s\n", rm->seen.buf);
		else if (rm->read_ok && !rm->seen.len)
			fputs("no rows read, mark unchanged\n", out);
		else
			fputs("mark unchanged: the rows are read again by the next run\n", out);
	}
	if (r->diff_asked)
		fprintf(out, "warehouse diff: %llu model%s compared in the database, %llu of %llu records read (%llu may have "
			     "changed), %llu digests stored\n",
			(unsigned long long)r->warehouse_models, r->warehouse_models == 1 ? "" : "s",
			(unsigned long long)r->records_read, (unsigned long long)r->records,
			(unsigned long long)r->candidates, (unsigned long long)r->digests);
}

void run_print_json(const struct run *r, FILE *out)
{
	fputs("{\"destinations\":[", out);
	for (size_t i = 0; i < r->n_dests; i++) {
		const struct run_dest *rd = &r->dests[i];
		const struct run_counts *c = &rd->counts;
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "%s{\"id\":", i ? "," : "");
		strbuf_add_json_string(&sb, rd->dest->id, strlen(rd->dest->id));
		strbuf_addf(&sb, ",\"run_id\":%lld,\"status\":\"%s\",\"counts\":{\"created\":%llu,\"updated\":%llu,"
				 "\"deleted\":%llu,\"unsubscribed\":%llu,\"unchanged\":%llu,\"failed\":%llu,\"skipped\":%llu},"
				 "\"requests\":%llu,\"throttled\":%llu,\"retries\":%llu,\"data_points\":%llu,"
				 "\"deletes_held\":%llu,\"unreadable\":%llu,\"doubt_held\":%llu,\"elapsed_s\":%.3f,\"outcome\":\"%s\",\"error\":",
			    (long long)rd->run_id, run_status_name(rd->status), (unsigned long long)c->created,
			    (unsigned long long)c->updated, (unsigned long long)c->deleted,
			    (unsigned long long)c->unsubscribed, (unsigned long long)c->unchanged,
			    (unsigned long long)c->failed, (unsigned long long)c->skipped,
			    (unsigned long long)c->requests, (unsigned long long)c->throttled,
			    (unsigned long long)c->retries, (unsigned long long)c->data_points,
			    (unsigned long long)rd->deletes_held, (unsigned long long)rd->unreadable,
			    (unsigned long long)rd->doubt_held, rd->elapsed_s,
			    run_outcome_name(rd->status, dest_error(rd), c));
		/* the connector's window of requests in flight (dest/window.h), before "error" */
		strbuf_setlen(&sb, sb.len - strlen(",\"error\":"));
		strbuf_addf(&sb, ",\"window\":{\"peak\":%u,\"last\":%u,\"max\":%u,\"inflight_peak\":%u,"
				 "\"decreases\":%llu,\"latency_ms\":%.1f},\"error\":",
			    rd->stats.window_peak, rd->stats.window_last, rd->stats.window_max, rd->stats.inflight_peak,
			    (unsigned long long)rd->stats.window_decreases, rd->stats.latency_srtt_ms);
		if (rd->err.msg.len) {
			strbuf_addstr(&sb, "{\"message\":");
			strbuf_add_json_string(&sb, rd->err.msg.buf, rd->err.msg.len);
			strbuf_addstr(&sb, ",\"detail\":");
			strbuf_add_json_string(&sb, rd->err.detail.buf, rd->err.detail.len);
			strbuf_addstr(&sb, ",\"hint\":");
			strbuf_add_json_string(&sb, rd->err.hint.buf, rd->err.hint.len);
			strbuf_addstr(&sb, "}");
		} else {
			strbuf_addstr(&sb, "null");
		}
		strbuf_addstr(&sb, ",\"sync_log\":");
		if (rd->sync_log && rd->sync_log_status) {
			strbuf_addf(&sb, "{\"status\":\"%s\",\"rows\":%llu,\"pending\":%llu,\"error\":", rd->sync_log_status,
				    (unsigned long long)rd->sync_log_rows, (unsigned long long)rd->sync_log_pending);
			if (rd->sync_log_error.len)
				strbuf_add_json_string(&sb, rd->sync_log_error.buf, rd->sync_log_error.len);
			else
				strbuf_addstr(&sb, "null");
			strbuf_addch(&sb, '}');
		} else {
			strbuf_addstr(&sb, "null");
		}
		strbuf_addstr(&sb, "}");
		fputs(sb.buf, out);
		strbuf_release(&sb);
	}
	fputs("],\"models\":[", out);
	for (size_t m = 0; m < r->n_models; m++) {
		const struct run_model *rm = &r->models[m];
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "%s{\"id\":", m ? "," : "");
		strbuf_add_json_string(&sb, rm->model->id, strlen(rm->model->id));
		strbuf_addstr(&sb, ",\"schedule\":");
		strbuf_add_json_string(&sb, rm->schedule->id, strlen(rm->schedule->id));
		strbuf_addf(&sb, ",\"incremental\":%s,\"since\":", rm->incremental ? "true" : "false");
		if (rm->incremental)
			strbuf_add_json_string(&sb, rm->since.buf, rm->since.len);
		else
			strbuf_addstr(&sb, "null");
		strbuf_addstr(&sb, ",\"mark\":");
		if (rm->mark_saved)
			strbuf_add_json_string(&sb, rm->seen.buf, rm->seen.len);
		else
			strbuf_addstr(&sb, "null");
		strbuf_addf(&sb, ",\"mark_saved\":%s}", rm->mark_saved ? "true" : "false");
		fputs(sb.buf, out);
		strbuf_release(&sb);
	}
	fputs("],", out);
	if (r->diff_asked)
		fprintf(out, "\"diff\":{\"warehouse_models\":%llu,\"read\":%llu,\"candidates\":%llu,\"digests\":%llu},",
			(unsigned long long)r->warehouse_models, (unsigned long long)r->records_read,
			(unsigned long long)r->candidates, (unsigned long long)r->digests);
	fprintf(out, "\"records\":%llu,\"ok\":%s}\n", (unsigned long long)r->records, run_ok(r) ? "true" : "false");
}
