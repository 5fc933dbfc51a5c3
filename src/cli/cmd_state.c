/* cmd_state.c: `joey state migrate|export|import`: the state store as a whole. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/strbuf.h"
#include "cli/cli.h"
#include "state/state.h"

/*
 * The export format (docs/internals/state.md, "Export and import"): JSON lines, one
 * object per line, UTF-8, in this order:
 *
 *   {"joey_state_export":1,"schema_version":2}                      the header
 *   {"table":"records","row":{"dest_id":"d","key":7,"payload":"{...}",...}}
 *   ...                                                             every row of every table
 *   {"end":{"records":3,"runs":2,"ledger":1,"locks":0,"marks":1}}   rows per table
 *
 * Tables and rows come in the order of state_dump (tables as in state_tables, rows by
 * primary key), so equal stores export to equal bytes whatever their back end. Every
 * column of a row is present: integers and record keys as JSON numbers (a text key as
 * a string), flags as true/false, payloads and other text as strings (a payload is
 * its canonical JSON text, not parsed), hashes as 32 lowercase hex digits, SQL NULL
 * as null. Import refuses a file without its end line (a truncated export).
 */

#define EXPORT_FORMAT 1
/* The longest line import reads (a row with a large payload). */
#define IMPORT_MAX_LINE (64 * 1024 * 1024)

static void usage(FILE *out)
{
	fputs("usage: joey state migrate [--state PATH|URL] [--config DIR] [--json]\n"
	      "       joey state export [--json] [--state PATH|URL] [--config DIR] > FILE\n"
	      "       joey state import [--replace] [--state PATH|URL] [--config DIR] [FILE]\n\n"
	      "The state store is an SQLite file (default .joey/state.db beside the config\n"
	      "directory) or a PostgreSQL schema: --state postgresql://USER@HOST:PORT/DB[?schema=NAME]\n"
	      "(default schema \"joey\"; the password from PGPASSWORD or the URL), or $JOEY_STATE_URL.\n\n"
	      "  migrate   create the store, or upgrade its schema to this joey's version\n"
	      "  export    write every table to stdout as JSON lines (--json: the only format)\n"
	      "  import    load an export (FILE, or stdin) into an empty store, in one transaction\n"
	      "            --replace: delete what the store holds first\n",
	      out);
}

/* ---- export ---- */

struct exporter {
	FILE *out;
	size_t counts[16];
	struct strbuf hex;
};

static json_t *value_json(const struct state_column *c, const struct state_value *v,
			  struct strbuf *hex)
{
	if (v->kind == STATE_VAL_NULL)
		return json_null();
	if (v->kind == STATE_VAL_INT)
		return c->type == STATE_COL_BOOL ? json_boolean(v->i) : json_integer(v->i);
	if (c->type == STATE_COL_HASH) {
		strbuf_reset(hex);
		for (size_t i = 0; i < v->s.len; i++)
			strbuf_addf(hex, "%02x", (unsigned char)v->s.ptr[i]);
		return json_stringn(hex->buf, hex->len);
	}
	return json_stringn(v->s.ptr, v->s.len); /* NULL if not UTF-8 */
}

static enum jerr export_row(void *ctx, const struct state_table *t, const struct state_value *row,
			    struct jerror *err)
{
	struct exporter *x = ctx;
	json_t *line = json_object(), *obj = json_object();
	enum jerr ret = JERR_OK;

	json_object_set_new(line, "table", json_string(t->name));
	for (size_t i = 0; i < t->n_cols; i++) {
		json_t *v = value_json(&t->cols[i], &row[i], &x->hex);
		if (!v) {
			ret = jerror_set(err, JERR_STATE, "cannot export table \"%s\": column \"%s\" of a "
							  "row is not valid UTF-8",
					 t->name, t->cols[i].name);
			if (t->n_pk && row[0].kind == STATE_VAL_TEXT)
				jerror_detail(err, "the row's %s is \"%.*s\"", t->cols[0].name,
					      (int)row[0].s.len, row[0].s.ptr);
			goto out;
		}
		json_object_set_new(obj, t->cols[i].name, v);
	}
	json_object_set(line, "row", obj);
	if (json_dumpf(line, x->out, JSON_COMPACT) != 0 || fputc('\n', x->out) == EOF) {
		ret = jerror_set(err, JERR_IO, "could not write the export: %s", strerror(errno));
		goto out;
	}
	x->counts[t - state_tables]++;
out:
	json_decref(obj);
	json_decref(line);
	return ret;
}

