/* send.c: the channels: webhook (signed), Slack-compatible webhook, email over SMTP (send.h). */
#include "alert/send.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/paths.h"
#include "dest/http.h"

#define MAX_ANSWER (64 * 1024) /* what is read of a channel's answer (then dropped) */

/* ---- the event as people read it ---- */

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* public_url + "/#/runs/<id>" into sb (reset), or nothing (false) without both. */
static bool run_link(const struct alert_opts *o, const json_t *ev, struct strbuf *sb)
{
	const json_t *run = json_object_get(ev, "run");
	int64_t id = jint(run, "id");
	strbuf_reset(sb);
	if (!o->public_url || !*o->public_url || id <= 0)
		return false;
	strbuf_addstr(sb, o->public_url);
	while (sb->len && sb->buf[sb->len - 1] == '/')
		strbuf_setlen(sb, sb->len - 1);
	strbuf_addf(sb, "/#/runs/%lld", (long long)id);
	return true;
}

/* Slack's mrkdwn: &, < and > escaped. */
static void add_slack(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '&')
			strbuf_addstr(sb, "&amp;");
		else if (*s == '<')
			strbuf_addstr(sb, "&lt;");
		else if (*s == '>')
			strbuf_addstr(sb, "&gt;");
		else
			strbuf_addch(sb, *s);
	}
}

static void slack_text(const json_t *ev, const char *link, struct strbuf *sb)
{
	const char *event = jstr(ev, "event"), *summary = jstr(ev, "summary"), *dest = jstr(ev, "destination");
	const json_t *al = json_object_get(ev, "alert");
	const char *name = jstr(al, "name") ? jstr(al, "name") : jstr(al, "id");
	bool resolved = event && !strcmp(event, "alert.resolved"), test = event && !strcmp(event, "alert.test");

	strbuf_addstr(sb, test ? ":wave: *Test message from joey alert " : resolved ? ":white_check_mark: *Resolved: joey alert "
										      : ":rotating_light: *joey alert ");
	strbuf_addch(sb, '"');
	add_slack(sb, name);
	strbuf_addstr(sb, "\"*");
	if (summary) {
		strbuf_addstr(sb, ": ");
		add_slack(sb, summary);
	}
	if (dest) {
		strbuf_addstr(sb, "\nDestination `");
		add_slack(sb, dest);
		strbuf_addstr(sb, "`");
		if (jstr(ev, "trigger")) {
			strbuf_addstr(sb, " · trigger `");
			add_slack(sb, jstr(ev, "trigger"));
			strbuf_addstr(sb, "`");
		}
		int64_t inc = jint(json_object_get(ev, "incident"), "id");
		if (inc)
			strbuf_addf(sb, " · incident #%lld", (long long)inc);
	}
	if (link && *link) {
		int64_t id = jint(json_object_get(ev, "run"), "id");
		strbuf_addf(sb, "\n<%s|Run #%lld in joey>", link, (long long)id);
	}
}

/* ---- HTTP ---- */

struct answer {
	size_t n;
};

static size_t drop_answer(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct answer *a = ctx;
	(void)p;
	a->n += size * nmemb;
	return a->n > MAX_ANSWER ? 0 : size * nmemb;
}

/* libcurl's progress callback: a request in flight ends when the process stops (o->stop). */
static int stop_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	const struct alert_opts *o = ctx;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return o->stop && *o->stop;
}

static void watch_stop(CURL *c, const struct alert_opts *o)
{
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, stop_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)o);
}

/* curl's error text, with the URL (a secret) replaced by "****" if it is quoted. */
static void curl_failure(struct jerror *err, const char *what, CURLcode cc, const char *errbuf, const char *url)
{
	struct strbuf t = STRBUF_INIT;
	const char *s = errbuf && *errbuf ? errbuf : curl_easy_strerror(cc);
	const char *hit;
	strbuf_addstr(&t, s);
	while (url && *url && (hit = strstr(t.buf, url))) {
		size_t at = (size_t)(hit - t.buf), n = strlen(url);
		struct strbuf u = STRBUF_INIT;
		strbuf_add(&u, t.buf, at);
		strbuf_addstr(&u, "****");
		strbuf_addstr(&u, t.buf + at + n);
		strbuf_release(&t);
		t = u; /* owned by t now */
	}
	jerror_set(err, JERR_IO, "%s: %s", what, t.buf);
	strbuf_release(&t);
}

