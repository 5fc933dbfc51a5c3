/* warehouse_bq.c: warehouse-fake's BigQuery token endpoint and REST API v2. */
#include "warehouse.h"

int bq_handle(struct fake_req *r)
{
	return fake_reply(r->conn, 501, "{\"error\":{\"code\":501,\"message\":\"BigQuery mode is not built yet\"}}", false);
}
