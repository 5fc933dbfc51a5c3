/*
 * seed_state.c: bench helper: make the state store say that Braze confirmed every
 * desired payload (what a perfect `joey run` leaves behind), so `joey plan` can be
 * timed against an unchanged state. Usage: bench_seed_state CONFIG_DIR STATE_PATH
 */
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "engine/diff.h"
#include "state/state.h"

struct seed {
	struct state *st;
	unsigned long n, in_tx;
};

static enum jerr accept(void *ctx, const struct diff_item *it, struct jerror *err)
{
	struct seed *s = ctx;
	enum jerr rc = JERR_OK;
	if (!s->in_tx) {
		rc = state_begin(s->st, err);
		if (rc)
			return rc;
	}
	if (it->action == DIFF_DELETE)
		rc = state_delete(s->st, it->dest->id, it->key, err);
	else if (it->action != DIFF_UNCHANGED || it->state_only)
		rc = state_put(s->st, it->dest->id, it->key, it->new_payload, it->new_hash, it->in_scope, err);
	if (rc)
		return rc;
	s->n++;
	if (++s->in_tx == 20000) {
		s->in_tx = 0;
		return state_commit(s->st, err);
	}
	return JERR_OK;
}

int main(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	struct seed s = { 0 };
	struct record_stats stats;
	int ret = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: bench_seed_state CONFIG_DIR STATE_PATH\n");
		return 2;
	}
	if (config_load(argv[1], NULL, &cfg, &err)) {
		if (cfg)
			config_print_diags(cfg, stderr);
		goto out;
	}
	if (state_open(argv[2], STATE_OPEN_CREATE, &s.st, &err))
		goto out;
	for (size_t m = 0; m < cfg->n_models; m++) {
		const struct cfg_model *model = cfg->models[m];
		struct diff_visitor v = { accept, &s };
		if (!model->n_destinations)
			continue;
		if (diff_model(cfg, model, model->destinations, model->n_destinations, s.st, &v, &stats, &err))
			goto out;
	}
	if (s.in_tx && state_commit(s.st, &err))
		goto out;
	printf("seeded %lu state rows\n", s.n);
	ret = 0;
out:
	if (ret)
		jerror_print(stderr, &err);
	state_close(s.st);
	config_free(cfg);
	jerror_release(&err);
	return ret;
}