static int do_export(struct cli_common *c)
{
	struct jerror err = JERROR_INIT;
	struct state *st = NULL;
	struct exporter x = { stdout, { 0 }, STRBUF_INIT };
	json_t *head = NULL, *end = NULL, *counts = NULL;
	int ret = 1;

	if (state_open(c->state_path, STATE_OPEN_READONLY, &st, &err))
		goto fail;
	head = json_pack("{s:i,s:i}", "joey_state_export", EXPORT_FORMAT, "schema_version",
			 STATE_SCHEMA_VERSION);
	json_dumpf(head, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	if (state_dump(st, export_row, &x, &err))
		goto fail;
	counts = json_object();
	for (size_t i = 0; i < state_n_tables; i++)
		json_object_set_new(counts, state_tables[i].name, json_integer((json_int_t)x.counts[i]));
	end = json_pack("{s:O}", "end", counts);
	json_dumpf(end, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		jerror_set(&err, JERR_IO, "could not write the export: %s", strerror(errno));
		goto fail;
	}
	if (x.counts[3])
		fprintf(stderr, "joey: warning: the export holds %zu destination lock%s: export while no "
				"run is active, or a run on the imported store waits until the lock is "
				"stale\n",
			x.counts[3], x.counts[3] == 1 ? "" : "s");
	if (c->verbose)
		fprintf(stderr, "joey: exported state store \"%s\"\n", state_path(st));
	ret = 0;
	goto out;
fail:
	jerror_print(stderr, &err);
out:
	json_decref(head);
	json_decref(end);
	json_decref(counts);
	strbuf_release(&x.hex);
	state_close(st);
	jerror_release(&err);
	return ret;
}

/* ---- import ---- */

struct importer {
	const char *file; /* for messages */
	size_t line;
	size_t counts[16];
	struct strbuf bytes; /* decoded hashes of the current row */
};

static enum jerr bad_line(struct importer *im, struct jerror *err, const char *fmt, ...)
	JOEY_PRINTF(3, 4);
static enum jerr bad_line(struct importer *im, struct jerror *err, const char *fmt, ...)
{
	struct strbuf m = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&m, fmt, ap);
	va_end(ap);
	jerror_set(err, JERR_STATE, "%s:%zu: %s", im->file, im->line, m.buf);
	jerror_hint(err, "import a file written by 'joey state export'");
	strbuf_release(&m);
	return JERR_STATE;
}

