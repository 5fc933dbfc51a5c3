#!/usr/bin/env bash
# grouparoo_semantics.sh: issue #12, "Sync, Additive and Enrich exactly as Grouparoo did
# them". The same scenario runs once per sync mode against the Braze simulator; after
# every step the simulator's whole user state (every user, every field, custom
# attribute, `groups` value and subscription state) and the requests joey sent are
# asserted. Each case names what Grouparoo 0.9.0 did for Braze and where its source
# shows it (github grouparoo/grouparoo @ a453a40b, "core/..." and "plugins/@grouparoo/...").
#
# Grouparoo's Braze export, in short (read in full for docs/config.md, "Sync modes
# compared with Grouparoo"):
#   core/src/modules/ops/destination.ts exportRecords() builds one export per record:
#     toDelete when the record is out of the destination's collection (l. 372-385) or
#     being destroyed; when the sync mode cannot delete (additive, enrich) the export
#     becomes an update with newGroups = [] (l. 461-468). A null property keeps its key
#     with a null value (l. 432-446: the rawValue is the array [null], truthy).
#   plugins/@grouparoo/app-templates/src/destination/batch/exportRecords.ts
#     assignAction() (l. 575-622): toDelete -> delete (sync) or "remove from groups";
#     found in Braze -> update; not found -> create (sync, additive) or the info error
#     "Destination not creating" (enrich); found by POST /users/export/ids first.
#   plugins/@grouparoo/braze/src/lib/export/exportRecords.ts getUsersPayload()
#     (l. 192-214): every /users/track object carries ALL mapped fields of
#     newRecordProperties, null for a field that was in oldRecordProperties but is no
#     longer mapped (l. 196-200), and `groups` = newGroups + the values Braze already
#     has that Grouparoo did not just remove (getGroupsListToExport, l. 97-115);
#     deleteByDestinationIds() -> POST /users/delete. Group memberships are values of
#     the `groups` custom attribute, never subscription groups.
#
# Where joey deliberately differs, the test asserts joey's documented behaviour
# (docs/config.md); everywhere else it asserts Grouparoo's.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
SG1=11111111-2222-4333-8444-555555555555
SG2=22222222-3333-4444-8555-666666666666

# users_are NAME PYEXPR: PYEXPR (Python) equals the simulator's whole user state,
# normalised to {external_id: {field: value}}: standard fields and custom attributes
# flat, `groups` sorted, subscription groups as "sg:<uuid>": state; Braze's own
# bookkeeping (braze_id, created_at, random_bucket, aliases, default email/push
# subscription states) left out.
users_are() {
  if python3 - "$SIM_URL" "$2" >"$TMP/users_are" 2>&1 <<'PY'
import json, sys, urllib.request
url, expr = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(url + "/_sim/users", timeout=10) as r:
    raw = json.load(r)["users"]
skip = {"external_id", "user_aliases", "braze_id", "created_at", "random_bucket", "custom_attributes",
        "subscription_groups", "deprecated_external_ids"}
got = {}
for u in raw:
    d = {k: v for k, v in u.items() if k not in skip}
    for k in ("email_subscribe", "push_subscribe"):
        if d.get(k) == "subscribed":
            del d[k]
    for k, v in u.get("custom_attributes", {}).items():
        d[k] = sorted(v) if k == "groups" and isinstance(v, list) else v
    for s in u.get("subscription_groups", []):
        d["sg:" + s["subscription_group_id"]] = s["subscription_state"]
    got[u.get("external_id", "?")] = d
want = eval(expr)
if got != want:
    print("want: " + json.dumps(want, sort_keys=True))
    print("got:  " + json.dumps(got, sort_keys=True))
    sys.exit(1)
PY
  then ok "$1"; else FAIL=$((FAIL + 1)); echo "FAIL $1"; sed 's/^/  /' "$TMP/users_are"; fi
}
# sent NAME PYEXPR: the requests since the last `step` (sim.py's reqs/track/...)
sent() { SINCE=$MARK sim_check "$1" "$2"; }
# write_cfg: the config of the scenario, from MODE, MAPPING and DGM (JSON objects)
write_cfg() {
  cat > "$D/config/config.json" <<EOF
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"score","type":"float","sourceId":"src","options":{"column":"score"}},
 {"class":"Property","id":"tier","type":"string","sourceId":"src","options":{"column":"tier"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Group","id":"gold","name":"Gold","modelId":"users","rules":[{"propertyId":"tier","op":"eq","match":"gold"}]},
 {"class":"Destination","id":"dest","name":"Braze","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"$MODE","collection":"group","groupId":"vips","options":{"maxDeletePercent":100$RECHECK},
  "mapping":$MAPPING,"destinationGroupMemberships":$DGM}
]
EOF
}
sq() { sqlite3 "$D/data.db" "$1"; }
step() { MARK=$(sim_mark); run run --config "$D/config" --state "$D/state.db"; }

