/*
 * send.h: the channels (internal to src/alert): one message of an alert to its
 * webhook, Slack-compatible webhook or SMTP server, with libcurl.
 *
 * body is the event as queued (JSON text without secrets, alert.c). The channel's
 * secrets come from a->options (resolved by config_load) and never appear in err.
 *
 * webhook  POST body + {"delivery": id, "timestamp": unix seconds, "run_url"?} as
 *          compact JSON; headers X-Joey-Event, X-Joey-Delivery, X-Joey-Timestamp (the
 *          same seconds as the body's "timestamp") and X-Joey-Signature:
 *          sha256=<hex HMAC-SHA256 of the exact body bytes, key options.secret>.
 * slack    POST {"text": "..."}: a readable line with a link to the run in the UI.
 * email    SMTP to options.host:port (default 587; 465: TLS from the start), STARTTLS
 *          required (CURLUSESSL_ALL) unless options.starttls is false (loopback only,
 *          config.c checks), AUTH with options.user/password when given.
 * Any 2xx answer (SMTP: the message accepted) is success. No redirect is followed. A
 * request in flight ends when o->stop is set (a failed attempt: retried later).
 */
#ifndef JOEY_ALERT_SEND_H
#define JOEY_ALERT_SEND_H

#include <stdint.h>

#include "alert/alert.h"
#include "base/strbuf.h"

/* The final webhook body and its signature (exposed for tests). out_body, out_sig reset first. */
void alert_webhook_body(const char *body, int64_t delivery_id, int64_t unix_s, const char *run_url,
			const char *secret, struct strbuf *out_body, struct strbuf *out_sig);

/*
 * Append text s (borrowed) to sb as an email body: CRLF line endings (a CR of s is
 * dropped), and a line break inserted before the first character that starts at
 * ALERT_EMAIL_LINE_MAX bytes into a line or later, so no line passes SMTP's 998 octets
 * (a long run error); a UTF-8 sequence is never split. Exposed for tests.
 */
#define ALERT_EMAIL_LINE_MAX 900
void alert_email_text(struct strbuf *sb, const char *s);

/* Send; JERR_OK, or JERR_IO with err saying why (no secret). root: the project root (caFile). */
enum jerr alert_send(const struct cfg_alert *a, const char *root, int64_t delivery_id, const char *body,
		     const struct alert_opts *o, struct jerror *err);

#endif
