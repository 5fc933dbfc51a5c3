/* csv.c: the CSV connector: files are loaded into a temporary SQLite table and read by the SQLite connector. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "config/paths.h"
#include "source/csvread.h"
#include "source/source.h"

/*
 * Design note (docs/internals/sources.md, "CSV").
 *
 * connect() streams every file of the app (one file, or every *.csv of a directory in
 * name order, all with the same header) through csvread.c into one table of a
 * temporary SQLite database (TMPDIR, deleted at disconnect), then opens that database
 * with the SQLite connector. Every cursor, check and describe is the SQLite
 * connector's, run on a private copy of the source whose table is the CSV table, so
 * aggregations, filters, arrays and key ordering are exactly SQLite's. Memory stays
 * bounded: one record at a time is held (at most 16 MiB), the load is one transaction
 * with the journal off.
 *
 * Cell types: columns have no declared type, and a cell is stored as INTEGER when it
 * is an integer in canonical form ("12", "-3"; not "007", "+5", " 1"), as REAL when it
 * is a plain decimal that SQLite prints back identically ("2.5", "12.0"), as NULL when
 * empty, and as TEXT otherwise. The text SQLite returns for a cell is therefore always
 * the file's text, so string properties see exactly what the file holds and typed
 * properties get the same value as value_coerce_text() on the text; meanwhile numbers
 * compare, sort, MIN/MAX and SUM as numbers. Filter matches go through the same rule
 * (a "match": "12" binds as the integer 12), so eq/ne/in keep text equality. A decimal
 * SQLite would not print back ("0.30000000000000004", "1e+308") is TEXT, and compares
 * as a number through joey_number() (number_fn below) where the SQL compares or orders.
 */

/* Bad rows whose place is remembered (the rest are counted). */
#define CSV_BAD_AT_MAX 20

struct csv_conn {
	const struct cfg_app *app;
	struct cfg_app inner_app; /* type sqlite, file = tmp_path */
	struct cfg_option inner_file;
	void *inner; /* the SQLite connector's connection */
	char *tmp_path;
	char *table; /* file stem ("users" for users.csv, or the directory name) */
	char *shown; /* the file or directory as resolved, for messages */
	uint64_t rows, bad_rows;
	/* where the first bad rows skipped are ("file:line:col: reason"), for the ledger */
	char *bad_at[CSV_BAD_AT_MAX];
	size_t n_bad_at;
};

/* A source as the SQLite connector sees it: table = the CSV table, filter matches typed. */
struct csv_src {
	struct cfg_source s;
	struct arena arena;
};

struct csv_cursor {
	struct source_cursor base; /* first */
	struct source_cursor *inner;
	struct csv_src src;
};

static const char *const csv_source_types[] = { "csv-import-table", NULL };
static const char *const csv_app_options[] = { "file", "delimiter", "badRows", NULL };
static const char *const csv_required_app_options[] = { "file", NULL };

static const char *sid(const struct cfg_source *src)
{
	return src && src->id ? src->id : "?";
}

/* ---- cell typing ---- */

