/*
 * alert.c: the Alert class: reading an alert object (type, url, email options, triggers and
 * durations) and linking its model or destinations in pass 3.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

static const struct field_spec alert_fields[] = {
	{ "type", T_STR, 0, NULL, NULL },
	{ "destinationIds", T_ARR, 0, NULL, NULL },
	{ "modelId", T_STR, 0, NULL, NULL },
	{ "triggers", T_OBJ, 0, NULL, NULL },
	{ "options", T_OBJ, 0, NULL, NULL },
};

static const struct field_spec alert_trigger_fields[] = {
	{ "runFailed", T_BOOL, 0, NULL, NULL },
	{ "failedRows", T_NUM, 0, NULL, NULL },
	{ "failedRowsPercent", T_NUM, 0, NULL, NULL },
	{ "noSuccessFor", T_STR | T_NUM, 0, NULL, NULL },
	{ "deleteGuard", T_BOOL, 0, NULL, NULL },
	{ "recordsDropPercent", T_NUM, 0, NULL, NULL },
	{ "runLongerThan", T_STR | T_NUM, 0, NULL, NULL },
};

/*
 * A duration: a number of milliseconds (Grouparoo's unit), or a string "90s", "15m",
 * "6h", "2d". Reports a bad one at m and returns 0; at least one second.
 */
static int64_t read_duration(struct loader *ld, const struct where *w, const struct j5_member *m,
			     const char *field)
{
	const struct j5_node *v = m->value;
	double ms = -1;
	if (v->type == J5_NUMBER) {
		ms = v->num;
	} else if (v->type == J5_STRING && v->len >= 2) {
		char *end;
		double n = strtod(v->str, &end);
		static const struct {
			char unit;
			double ms;
		} units[] = { { 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 } };
		if (end != v->str && end[0] && !end[1] && isfinite(n) && !isspace((unsigned char)v->str[0]))
			for (size_t i = 0; i < ARRAY_SIZE(units); i++)
				if (end[0] == units[i].unit)
					ms = n * units[i].ms;
	}
	if (!(ms >= 1000 && ms <= 366.0 * 86400000)) {
		ld_err(ld, w, NPOS(v), field,
		       "write a duration of at least one second and at most a year: \"90s\", \"15m\", \"6h\", \"2d\" or a number of milliseconds",
		       "invalid duration %s%s%s", v->type == J5_STRING ? "\"" : "", v->str ? v->str : "?",
		       v->type == J5_STRING ? "\"" : "");
		return 0;
	}
	return (int64_t)ms;
}

static bool host_is_loopback(const char *h)
{
	return h && (!strcmp(h, "127.0.0.1") || !strcasecmp(h, "localhost") || !strcmp(h, "::1") ||
		     !strcmp(h, "[::1]"));
}

/* An Alert's url option: http(s), plain http only on loopback. */
static void check_alert_url(struct loader *ld, const struct where *w, const struct cfg_option *u)
{
	const char *s = u->str, *h, *hint = "use an https:// URL";
	size_t hl;
	char host[256];
	if (!s || !*s)
		return;
	if (!strncasecmp(s, "https://", 8)) {
		h = s + 8;
	} else if (!strncasecmp(s, "http://", 7)) {
		h = s + 7;
	} else {
		ld_err(ld, w, u->pos.line, u->pos.col, "options.url", hint, "URL %s is not an http:// or https:// URL",
		       config_option_display(u));
		return;
	}
	if (h[0] == '[')
		hl = strcspn(h, "]") + 1;
	else
		hl = strcspn(h, ":/?#");
	if (!hl || hl >= sizeof(host) || memchr(h, '@', strcspn(h, "/?#")) || strpbrk(s, " \t\r\n")) {
		ld_err(ld, w, u->pos.line, u->pos.col, "options.url", "write scheme://host[:port]/path, without a user part or spaces",
		       "URL %s is not valid", config_option_display(u));
		return;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!strncasecmp(s, "http://", 7) && !host_is_loopback(host))
		ld_err(ld, w, u->pos.line, u->pos.col, "options.url", hint,
		       "plain http URL %s is only allowed for 127.0.0.1 and localhost", config_option_display(u));
}

/* "a@b.example, c@d.example": every address has one '@' and none of <>, quotes, line breaks. */
static bool addresses_ok(const char *s, bool many)
{
	size_t n = 0;
	while (*s) {
		size_t len;
		s += strspn(s, ", ");
		len = strcspn(s, ",");
		while (len && s[len - 1] == ' ')
			len--;
		if (!len)
			break;
		const char *at = memchr(s, '@', len);
		if (!at || at == s || at == s + len - 1 || memchr(at + 1, '@', (size_t)(s + len - at - 1)))
			return false;
		for (size_t i = 0; i < len; i++)
			if (strchr("<>\"'()[]\\;: \t\r\n", s[i]) || (unsigned char)s[i] < 0x20)
				return false;
		n++;
		s += len;
		s += strcspn(s, ",");
	}
	return n > 0 && (many || n == 1);
}