static enum jerr http_post(const char *url, const char *body, struct curl_slist *headers, const struct alert_opts *o,
			   const char *what, struct jerror *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct answer ans = { 0 };
	long status = 0;
	CURL *c;
	CURLcode cc;

	http_global_init();
	if (!(c = curl_easy_init()))
		return jerror_set(err, JERR_IO, "%s: could not start an HTTP request", what);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "joey/" JOEY_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	watch_stop(c, o);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		jerror_set(err, JERR_IO, "%s: no answer before joey stopped", what);
	else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && status))
		curl_failure(err, what, cc, errbuf, url);
	else if (status < 200 || status > 299)
		jerror_set(err, JERR_IO, "%s: the server answered HTTP %ld", what, status);
	else
		return JERR_OK;
	return err->code;
}

/* ---- webhook ---- */

void alert_webhook_body(const char *body, int64_t delivery_id, int64_t unix_s, const char *run_url,
			const char *secret, struct strbuf *out_body, struct strbuf *out_sig)
{
	json_t *ev = json_loads(body, 0, NULL);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	crypto_auth_hmacsha256_state hs;
	char *text;

	if (!json_is_object(ev)) {
		json_decref(ev);
		ev = json_object();
	}
	json_object_set_new(ev, "delivery", json_integer(delivery_id));
	json_object_set_new(ev, "timestamp", json_integer(unix_s));
	if (run_url && *run_url)
		json_object_set_new(ev, "run_url", json_string(run_url));
	text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(ev);
	strbuf_reset(out_body);
	strbuf_addstr(out_body, text ? text : "{}");
	free(text);
	crypto_auth_hmacsha256_init(&hs, (const unsigned char *)(secret ? secret : ""), secret ? strlen(secret) : 0);
	crypto_auth_hmacsha256_update(&hs, (const unsigned char *)out_body->buf, out_body->len);
	crypto_auth_hmacsha256_final(&hs, mac);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	sodium_memzero(&hs, sizeof(hs));
	strbuf_reset(out_sig);
	strbuf_addf(out_sig, "sha256=%s", hex);
}

static enum jerr send_webhook(const struct cfg_alert *a, int64_t id, const json_t *ev, const char *body,
			      const struct alert_opts *o, struct jerror *err)
{
	const char *url = cfg_options_str(&a->options, "url"), *secret = cfg_options_str(&a->options, "secret");
	struct strbuf link = STRBUF_INIT, out = STRBUF_INIT, sig = STRBUF_INIT, h = STRBUF_INIT;
	struct curl_slist *headers = NULL;
	int64_t now_s = (int64_t)time(NULL);
	enum jerr rc;

	run_link(o, ev, &link);
	alert_webhook_body(body, id, now_s, link.buf, secret, &out, &sig);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	strbuf_addf(&h, "X-Joey-Event: %s", jstr(ev, "event") ? jstr(ev, "event") : "alert");
	headers = curl_slist_append(headers, h.buf);
	strbuf_reset(&h);
	strbuf_addf(&h, "X-Joey-Delivery: %lld", (long long)id);
	headers = curl_slist_append(headers, h.buf);
	strbuf_reset(&h);
	strbuf_addf(&h, "X-Joey-Timestamp: %lld", (long long)now_s);
	headers = curl_slist_append(headers, h.buf);
	strbuf_reset(&h);
	strbuf_addf(&h, "X-Joey-Signature: %s", sig.buf);
	headers = curl_slist_append(headers, h.buf);
	headers = curl_slist_append(headers, "Expect:");
	rc = http_post(url ? url : "", out.buf, headers, o, "the webhook", err);
	curl_slist_free_all(headers);
	strbuf_release(&link);
	strbuf_release(&out);
	strbuf_release(&sig);
	strbuf_release(&h);
	return rc;
}

static enum jerr send_slack(const struct cfg_alert *a, const json_t *ev, const struct alert_opts *o,
			    struct jerror *err)
{
	const char *url = cfg_options_str(&a->options, "url");
	struct strbuf link = STRBUF_INIT, text = STRBUF_INIT;
	struct curl_slist *headers = NULL;
	json_t *msg = json_object();
	char *body;
	enum jerr rc;

	run_link(o, ev, &link);
	slack_text(ev, link.buf, &text);
	json_object_set_new(msg, "text", json_string(text.buf));
	body = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	rc = http_post(url ? url : "", body ? body : "{}", headers, o, "the Slack webhook", err);
	curl_slist_free_all(headers);
	free(body);
	strbuf_release(&link);
	strbuf_release(&text);
	return rc;
}

/* ---- email ---- */

struct upload {
	const char *p;
	size_t left;
};

