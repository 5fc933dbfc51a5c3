/*
 * group_counts.c: the member counts of every group, for the API (GET /api/v1/groups and
 * the model pages): a thread reads every model's records once and counts the members of
 * each group; the counts (s->group_counts) are replaced as a whole under s->lock.
 * server.c's scheduler loop calls server_maybe_count when the counts are stale (after a
 * config install or a run); server_close frees them. Moved out of server.c (#19).
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine/record.h"
#include "server/serverp.h"

static void *count_main(void *arg)
{
	struct server *s = arg;
	struct cfg_ref *ref = server_cfg_get(s);
	const struct config *cfg = ref->cfg;
	struct group_count *list = NULL;
	bool ok = true;

	for (size_t m = 0; m < cfg->n_models && ok; m++) {
		const struct cfg_model *model = cfg->models[m];
		struct record_reader *rr = NULL;
		struct jerror err = JERROR_INIT;
		uint64_t *n = xcalloc(model->n_groups + 1, sizeof(*n));
		const struct record *rec;
		if (!model->n_groups || !model->primary_source) {
			free(n);
			continue;
		}
		enum jerr rc = record_reader_open(cfg, model, NULL, &rr, &err);
		while (!rc && (rc = record_reader_next(rr, &rec, &err)) == JERR_OK && rec) {
			for (size_t g = 0; g < model->n_groups; g++)
				n[g] += rec->groups[g];
			if (s->stopping) {
				ok = false;
				break;
			}
		}
		record_reader_close(rr);
		if (rc) {
			log_warn("group member counts of model \"%s\" not computed: %s", model->id, err.msg.buf);
		} else {
			for (size_t g = 0; g < model->n_groups; g++) {
				struct group_count *gc = xcalloc(1, sizeof(*gc));
				gc->group_id = xstrdup(model->groups[g]->id);
				gc->members = n[g];
				gc->next = list;
				list = gc;
			}
		}
		jerror_release(&err);
		free(n);
	}
	pthread_mutex_lock(&s->lock);
	struct group_count *old = s->group_counts;
	s->group_counts = list;
	s->group_counted_at = server_epoch_ms();
	s->counting = false;
	server_cfg_drop_locked(ref);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	while (old) {
		struct group_count *next = old->next;
		free(old->group_id);
		free(old);
		old = next;
	}
	return NULL;
}

int64_t server_group_count(struct server *s, const char *group_id, int64_t *at)
{
	for (struct group_count *gc = s->group_counts; gc; gc = gc->next)
		if (!strcmp(gc->group_id, group_id)) {
			*at = s->group_counted_at;
			return (int64_t)gc->members;
		}
	*at = 0;
	return -1;
}

void server_maybe_count(struct server *s)
{
	if (!s->counts_stale || s->counting || s->stopping || s->jobs)
		return;
	if (s->count_thread_live) {
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->count_thread, NULL);
		pthread_mutex_lock(&s->lock);
		s->count_thread_live = false;
	}
	s->counts_stale = false;
	s->counting = true;
	/* server_cfg_get takes the lock itself: the thread waits until we release it */
	if (pthread_create(&s->count_thread, NULL, count_main, s) == 0)
		s->count_thread_live = true;
	else
		s->counting = false;
}
