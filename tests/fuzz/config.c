/*
 * config.c: libFuzzer target for the whole config loader (src/config/: load.c and the class files):
 * the input is written as the one file of a config directory and loaded with
 * config_load (JSON5, classes, validation, references, secrets). The directory is
 * made once per process and removed at exit. Secrets come from a fixed fake
 * environment, so the result depends on the input alone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "base/cron.h"
#include "config/config.h"
#include "engine/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char file[96];
static FILE *devnull;

static void cleanup(void)
{
	unlink(file);
	rmdir(dir);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/joeyfuzz.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(file, sizeof(file), "%s/config.json", dir);
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	atexit(cleanup);
}

/* A fixed environment: names starting with SET_ exist (their own name as value). */
static const char *fake_getenv(const char *name, void *ctx)
{
	(void)ctx;
	if (!strncmp(name, "SET_", 4))
		return name;
	if (!strcmp(name, "GROUPAROO_OPTION__APP__BRAZE_KEY"))
		return "from-grouparoo";
	return NULL;
}

/* The object graph of a config without errors is complete and consistent. */
static void check_graph(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_models; i++) {
		const struct cfg_model *m = cfg->models[i];
		for (size_t j = 0; j < m->n_properties; j++)
			FUZZ_CHECK(m->properties[j]->slot == j && m->properties[j]->source &&
				   m->properties[j]->source->model == m);
		for (size_t j = 0; j < m->n_groups; j++)
			FUZZ_CHECK(m->groups[j]->model == m && m->groups[j]->index == j);
	}
	for (size_t i = 0; i < cfg->n_sources; i++)
		FUZZ_CHECK(cfg->sources[i]->app && cfg->sources[i]->model);
	for (size_t i = 0; i < cfg->n_destinations; i++) {
		const struct cfg_destination *d = cfg->destinations[i];
		struct payload_spec spec;
		FUZZ_CHECK(d->app && d->model && (d->collection != COLL_GROUP || d->group));
		for (size_t j = 0; j < d->n_mapping; j++)
			FUZZ_CHECK(d->mapping[j].remote && d->mapping[j].property);
		for (size_t j = 0; j < d->n_group_maps; j++)
			FUZZ_CHECK(d->group_maps[j].remote && d->group_maps[j].group);
		payload_spec_init(&spec, d);
		payload_spec_release(&spec);
	}
	for (size_t i = 0; i < cfg->n_schedules; i++) {
		const struct cfg_schedule *s = cfg->schedules[i];
		struct cron c;
		struct jerror err = JERROR_INIT;
		FUZZ_CHECK(s->source && (!s->cron || cron_parse(s->cron, &c, &err) == JERR_OK));
		jerror_release(&err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_opts opts = { .getenv_fn = fake_getenv };
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	size_t lines = 1;
	FILE *f;

	if (!dir[0])
		setup();
	f = fopen(file, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
		abort();
	/* JSON5 line terminators: \n, \r\n, a lone \r, U+2028, U+2029 */
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n')) ||
			 (data[i] == 0xe2 && i + 2 < size && data[i + 1] == 0x80 &&
			  (data[i + 2] == 0xa8 || data[i + 2] == 0xa9));

	enum jerr rc = config_load(dir, &opts, &cfg, &err);
	if (!cfg) {
		FUZZ_CHECK(rc && err.msg.len);
	} else {
		FUZZ_CHECK((rc == JERR_OK) == (cfg->n_errors == 0));
		FUZZ_CHECK(cfg->n_errors + cfg->n_warnings == cfg->n_diags);
		for (size_t i = 0; i < cfg->n_diags; i++) {
			const struct cfg_diag *d = &cfg->diags[i];
			FUZZ_CHECK(d->message && d->message[0]);
			FUZZ_CHECK(d->pos.line >= 0 && d->pos.col >= 0 && (size_t)d->pos.line <= lines);
		}
		config_print_diags(cfg, devnull);
		if (rc == JERR_OK)
			check_graph(cfg);
	}
	config_free(cfg);
	jerror_release(&err);
	return 0;
}
