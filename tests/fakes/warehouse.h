/*
 * warehouse.h: warehouse-fake's shared state. warehouse.c holds the HTTP layer, faults,
 * the SQL rewriting and the SQLite execution; warehouse_sf.c the Snowflake SQL API v2,
 * warehouse_bq.c the BigQuery token endpoint and REST API.
 */
#ifndef JOEY_FAKE_WAREHOUSE_H
#define JOEY_FAKE_WAREHOUSE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "base/strbuf.h"

#define FAKE_MAX_FAULTS 64
#define FAKE_MAX_BODY ((size_t)16 << 20)
#define FAKE_ARRAY_MARK '\x1e' /* prefix of fake_array_agg's results: the column is an array */

struct fault {
	int status;
	int count;
	char on[16];     /* submit, poll, partition (Snowflake); token, query, page (BigQuery); "": any */
	int partition;   /* partition / page number, -1: any */
	char match[128]; /* substring of the statement, "": any */
	char reason[64]; /* BigQuery errors[0].reason */
};

struct fake {
	bool bigquery, quiet;
	const char *db_dir, *log_file;
	const char *account, *user, *role, *schema, *token;
	const char *warehouses[8];
	size_t n_warehouses;
	const char *client_email, *project, *location;
	EVP_PKEY *pubkey;
	struct strbuf fingerprint;
	size_t rows_per_part;
	int async_polls;
	int token_expires_s;
	int token_epoch; /* bumped to revoke every access token */
	struct fault faults[FAKE_MAX_FAULTS];
	size_t n_faults;
	uint64_t executions, requests, faults_injected, tokens_issued, auth_failures;
};
extern struct fake fk;

struct fake_req {
	struct MHD_Connection *conn;
	const char *method, *url;
	const char *body;
	size_t body_len;
	struct strbuf query; /* k=v&k=v, for the log */
	bool gzip_ok;
};

struct fake_ctx {
	const char *user, *role, *database, *schema, *warehouse; /* NULL: the function returns NULL */
	const char *schema_name; /* what INFORMATION_SCHEMA says TABLE_SCHEMA is */
};

struct fake_bind {
	char kind; /* 'i', 'f', 's' */
	bool null;
	int64_t i;
	double f;
	const char *s;
};

struct fake_cell {
	int type; /* SQLITE_INTEGER, ... */
	int64_t i;
	double f;
	char *text; /* NULL for NULL */
};

struct fake_col {
	char *name, *decl, *table;
};

struct fake_result {
	struct fake_col *cols;
	size_t n_cols, n_rows;
	struct fake_cell *cells; /* n_rows * n_cols */
};

enum { FAKE_ERR_SQL, FAKE_ERR_NO_TABLE, FAKE_ERR_NO_COLUMN, FAKE_ERR_BIND, FAKE_ERR_MULTI };

int64_t fake_now_ms(void);
void fake_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fake_uuid(char out[37]);
bool fake_add_fault(const char *spec, struct strbuf *why);
int fake_take_fault(const char *on, int partition, const char *sql, char *reason, size_t rn);
void fake_log_request(const char *method, const char *url, const char *query, const char *body, int status);
/* A timestamp value as the fake stores timestamps: "YYYY-MM-DD HH:MM:SS[.fff]" (malloc'd), or NULL. */
char *fake_timestamp_text(const char *v);
void fake_translate(const char *sql, struct strbuf *out, bool bigquery);
struct fake_result *fake_run(const char *dbfile, const struct fake_ctx *cx, const char *sql, const struct fake_bind *binds,
			     size_t nb, bool no_rows, char **msg, int *kind);
void fake_result_free(struct fake_result *r);
bool fake_check_idents(const char *dbfile, const char *sql, char *bad, size_t bn);
int fake_reply(struct MHD_Connection *conn, int status, const char *json, bool gzip_ok);
int fake_control(struct fake_req *r);

int sf_handle(struct fake_req *r);
int bq_handle(struct fake_req *r);

#endif
