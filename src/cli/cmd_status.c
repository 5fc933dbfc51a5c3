/* cmd_status.c: `joey status`: recent runs, failing records, and one record's last payload. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "cli/cli.h"
#include "engine/record.h"
#include "engine/run.h"
#include "state/state.h"

static void usage(FILE *out)
{
	fputs("usage: joey status [--config DIR] [--state PATH] [--destination ID] [--record KEY]\n"
	      "                   [--limit N] [--json]\n\n"
	      "Shows, per destination, the last runs with their counts and the records whose last\n"
	      "attempt failed, with the error. With --record KEY: what joey last sent to Braze for\n"
	      "that record in each destination, and whether a retry is pending.\n",
	      out);
}

static void fmt_time(char *buf, size_t len, int64_t ms)
{
	if (!ms) {
		snprintf(buf, len, "-");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

struct listing {
	bool json;
	json_t *arr;
	size_t n;
	int64_t last_run; /* the newest run listed */
};

static enum jerr print_run(void *ctx, const struct state_run_info *r, struct jerror *err)
{
	struct listing *l = ctx;
	const struct run_counts *c = &r->counts;
	char a[32], b[32], words[64];
	(void)err;
	if (!l->n++)
		l->last_run = r->id;
	if (l->json) {
		json_t *o = json_pack("{s:I,s:s,s:s,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:I,s:I}",
				      "id", (json_int_t)r->id, "kind", r->kind, "status", run_status_name(r->status),
				      "started_at", (json_int_t)r->started_at, "finished_at", (json_int_t)r->finished_at,
				      "counts", "created", (json_int_t)c->created, "updated", (json_int_t)c->updated,
				      "deleted", (json_int_t)c->deleted, "unsubscribed", (json_int_t)c->unsubscribed,
				      "unchanged", (json_int_t)c->unchanged, "failed", (json_int_t)c->failed,
				      "skipped", (json_int_t)c->skipped, "requests", (json_int_t)c->requests,
				      "throttled", (json_int_t)c->throttled, "retries", (json_int_t)c->retries,
				      "data_points", (json_int_t)c->data_points);
		json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
		json_object_set_new(o, "outcome", json_string(run_outcome_name(r->status, r->error, c)));
		json_array_append_new(l->arr, o);
		return JERR_OK;
	}
	fmt_time(a, sizeof(a), r->started_at);
	fmt_time(b, sizeof(b), r->finished_at);
	printf("  run %-5lld %-11s %s -> %s  created %llu, updated %llu, deleted %llu, unsubscribed %llu, "
	       "unchanged %llu, failed %llu\n",
	       (long long)r->id, run_outcome_words(words, sizeof(words), r->status, r->error, c), a, b, (unsigned long long)c->created,
	       (unsigned long long)c->updated, (unsigned long long)c->deleted, (unsigned long long)c->unsubscribed,
	       (unsigned long long)c->unchanged, (unsigned long long)c->failed);
	if (r->error)
		printf("        error: %s\n", r->error);
	return JERR_OK;
}

static enum jerr show_failing(struct state *st, const struct cfg_destination *d, size_t limit, json_t *jout,
			      struct jerror *err)
{
	struct state_cursor *cur;
	struct state_row *row;
	size_t shown = 0, total = 0;
	enum jerr rc = state_cursor_open(st, d->id, &cur, err);
	if (rc)
		return rc;
	while ((rc = state_cursor_next(cur, &row, err)) == JERR_OK && row) {
		if (!row->pending)
			continue;
		total++;
		if (shown >= limit)
			continue;
		shown++;
		if (jout) {
			json_t *o = json_pack("{s:s%,s:i,s:s%}", "key", row->key.text.ptr, row->key.text.len, "attempts",
					      row->attempts, "error", row->last_error.ptr ? row->last_error.ptr : "",
					      row->last_error.len);
			json_array_append_new(jout, o);
		} else {
			if (shown == 1)
				printf("  failing records (retried by the next run):\n");
			printf("    %.*s  (%d attempt%s): %.*s\n", (int)row->key.text.len, row->key.text.ptr, row->attempts,
			       row->attempts == 1 ? "" : "s", (int)row->last_error.len,
			       row->last_error.ptr ? row->last_error.ptr : "");
		}
	}
	state_cursor_close(cur);
	if (!rc && !jout && total > shown)
		printf("    ... and %zu more\n", total - shown);
	if (!rc && !jout && !total)
		printf("  no failing records\n");
	return rc;
}