void ld_load_alert(struct loader *ld, const struct where *w0, const struct j5_node *o, size_t order)
{
	struct alert_x *x = arena_zalloc(ld->a, sizeof(*x));
	const struct where *w = &x->w;
	const struct j5_member *tm, *trg;
	const struct catalog_app *cat = NULL;
	const char *type;
	bool any = false;

	x->w = *w0;
	x->order = order;
	x->node = o;
	ld_read_head(ld, w, o, alert_fields, ARRAY_SIZE(alert_fields), "an Alert", &x->al.id, &x->al.name, &x->al.pos);
	x->al.failed_rows = x->al.failed_rows_percent = x->al.records_drop_percent = -1;
	type = ld_req_str(ld, w, o, "type", &tm);
	x->al.type = type;
	if (type) {
		size_t n;
		cat = catalog_alert(type);
		if (ld_known_type(ld, w, tm, type, "alert", cat, catalog_alert_types))
			x->al.channel = (enum alert_channel)(cat - catalog_alert(catalog_alert_types(&n)[0]));
	}
	ld_read_options(ld, w, ld_get_obj(o, "options"), "ALERT", cat ? cat->options : NULL, &x->al.options);
	if (cat) {
		ld_check_options(ld, w, &x->al.options, cat->options, arena_printf(ld->a, "%s %s alert", ld_article(type), type),
				 o->line, o->col);
		const struct cfg_option *u = cfg_options_get(&x->al.options, "url");
		if (u && u->kind == OPT_STRING)
			check_alert_url(ld, w, u);
		if (x->al.channel == ALERT_EMAIL) {
			const struct cfg_option *h = cfg_options_get(&x->al.options, "host");
			const struct cfg_option *port = cfg_options_get(&x->al.options, "port");
			const struct cfg_option *tls = cfg_options_get(&x->al.options, "starttls");
			const struct cfg_option *from = cfg_options_get(&x->al.options, "from");
			const struct cfg_option *to = cfg_options_get(&x->al.options, "to");
			if (h && h->kind == OPT_STRING && (strpbrk(h->str, "/@ \t\r\n?#") || !*h->str))
				ld_err(ld, w, h->pos.line, h->pos.col, "options.host", "write the SMTP server's name or address only, e.g. \"smtp.example.com\"",
				       "host \"%s\" is not a host name", config_option_display(h));
			if (port && port->kind == OPT_NUMBER && (port->num < 1 || port->num > 65535 || port->num != floor(port->num)))
				ld_err(ld, w, port->pos.line, port->pos.col, "options.port", "587 (submission with STARTTLS) is usual",
				       "port must be a whole number from 1 to 65535, found %s", config_option_display(port));
			if (tls && tls->kind == OPT_BOOL && !tls->b && !(h && h->kind == OPT_STRING && host_is_loopback(h->str)))
				ld_err(ld, w, tls->pos.line, tls->pos.col, "options.starttls",
				       "remove it: mail to another machine is always sent over TLS (STARTTLS); only a relay on 127.0.0.1 or localhost may be spoken to in plain text",
				       "starttls false is only allowed for a server on 127.0.0.1 or localhost");
			if (from && from->kind == OPT_STRING && !addresses_ok(from->str, false))
				ld_err(ld, w, from->pos.line, from->pos.col, "options.from", "write one address such as \"joey@example.com\"",
				       "from \"%s\" is not an email address", config_option_display(from));
			if (to && to->kind == OPT_STRING && !addresses_ok(to->str, true))
				ld_err(ld, w, to->pos.line, to->pos.col, "options.to",
				       "write addresses separated by commas: \"ops@example.com, data@example.com\"",
				       "to \"%s\" is not a list of email addresses", config_option_display(to));
		}
	}
	trg = j5_member(o, "triggers");
	if (!trg || trg->value->type == J5_NULL) {
		ld_err(ld, w, NPOS(o), NULL, "add \"triggers\": {\"runFailed\": true} (docs/config.md lists every trigger)",
		       "missing required field \"triggers\"");
	} else if (trg->value->type == J5_OBJECT) {
		const struct j5_node *t = trg->value;
		const struct j5_member *m;
		ld_check_fields(ld, w, t, alert_trigger_fields, ARRAY_SIZE(alert_trigger_fields), "triggers", "triggers");
		x->al.run_failed = ld_get_bool(t, "runFailed", false);
		x->al.delete_guard = ld_get_bool(t, "deleteGuard", false);
		static const struct {
			const char *key;
			double max;
		} nums[] = { { "failedRows", 1e15 }, { "failedRowsPercent", 100 }, { "recordsDropPercent", 100 } };
		double *slot[] = { &x->al.failed_rows, &x->al.failed_rows_percent, &x->al.records_drop_percent };
		for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
			if (!(m = ld_get_m(t, nums[i].key, T_NUM)))
				continue;
			const char *field = arena_printf(ld->a, "triggers.%s", nums[i].key);
			if (m->value->num < 0 || m->value->num > nums[i].max || (i == 0 && m->value->num != floor(m->value->num)))
				ld_err(ld, w, NPOS(m->value), field, i == 0 ? "a whole number of rows: the alert fires when more rows than this fail"
									    : "a percentage from 0 to 100: the alert fires above it",
				       "%s must be %s, found %s", nums[i].key, i == 0 ? "a whole number of at least 0" : "between 0 and 100",
				       m->value->str);
			else
				*slot[i] = m->value->num;
		}
		if ((m = ld_get_m(t, "noSuccessFor", T_STR | T_NUM)))
			x->al.no_success_ms = read_duration(ld, w, m, "triggers.noSuccessFor");
		if ((m = ld_get_m(t, "runLongerThan", T_STR | T_NUM)))
			x->al.run_longer_ms = read_duration(ld, w, m, "triggers.runLongerThan");
		any = x->al.run_failed || x->al.delete_guard || x->al.failed_rows >= 0 || x->al.failed_rows_percent >= 0 ||
		      x->al.records_drop_percent >= 0 || x->al.no_success_ms > 0 || x->al.run_longer_ms > 0;
		if (!any)
			ld_err(ld, w, NPOS(t), "triggers",
			       "add at least one: runFailed, failedRows, failedRowsPercent, noSuccessFor, deleteGuard, recordsDropPercent, runLongerThan",
			       "an alert needs at least one trigger");
	}
	x->model_id = ld_get_str(o, "modelId");
	x->model_m = ld_get_m(o, "modelId", T_STR);
	x->dests_m = ld_get_m(o, "destinationIds", T_ARR);
	if (x->dests_m && x->model_m)
		ld_err(ld, w, NPOS(x->model_m->value), "modelId", "keep one: destinationIds names the destinations, modelId takes all of a model's",
		       "an alert takes destinationIds or modelId, not both");
	ld_add_obj(ld, CLASS_ALERT, x);
}