static size_t read_upload(char *buf, size_t size, size_t nmemb, void *ctx)
{
	struct upload *u = ctx;
	size_t n = size * nmemb;
	if (n > u->left)
		n = u->left;
	memcpy(buf, u->p, n);
	u->p += n;
	u->left -= n;
	return n;
}

/* A header value on one line: control characters become spaces; non-ASCII as RFC 2047. */
static void add_header_text(struct strbuf *sb, const char *s)
{
	bool ascii = true;
	struct strbuf clean = STRBUF_INIT;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		strbuf_addch(&clean, ch < 0x20 || ch == 0x7f ? ' ' : (char)ch);
		ascii &= ch < 0x80;
	}
	if (clean.len > 300) {
		strbuf_setlen(&clean, 300);
		while (clean.len && ((unsigned char)clean.buf[clean.len - 1] & 0xc0) == 0x80)
			strbuf_setlen(&clean, clean.len - 1); /* a cut UTF-8 sequence */
		if (clean.len && (unsigned char)clean.buf[clean.len - 1] >= 0xc0)
			strbuf_setlen(&clean, clean.len - 1);
		strbuf_addstr(&clean, "...");
	}
	if (ascii) {
		strbuf_add(sb, clean.buf, clean.len);
	} else {
		size_t n = sodium_base64_encoded_len(clean.len, sodium_base64_VARIANT_ORIGINAL);
		char *b = xmalloc(n);
		sodium_bin2base64(b, n, (const unsigned char *)clean.buf, clean.len, sodium_base64_VARIANT_ORIGINAL);
		strbuf_addf(sb, "=?UTF-8?B?%s?=", b);
		free(b);
	}
	strbuf_release(&clean);
}

void alert_email_text(struct strbuf *sb, const char *s)
{
	size_t col = 0;
	for (; s && *s; s++) {
		if (*s == '\r')
			continue;
		if (*s == '\n') {
			strbuf_addstr(sb, "\r\n");
			col = 0;
			continue;
		}
		/* break before a character (not inside a UTF-8 sequence) once the line is long */
		if (col >= ALERT_EMAIL_LINE_MAX && ((unsigned char)*s & 0xC0) != 0x80) {
			strbuf_addstr(sb, "\r\n");
			col = 0;
		}
		strbuf_addch(sb, *s);
		col++;
	}
}

static void email_message(const struct cfg_alert *a, int64_t id, const json_t *ev, const char *link,
			  const char *from, const char *to, struct strbuf *m)
{
	const char *event = jstr(ev, "event"), *summary = jstr(ev, "summary"), *dest = jstr(ev, "destination");
	bool resolved = event && !strcmp(event, "alert.resolved"), test = event && !strcmp(event, "alert.test");
	const json_t *run = json_object_get(ev, "run");
	char date[64];
	time_t t = time(NULL);
	struct tm tmv;
	struct strbuf subject = STRBUF_INIT, text = STRBUF_INIT;

	gmtime_r(&t, &tmv);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tmv);
	if (test)
		strbuf_addf(&subject, "[joey] test message of alert %s", a->id);
	else
		strbuf_addf(&subject, "[joey] %s%s%s: %s", resolved ? "RESOLVED " : "ALERT ", dest ? dest : "",
			    "", summary ? summary : "");
	strbuf_addf(m, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: ", date, from, to);
	add_header_text(m, subject.buf);
	strbuf_addf(m, "\r\nMessage-ID: <joey-alert-%lld-%lld@joey>\r\nMIME-Version: 1.0\r\n"
		       "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
		       "X-Joey-Event: %s\r\nX-Joey-Delivery: %lld\r\n\r\n",
		    (long long)id, (long long)t, event ? event : "alert", (long long)id);
	if (test)
		strbuf_addf(&text, "This is a test message of joey alert \"%s\" (%s).\nIt reaches you when the alert fires.\n",
			    a->name ? a->name : a->id, a->id);
	else
		strbuf_addf(&text, "%s: joey alert \"%s\" (%s)\n\n%s\n\nDestination: %s\nTrigger: %s\nIncident: #%lld\n",
			    resolved ? "Resolved" : "Alert", a->name ? a->name : a->id, a->id, summary ? summary : "",
			    dest ? dest : "", jstr(ev, "trigger") ? jstr(ev, "trigger") : "",
			    (long long)jint(json_object_get(ev, "incident"), "id"));
	if (json_is_object(run)) {
		strbuf_addf(&text, "Run: #%lld, %s\n", (long long)jint(run, "id"), jstr(run, "status") ? jstr(run, "status") : "");
		if (jstr(run, "error"))
			strbuf_addf(&text, "Error: %s\n", jstr(run, "error"));
	}
	if (link && *link)
		strbuf_addf(&text, "\n%s\n", link);
	alert_email_text(m, text.buf);
	strbuf_release(&subject);
	strbuf_release(&text);
}

