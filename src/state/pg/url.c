/*
 * url.c: the PostgreSQL state store's URL: splitting our own ?schema= parameter from
 * what libpq gets (pg_split_url), refusing a URL libpq cannot parse with the password
 * masked (pg_check_url), and the name the store goes by in messages, never with the
 * password (pg_display_name, and pg_display of the ops table). Owns nothing; called
 * by conn.c and through state_pg.display.
 */
#include "state/pg/pg_internal.h"

/* Append s percent-encoded where a URL needs it. */
static void add_url_part(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c))
			strbuf_addch(sb, (char)c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
}

/* postgresql://user@host:port/database[?schema=s] (parts that are NULL left out). */
void pg_display_name(struct strbuf *out, const char *user, const char *host, const char *port,
		     const char *db, const char *schema)
{
	strbuf_addstr(out, "postgresql://");
	if (user && *user) {
		add_url_part(out, user);
		strbuf_addch(out, '@');
	}
	if (host && *host) {
		if (strchr(host, ':') && !strchr(host, '/')) {
			strbuf_addf(out, "[%s]", host); /* IPv6 */
		} else {
			add_url_part(out, host);
		}
	}
	if (port && *port)
		strbuf_addf(out, ":%s", port);
	strbuf_addch(out, '/');
	if (db && *db)
		add_url_part(out, db);
	if (schema && strcmp(schema, PG_DEFAULT_SCHEMA) != 0) {
		strbuf_addstr(out, "?schema=");
		add_url_part(out, schema);
	}
}

static bool is_hex(int c)
{
	return isxdigit((unsigned char)c) != 0;
}

static void url_decode(const char *s, size_t n, struct strbuf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
			strbuf_addch(out, (char)(hex_val(s[i + 1]) * 16 + hex_val(s[i + 2])));
			i += 2;
		} else {
			strbuf_addch(out, s[i]);
		}
	}
}

/*
 * Split url into what libpq gets (conninfo: the URL without our own parameter) and the
 * schema (?schema=NAME, default "joey"). false if the schema is not a usable name.
 */
bool state_pg_split_url(const char *url, struct strbuf *conninfo, struct strbuf *schema)
{
	const char *q = strchr(url, '?');
	bool first = true;

	strbuf_reset(conninfo);
	strbuf_reset(schema);
	if (!q) {
		strbuf_addstr(conninfo, url);
	} else {
		strbuf_add(conninfo, url, (size_t)(q - url));
		for (const char *p = q + 1; *p;) {
			const char *end = strchr(p, '&');
			size_t n = end ? (size_t)(end - p) : strlen(p);
			if (n > 7 && !strncmp(p, "schema=", 7)) {
				strbuf_reset(schema);
				url_decode(p + 7, n - 7, schema);
			} else if (n) {
				strbuf_addch(conninfo, first ? '?' : '&');
				strbuf_add(conninfo, p, n);
				first = false;
			}
			p += n;
			if (*p == '&')
				p++;
		}
	}
	if (!schema->len)
		strbuf_addstr(schema, PG_DEFAULT_SCHEMA);
	if (schema->len > 63 || strlen(schema->buf) != schema->len)
		return false;
	for (size_t i = 0; i < schema->len; i++) {
		unsigned char c = (unsigned char)schema->buf[i];
		if (!isalnum(c) && c != '_' && c != '-' && c != '$')
			return false;
	}
	return true;
}

void pg_display(const char *path, struct strbuf *out)
{
	struct strbuf conninfo = STRBUF_INIT, schema = STRBUF_INIT;
	PQconninfoOption *opts;
	const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;

	state_pg_split_url(path, &conninfo, &schema);
	opts = PQconninfoParse(conninfo.buf, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
	}
	if (opts)
		pg_display_name(out, user, host, port, db, schema.buf);
	else
		strbuf_addstr(out, "postgresql://(an invalid URL)");
	PQconninfoFree(opts);
	strbuf_release(&conninfo);
	strbuf_release(&schema);
}

/*
 * A URL libpq cannot parse is refused before connecting. libpq's message may quote
 * part of the URL, so the password (as written, and decoded) is masked in it.
 */
enum jerr pg_check_url(struct pg_state *ps, const char *url, const char *conninfo,
		       struct jerror *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	struct strbuf d = STRBUF_INIT, pw = STRBUF_INIT, pwdec = STRBUF_INIT;
	const char *start, *at, *colon;

	if (opts) {
		PQconninfoFree(opts);
		return JERR_OK;
	}
	start = strstr(url, "://");
	start = start ? start + 3 : url;
	at = strchr(start, '@');
	colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
	if (colon) {
		strbuf_add(&pw, colon + 1, (size_t)(at - colon - 1));
		url_decode(pw.buf, pw.len, &pwdec);
	}
	strbuf_addstr(&d, "libpq: ");
	for (const char *p = msg ? msg : "invalid connection string"; *p;) {
		if (pw.len && !strncmp(p, pw.buf, pw.len)) {
			strbuf_addstr(&d, "****");
			p += pw.len;
		} else if (pwdec.len && !strncmp(p, pwdec.buf, pwdec.len)) {
			strbuf_addstr(&d, "****");
			p += pwdec.len;
		} else {
			strbuf_addch(&d, *p == '\n' ? ' ' : *p);
			p++;
		}
	}
	while (d.len && d.buf[d.len - 1] == ' ')
		strbuf_setlen(&d, d.len - 1);
	jerror_set(err, JERR_STATE, "state store URL \"%s\" is not valid", ps->base.path);
	jerror_detail(err, "%s", d.buf);
	jerror_hint(err, "write it as postgresql://USER@HOST:PORT/DATABASE?schema=NAME (the "
			 "password in PGPASSWORD)");
	PQfreemem(msg);
	strbuf_release(&d);
	strbuf_release(&pw);
	strbuf_release(&pwdec);
	return JERR_STATE;
}
