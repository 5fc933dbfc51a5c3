/* marks.c: tests of src/engine/marks.c: a job's marks (model_marks_job_text, model_marks_load_job). */
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/marks.h"

static const char *CONFIG =
	"[{class:'App',id:'db',type:'sqlite',options:{file:'x.db'}},\n"
	" {class:'Model',id:'users',type:'profile'},\n"
	" {class:'Source',id:'u',type:'sqlite-import-table',appId:'db',modelId:'users',options:{table:'users'},mapping:{id:'user_id'}},\n"
	" {class:'Source',id:'p',type:'sqlite-import-table',appId:'db',modelId:'users',options:{table:'purchases'},mapping:{user_id:'user_id'}},\n"
	" {class:'Property',id:'user_id',type:'integer',unique:true,sourceId:'u',options:{column:'id'}},\n"
	" {class:'Property',id:'n',type:'integer',sourceId:'p',options:{column:'id',aggregationMethod:'count'}},\n"
	" {class:'Schedule',id:'su',sourceId:'u',recurring:false,incremental:true,options:{column:'updated_at'}},\n"
	" {class:'Schedule',id:'sp',sourceId:'p',recurring:false,incremental:true,options:{column:'created_at'}}]\n";

static void test_job_marks(void **state)
{
	char *dir = tu_mkdtemp();
	struct config *cfg = NULL;
	struct jerror err = JERROR_INIT;
	struct model_marks m;
	struct strbuf text = STRBUF_INIT;

	tu_write(dir, "c.json", CONFIG);
	if (config_load(dir, NULL, &cfg, &err) != JERR_OK) {
		config_print_diags(cfg, stderr);
		fail_msg("config: %s", err.msg.buf);
	}
	const struct cfg_model *users = config_model(cfg, "users");

	/* every schedule has its mark: a changed-records read from each one */
	const char *both = "{\"full\":false,\"marks\":{\"sp\":\"7\",\"su\":\"5\"}}";
	assert_int_equal(model_marks_load_job(cfg, users, both, &m, &err), JERR_OK);
	assert_true(m.incremental);
	assert_string_equal(m.value[0], "5");
	assert_string_equal(m.value[1], "7");
	assert_non_null(m.scope.since_value);
	assert_int_equal(model_marks_job_text(&m, false, &text), JERR_OK);
	assert_string_equal(text.buf, both); /* what a job stores reads back the same */
	model_marks_release(&m);

	/* a schedule without a mark: every record, as a run would */
	assert_int_equal(model_marks_load_job(cfg, users, "{\"full\":false,\"marks\":{\"su\":\"5\"}}", &m, &err), JERR_OK);
	assert_false(m.incremental);
	assert_string_equal(m.why, "no mark yet");
	model_marks_release(&m);

	/* a full job: every record, whatever the marks */
	assert_int_equal(model_marks_load_job(cfg, users, "{\"full\":true,\"marks\":{\"sp\":\"7\",\"su\":\"5\"}}", &m, &err),
			 JERR_OK);
	assert_false(m.incremental);
	assert_string_equal(m.why, "--full");
	assert_int_equal(model_marks_job_text(&m, true, &text), JERR_OK);
	assert_string_equal(text.buf, "{\"full\":true,\"marks\":{\"sp\":\"7\",\"su\":\"5\"}}");
	model_marks_release(&m);

	/* not a job's marks: refused, saying so */
	assert_int_equal(model_marks_load_job(cfg, users, "{\"marks\":[]}", &m, &err), JERR_STATE);
	assert_string_equal(err.msg.buf, "the marks of the job are not readable");
	model_marks_release(&m);
	jerror_release(&err);

	strbuf_release(&text);
	config_free(cfg);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_job_marks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