struct unreadable_listing {
	json_t *arr;
	size_t n;
};

static enum jerr print_unreadable(void *ctx, const struct state_ledger_entry *e, struct jerror *err)
{
	struct unreadable_listing *u = ctx;
	(void)err;
	if (strncmp(e->error, "unreadable source row", 21))
		return JERR_OK;
	if (u->arr) {
		json_array_append_new(u->arr, json_pack("{s:s%,s:s}", "at", e->key.text.ptr, e->key.text.len,
							 "error", e->error));
	} else {
		if (!u->n)
			printf("  unreadable source rows in the last run (their records were left as they were):\n");
		printf("    %.*s\n", (int)e->key.text.len, e->key.text.ptr);
	}
	u->n++;
	return JERR_OK;
}

/* The source rows the last run could not read (engine/run.h), from the ledger. */
static enum jerr show_unreadable(struct state *st, const struct cfg_destination *d, int64_t run_id,
				 size_t limit, json_t *jout, struct jerror *err)
{
	struct unreadable_listing u = { jout, 0 };
	if (!run_id)
		return JERR_OK;
	return state_ledger_list(st, d->id, run_id, NULL, limit, print_unreadable, &u, err);
}

static enum jerr show_record(struct state *st, const struct cfg_destination *d, const char *keytext, json_t *jout,
			     struct jerror *err)
{
	struct rkey k;
	struct state_row *row;
	bool found;
	char a[32];
	if (!record_key_parse(d->model, keytext, &k)) {
		if (!jout)
			printf("  \"%s\" is not an integer key; model \"%s\" has integer keys\n", keytext, d->model->id);
		return JERR_OK;
	}
	enum jerr rc = state_get(st, d->id, &k, &row, &found, err);
	if (rc)
		return rc;
	if (jout) {
		json_t *o = json_object();
		json_object_set_new(o, "destination", json_string(d->id));
		json_object_set_new(o, "found", json_boolean(found));
		if (found) {
			json_t *p = row->confirmed ? json_loadb(row->payload.ptr, row->payload.len, 0, NULL) : NULL;
			json_object_set_new(o, "last_sent", p ? p : json_null());
			json_object_set_new(o, "in_scope", json_boolean(row->in_scope));
			json_object_set_new(o, "pending", json_boolean(row->pending));
			json_object_set_new(o, "attempts", json_integer(row->attempts));
			json_object_set_new(o, "last_error", row->last_error.len ? json_stringn(row->last_error.ptr, row->last_error.len) : json_null());
			json_object_set_new(o, "confirmed_at", json_integer(row->confirmed_at));
			json_object_set_new(o, "braze_exists", row->braze_exists < 0 ? json_null() : json_boolean(row->braze_exists));
		}
		json_array_append_new(jout, o);
		return JERR_OK;
	}
	printf("destination \"%s\":\n", d->id);
	if (!found) {
		printf("  nothing sent yet\n");
		return JERR_OK;
	}
	if (row->confirmed) {
		fmt_time(a, sizeof(a), row->confirmed_at);
		printf("  last confirmed by Braze at %s%s:\n    %.*s\n", a, row->in_scope ? "" : " (since released: out of scope)",
		       (int)row->payload.len, row->payload.ptr);
	} else {
		printf("  never confirmed by Braze\n");
	}
	if (row->braze_exists == 0)
		printf("  not in Braze at the last check (enrich mode does not create users)\n");
	if (row->pending)
		printf("  pending: %d failed attempt%s, last error: %.*s\n", row->attempts, row->attempts == 1 ? "" : "s",
		       (int)row->last_error.len, row->last_error.ptr ? row->last_error.ptr : "");
	return JERR_OK;
}