for MODE in sync additive enrich; do
  D=$TMP/$MODE
  RECHECK=""; [ $MODE = enrich ] && RECHECK=',"enrichRecheckHours":0'
  mkdir -p "$D/config"
  curl -s -X POST "$SIM_URL/_sim/reset" >/dev/null
  MAPPING='{"external_id":"user_id","email":"email","first_name":"name","score":"score"}'
  DGM='{"'$SG1'":"vips","Gold":"gold"}'
  write_cfg
  sq "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, vip INTEGER, score REAL, tier TEXT)"
  sq "INSERT INTO users VALUES (1,'ann@example.com','Ann',1,7.5,'gold'),(2,'bob@example.com','Bob',1,2,'gold'),
      (3,'cy@example.com','Cy',1,NULL,NULL),(4,'dee@example.com','Dee',0,1,'gold'),(5,'eve@example.com','Eve',1,3,NULL)"
  # Braze already has users 1, 2 and 3 (created by the app's SDK), with values set
  # outside joey: a `groups` value, an `sdk` attribute, and a score for user 3.
  sim_post /_sim/users '{"users":[{"external_id":"1","first_name":"Annie","sdk":"a","groups":["outside"]},
    {"external_id":"2","sdk":"b"},{"external_id":"3","score":5,"sdk":"c"}]}'
  P=$MODE # assertion names

  # ---- first run. Grouparoo: every record of the group is exported; the plugin looks
  # each one up (/users/export/ids) and upserts it with /users/track; enrich does not
  # create users Braze lacks (app-templates batch/exportRecords.ts assignAction,
  # l. 611-618: "Destination not creating. No changes made.", an info error). The
  # payload holds every mapped field, null ones as null (core ops/destination.ts
  # l. 432-446 keeps a null property's key; braze exportRecords.ts formatVar, l. 216-224),
  # and groups = new groups + the values Braze already had (getGroupsListToExport).
  # joey: the same users, groups and nulls (a first export sets every mapped field, so
  # user 3 loses the score 5 the SDK set); difference (docs/config.md, "Sync modes
  # compared with Grouparoo"): UUID-named memberships are subscription groups.
  step; expect_rc 0 "$P: first run"
  U1="'first_name':'Ann','email':'ann@example.com','score':7.5,'sdk':'a'"
  U2="'first_name':'Bob','email':'bob@example.com','score':2,'sdk':'b'"
  U3="'first_name':'Cy','email':'cy@example.com','sdk':'c'"
  U5="'first_name':'Eve','email':'eve@example.com','score':3"
  S1="'sg:$SG1':'subscribed'"
  if [ $MODE = enrich ]; then
    users_are "$P: first run: users Braze had are enriched, user 5 is not created" \
      "{'1':{$U1,'groups':['Gold','outside'],$S1},'2':{$U2,'groups':['Gold'],$S1},'3':{$U3,$S1}}"
    sent "$P: first run: existence looked up, every object guarded" \
      '[q["body"]["external_ids"] for q in reqs if q["path"]=="/users/export/ids"]==[["1","2","3","5"]] and len(track)==3 and all(a["_update_existing_only"] is True for a in track)'
  else
    users_are "$P: first run: every member created or updated" \
      "{'1':{$U1,'groups':['Gold','outside'],$S1},'2':{$U2,'groups':['Gold'],$S1},'3':{$U3,$S1},'5':{$U5,$S1}}"
    sent "$P: first run: one /users/track, no lookup" \
      '[q["path"] for q in reqs]==["/users/track"] and sorted(a["external_id"] for a in track)==["1","2","3","5"]'
  fi
  # Grouparoo sends "score": null here and Braze loses the 5 the SDK set; so does joey,
  # in every mode (a first export sets every mapped field, null included).
  sent "$P: first run: a null field is sent as null on the first export" \
    '[a for a in track if a["external_id"]=="3"][0].get("score", "absent") is None'

  # ---- case a: a record leaves the destination's group (collection "group").
  # Grouparoo: core ops/destination.ts exportRecords() sets toDelete when the record is
  # not in destination.groupId (l. 376-383). Sync: assignAction() -> shouldDelete
  # (batch/exportRecords.ts l. 588-591) -> braze deleteByDestinationIds() ->
  # POST /users/delete. Additive, enrich: exportRecords() turns it into an update with
  # newGroups = [] (destination.ts l. 461-468), so Braze keeps the user and loses the
  # group values Grouparoo had sent (getGroupsListToExport drops oldGroups). joey: the
  # same. (Grouparoo 0.9.0's batched import path, RecordOps.makeExports(), only
  # reaches destinations of the record's current groups (record.ts l. 1222-1246), so a
  # leaver by a property change got no export until a group run or `grouparoo sync`;
  # joey does what exportRecords() says on the next run.) The name changed at the same
  # time: Grouparoo's update carries it, and so does joey's (the leave export brings
  # the mapped fields up to date while it removes the memberships).
  sq "UPDATE users SET vip=0, name='Bobby' WHERE id=2"
  step; expect_rc 0 "$P: case a run"
  if [ $MODE = sync ]; then
    users_are "$P: case a: the leaver is deleted from Braze" \
      "{'1':{$U1,'groups':['Gold','outside'],$S1},'3':{$U3,$S1},'5':{$U5,$S1}}"
    sent "$P: case a: one /users/delete" '[(q["path"],q["body"]) for q in reqs]==[("/users/delete",{"external_ids":["2"]})]'
  else
    U2L="'first_name':'Bobby','email':'bob@example.com','score':2,'sdk':'b','groups':[],'sg:$SG1':'unsubscribed'"
    if [ $MODE = enrich ]; then W="{'1':{$U1,'groups':['Gold','outside'],$S1},'2':{$U2L},'3':{$U3,$S1}}"
    else W="{'1':{$U1,'groups':['Gold','outside'],$S1},'2':{$U2L},'3':{$U3,$S1},'5':{$U5,$S1}}"; fi
    users_are "$P: case a: the leaver stays, its memberships removed, its fields brought up to date" "$W"
    sent "$P: case a: no delete; the changed name and the memberships in one object" \
      'not any(q["path"]=="/users/delete" for q in reqs) and [sorted(a) for a in track]==[sorted({"external_id","first_name","groups","subscription_groups"} | ({"_update_existing_only"} if "'$MODE'"=="enrich" else set()))]'
  fi

  # ---- case b: a record is deleted in the warehouse.
  # Grouparoo: its primary key becomes null on re-confirmation, record:destroy
  # (core/src/tasks/record/destroy.ts l. 30-36) exports with toDelete = true, using the
  # last sent values to name the user (destination.ts l. 394-413). Sync: POST
  # /users/delete. Additive, enrich: the update with newGroups = [] as in case a.
  # joey: the same on the next full run.
  sq "DELETE FROM users WHERE id=3"
  step; expect_rc 0 "$P: case b run"
  U3L="$U3,'sg:$SG1':'unsubscribed'"
  case $MODE in
  sync) W="{'1':{$U1,'groups':['Gold','outside'],$S1},'5':{$U5,$S1}}" ;;
  additive) W="{'1':{$U1,'groups':['Gold','outside'],$S1},'2':{$U2L},'3':{$U3L},'5':{$U5,$S1}}" ;;
  enrich) W="{'1':{$U1,'groups':['Gold','outside'],$S1},'2':{$U2L},'3':{$U3L}}" ;;
  esac
  users_are "$P: case b: deleted (sync) or kept without memberships" "$W"
  if [ $MODE = sync ]; then sent "$P: case b: one /users/delete" '[(q["path"],q["body"]) for q in reqs]==[("/users/delete",{"external_ids":["3"]})]'
  else sent "$P: case b: no delete" 'not any(q["path"]=="/users/delete" for q in reqs)'; fi

  # ---- case c: a mapped property becomes null.
  # Grouparoo: the export's newRecordProperties has score: null and the /users/track
  # object sends it (braze exportRecords.ts getUsersPayload l. 192-214, formatVar
  # l. 216-219), with every other mapped field and `groups` again; Braze unsets it.
  # joey: sends {"score": null} alone (only what changed, documented difference); the
  # same Braze state.
  sq "UPDATE users SET score=NULL WHERE id=1"
  step; expect_rc 0 "$P: case c run"
  U1="'first_name':'Ann','email':'ann@example.com','sdk':'a'"
  users_are "$P: case c: the attribute is unset in Braze" "$(sed 's/'"'score':7.5,"'//' <<<"$W")"
  sent "$P: case c: only the null is sent" '[{k: v for k, v in a.items() if k != "_update_existing_only"} for a in track]==[{"external_id":"1","score":None}]'
  W5="'5':{$U5,$S1}"; [ $MODE = enrich ] && W5="" # user 5 is not in Braze (enrich)
  case $MODE in
  sync) REST="" ;;
  *) REST="'2':{$U2L},'3':{$U3L}," ;;
  esac

  # ---- case d: destinationGroupMemberships changes.
  # Grouparoo: the config loader replaces the memberships (core/src/modules/configLoaders/
  # destination.ts l. 79-90, Destination.setDestinationGroupMemberships) without
  # exporting anyone; each record's next export computes newGroups from the new map
  # (ops/destination.ts l. 448-459) against oldGroups of its last export (l. 387-392):
  # an added group is added, a removed one removed (setGroupNames, app-templates
  # shared/batch.ts l. 17-48; Braze: getGroupsListToExport), a renamed one is the old
  # name removed and the new one added, all in the `groups` custom attribute. With
  # `grouparoo run` (every schedule re-imports) every record is reached. joey: the same
  # on the next run, for every record in scope; a UUID-named membership is a Braze
  # subscription group (unsubscribed from the old, subscribed to the new one).
  # d1: a group added
  DGM='{"'$SG1'":"vips","Gold":"gold","VIP":"vips"}'; write_cfg
  step; expect_rc 0 "$P: case d1 run"
  W5="'5':{$U5,'groups':['VIP'],$S1}"; [ $MODE = enrich ] && W5=""
  users_are "$P: case d1: an added group reaches every member" "{'1':{$U1,'groups':['Gold','VIP','outside'],$S1},$REST$W5}"
  if [ $MODE = enrich ]; then sent "$P: case d1: only the groups value is sent" '[a["groups"] for a in track]==[{"add":["VIP"]}] and len(track)==1'
  else sent "$P: case d1: only the groups value is sent" '[(a["external_id"],a["groups"],len(a)) for a in track]==[("1",{"add":["VIP"]},2),("5",{"add":["VIP"]},2)]'; fi
  # d2: a group removed
  DGM='{"'$SG1'":"vips","VIP":"vips"}'; write_cfg
  step; expect_rc 0 "$P: case d2 run"
  users_are "$P: case d2: a removed group is taken away, other values stay" "{'1':{$U1,'groups':['VIP','outside'],$S1},$REST$W5}"
  sent "$P: case d2: one removal" '[{k: v for k, v in a.items() if k != "_update_existing_only"} for a in track]==[{"external_id":"1","groups":{"remove":["Gold"]}}]'
  # d3: both renamed (the subscription group to another one)
  DGM='{"'$SG2'":"vips","V.I.P.":"vips"}'; write_cfg
  step; expect_rc 0 "$P: case d3 run"
  S12="'sg:$SG1':'unsubscribed','sg:$SG2':'subscribed'"
  W5="'5':{$U5,'groups':['V.I.P.'],$S12}"; [ $MODE = enrich ] && W5=""
  users_are "$P: case d3: renamed: old name removed, new added; old subscription group left, new joined" \
    "{'1':{$U1,'groups':['V.I.P.','outside'],$S12},$REST$W5}"
  sent "$P: case d3: no attribute but groups written" 'all(set(a) <= {"external_id","groups","subscription_groups","_update_existing_only"} for a in track) and len(track)==(1 if "'$MODE'"=="enrich" else 2)'

  # ---- case e: the property mapping changes.
  # Grouparoo: Destination.setMapping() (models/Destination.ts l. 258-266) exports no one
  # by itself; the next export of each record compares the new mapping's values with
  # its last export. e1, a field added: it differs for everyone, so everyone's next
  # /users/track carries it (null for records without a value). e2, a field removed:
  # getUsersPayload() sends null for every key of oldRecordProperties that is not in
  # newRecordProperties (braze exportRecords.ts l. 196-200), so Braze loses it.
  # joey: e1 the same (null values are not sent: nothing to unset for a field joey
  # never sent); e2 differs on purpose: a field no longer mapped is left alone in
  # Braze (src/engine/payload.c diff_impl; docs/config.md).
  MAPPING='{"external_id":"user_id","email":"email","first_name":"name","score":"score","tier":"tier"}'; write_cfg
  step; expect_rc 0 "$P: case e1 run"
  U1="$U1,'tier':'gold'"
  users_are "$P: case e1: an added field reaches every member with a value" "{'1':{$U1,'groups':['V.I.P.','outside'],$S12},$REST$W5}"
  sent "$P: case e1: only the new field is sent" '[{k: v for k, v in a.items() if k != "_update_existing_only"} for a in track]==[{"external_id":"1","tier":"gold"}]'
  MAPPING='{"external_id":"user_id","email":"email","first_name":"name","tier":"tier"}'; write_cfg
  step; expect_rc 0 "$P: case e2 run"
  users_are "$P: case e2: a field removed from the mapping is left in Braze" "{'1':{$U1,'groups':['V.I.P.','outside'],$S12},$REST$W5}"
  sent "$P: case e2: nothing is sent" 'track==[]'

  # ---- case f: a member Braze does not have (enrich), who leaves, comes back, and
  # appears in Braze later.
  # Grouparoo, enrich: not found by /users/export/ids -> "Destination not creating"
  # (an info error: the export fails without retry and does not become the baseline,
  # core Export.setError); leaving the group is an update with newGroups = [] for a
  # user that is not found -> "not creating" again (nothing sent); a later export of
  # the record (its next import: every run for a full-read schedule) finds the user
  # and sends every mapped field (no complete export to compare with). joey: the same:
  # never created, re-checked with /users/export/ids every run (enrichRecheckHours 0,
  # Grouparoo's behaviour; joey's default waits 24 h: e2e/enrich_recheck), enriched in full when
  # Braze has it; an update is sent with _update_existing_only (documented).
  # Sync and additive: the leaver is deleted / unsubscribed, the returning member
  # created again / subscribed again, as in cases a and b.
  sq "UPDATE users SET vip=0 WHERE id=5"
  step; expect_rc 0 "$P: case f1 run"
  case $MODE in
  sync) W5=""; sent "$P: case f1: the leaver is deleted" '[q["body"] for q in reqs if q["path"]=="/users/delete"]==[{"external_ids":["5"]}]' ;;
  additive) W5="'5':{$U5,'groups':[],'sg:$SG1':'unsubscribed','sg:$SG2':'unsubscribed'}"
            sent "$P: case f1: the leaver is unsubscribed" 'not any(q["path"]=="/users/delete" for q in reqs)' ;;
  enrich) W5=""; sent "$P: case f1: nothing is sent for a user Braze does not have" 'track==[]' ;;
  esac
  users_are "$P: case f1: whole state" "{'1':{$U1,'groups':['V.I.P.','outside'],$S12},$REST$W5}"
  sq "UPDATE users SET vip=1 WHERE id=5"
  sim_post /_sim/users '{"users":[{"external_id":"5","sdk":"e"}]}'
  step; expect_rc 0 "$P: case f2 run"
  U5="'first_name':'Eve','email':'eve@example.com','sdk':'e'"
  case $MODE in
  sync) W5="'5':{$U5,'groups':['V.I.P.'],'sg:$SG2':'subscribed'}" ;;
  additive) W5="'5':{$U5,'score':3,'groups':['V.I.P.'],'sg:$SG1':'unsubscribed','sg:$SG2':'subscribed'}" ;;
  enrich) W5="'5':{$U5,'groups':['V.I.P.'],'sg:$SG2':'subscribed'}"
          sent "$P: case f2: the user Braze gained is enriched in full" \
            '[q["body"]["external_ids"] for q in reqs if q["path"]=="/users/export/ids"]==[["5"]] and [a for a in track if a["external_id"]=="5"][0].keys() >= {"email","first_name","groups","_update_existing_only"}' ;;
  esac
  users_are "$P: case f2: whole state" "{'1':{$U1,'groups':['V.I.P.','outside'],$S12},$REST$W5}"

  # ---- converged: nothing more to send
  step; expect_rc 0 "$P: last run"
  sent "$P: converged: no request" 'reqs==[]'
done
finish