static enum jerr send_email(const struct cfg_alert *a, const char *root, int64_t id, const json_t *ev,
			    const struct alert_opts *o, struct jerror *err)
{
	const char *host = cfg_options_str(&a->options, "host"), *user = cfg_options_str(&a->options, "user");
	const char *password = cfg_options_str(&a->options, "password"), *from = cfg_options_str(&a->options, "from");
	const char *to = cfg_options_str(&a->options, "to"), *ca = cfg_options_str(&a->options, "caFile");
	const struct cfg_option *po = cfg_options_get(&a->options, "port"), *tls = cfg_options_get(&a->options, "starttls");
	long port = po && po->kind == OPT_NUMBER ? (long)po->num : 587;
	bool starttls = !(tls && tls->kind == OPT_BOOL && !tls->b);
	struct strbuf url = STRBUF_INIT, link = STRBUF_INIT, msg = STRBUF_INIT, addr = STRBUF_INIT;
	struct curl_slist *rcpt = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *ca_path = NULL;
	struct upload up;
	CURL *c;
	CURLcode cc;
	enum jerr rc = JERR_OK;

	http_global_init();
	strbuf_addf(&url, "%s://%s%s%s:%ld", port == 465 ? "smtps" : "smtp", host && strchr(host, ':') ? "[" : "",
		    host ? host : "", host && strchr(host, ':') ? "]" : "", port);
	run_link(o, ev, &link);
	email_message(a, id, ev, link.buf, from ? from : "", to ? to : "", &msg);
	for (const char *p = to ? to : ""; *p;) {
		size_t n;
		p += strspn(p, ", ");
		n = strcspn(p, ",");
		while (n && p[n - 1] == ' ')
			n--;
		if (n) {
			strbuf_reset(&addr);
			strbuf_addch(&addr, '<');
			strbuf_add(&addr, p, n);
			strbuf_addch(&addr, '>');
			rcpt = curl_slist_append(rcpt, addr.buf);
		}
		p += strcspn(p, ",");
	}
	strbuf_reset(&addr);
	strbuf_addf(&addr, "<%s>", from ? from : "");
	if (!(c = curl_easy_init())) {
		rc = jerror_set(err, JERR_IO, "the SMTP server: could not start a connection");
		goto out;
	}
	up = (struct upload){ msg.buf, msg.len };
	curl_easy_setopt(c, CURLOPT_URL, url.buf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
	if (ca && *ca) {
		ca_path = config_resolve_path(root, ca);
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_path);
	}
	if (user && *user) {
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, password ? password : "");
	}
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, addr.buf);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	watch_stop(c, o);
	cc = curl_easy_perform(c);
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = jerror_set(err, JERR_IO, "the SMTP server: no answer before joey stopped");
	} else if (cc != CURLE_OK) {
		long code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_failure(err, "the SMTP server", cc, errbuf, password && *password ? password : NULL);
		if (code)
			jerror_detail(err, "%s:%ld answered %ld", host ? host : "?", port, code);
		rc = JERR_IO;
	}
	curl_easy_cleanup(c);
out:
	curl_slist_free_all(rcpt);
	free(ca_path);
	strbuf_release(&url);
	strbuf_release(&link);
	strbuf_release(&msg);
	strbuf_release(&addr);
	return rc;
}

enum jerr alert_send(const struct cfg_alert *a, const char *root, int64_t delivery_id, const char *body,
		     const struct alert_opts *o, struct jerror *err)
{
	json_t *ev = json_loads(body, 0, NULL);
	enum jerr rc;
	if (!json_is_object(ev)) {
		json_decref(ev);
		return jerror_set(err, JERR_IO, "the queued message is not valid JSON");
	}
	switch (a->channel) {
	case ALERT_WEBHOOK:
		rc = send_webhook(a, delivery_id, ev, body, o, err);
		break;
	case ALERT_SLACK:
		rc = send_slack(a, ev, o, err);
		break;
	case ALERT_EMAIL:
		rc = send_email(a, root, delivery_id, ev, o, err);
		break;
	default:
		rc = jerror_set(err, JERR_IO, "unknown channel");
		break;
	}
	json_decref(ev);
	return rc;
}