/* Column c of a row from JSON into v (hash bytes appended to im->bytes, slice fixed later). */
static enum jerr value_of(struct importer *im, const struct state_table *t,
			  const struct state_column *c, json_t *j, struct state_value *v,
			  size_t *hash_at, struct jerror *err)
{
	*v = (struct state_value){ STATE_VAL_NULL, 0, { "", 0 } };
	*hash_at = SIZE_MAX;
	if (!j)
		return bad_line(im, err, "table \"%s\": the row has no column \"%s\"", t->name, c->name);
	if (json_is_null(j)) {
		if (!c->nullable)
			return bad_line(im, err, "table \"%s\": column \"%s\" cannot be null", t->name,
					c->name);
		return JERR_OK;
	}
	switch (c->type) {
	case STATE_COL_BOOL:
		if (!json_is_boolean(j))
			break;
		v->kind = STATE_VAL_INT;
		v->i = json_is_true(j);
		return JERR_OK;
	case STATE_COL_INT:
	case STATE_COL_KEY: /* a key is an integer or a text */
		if (json_is_integer(j)) {
			v->kind = STATE_VAL_INT;
			v->i = json_integer_value(j);
			return JERR_OK;
		}
		if (c->type == STATE_COL_INT)
			break;
		__attribute__((fallthrough));
	case STATE_COL_TEXT:
		if (!json_is_string(j))
			break;
		v->kind = STATE_VAL_TEXT;
		v->s = (struct slice){ json_string_value(j), json_string_length(j) };
		return JERR_OK;
	case STATE_COL_HASH: {
		const char *h = json_is_string(j) ? json_string_value(j) : NULL;
		if (!h || json_string_length(j) != 2 * STATE_HASH_LEN)
			return bad_line(im, err, "table \"%s\": column \"%s\" needs %d hex digits",
					t->name, c->name, 2 * STATE_HASH_LEN);
		*hash_at = im->bytes.len;
		for (size_t i = 0; i < STATE_HASH_LEN; i++) {
			int hi = hex_digit_value(h[2 * i]), lo = hex_digit_value(h[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return bad_line(im, err, "table \"%s\": column \"%s\" needs %d hex digits",
						t->name, c->name, 2 * STATE_HASH_LEN);
			strbuf_addch(&im->bytes, (char)(hi * 16 + lo));
		}
		v->kind = STATE_VAL_TEXT;
		v->s.len = STATE_HASH_LEN;
		return JERR_OK;
	}
	}
	{
		static const char *const want[] = { [STATE_COL_INT] = "an integer",
						    [STATE_COL_BOOL] = "true or false",
						    [STATE_COL_TEXT] = "a string",
						    [STATE_COL_HASH] = "hex digits",
						    [STATE_COL_KEY] = "an integer or a string" };
		return bad_line(im, err, "table \"%s\": column \"%s\" needs %s", t->name, c->name,
				want[c->type]);
	}
}

static enum jerr import_row(struct importer *im, struct state *st, json_t *line,
			    struct jerror *err)
{
	const char *name = json_string_value(json_object_get(line, "table"));
	json_t *row = json_object_get(line, "row");
	const struct state_table *t = NULL;
	struct state_value vals[32];
	size_t hash_at[32];
	const char *key;
	json_t *val;
	enum jerr ret;

	for (size_t i = 0; name && i < state_n_tables; i++)
		if (!strcmp(state_tables[i].name, name))
			t = &state_tables[i];
	if (!name)
		return bad_line(im, err, "a line with no \"table\"");
	if (!t)
		return bad_line(im, err, "unknown table \"%s\"", name);
	if (!json_is_object(row) || json_object_size(line) != 2)
		return bad_line(im, err, "table \"%s\": a line needs \"table\" and \"row\" only", t->name);
	json_object_foreach(row, key, val) {
		bool known = false;
		for (size_t i = 0; i < t->n_cols && !known; i++)
			known = !strcmp(t->cols[i].name, key);
		if (!known)
			return bad_line(im, err, "table \"%s\" has no column \"%s\"", t->name, key);
	}
	strbuf_reset(&im->bytes);
	for (size_t i = 0; i < t->n_cols && i < ARRAY_SIZE(vals); i++)
		if ((ret = value_of(im, t, &t->cols[i], json_object_get(row, t->cols[i].name), &vals[i],
				    &hash_at[i], err)))
			return ret;
	for (size_t i = 0; i < t->n_cols && i < ARRAY_SIZE(vals); i++)
		if (hash_at[i] != SIZE_MAX)
			vals[i].s.ptr = im->bytes.buf + hash_at[i];
	if ((ret = state_load_row(st, t, vals, err))) {
		jerror_prefix(err, "%s:%zu: ", im->file, im->line);
		return ret;
	}
	im->counts[t - state_tables]++;
	return JERR_OK;
}

/* The end line: the counts must be what was read. */
static enum jerr import_end(struct importer *im, json_t *end, struct jerror *err)
{
	if (!json_is_object(end))
		return bad_line(im, err, "\"end\" needs an object of row counts");
	for (size_t i = 0; i < state_n_tables; i++) {
		json_t *n = json_object_get(end, state_tables[i].name);
		if (!json_is_integer(n) || (size_t)json_integer_value(n) != im->counts[i])
			return bad_line(im, err, "table \"%s\": the export says %lld rows, the file has %zu",
					state_tables[i].name,
					json_is_integer(n) ? (long long)json_integer_value(n) : -1LL,
					im->counts[i]);
	}
	return JERR_OK;
}

static enum jerr import_lines(struct importer *im, FILE *in, struct state *st, struct jerror *err)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	bool header = false, ended = false;
	enum jerr ret = JERR_OK;

	while (!ret && (n = getline(&buf, &cap, in)) >= 0) {
		json_error_t jerr;
		json_t *line;
		im->line++;
		if (n > IMPORT_MAX_LINE) {
			ret = bad_line(im, err, "the line is longer than %d bytes", IMPORT_MAX_LINE);
			break;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		if (n == 0)
			continue;
		if (ended) {
			ret = bad_line(im, err, "a line after the end line");
			break;
		}
		line = json_loadb(buf, (size_t)n, JSON_ALLOW_NUL, &jerr);
		if (!json_is_object(line)) {
			ret = bad_line(im, err, "not a JSON object%s%s", line ? "" : ": ",
				       line ? "" : jerr.text);
		} else if (!header) {
			json_t *f = json_object_get(line, "joey_state_export");
			json_t *v = json_object_get(line, "schema_version");
			if (!json_is_integer(f) || !json_is_integer(v))
				ret = bad_line(im, err, "not a joey state export (the first line is no "
							"header)");
			else if (json_integer_value(f) != EXPORT_FORMAT)
				ret = bad_line(im, err, "export format %lld is not known to this joey (it "
							"reads %d)",
					       (long long)json_integer_value(f), EXPORT_FORMAT);
			else if (json_integer_value(v) > STATE_SCHEMA_VERSION)
				ret = bad_line(im, err, "the export was written by a newer joey (schema "
							"version %lld, this joey knows up to %d)",
					       (long long)json_integer_value(v), STATE_SCHEMA_VERSION);
			header = true;
		} else if (json_object_get(line, "end")) {
			ret = import_end(im, json_object_get(line, "end"), err);
			ended = true;
		} else {
			ret = import_row(im, st, line, err);
		}
		json_decref(line);
	}
	if (!ret && ferror(in))
		ret = jerror_set(err, JERR_IO, "could not read %s: %s", im->file, strerror(errno));
	if (!ret && !header)
		ret = bad_line(im, err, "the file is empty");
	if (!ret && !ended) {
		ret = bad_line(im, err, "the export is truncated: it has no end line");
		jerror_hint(err, "export again; nothing was imported");
	}
	free(buf);
	return ret;
}

static int do_import(struct cli_common *c, const char *file, bool replace)
{
	struct jerror err = JERROR_INIT;
	struct state *st = NULL;
	struct importer im = { file ? file : "<stdin>", 0, { 0 }, STRBUF_INIT };
	FILE *in = stdin;
	bool empty = false;
	size_t total = 0;
	int ret = 1;

	if (file && strcmp(file, "-") != 0 && !(in = fopen(file, "r"))) {
		jerror_set(&err, JERR_IO, "could not open \"%s\": %s", file, strerror(errno));
		goto fail;
	}
	if (state_open(c->state_path, STATE_OPEN_CREATE, &st, &err) || state_begin(st, &err))
		goto fail;
	if (state_is_empty(st, &empty, &err))
		goto fail;
	if (!empty && !replace) {
		jerror_set(&err, JERR_STATE, "state store \"%s\" is not empty", state_path(st));
		jerror_hint(&err, "import into a new store, or pass --replace to delete what it holds "
				  "first");
		goto fail;
	}
	if (!empty && state_clear(st, &err))
		goto fail;
	if (import_lines(&im, in, st, &err) || state_load_finish(st, &err) || state_commit(st, &err))
		goto fail;
	for (size_t i = 0; i < state_n_tables; i++)
		total += im.counts[i];
	fprintf(stderr, "joey: imported %zu rows into state store \"%s\" (", total, state_path(st));
	for (size_t i = 0; i < state_n_tables; i++)
		fprintf(stderr, "%s%s %zu", i ? ", " : "", state_tables[i].name, im.counts[i]);
	fprintf(stderr, ")%s\n", !empty ? ", replacing what it held" : "");
	ret = 0;
	goto out;
fail:
	state_rollback(st);
	jerror_print(stderr, &err);
out:
	if (in && in != stdin)
		fclose(in);
	strbuf_release(&im.bytes);
	state_close(st);
	jerror_release(&err);
	return ret;
}

/* ---- migrate ---- */

static int do_migrate(struct cli_common *c)
{
	struct jerror err = JERROR_INIT;
	struct state *st = NULL;
	int before = 0, ret = 1;

	/* the version before, if there is a store (a missing one is created) */
	if (!state_open(c->state_path, STATE_OPEN_READONLY, &st, &err)) {
		before = state_schema_version(st);
		state_close(st);
		st = NULL;
	} else if (err.code == JERR_STATE_VERSION) {
		goto fail;
	}
	jerror_release(&err);
	if (state_open(c->state_path, STATE_OPEN_CREATE, &st, &err))
		goto fail;
	if (c->json) {
		json_t *j = json_pack("{s:s,s:s,s:i,s:i}", "state", state_path(st), "backend",
				      state_backend_name(st), "schema_version", state_schema_version(st),
				      "previous_version", before);
		json_dumpf(j, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(j);
	} else if (before == 0) {
		printf("state store \"%s\" (%s): created at schema version %d\n", state_path(st),
		       state_backend_name(st), state_schema_version(st));
	} else if (before < state_schema_version(st)) {
		printf("state store \"%s\" (%s): upgraded from schema version %d to %d\n",
		       state_path(st), state_backend_name(st), before, state_schema_version(st));
	} else {
		printf("state store \"%s\" (%s): already at schema version %d\n", state_path(st),
		       state_backend_name(st), state_schema_version(st));
	}
	ret = 0;
	goto out;
fail:
	jerror_print(stderr, &err);
out:
	state_close(st);
	jerror_release(&err);
	return ret;
}

int cmd_state(int argc, char **argv)
{
	struct cli_common c = { 0 };
	const char *sub = argc > 1 ? argv[1] : NULL, *file = NULL;
	bool replace = false;
	int ret;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		usage(sub ? stdout : stderr);
		return sub ? 0 : EXIT_USAGE;
	}
	if (strcmp(sub, "migrate") && strcmp(sub, "export") && strcmp(sub, "import")) {
		fprintf(stderr, "joey: error: unknown subcommand \"%s\" for 'joey state'\n", sub);
		usage(stderr);
		return EXIT_USAGE;
	}
	const struct cli_flag import_flags[] = { { "--replace", &replace }, { NULL, NULL } };
	const struct cli_flag *flags = strcmp(sub, "import") ? NULL : import_flags;
	int r;
	for (int i = 1; (r = cli_opt_next(&c, argc, argv, &i, usage, flags)) == CLI_OPT_NOT;) {
		if (!strcmp(sub, "import") && !file && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) {
			file = argv[i];
			continue;
		}
		char where[64];
		snprintf(where, sizeof(where), "'joey state %s'", sub);
		return cli_opt_unknown(argv[i], where, usage);
	}
	if (r != CLI_OPT_DONE)
		return r;
	cli_common_finish(&c);
	if (!strcmp(sub, "migrate"))
		ret = do_migrate(&c);
	else if (!strcmp(sub, "export"))
		ret = do_export(&c);
	else
		ret = do_import(&c, file, replace);
	cli_common_release(&c);
	return ret;
}