/* "0", "12", "-3": what SQLite prints for the integer, nothing else. */
static bool canonical_int(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0;

	if (n && s[0] == '-')
		neg = true, i = 1;
	if (i == n || n - i > 19 || !isdigit((unsigned char)s[i]))
		return false;
	if (s[i] == '0' && (n - i > 1 || neg))
		return false;
	for (; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* "2.5", "-0.25", "12.0": a plain decimal SQLite prints back identically. */
static bool canonical_real(const char *s, size_t n, double *out)
{
	char buf[40], back[48];
	size_t i = 0, dot = 0;

	if (n < 3 || n >= sizeof(buf))
		return false;
	if (s[0] == '-')
		i = 1;
	for (size_t k = i; k < n; k++) {
		if (s[k] == '.' && !dot && k > i && k + 1 < n)
			dot = k;
		else if (!isdigit((unsigned char)s[k]))
			return false;
	}
	if (!dot || (s[i] == '0' && dot != i + 1))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	double d = strtod(buf, NULL);
	sqlite3_snprintf((int)sizeof(back), back, "%!.15g", d);
	if (strcmp(back, buf))
		return false;
	*out = d;
	return true;
}

static int bind_cell(sqlite3_stmt *st, int idx, const char *s, size_t n)
{
	int64_t i;
	double d;

	if (!n)
		return sqlite3_bind_null(st, idx);
	if (canonical_int(s, n, &i))
		return sqlite3_bind_int64(st, idx, i);
	if (canonical_real(s, n, &d))
		return sqlite3_bind_double(st, idx, d);
	return sqlite3_bind_text(st, idx, s, (int)n, SQLITE_STATIC);
}

/*
 * joey_number(x), where a statement compares a column with a number, orders a pick by
 * it, or takes MIN/MAX of it for a number property (sqlgen.h num_fn): a TEXT cell
 * written as a decimal or with an exponent that a float property reads as a number
 * ("0.30000000000000004", "1e+308", "-0.0", "1.50") as that number, anything else as
 * it is. Such a cell is TEXT because SQLite would not print it back identically, and
 * TEXT sorts after every number: without this, MIN, MAX and "lt" came out wrong.
 * Whole numbers written otherwise ("007", "+5") stay text, as in eq/ne/in.
 */
static void number_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	sqlite3_value *v = argv[0];
	double d;
	(void)argc;
	if (sqlite3_value_type(v) == SQLITE_TEXT) {
		const char *s = (const char *)sqlite3_value_text(v);
		size_t n = (size_t)sqlite3_value_bytes(v);
		if (s && strpbrk(s, ".eE") && source_parse_float(s, n, &d)) {
			sqlite3_result_double(ctx, d);
			return;
		}
	}
	sqlite3_result_value(ctx, v);
}

static bool typed_match(const char *m)
{
	int64_t i;
	double d;
	size_t n = m ? strlen(m) : 0;
	return n && (canonical_int(m, n, &i) || canonical_real(m, n, &d));
}

/* ---- loading ---- */

struct loader {
	struct csv_conn *c;
	sqlite3 *db;
	sqlite3_stmt *ins;
	struct csv_reader rd;
	bool fail_on_bad;
	char **header; /* of the first file */
	size_t n_cols;
};

static void add_where(struct strbuf *sb, const char *file, uint64_t line, uint64_t col)
{
	strbuf_addf(sb, "%s:%" PRIu64 ":%" PRIu64, file, line, col);
}

/* A bad row: warn and count, or fail the load. */
static enum jerr bad_row(struct loader *ld, const char *file, uint64_t line, uint64_t col,
			 const char *reason, struct jerror *err)
{
	struct strbuf w = STRBUF_INIT;
	add_where(&w, file, line, col);
	ld->c->bad_rows++;
	if (ld->fail_on_bad) {
		jerror_set(err, JERR_SOURCE_DATA, "%s: bad row: %s", w.buf, reason);
		jerror_detail(err, "app \"%s\" has badRows \"fail\"", ld->c->app->id);
		jerror_hint(err, "fix the row, or set the app's options.badRows to \"skip\" to "
				 "skip bad rows with a warning");
		strbuf_release(&w);
		return JERR_SOURCE_DATA;
	}
	log_warn("%s: bad row skipped: %s", w.buf, reason);
	if (ld->c->n_bad_at < CSV_BAD_AT_MAX) {
		strbuf_addf(&w, ": %s", reason);
		ld->c->bad_at[ld->c->n_bad_at++] = strbuf_detach(&w, NULL);
	}
	strbuf_release(&w);
	return JERR_OK;
}

static enum jerr read_header(struct loader *ld, const char *file, bool first, struct jerror *err)
{
	struct csv_reader *r = &ld->rd;
	enum csv_status s = csv_reader_next(r);
	struct strbuf sb = STRBUF_INIT;
	enum jerr rc = JERR_OK;

	if (s == CSV_EOF) {
		rc = jerror_set(err, JERR_SOURCE, "%s: the CSV file is empty", file);
		jerror_detail(err, "app \"%s\": a header row naming the columns is required",
			      ld->c->app->id);
		return rc;
	}
	if (s == CSV_IOERR) {
		rc = jerror_set(err, JERR_SOURCE, "%s: cannot read the CSV file", file);
		jerror_detail(err, "%s", strerror(r->io_errno));
		return rc;
	}
	if (s == CSV_BAD) {
		add_where(&sb, file, r->bad_line, r->bad_col);
		rc = jerror_set(err, JERR_SOURCE_DATA, "%s: bad header row: field %zu: %s", sb.buf,
				r->bad_field, r->bad_reason);
		jerror_detail(err, "app \"%s\"", ld->c->app->id);
		goto out;
	}
	for (size_t i = 0; i < r->n_fields; i++) {
		const char *name = r->row.buf + r->off[i];
		if (!r->len[i]) {
			add_where(&sb, file, r->pos[i].line, r->pos[i].col);
			rc = jerror_set(err, JERR_SOURCE_DATA, "%s: header column %zu has no name",
					sb.buf, i + 1);
			jerror_hint(err, "name every column in the header row");
			goto out;
		}
		for (size_t k = 0; k < i; k++) {
			if (!strcasecmp(name, r->row.buf + r->off[k])) {
				add_where(&sb, file, r->pos[i].line, r->pos[i].col);
				if (ld->c->app->file_unlisted) /* never the file's text (csv_check) */
					rc = jerror_set(err, JERR_SOURCE_DATA, "%s: duplicate header column",
							sb.buf);
				else
					rc = jerror_set(err, JERR_SOURCE_DATA,
							"%s: duplicate header column \"%s\"", sb.buf, name);
				jerror_detail(err, "columns %zu and %zu have the same name (names are "
						   "compared without regard to case)",
					      k + 1, i + 1);
				jerror_hint(err, "give every column a distinct name");
				goto out;
			}
		}
	}
	if (first) {
		ld->n_cols = r->n_fields;
		ld->header = xcalloc(r->n_fields, sizeof(char *));
		for (size_t i = 0; i < r->n_fields; i++)
			ld->header[i] = xstrdup(r->row.buf + r->off[i]);
		goto out;
	}
	bool same = r->n_fields == ld->n_cols;
	for (size_t i = 0; same && i < r->n_fields; i++)
		same = !strcmp(ld->header[i], r->row.buf + r->off[i]);
	if (!same) {
		rc = jerror_set(err, JERR_SOURCE_DATA,
				"%s: header differs from the first file of the directory", file);
		jerror_detail(err, "app \"%s\": every *.csv file of \"%s\" must have the same "
				   "columns in the same order",
			      ld->c->app->id, ld->c->shown);
	}
out:
	strbuf_release(&sb);
	return rc;
}

static enum jerr sql_fail(struct loader *ld, const char *what, struct jerror *err)
{
	jerror_set(err, JERR_SOURCE, "app \"%s\": cannot %s the temporary CSV database",
		   ld->c->app->id, what);
	jerror_detail(err, "%s: %s", ld->c->tmp_path, sqlite3_errmsg(ld->db));
	jerror_hint(err, "check that TMPDIR has room for a copy of the CSV data");
	return JERR_SOURCE;
}

static enum jerr create_table(struct loader *ld, struct jerror *err)
{
	struct strbuf sql = STRBUF_INIT;
	enum jerr rc = JERR_OK;

	strbuf_addstr(&sql, "CREATE TABLE ");
	strbuf_add_sql_ident(&sql, ld->c->table);
	strbuf_addch(&sql, '(');
	for (size_t i = 0; i < ld->n_cols; i++) {
		if (i)
			strbuf_addstr(&sql, ", ");
		strbuf_add_sql_ident(&sql, ld->header[i]);
	}
	strbuf_addch(&sql, ')');
	if (sqlite3_exec(ld->db, sql.buf, NULL, NULL, NULL) != SQLITE_OK) {
		rc = sql_fail(ld, "create a table in", err);
		goto out;
	}
	strbuf_reset(&sql);
	strbuf_addstr(&sql, "INSERT INTO ");
	strbuf_add_sql_ident(&sql, ld->c->table);
	strbuf_addstr(&sql, " VALUES (");
	for (size_t i = 0; i < ld->n_cols; i++)
		strbuf_addstr(&sql, i ? ", ?" : "?");
	strbuf_addch(&sql, ')');
	if (sqlite3_prepare_v2(ld->db, sql.buf, (int)sql.len, &ld->ins, NULL) != SQLITE_OK)
		rc = sql_fail(ld, "prepare an insert into", err);
out:
	strbuf_release(&sql);
	return rc;
}

/* Whether a file was written between two fstat()s of it. */
static bool file_changed(const struct stat *a, const struct stat *b)
{
	return a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
	       a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

static enum jerr load_file(struct loader *ld, const char *file, bool first, struct jerror *err)
{
	struct csv_reader *r = &ld->rd;
	struct strbuf why = STRBUF_INIT;
	enum jerr rc = JERR_OK;
	FILE *fp = fopen(file, "rb");

	if (!fp) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot open CSV file \"%s\"",
				ld->c->app->id, file);
		jerror_detail(err, "%s", strerror(errno));
		return rc;
	}
	/* what the file is now, to tell at the end that nobody wrote it meanwhile */
	struct stat before, after;
	if (fstat(fileno(fp), &before) != 0) {
		rc = jerror_set(err, JERR_SOURCE, "%s: cannot read the CSV file", file);
		jerror_detail(err, "%s", strerror(errno));
		fclose(fp);
		return rc;
	}
	csv_reader_set_file(r, fp);
	rc = read_header(ld, file, first, err);
	if (!rc && first)
		rc = create_table(ld, err);
	while (!rc) {
		enum csv_status s = csv_reader_next(r);
		if (s == CSV_EOF)
			break;
		if (s == CSV_IOERR) {
			rc = jerror_set(err, JERR_SOURCE, "%s: cannot read the CSV file", file);
			jerror_detail(err, "%s", strerror(r->io_errno));
			break;
		}
		strbuf_reset(&why);
		if (s == CSV_BAD) {
			strbuf_addf(&why, "field %zu: %s", r->bad_field, r->bad_reason);
			rc = bad_row(ld, file, r->bad_line, r->bad_col, why.buf, err);
			continue;
		}
		if (r->n_fields != ld->n_cols) {
			size_t at = r->n_fields > ld->n_cols ? ld->n_cols : r->n_fields - 1;
			strbuf_addf(&why, "expected %zu fields, found %zu", ld->n_cols, r->n_fields);
			rc = bad_row(ld, file, r->pos[at].line, r->pos[at].col, why.buf, err);
			continue;
		}
		for (size_t i = 0; i < r->n_fields; i++)
			bind_cell(ld->ins, (int)i + 1, r->row.buf + r->off[i], r->len[i]);
		if (sqlite3_step(ld->ins) != SQLITE_DONE) {
			rc = sql_fail(ld, "write to", err);
			break;
		}
		sqlite3_reset(ld->ins);
		ld->c->rows++;
	}
	/*
	 * A file written while it was read (rewritten in place, still being exported) may
	 * have ended early at a line end, with nothing wrong in what was read: the rows
	 * after that point would be taken for deleted.
	 */
	if (!rc && (fstat(fileno(fp), &after) != 0 || file_changed(&before, &after))) {
		rc = jerror_set(err, JERR_SOURCE, "%s: the CSV file changed while it was read", file);
		jerror_detail(err, "app \"%s\": %lld bytes when opened, %lld at the end, modified since",
			      ld->c->app->id, (long long)before.st_size, (long long)after.st_size);
		jerror_hint(err, "write the file under another name and rename it into place when it is "
				 "complete; the next run reads it again");
	}
	fclose(fp);
	strbuf_release(&why);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files to load: path itself, or the *.csv files of a directory in name order. */
static enum jerr list_files(const struct cfg_app *app, const char *path, bool is_dir,
			    char ***files, size_t *n, struct jerror *err)
{
	size_t alloc = 0;
	*files = NULL;
	*n = 0;
	if (!is_dir) {
		ALLOC_GROW(*files, 1, alloc);
		(*files)[(*n)++] = xstrdup(path);
		return JERR_OK;
	}
	DIR *d = opendir(path);
	if (!d) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": cannot read directory \"%s\"", app->id, path);
		jerror_detail(err, "%s", strerror(errno));
		return JERR_SOURCE;
	}
	struct dirent *de;
	for (;;) {
		errno = 0;
		if (!(de = readdir(d)))
			break;
		size_t nl = strlen(de->d_name);
		if (de->d_name[0] == '.' || nl <= 4 || strcasecmp(de->d_name + nl - 4, ".csv"))
			continue;
		struct strbuf p = STRBUF_INIT;
		struct stat st;
		strbuf_addf(&p, "%s/%s", path, de->d_name);
		/* a *.csv that cannot be looked at (a symlink whose target is gone) holds
		 * records joey cannot read: unknown, not deleted */
		if (stat(p.buf, &st) != 0) {
			jerror_set(err, JERR_SOURCE, "app \"%s\": cannot read CSV file \"%s\"", app->id, p.buf);
			jerror_detail(err, "%s", strerror(errno));
			jerror_hint(err, "make the file readable, or move it out of the directory");
			strbuf_release(&p);
			goto fail;
		}
		if (S_ISREG(st.st_mode)) {
			ALLOC_GROW(*files, *n + 1, alloc);
			(*files)[(*n)++] = strbuf_detach(&p, NULL);
		} else {
			strbuf_release(&p);
		}
	}
	/* the listing ended on an error, not at its end: files may be missing from it */
	if (errno) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": cannot read directory \"%s\"", app->id, path);
		jerror_detail(err, "%s (the listing stopped)", strerror(errno));
		goto fail;
	}
	closedir(d);
	if (!*n) {
		jerror_set(err, JERR_SOURCE, "app \"%s\": directory \"%s\" has no *.csv files",
			   app->id, path);
		jerror_hint(err, "options.file names a CSV file or a directory of *.csv files");
		return JERR_SOURCE;
	}
	qsort(*files, *n, sizeof(**files), cmp_str);
	return JERR_OK;
