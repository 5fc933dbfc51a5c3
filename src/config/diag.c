/*
 * diag.c: the config loader's diagnostics: adding an error or a warning (with file, class,
 * id, field, hint), did-you-mean hints, and the final order and printing of them.
 * Called by every piece of the loader (config_internal.h); config_print_diags is public.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/suggest.h"
#include "base/xalloc.h"
#include "config/config_internal.h"

JOEY_PRINTF(8, 0)
static void vdiag(struct loader *ld, enum diag_severity sev, const struct where *w, int line,
		  int col, const char *field, const char *hint, const char *fmt, va_list ap)
{
	struct config *cfg = ld->cfg;
	struct cfg_diag *d;
	struct strbuf sb = STRBUF_INIT;

	ALLOC_GROW(cfg->diags, cfg->n_diags + 1, cfg->alloc_diags);
	d = &cfg->diags[cfg->n_diags++];
	memset(d, 0, sizeof(*d));
	d->severity = sev;
	d->pos.file = w ? w->file : NULL;
	d->pos.line = line;
	d->pos.col = col;
	d->class_name = w ? w->cls : NULL;
	d->id = w ? w->id : NULL;
	d->field = field ? arena_strdup(ld->a, field) : NULL;
	strbuf_vaddf(&sb, fmt, ap);
	d->message = arena_strdup(ld->a, sb.buf);
	strbuf_release(&sb);
	d->hint = hint ? arena_strdup(ld->a, hint) : NULL;
	if (sev == DIAG_ERROR)
		cfg->n_errors++;
	else
		cfg->n_warnings++;
}

void ld_err(struct loader *ld, const struct where *w, int line, int col, const char *field, const char *hint,
	    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(ld, DIAG_ERROR, w, line, col, field, hint, fmt, ap);
	va_end(ap);
}

void ld_warn(struct loader *ld, const struct where *w, int line, int col, const char *field, const char *hint,
	     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(ld, DIAG_WARNING, w, line, col, field, hint, fmt, ap);
	va_end(ap);
}

/* "did you mean "x"?" for word among names, or NULL (arena-owned). */
const char *ld_did_you_mean(struct loader *ld, const char *word, const char *const *names, size_t n)
{
	const char *best;
	if (!word || !n)
		return NULL;
	best = suggest_closest(word, names, n);
	return best ? arena_printf(ld->a, "did you mean \"%s\"?", best) : NULL;
}

/* Did-you-mean over the ids of a class array (every cfg_* struct starts with its id). */
const char *ld_did_you_mean_id(struct loader *ld, const char *word, void *const *arr, size_t n)
{
	const char **names;
	const char *h;
	if (!n)
		return NULL;
	names = xmalloc(n * sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = *(const char *const *)arr[i];
	h = ld_did_you_mean(ld, word, names, n);
	free(names);
	return h;
}

/* ---- diagnostics order and printing ---- */

struct diag_sort {
	struct cfg_diag d;
	size_t seq;
};

/* A file that does not parse comes first: what it defines is missing, so the errors
 * about references to it elsewhere follow from it (one stray comma, many errors). */
static int diag_rank(const struct cfg_diag *d)
{
	return d->severity == DIAG_ERROR && d->message && !strncmp(d->message, "syntax error", 12) ? 0 : 1;
}

static int cmp_diag(const void *a, const void *b)
{
	const struct diag_sort *x = a, *y = b;
	int rx = diag_rank(&x->d), ry = diag_rank(&y->d);
	if (rx != ry)
		return rx < ry ? -1 : 1;
	const char *fx = x->d.pos.file ? x->d.pos.file : "", *fy = y->d.pos.file ? y->d.pos.file : "";
	int c = strcmp(fx, fy);
	if (c)
		return c;
	if (x->d.pos.line != y->d.pos.line)
		return x->d.pos.line < y->d.pos.line ? -1 : 1;
	if (x->d.pos.col != y->d.pos.col)
		return x->d.pos.col < y->d.pos.col ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

void ld_sort_diags(struct config *cfg)
{
	struct diag_sort *t;
	if (cfg->n_diags < 2)
		return;
	t = xmalloc(cfg->n_diags * sizeof(*t));
	for (size_t i = 0; i < cfg->n_diags; i++) {
		t[i].d = cfg->diags[i];
		t[i].seq = i;
	}
	qsort(t, cfg->n_diags, sizeof(*t), cmp_diag);
	for (size_t i = 0; i < cfg->n_diags; i++)
		cfg->diags[i] = t[i].d;
	free(t);
}

void config_print_diags(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; cfg && i < cfg->n_diags; i++) {
		const struct cfg_diag *d = &cfg->diags[i];
		if (d->pos.file) {
			fputs(d->pos.file, out);
			if (d->pos.line > 0)
				fprintf(out, ":%d:%d", d->pos.line, d->pos.col);
			fputs(": ", out);
		}
		fputs(d->severity == DIAG_ERROR ? "error: " : "warning: ", out);
		if (d->class_name) {
			fputs(d->class_name, out);
			if (d->id)
				fprintf(out, " \"%s\"", d->id);
			fputs(": ", out);
		}
		if (d->field)
			fprintf(out, "%s: ", d->field);
		fprintf(out, "%s\n", d->message);
		if (d->hint)
			fprintf(out, "hint: %s\n", d->hint);
	}
}

const char *ld_quoted_list(struct loader *ld, const char *prefix, const char *const *names, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	const char *out;
	strbuf_addstr(&sb, prefix);
	for (size_t k = 0; k < n; k++)
		strbuf_addf(&sb, "%s\"%s\"", k ? ", " : "", names[k]);
	out = arena_strdup(ld->a, sb.buf);
	strbuf_release(&sb);
	return out;
}