int cmd_status(int argc, char **argv)
{
	struct cli_common c = { 0 };
	struct jerror err = JERROR_INIT;
	struct config *cfg = NULL;
	struct state *st = NULL;
	const char *only = NULL, *record = NULL;
	size_t limit = 5;
	int ret = 1, r;
	json_t *jroot = NULL;

	for (int i = 0; (r = cli_opt_next(&c, argc, argv, &i, usage, NULL)) == CLI_OPT_NOT;) {
		bool missing;
		const char *v;
		if ((v = cli_opt_value("--destination", argc, argv, &i, &missing))) {
			only = v;
			continue;
		}
		if (missing)
			return EXIT_USAGE;
		if ((v = cli_opt_value("--record", argc, argv, &i, &missing))) {
			record = v;
			continue;
		}
		if (missing)
			return EXIT_USAGE;
		if ((v = cli_opt_value("--limit", argc, argv, &i, &missing))) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n < 1 || n > 100000) {
				fprintf(stderr, "joey: error: --limit takes a number from 1 to 100000, not \"%s\"\n", v);
				return EXIT_USAGE;
			}
			limit = (size_t)n;
			continue;
		}
		if (missing)
			return EXIT_USAGE;
		return cli_opt_unknown(argv[i], "'joey status'", usage);
	}
	if (r != CLI_OPT_DONE)
		return r;
	cli_common_finish(&c);
	cfg = cli_load_config(&c);
	if (!cfg)
		goto out;
	if (only && !config_destination(cfg, only)) {
		fprintf(stderr, "joey: error: destination \"%s\" does not exist\n", only);
		ret = EXIT_USAGE;
		goto out;
	}
	if (record) { /* a key no destination's model can have is a mistake, not "nothing sent" */
		const struct cfg_model *m = NULL;
		bool any = false;
		for (size_t i = 0; i < cfg->n_destinations && !any; i++) {
			struct rkey k;
			if (only && strcmp(only, cfg->destinations[i]->id))
				continue;
			m = cfg->destinations[i]->model;
			any = record_key_parse(m, record, &k);
		}
		if (m && !any) {
			fprintf(stderr, "joey: error: --record \"%s\" is not a record key: it is not an integer\n"
					"hint: model \"%s\" has integer keys\n", record, m->id);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (state_open(c.state_path, STATE_OPEN_READONLY_OR_EMPTY, &st, &err))
		goto fail;
	if (c.json)
		jroot = json_object();
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		if (only && strcmp(only, d->id))
			continue;
		if (record) {
			json_t *arr = NULL;
			if (jroot) {
				arr = json_object_get(jroot, "records");
				if (!arr)
					json_object_set_new(jroot, "records", arr = json_array());
			}
			if (show_record(st, d, record, arr, &err))
				goto fail;
			continue;
		}
		struct listing l = { .json = c.json };
		json_t *jd = NULL;
		if (jroot) {
			json_t *arr = json_object_get(jroot, "destinations");
			if (!arr)
				json_object_set_new(jroot, "destinations", arr = json_array());
			jd = json_object();
			json_object_set_new(jd, "id", json_string(d->id));
			l.arr = json_array();
			json_object_set_new(jd, "runs", l.arr);
			json_object_set_new(jd, "failing", json_array());
			json_object_set_new(jd, "unreadable", json_array());
			json_array_append_new(arr, jd);
		} else {
			printf("destination \"%s\" (%s mode, model \"%s\")\n", d->id, sync_mode_name(d->sync_mode),
			       d->model->id);
		}
		if (state_runs_list(st, d->id, limit, print_run, &l, &err))
			goto fail;
		if (!l.n && !jroot)
			printf("  no runs yet\n");
		if (show_failing(st, d, limit * 4, jd ? json_object_get(jd, "failing") : NULL, &err))
			goto fail;
		if (show_unreadable(st, d, l.last_run, limit * 4, jd ? json_object_get(jd, "unreadable") : NULL, &err))
			goto fail;
	}
	if (jroot) {
		char *s = json_dumps(jroot, JSON_INDENT(2) | JSON_SORT_KEYS);
		puts(s);
		free(s);
	}
	ret = 0;
	goto out;
fail:
	jerror_print(stderr, &err);
out:
	json_decref(jroot);
	state_close(st);
	config_free(cfg);
	jerror_release(&err);
	cli_common_release(&c);
	return ret;
}