fail:
	closedir(d);
	for (size_t i = 0; i < *n; i++)
		free((*files)[i]);
	free(*files);
	*files = NULL;
	*n = 0;
	return JERR_SOURCE;
}

/* "users" for ".../users.csv" or ".../users/". */
static char *table_name(const char *path, bool is_dir)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && path[b - 1] != '/')
		b--;
	size_t len = n - b;
	if (!is_dir && len > 4 && !strncasecmp(path + n - 4, ".csv", 4))
		len -= 4;
	return len ? xstrndup(path + b, len) : xstrdup("csv");
}

static void conn_free(struct csv_conn *c)
{
	if (!c)
		return;
	if (c->inner)
		source_sqlite.disconnect(c->inner);
	if (c->tmp_path)
		unlink(c->tmp_path);
	free(c->tmp_path);
	for (size_t i = 0; i < c->n_bad_at; i++)
		free(c->bad_at[i]);
	free(c->table);
	free(c->shown);
	free(c);
}

static enum jerr csv_connect(const struct cfg_app *app, const char *config_dir, void **out,
			     struct jerror *err)
{
	const char *file = cfg_options_str(&app->options, "file");
	const char *delim = cfg_options_str(&app->options, "delimiter");
	const char *bad = cfg_options_str(&app->options, "badRows");
	struct csv_conn *c = NULL;
	struct loader ld;
	struct strbuf path = STRBUF_INIT;
	char **files = NULL;
	size_t n_files = 0;
	enum jerr rc = JERR_OK;
	struct stat st;
	int fd = -1;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	if (!file || !*file) {
		jerror_set(err, JERR_CONFIG, "app \"%s\": option \"file\" is required", app->id);
		jerror_hint(err, "set options.file to a CSV file or a directory of *.csv files");
		return JERR_CONFIG;
	}
	if (delim && (strlen(delim) != 1 || delim[0] == '"' || delim[0] == '\r' ||
		      delim[0] == '\n' || delim[0] == '\0')) {
		jerror_set(err, JERR_CONFIG, "app \"%s\": invalid delimiter \"%s\"", app->id,
			   config_option_display(cfg_options_get(&app->options, "delimiter")));
		jerror_detail(err, "the delimiter is one character other than a quote or a line end");
		jerror_hint(err, "use \",\", \";\", \"|\" or \"\\t\"");
		return JERR_CONFIG;
	}
	if (bad && strcmp(bad, "skip") && strcmp(bad, "fail")) {
		jerror_set(err, JERR_CONFIG, "app \"%s\": invalid badRows \"%s\"", app->id,
			   config_option_display(cfg_options_get(&app->options, "badRows")));
		jerror_hint(err, "use \"skip\" (warn and skip each bad row) or \"fail\" (fail the run)");
		return JERR_CONFIG;
	}
	config_add_path(&path, config_dir, file);
	if (stat(path.buf, &st) != 0 || (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))) {
		const struct cfg_option *fo = cfg_options_get(&app->options, "file");
		if (fo && fo->secret) /* from the environment: named by its variable */
			jerror_set(err, JERR_SOURCE, "app \"%s\": the CSV file or directory named by %s does not exist",
				   app->id, config_option_display(fo));
		else
			jerror_set(err, JERR_SOURCE, "app \"%s\": CSV file or directory \"%s\" does not exist",
				   app->id, path.buf);
		jerror_hint(err, "check options.file; relative paths are resolved from the project "
				 "root, the directory holding the config directory");
		strbuf_release(&path);
		return JERR_SOURCE;
	}

	c = xcalloc(1, sizeof(*c));
	c->app = app;
	c->table = table_name(path.buf, S_ISDIR(st.st_mode));
	c->shown = strbuf_detach(&path, NULL);
	rc = list_files(app, c->shown, S_ISDIR(st.st_mode), &files, &n_files, err);
	if (rc)
		goto out;

	/* the temporary database */
	const char *tmpdir = getenv("TMPDIR");
	strbuf_addf(&path, "%s/joey-csv-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	fd = mkstemp(path.buf);
	if (fd < 0) {
		rc = jerror_set(err, JERR_SOURCE, "app \"%s\": cannot create a temporary file in \"%s\"",
				app->id, tmpdir && *tmpdir ? tmpdir : "/tmp");
		jerror_detail(err, "%s", strerror(errno));
		jerror_hint(err, "set TMPDIR to a writable directory");
		goto out;
	}
	close(fd);
	c->tmp_path = strbuf_detach(&path, NULL);

	ld.c = c;
	ld.fail_on_bad = bad && !strcmp(bad, "fail");
	csv_reader_init(&ld.rd, delim ? delim[0] : ',');
	if (sqlite3_open_v2(c->tmp_path, &ld.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(ld.db,
			 "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8192; "
			 "PRAGMA temp_store=FILE; BEGIN",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = sql_fail(&ld, "open", err);
		goto out;
	}
	for (size_t i = 0; !rc && i < n_files; i++)
		rc = load_file(&ld, files[i], i == 0, err);
	if (rc)
		goto out;
	sqlite3_finalize(ld.ins);
	ld.ins = NULL;
	if (sqlite3_exec(ld.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = sql_fail(&ld, "write to", err);
		goto out;
	}
	sqlite3_close(ld.db);
	ld.db = NULL;
	if (c->bad_rows)
		log_warn("app \"%s\": skipped %" PRIu64 " bad rows in \"%s\" (%" PRIu64
			 " rows loaded)",
			 app->id, c->bad_rows, c->shown, c->rows);

	/* the SQLite connector reads the copy */
	c->inner_file = (struct cfg_option){ .key = "file", .kind = OPT_STRING, .str = c->tmp_path };
	c->inner_app = *app;
	c->inner_app.type = "sqlite";
	c->inner_app.options = (struct cfg_options){ &c->inner_file, 1 };
	rc = source_sqlite.connect(&c->inner_app, NULL, &c->inner, err);
	if (!rc)
		rc = source_sqlite_number_fn(c->inner, "joey_number", number_fn, err);
out:
	sqlite3_finalize(ld.ins);
	sqlite3_close(ld.db);
	if (ld.header) {
		for (size_t i = 0; i < ld.n_cols; i++)
			free(ld.header[i]);
		free(ld.header);
	}
	if (ld.c)
		csv_reader_release(&ld.rd);
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	strbuf_release(&path);
	if (rc) {
		conn_free(c);
		return rc;
	}
	*out = c;
	return JERR_OK;
}

static void csv_disconnect(void *conn)
{
	conn_free(conn);
}

/* ---- the source as the SQLite connector sees it ---- */

static enum jerr src_build(struct csv_conn *c, const struct cfg_source *src, struct csv_src *out,
			   struct jerror *err)
{
	arena_init(&out->arena);
	out->s = *src;
	if (src->table && strcmp(src->table, c->table)) {
		jerror_set(err, JERR_CONFIG,
			   "source \"%s\": table \"%s\" is not the table of CSV app \"%s\"", sid(src),
			   cfg_options_get(&src->options, "table")
				   ? config_option_display(cfg_options_get(&src->options, "table"))
				   : src->table,
			   c->app->id);
		jerror_detail(err, "a CSV app has one table, named after its file or directory: "
				   "\"%s\" (%s)",
			      c->table, c->shown);
		jerror_hint(err, "set options.table to \"%s\" or leave it out", c->table);
		return JERR_CONFIG;
	}
	out->s.table = c->table;
	out->s.is_query = false;
	out->s.query = NULL;
	out->s.properties = arena_alloc(&out->arena, (src->n_properties ? src->n_properties : 1) *
							   sizeof(*out->s.properties));
	for (size_t i = 0; i < src->n_properties; i++) {
		const struct cfg_property *p = src->properties[i];
		struct cfg_property *q = arena_alloc(&out->arena, sizeof(*q));
		*q = *p;
		if (p->n_filters) {
			q->filters = arena_alloc(&out->arena, p->n_filters * sizeof(*q->filters));
			for (size_t k = 0; k < p->n_filters; k++) {
				struct cfg_filter *f = &q->filters[k];
				*f = p->filters[k];
				if (f->match_is_number)
					continue;
				if (f->op == FOP_IN) {
					bool all = f->n_match_list > 0;
					for (size_t m = 0; all && m < f->n_match_list; m++)
						all = typed_match(f->match_list[m]);
					f->match_is_number = all;
				} else {
					f->match_is_number = typed_match(f->match);
				}
			}
		}
		out->s.properties[i] = q;
	}
	return JERR_OK;
}

static void src_release(struct csv_src *s)
{
	arena_release(&s->arena);
}

/*
 * rc, with the hint of a failed check (the header's column names, or one guessed from
 * them: the file's first line) replaced when the file lies outside joey serve's data
 * directory: such a file may be anything, and an account holder must not read it
 * through error messages (issue #14).
 */
static enum jerr unlisted(const struct csv_conn *c, enum jerr rc, struct jerror *err)
{
	if (rc && c->app->file_unlisted && err)
		jerror_hint(err, "the file's columns are not listed: it is outside the data directory of joey serve "
				 "(--data-dir); joey validate --check-apps lists them");
	return rc;
}

static enum jerr csv_check(void *conn, const struct cfg_source *src, struct jerror *err)
{
	struct csv_conn *c = conn;
	struct csv_src s;
	enum jerr rc = src_build(c, src, &s, err);
	if (!rc)
		rc = unlisted(c, source_sqlite.check(c->inner, &s.s, err), err);
	src_release(&s);
	return rc;
}

static enum jerr csv_describe(void *conn, const struct cfg_source *src, struct strbuf *out,
			      struct jerror *err)
{
	struct csv_conn *c = conn;
	struct csv_src s;
	enum jerr rc = src_build(c, src, &s, err);
	if (!rc) {
		strbuf_addf(out, "-- CSV \"%s\" (%" PRIu64 " rows", c->shown, c->rows);
		if (c->bad_rows)
			strbuf_addf(out, ", %" PRIu64 " bad rows skipped", c->bad_rows);
		strbuf_addstr(out, ") loaded into a temporary SQLite table ");
		strbuf_add_sql_ident(out, c->table);
		strbuf_addch(out, '\n');
		rc = source_sqlite.describe(c->inner, &s.s, out, err);
	}
	src_release(&s);
	return rc;
}

/* ---- cursor: the SQLite connector's, over the private source ---- */

static enum jerr csv_next(struct source_cursor *base, struct source_row **row, struct jerror *err)
{
	struct csv_cursor *cur = (struct csv_cursor *)base;
	/* the order is checked by source_cursor_next on this (outer) cursor */
	return cur->inner->ops->next(cur->inner, row, err);
}

static void csv_close(struct source_cursor *base)
{
	struct csv_cursor *cur = (struct csv_cursor *)base;
	source_cursor_close(cur->inner);
	src_release(&cur->src);
	free(cur);
}

static const struct source_cursor_ops csv_cursor_ops = { csv_next, csv_close };

static enum jerr csv_open_cursor(void *conn, const struct cfg_source *src,
				 const struct source_read *read, struct source_cursor **out,
				 struct jerror *err)
{
	struct csv_conn *c = conn;
	struct csv_cursor *cur = xcalloc(1, sizeof(*cur));
	enum jerr rc;

	*out = NULL;
	rc = src_build(c, src, &cur->src, err);
	if (!rc)
		rc = unlisted(c, source_sqlite.open_cursor(c->inner, &cur->src.s, read, &cur->inner, err), err);
	if (rc) {
		src_release(&cur->src);
		free(cur);
		return rc;
	}
	cur->base.ops = &csv_cursor_ops;
	cur->base.source = src;
	/* a skipped row's record is unknown this run, not gone (engine/diff.h) */
	cur->base.unreadable = c->bad_rows;
	cur->base.unreadable_at = (const char *const *)c->bad_at;
	cur->base.n_unreadable_at = c->n_bad_at;
	strbuf_init(&cur->base.prev_text, 0);
	*out = &cur->base;
	return JERR_OK;
}

/* The CSV table only; never for a file outside joey serve's data directory. */
static enum jerr csv_sample(void *conn, const char *table, size_t limit, struct source_sample *out,
			    struct jerror *err)
{
	struct csv_conn *c = conn;
	if (c->app->file_unlisted) {
		jerror_set(err, JERR_CONFIG, "app \"%s\": the file is not shown", c->app->id);
		jerror_detail(err, "it is outside the data directory of joey serve (--data-dir)");
		jerror_hint(err, "joey validate --check-apps reads it on the command line");
		return JERR_CONFIG;
	}
	if (table && strcmp(table, c->table)) {
		jerror_set(err, JERR_CONFIG, "app \"%s\" has no table \"%s\"", c->app->id, table);
		jerror_hint(err, "its table is \"%s\"", c->table);
		return JERR_CONFIG;
	}
	enum jerr rc = source_sqlite.sample(c->inner, table, limit, out, err);
	if (!rc) {
		/* the loader's own table only */
		for (size_t i = 0; i < out->n_tables; i++)
			free(out->tables[i]);
		out->tables[0] = xstrdup(c->table);
		out->n_tables = 1;
	}
	return rc;
}

const struct source_ops source_csv = {
	.app_type = "csv",
	.source_types = csv_source_types,
	.app_options = csv_app_options,
	.required_app_options = csv_required_app_options,
	.connect = csv_connect,
	.check = csv_check,
	.open_cursor = csv_open_cursor,
	.describe = csv_describe,
	.disconnect = csv_disconnect,
	.sample = csv_sample,
};