/* Pass 3: alerts -> destinations or model. */
void ld_link_alerts(struct loader *ld, const struct link_set *ls)
{
	for (size_t i = 0; i < ls->nal; i++) {
		struct alert_x *x = ls->alerts[i];
		struct model_x *mx = ld_resolve(ld, &x->w, x->model_m, x->model_id, "modelId", CLASS_MODEL, (void **)ls->models, ls->nm);
		x->al.model = mx ? &mx->m : NULL;
		if (!x->dests_m)
			continue;
		const struct j5_node *arr = x->dests_m->value;
		x->al.destinations = arena_zalloc(ld->a, (arr->n ? arr->n : 1) * sizeof(void *));
		if (!arr->n)
			ld_err(ld, &x->w, NPOS(arr), "destinationIds", "name at least one destination, or leave destinationIds out for all of them",
			       "destinationIds is empty");
		for (size_t k = 0; k < arr->n; k++) {
			const struct j5_node *e = arr->items[k];
			const char *field = arena_printf(ld->a, "destinationIds[%zu]", k);
			if (!ld_id_str(ld, &x->w, e, field, "destination"))
				continue;
			struct dest_x *dx = ld_find_id((void **)ls->dests, ls->nd, e->str);
			if (!dx) {
				if (!ld_is_broken(ld, e->str))
					ld_err(ld, &x->w, NPOS(e), field, ld_did_you_mean_id(ld, e->str, (void **)ls->dests, ls->nd),
					       "unknown Destination \"%s\"", e->str);
				continue;
			}
			bool dup = false;
			for (size_t j = 0; j < x->al.n_destinations; j++)
				dup |= x->al.destinations[j] == &dx->d;
			if (dup)
				ld_warn(ld, &x->w, NPOS(e), field, "remove the repetition", "destination \"%s\" is listed twice", e->str);
			else
				x->al.destinations[x->al.n_destinations++] = &dx->d;
		}
	}

}

