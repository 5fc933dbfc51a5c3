/*
 * wfake.h: warehouse-fake (tests/fakes/warehouse.c, found next to $JOEY_BIN) for the
 * Snowflake and BigQuery connector tests (snowflake.c, bigquery.c): a fresh directory
 * with one SQLite file (the database or dataset), an RSA key pair, and the fake on a
 * free loopback port. Include after support/testutil.h.
 *
 *   struct wfake w;
 *   if (!wfake_start(&w, "bigquery", "crm", "CREATE TABLE ...")) skip();
 *   ... an app with endpoint w.url (and private_key w.private_pem) ...
 *   wfake_stop(&w);
 */
#ifndef JOEY_TEST_SOURCE_WFAKE_H
#define JOEY_TEST_SOURCE_WFAKE_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sqlite3.h>

struct wfake {
	pid_t pid;
	char *dir;
	char url[64];
	char *private_pem; /* the key the fake accepts (BigQuery service account), owned */
};

/* PEM text of key's private (priv) or public half, malloc'd. */
static inline char *wfake_pem(EVP_PKEY *key, bool priv)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (priv)
		PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_PUBKEY(b, key);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

/*
 * Start the fake in mode ("snowflake" | "bigquery") over DIR/db/<db>.db made by sql.
 * false (printed): the fake is not built; the test skips. Snowflake accepts the token
 * "good-pat" for user JOEY of account TEST; BigQuery the key in private_pem for
 * joey@test-project.iam.gserviceaccount.com in project test-project. Results come in
 * partitions / pages of 3 rows.
 */
static inline bool wfake_start(struct wfake *w, const char *mode, const char *db, const char *sql)
{
	const char *bin = getenv("JOEY_BIN");
	char path[4096], file[4200], pub[4200], dbdir[4200], portf[4200];
	memset(w, 0, sizeof(*w));
	if (!bin) {
		printf("skipped: JOEY_BIN is not set (warehouse-fake is found next to joey)\n");
		return false;
	}
	snprintf(path, sizeof(path), "%s", bin);
	char *slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0), "warehouse-fake");
	if (access(path, X_OK)) {
		printf("skipped: %s is not built\n", path);
		return false;
	}
	w->dir = tu_mkdtemp();
	EVP_PKEY *key = EVP_RSA_gen(2048);
	assert_non_null(key);
	w->private_pem = wfake_pem(key, true);
	char *pubtext = wfake_pem(key, false);
	EVP_PKEY_free(key);
	tu_write(w->dir, "pub.pem", pubtext);
	tu_write(w->dir, "db/.keep", "");
	free(pubtext);
	snprintf(file, sizeof(file), "%s/db/%s.db", w->dir, db);
	sqlite3 *s = NULL;
	assert_int_equal(sqlite3_open(file, &s), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(s, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("wfake: %s", msg);
	sqlite3_close(s);
	snprintf(pub, sizeof(pub), "%s/pub.pem", w->dir);
	snprintf(dbdir, sizeof(dbdir), "%s/db", w->dir);
	snprintf(portf, sizeof(portf), "%s/port", w->dir);
	w->pid = fork();
	assert_true(w->pid >= 0);
	if (!w->pid) {
		execl(path, path, "--mode", mode, "--db-dir", dbdir, "--public-key", pub, "--account", "test", "--user", "joey",
		      "--token", "good-pat", "--rows-per-partition", "3", "--port-file", portf, "--max-lifetime", "300",
		      "--quiet", (char *)NULL);
		_exit(127);
	}
	char *port = NULL;
	for (int i = 0; i < 400 && !(port = tu_read(portf)); i++)
		usleep(25000);
	if (!port)
		fail_msg("wfake: warehouse-fake did not start");
	snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%d", atoi(port));
	free(port);
	return true;
}

/* The path of the fake's SQLite file for db (static buffer). */
static inline const char *wfake_db(const struct wfake *w, const char *db)
{
	static char buf[4200];
	snprintf(buf, sizeof(buf), "%s/db/%s.db", w->dir, db);
	return buf;
}

static inline void wfake_stop(struct wfake *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGTERM);
		waitpid(w->pid, NULL, 0);
	}
	if (w->dir)
		tu_rmtree(w->dir);
	free(w->dir);
	free(w->private_pem);
	memset(w, 0, sizeof(*w));
}

#endif
