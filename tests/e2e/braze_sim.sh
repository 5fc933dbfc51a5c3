# braze_sim.sh: end-to-end tests of the Braze simulator (tests/fakes/braze-sim) with curl.
# Needs: curl. The binary is $BRAZE_SIM_BIN, else braze-sim next to $JOEY_BIN.
set -u
source "$(dirname "$0")/lib.bash"
SIM=${BRAZE_SIM_BIN:-$(dirname "$JOEY_BIN")/braze-sim}
KEY='Authorization: Bearer demo-key'
JSON='Content-Type: application/json'
PIDS=()
cleanup() { for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done; rm -rf "$TMP"; }  # only our live children: a dead pid may be reused
trap cleanup EXIT

if [ ! -x "$SIM" ]; then RC=1 OUT= ERR=; bad "braze-sim binary not found at $SIM"; finish; exit 1; fi
if ! command -v curl >/dev/null; then RC=1 OUT= ERR=; bad "curl is not installed"; finish; exit 1; fi

N=0
# start_sim ARGS...: start a simulator, set SIMPID and B (base URL)
start_sim() {
  N=$((N + 1))
  "$SIM" --port 0 --port-file "$TMP/port.$N" --quiet --max-lifetime 300 "$@" >"$TMP/sim.$N.out" 2>"$TMP/sim.$N.err" &
  SIMPID=$!
  PIDS+=("$SIMPID")
  for _ in $(seq 100); do [ -s "$TMP/port.$N" ] && break; sleep 0.05; done
  B="http://127.0.0.1:$(cat "$TMP/port.$N" 2>/dev/null)"
}
stop_sim() { kill -TERM "$SIMPID" 2>/dev/null; wait "$SIMPID" 2>/dev/null; RC=$?; }

# req METHOD PATH [BODY] [curl args...]: sets STATUS, OUT (body), HDR (headers), CRC (curl exit)
req() {
  local m=$1 p=$2 body=${3-}
  shift 2; [ $# -gt 0 ] && shift
  set +e
  if [ "$m" = GET ]; then
    curl -sS -m 10 -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' "$@" "$B$p" >"$TMP/code" 2>"$TMP/cerr"
  else
    curl -sS -m 10 -X "$m" -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --data-binary "$body" "$@" "$B$p" >"$TMP/code" 2>"$TMP/cerr"
  fi
  CRC=$?
  set -e
  STATUS=$(cat "$TMP/code"); OUT=$(cat "$TMP/body" 2>/dev/null); HDR=$(cat "$TMP/hdr" 2>/dev/null); ERR=$(cat "$TMP/cerr"); RC=$CRC
}
braze() { req "$1" "$2" "${3-}" -H "$KEY" -H "$JSON" "${@:4}"; }
sim_get() { req GET "$1"; }
sim_post() { req POST "$1" "$2"; }

is() { # is WANT_STATUS NAME [FIXED_STRING...]: status and fixed strings in the body
  local want=$1 name=$2; shift 2
  if [ "$STATUS" != "$want" ]; then bad "$name: status $STATUS, want $want"; return; fi
  for s in "$@"; do
    if ! grep -qF -- "$s" <<<"$OUT"; then bad "$name: body lacks $s"; return; fi
  done
  ok "$name"
}
hdr_has() { if grep -qiE -- "$1" <<<"$HDR"; then ok "$2"; else bad "$2: headers lack /$1/"; echo "$HDR"; fi; }
hdr_lacks() { if grep -qiE -- "$1" <<<"$HDR"; then bad "$2: headers have /$1/"; else ok "$2"; fi; }
out_lacks() { if grep -qF -- "$1" <<<"$OUT"; then bad "$2: body has $1"; else ok "$2"; fi; }

U1=11111111-2222-3333-4444-555555555555
U2=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee

# ---------------------------------------------------------------- CLI
set +e
"$SIM" --host 0.0.0.0 --port 0 >"$TMP/o" 2>"$TMP/e"; RC=$?; OUT=$(cat "$TMP/o"); ERR=$(cat "$TMP/e")
set -e
expect_rc 2 "non-loopback --host refused"
expect_err "loopback" "non-loopback message"

start_sim --seed 7 --api-key demo-key --api-key ro-key --permissions users.export.ids,campaigns.list \
  --subscription-group "$U2:email:Newsletter" --log-file "$TMP/requests.jsonl"
if grep -q "braze-sim listening on http://127.0.0.1:" "$TMP/sim.$N.out"; then ok "listening line"; else RC=1; bad "listening line"; fi

# ---------------------------------------------------------------- auth, routing, content
braze GET /campaigns/list;                                 is 200 "campaigns/list connection test" '{"campaigns":[],"message":"success"}'
req GET /campaigns/list;                                   is 401 "missing key -> 401" "Invalid API key"
req GET /campaigns/list "" -H 'Authorization: Bearer nope'; is 401 "unknown key -> 401"
req GET /campaigns/list "" -H 'Authorization: demo-key';   is 401 "no Bearer -> 401"
req GET /campaigns/list "" -H 'Authorization: Bearer "demo-key"'; is 401 "quoted key -> 401"
req POST /users/track '{"attributes":[]}' -H 'Authorization: Bearer ro-key' -H "$JSON"; is 403 "key without users.track -> 403" "Access Denied"
req POST /users/export/ids '{"external_ids":["x"]}' -H 'Authorization: Bearer ro-key' -H "$JSON"; is 201 "key with users.export.ids -> 201"
braze POST /users/track/ '{"attributes":[]}';              is 404 "trailing slash -> 404"
braze POST /users/nothing '{}';                            is 404 "unknown path -> 404"
braze GET /users/track;                                    is 404 "wrong method -> 404"
req POST /users/track '{"attributes":[]}' -H "$KEY";       is 415 "no content type -> 415"
req POST /users/track '{"attributes":[]}' -H "$KEY" -H 'Content-Type: text/plain'; is 415 "text/plain -> 415"
braze POST /users/track '{"attributes":[}';                is 400 "bad JSON -> 400" "Error while parsing request body"
head -c 4200000 /dev/zero | tr '\0' 'a' >"$TMP/big"
braze POST /users/track "@$TMP/big";                       is 413 "body > 4 MB -> 413"
req POST /users/track '{"attributes":[{"external_id":"ct","first_name":"C"}]}' -H "$KEY" -H 'Content-Type: application/json; charset=utf-8'
is 201 "content type with charset accepted"

# ---------------------------------------------------------------- track
braze POST /users/track '{"attributes":[{"external_id":"u1","first_name":"Ann","last_name":"Lee","email":"ann@example.com","dob":"1980-12-21","gender":"F","country":"fr","language":"FR","time_zone":"Europe/Paris","plan":"pro","score":3,"vip":true,"tags":["a","a","b"]},{"external_id":"u2","email":"nope"},{"first_name":"anon"}]}'
is 201 "track partial success" '"attributes_processed":1' '{"type":"EMAIL_BAD_FORMAT","input_array":"attributes","index":1}' \
  "{\"type\":\"'external_id' or 'braze_id' or 'user_alias' is required\",\"input_array\":\"attributes\",\"index\":2}"
hdr_has '^X-RateLimit-Limit: 3000' "rate headers on success"
hdr_has '^X-RateLimit-Reset: [0-9]{10}' "reset is epoch seconds"
braze POST /users/track '{"attributes":[{"external_id":"u2","email":"nope"}]}'
is 400 "all objects invalid -> 400" "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields." EMAIL_BAD_FORMAT
braze POST /users/track '{}';                               is 400 "empty track -> 400" "Valid data must be provided"
braze POST /users/export/ids '{"external_ids":["u1","u2"],"fields_to_export":["external_id","first_name","dob","country","language","custom_attributes","email_subscribe","time_zone"]}'
is 201 "export after track" '"external_id":"u1"' '"first_name":"Ann"' '"dob":"1980-12-21T00:00:00.000Z"' '"country":"FR"' '"language":"fr"' \
  '"custom_attributes":{"plan":"pro","score":3,"vip":true,"tags":["a","b"]}' '"invalid_user_ids":["u2"]' '"email_subscribe":"subscribed"' '"time_zone":"Europe/Paris"'
out_lacks '"last_name"' "fields_to_export honoured"
braze POST /users/track '{"attributes":[{"external_id":"u1","last_name":null,"plan":null,"score":{"inc":4},"tags":{"add":["c","a"],"remove":["b"]},"time_zone":"Not/AZone","gender":"X"}]}'
is 201 "update with null, inc, add/remove"
braze POST /users/export/ids '{"external_ids":["u1"],"fields_to_export":["last_name","custom_attributes","time_zone","gender"]}'
is 201 "null unsets, inc adds, add moves to end" '"score":7' '"tags":["c","a"]' '"time_zone":"Europe/Paris"' '"gender":"F"'
out_lacks '"last_name"' "unset field absent from export"
out_lacks '"plan"' "unset custom attribute absent"
braze POST /users/track '{"attributes":[{"external_id":"ghost","first_name":"G","_update_existing_only":true},{"user_alias":{"alias_name":"a1","alias_label":"crm"},"first_name":"Al"}]}'
is 201 "update-only objects counted as processed" '"attributes_processed":2'
braze POST /users/export/ids '{"external_ids":["ghost"]}';  is 201 "update-only did not create" '"invalid_user_ids":["ghost"]'
braze POST /users/track '{"attributes":[{"user_alias":{"alias_name":"a1","alias_label":"crm"},"first_name":"Al","_update_existing_only":false}]}'
is 201 "alias-only user created with explicit false"
long=$(printf 'x%.0s' $(seq 300))
braze POST /users/track "{\"attributes\":[{\"external_id\":\"u3\",\"bio_text\":\"$long\",\"\$bad\":1},{\"external_id\":\"u3\",\"bio_text\":\"$long\"}]}"
is 201 "\$key rejected per object, long string accepted" '"type":"INVALID_CUSTOM_ATTRIBUTE_KEY","input_array":"attributes","index":0' '"attributes_processed":1'
braze POST /users/export/ids '{"external_ids":["u3"],"fields_to_export":["custom_attributes"]}'
if grep -qE "\"bio_text\":\"x{255}\"" <<<"$OUT"; then ok "string truncated to 255"; else bad "string truncated to 255"; fi
braze POST /users/track "{\"attributes\":[{\"external_id\":\"$(printf 'i%.0s' $(seq 988))\"},{\"external_id\":\"null\"},{\"external_id\":\"a\",\"braze_id\":\"b\"},{\"external_id\":\"ok1\",\"email_subscribe\":\"maybe\"},{\"external_id\":\"ok1\",\"push_subscribe\":\"x\"},{\"external_id\":\"ok1\",\"subscription_groups\":{}},{\"external_id\":\"ok1\",\"subscription_groups\":[1]},{\"external_id\":\"ok1\",\"subscription_groups\":[{\"subscription_group_id\":\"nope\",\"subscription_state\":\"subscribed\"}]},{\"external_id\":\"ok1\",\"subscription_groups\":[{\"subscription_group_id\":\"$U2\",\"subscription_state\":\"maybe\"}]},{\"external_id\":\"ok1\",\"current_location\":{\"longitude\":500,\"latitude\":1}}]}"
is 400 "every per-object error code" EXTERNAL_USER_ID_TOO_LARGE BLACKLISTED_EXTERNAL_USER_ID "only one of" BAD_EMAIL_SUBSCRIPTION_STATE \
  BAD_PUSH_SUBSCRIPTION_STATE BAD_SUBSCRIPTION_GROUP_ARRAY BAD_SUBSCRIPTION_GROUP_HASH BAD_SUBSCRIPTION_GROUP_ID BAD_SUBSCRIPTION_GROUP_STATE BAD_LOCATION_UPDATE
braze POST /users/track "{\"attributes\":[{\"external_id\":\"u1\",\"email_subscribe\":\"opted_in\",\"subscription_groups\":[{\"subscription_group_id\":\"$U2\",\"subscription_state\":\"subscribed\"}]}],\"events\":[{\"external_id\":\"u1\",\"name\":\"e\",\"time\":\"2024-01-01T00:00:00Z\"}],\"purchases\":[{\"external_id\":\"u1\",\"product_id\":\"p\",\"currency\":\"USD\",\"price\":1,\"time\":\"2024-01-01T00:00:00Z\"}]}"
is 201 "events and purchases counted" '"attributes_processed":1' '"events_processed":1' '"purchases_processed":1'
objs() { local n=$1 out="" i; for i in $(seq "$n"); do out="$out{\"external_id\":\"b$i\",\"n\":$i},"; done; echo "[${out%,}]"; }
braze POST /users/track "{\"attributes\":$(objs 76)}";      is 400 "76 attributes -> Max Input Length Exceeded" "Max Input Length Exceeded"
braze POST /users/export/ids '{"external_ids":["b1"]}';     is 201 "capped request applied nothing" '"invalid_user_ids":["b1"]'
braze POST /users/track "{\"attributes\":$(objs 75)}";      is 201 "75 attributes accepted" '"attributes_processed":75'
braze POST /users/track "{\"attributes\":$(objs 40),\"events\":[$(for i in $(seq 40); do printf '{"external_id":"b1","name":"e","time":"2024-01-01"},'; done | sed 's/,$//')]}"
is 400 "total_75 counts events too" "Max Input Length Exceeded"
sim_post /_sim/config '{"track_cap":"per_array_75"}';        is 200 "config: per_array_75" '"track_cap":"per_array_75"'
braze POST /users/track "{\"attributes\":$(objs 40),\"events\":[$(for i in $(seq 40); do printf '{"external_id":"b1","name":"e","time":"2024-01-01"},'; done | sed 's/,$//')]}"
is 201 "per_array_75 allows 40+40"
sim_post /_sim/config '{"track_cap":"total_50"}'
braze POST /users/track "{\"attributes\":$(objs 51)}";      is 400 "total_50 cap" "Max Input Length Exceeded"
sim_post /_sim/config '{"track_cap":"total_75"}'

# ---------------------------------------------------------------- data points
sim_post /_sim/reset '';                                     is 200 "reset"
braze POST /users/track '{"attributes":[{"external_id":"d1","first_name":"A","country":"US","language":"en","email_subscribe":"subscribed","tags":["x"],"nested":{"a":1,"b":{"c":2}},"arr":{"add":["p","q"],"remove":["z"]}}]}'
sim_get /_sim/stats
is 200 "data points: 1 + 1 array + 2 nested + 3 ops; exempt fields free" '"data_points":7'
braze POST /users/track '{"attributes":[{"external_id":"d1","first_name":"A"}]}'
sim_get /_sim/stats;                                         is 200 "unchanged value still costs a data point" '"data_points":8'

# ---------------------------------------------------------------- delete, export limits
ids() { local n=$1 out="" i; for i in $(seq "$n"); do out="$out\"x$i\","; done; echo "[${out%,}]"; }
braze POST /users/delete '{"external_ids":["d1","unknown"]}'; is 201 "delete counts ids sent" '{"deleted":2,"message":"success"}'
braze POST /users/delete "{\"external_ids\":$(ids 51)}";     is 400 "delete > 50" "The max number of external_ids and aliases per request was exceeded"
braze POST /users/export/ids "{\"external_ids\":$(ids 51)}"; is 400 "export > 50" "The max number of ids per request was exceeded"
braze POST /users/export/ids '{"external_ids":["x"],"fields_to_export":["nonsense"]}'; is 400 "bad fields_to_export" "nonsense"
braze POST /users/export/ids '{"external_ids":["d1"]}';      is 201 "deleted user gone" '"invalid_user_ids":["d1"]'
braze POST /users/track '{"attributes":[{"external_id":"d1","first_name":"B"}]}'
sim_get /_sim/users;                                          is 200 "re-created user has a new profile" '"external_id":"d1"' '"first_name":"B"'
out_lacks '"country"' "re-created user starts empty"

# ---------------------------------------------------------------- subscription groups
braze POST /subscription/status/set "{\"subscription_group_id\":\"$U2\",\"subscription_state\":\"unsubscribed\",\"external_id\":[\"d1\",\"nobody\"]}"
is 201 "v1 set" '{"message":"success"}'
braze POST /subscription/status/set "{\"subscription_group_id\":\"$U2\",\"subscription_state\":\"subscribed\",\"email\":[\"a@b.co\"],\"phone\":[\"+1\"]}"
is 400 "v1 email and phone" "Either an email address or a phone number should be provided, but not both."
braze POST /subscription/status/set "{\"subscription_group_id\":\"$U1\",\"subscription_state\":\"subscribed\",\"external_id\":[\"d1\"]}"
is 400 "group outside the registry" "Invalid subscription group id"
braze POST /v2/subscription/status/set "{\"subscription_groups\":[{\"subscription_group_id\":\"$U2\",\"subscription_state\":\"subscribed\",\"external_ids\":[\"d1\"]}]}"
is 201 "v2 set"
braze GET "/subscription/status/get?subscription_group_id=$U2&external_id[]=d1&external_id[]=zz"
is 200 "status/get" '"d1":"Subscribed"' '"zz":"Unknown"'
braze GET "/subscription/user/status?external_id[]=d1"
is 200 "user/status" '"total_count":1' "\"id\":\"$U2\"" '"name":"Newsletter"' '"channel":"email"' '"status":"Subscribed"'

# ---------------------------------------------------------------- rename, remove, alias, identify, merge
braze POST /users/track '{"attributes":[{"external_id":"r1","first_name":"R"},{"external_id":"r2"}]}'
braze POST /users/external_ids/rename '{"external_id_renames":[{"current_external_id":"r1","new_external_id":"r1b"},{"current_external_id":"r2","new_external_id":"r1b"},{"current_external_id":"zz","new_external_id":"q"},{"current_external_id":"r2","new_external_id":"r2"}]}'
is 201 "rename" '"external_ids":["r1"]' '[1,"new_external_id is already in use"]' '[2,' '[3,'
braze POST /users/export/ids '{"external_ids":["r1"],"fields_to_export":["external_id","first_name"]}'
is 201 "deprecated id still resolves" '"external_id":"r1b"' '"first_name":"R"'
braze POST /users/external_ids/remove '{"external_ids":["r1","r2"]}'
is 201 "remove deprecated" '"removed_ids":["r1"]' '"removal_errors":[[1,'
braze POST /users/export/ids '{"external_ids":["r1"]}';      is 201 "removed id no longer resolves" '"invalid_user_ids":["r1"]'
braze POST /users/alias/new '{"user_aliases":[{"alias_name":"anon1","alias_label":"web"},{"external_id":"nobody","alias_name":"n","alias_label":"web"},{"external_id":"r2","alias_name":"r2a","alias_label":"crm"}]}'
is 201 "alias/new" '"aliases_processed":3'
braze POST /users/track '{"attributes":[{"user_alias":{"alias_name":"anon1","alias_label":"web"},"fav":"tea"}]}'
braze POST /users/identify '{"aliases_to_identify":[{"external_id":"r2","user_alias":{"alias_name":"anon1","alias_label":"web"}}]}'
is 201 "identify" '"aliases_processed":1'
braze POST /users/export/ids '{"external_ids":["r2"],"fields_to_export":["user_aliases","custom_attributes"]}'
is 201 "identify folded the alias profile" '"alias_name":"anon1"' '"alias_name":"r2a"' '"fav":"tea"'
braze POST /users/merge '{"merge_updates":[{"identifier_to_merge":{"external_id":"r1b"},"identifier_to_keep":{"external_id":"r2"}}]}'
is 202 "merge" '"message":"success"'
braze POST /users/export/ids '{"external_ids":["r2","r1b"],"fields_to_export":["first_name"]}'
is 201 "merge kept fields, removed merged profile" '"first_name":"R"' '"invalid_user_ids":["r1b"]'

# ---------------------------------------------------------------- control API
sim_post /_sim/users '{"users":[{"external_id":"s2","email":"s2@example.com","custom_attributes":{"tier":"gold"}},{"external_id":"s1","first_name":"Seed"}]}'
is 200 "seed users" '"loaded":2'
sim_get /_sim/users
if grep -qE '"external_id":"d1".*"external_id":"r2".*"external_id":"s1".*"external_id":"s2"' <<<"$OUT"; then ok "/_sim/users sorted by external_id"; else bad "/_sim/users sorted"; fi
is 200 "/_sim/users shows groups and custom attributes" '"tier":"gold"' "\"subscription_group_id\":\"$U2\""
req GET "/_sim/user?external_id=s1";                         is 200 "/_sim/user" '"first_name":"Seed"'
sim_get /_sim/stats
is 200 "stats" '"endpoints":{' '"track":{"total":' '"objects":{"count":' '"rate_limited":0' '"data_points":'
sim_get "/_sim/requests?since=0"
is 200 "request log" '"Authorization":"Bearer ***"' '"path":"/users/identify"' '"body":{"aliases_to_identify"'
out_lacks "demo-key" "key redacted in the log"
last=$(grep -oE '"last_seq":[0-9]+' <<<"$OUT" | cut -d: -f2)
braze GET /campaigns/list
sim_get "/_sim/requests?since=$last"
if [ "$(grep -o '"seq":' <<<"$OUT" | wc -l)" = 1 ]; then ok "since=N returns only newer"; else bad "since=N"; fi
sim_get "/_sim/requests?endpoint=rename";                    is 200 "filter by endpoint" '"endpoint":"rename"'
out_lacks '"endpoint":"track"' "endpoint filter excludes others"
if grep -q '"path":"/users/identify"' "$TMP/requests.jsonl" && ! grep -q demo-key "$TMP/requests.jsonl"; then ok "--log-file JSON lines"; else bad "--log-file"; fi

# ---------------------------------------------------------------- faults
fault() { sim_post /_sim/faults "$1"; [ "$STATUS" = 200 ] || bad "fault rule $1: $STATUS $OUT"; }
T1='{"attributes":[{"external_id":"f1","first_name":"F"}]}'
for s in 500 502 503 504; do
  fault "{\"endpoint\":\"track\",\"status\":$s,\"count\":1}"
  braze POST /users/track "$T1";                            is "$s" "fault $s"
done
braze POST /users/export/ids '{"external_ids":["f1"]}';     is 201 "5xx fault did not apply" '"invalid_user_ids":["f1"]'
fault '{"endpoint":"track","status":429,"count":1,"retry_after":7}'
braze POST /users/track "$T1";                               is 429 "fault 429"
hdr_has '^Retry-After: 7' "fault 429 Retry-After"
hdr_has '^X-RateLimit-Remaining: 0' "fault 429 Remaining 0"
fault '{"endpoint":"track","status":202,"count":1}'
braze POST /users/track "$T1";                               is 202 "fault 202 queued" '"message":"queued"'
braze POST /users/export/ids '{"external_ids":["f1"]}';     is 201 "202 fault applied" '"external_id":"f1"'
fault '{"endpoint":"delete","status":503,"count":2}'
braze POST /users/track "$T1";                               is 201 "fault scoped to its endpoint"
braze POST /users/delete '{"external_ids":["zz"]}';          is 503 "delete fault 1/2"
braze POST /users/delete '{"external_ids":["zz"]}';          is 503 "delete fault 2/2"
braze POST /users/delete '{"external_ids":["zz"]}';          is 201 "fault count exhausted"
fault '{"action":"reset_connection","count":1}'
braze POST /users/track "$T1"
if [ "$CRC" = 56 ] || [ "$CRC" = 52 ]; then ok "reset_connection (curl exit $CRC)"; else bad "reset_connection: curl exit $CRC"; fi
fault '{"action":"slow","delay_ms":700,"count":1}'
t0=$(date +%s%N); braze POST /users/track "$T1"; t1=$(date +%s%N)
if [ "$STATUS" = 201 ] && [ $(( (t1 - t0) / 1000000 )) -ge 650 ]; then ok "slow fault"; else bad "slow fault: $STATUS after $(( (t1 - t0) / 1000000 )) ms"; fi
fault '{"action":"apply_then_timeout","delay_ms":3000,"count":1}'
req POST /users/track '{"attributes":[{"external_id":"late","first_name":"L"}]}' -H "$KEY" -H "$JSON" -m 1
if [ "$CRC" = 28 ]; then ok "apply_then_timeout: client timed out"; else bad "apply_then_timeout: curl exit $CRC"; fi
braze POST /users/export/ids '{"external_ids":["late"]}';   is 201 "apply_then_timeout applied" '"external_id":"late"'
fault '{"action":"invalid_json","count":1}'
braze POST /users/track "$T1"
if [ "$STATUS" = 201 ] && ! grep -q '}$' <<<"$OUT"; then ok "invalid_json"; else bad "invalid_json: $STATUS $OUT"; fi
fault '{"action":"never_ending","count":1}'
req POST /users/track "$T1" -H "$KEY" -H "$JSON" -m 1
if [ "$CRC" = 28 ] && grep -q '^{"message"' "$TMP/body"; then ok "never_ending: partial body then stall"; else bad "never_ending: curl exit $CRC"; fi
fault '{"action":"row_error","external_id":"f2","type":"EMAIL_BAD_FORMAT"}'
braze POST /users/track '{"attributes":[{"external_id":"f1"},{"external_id":"f2","first_name":"x"}]}'
is 201 "row_error" '{"type":"EMAIL_BAD_FORMAT","input_array":"attributes","index":1}'
braze POST /users/track '{"attributes":[{"external_id":"f2"}]}'; is 400 "row_error persists" EMAIL_BAD_FORMAT
sim_get /_sim/faults;                                         is 200 "list faults" '"row_errors":[{"external_id":"f2"'
fault '{"action":"clear"}'
braze POST /users/track '{"attributes":[{"external_id":"f2"}]}'; is 201 "faults cleared"
sim_post /_sim/faults '{"status":418}';                       is 400 "bad fault rule rejected"
sim_get /_sim/stats;                                          is 200 "faults counted" '"faults_injected":1'

# ---------------------------------------------------------------- rate limiting
sim_post /_sim/config '{"rates":{"track":"2/60"}}';          is 200 "config rate" '"track":"2/60"'
braze POST /users/track "$T1";                               hdr_has '^X-RateLimit-Remaining: 1' "remaining counts down"
braze POST /users/track "$T1";                               hdr_has '^X-RateLimit-Remaining: 0' "remaining 0"
braze POST /users/track "$T1";                               is 429 "over the limit -> 429"
hdr_has '^Retry-After: [0-9]+' "429 Retry-After"
hdr_has '^X-RateLimit-Limit: 2' "429 X-RateLimit-Limit"
braze POST /users/export/ids '{"external_ids":["f1"]}';     is 201 "other buckets unaffected"
sim_post /_sim/config '{"rate_header_style":"mau"}'
braze POST /users/track "$T1";                               is 429 "mau 429"
hdr_has '^X-Ratelimit-Retry-After: [0-9]+' "mau X-Ratelimit-Retry-After"
hdr_lacks '^X-RateLimit-Limit' "mau 429 lacks X-RateLimit-*"
braze POST /users/export/ids '{"external_ids":["f1"]}'
hdr_has '^X-RateLimit-Reset: [0-9]{1,4}.$' "mau Reset is seconds remaining"
sim_post /_sim/config '{"rate_header_style":"standard","lowercase_headers":true,"latency_ms":300}'
t0=$(date +%s%N); braze POST /users/export/ids '{"external_ids":["f1"]}'; t1=$(date +%s%N)
hdr_has '^x-ratelimit-limit: ' "lower-case header names"
if [ $(( (t1 - t0) / 1000000 )) -ge 280 ]; then ok "latency_ms"; else bad "latency_ms"; fi
sim_get /_sim/stats;                                          is 200 "429s counted, the window peak" '"rate_limited":2' '"rate_window_peak":{' '"track":2'
stop_sim
expect_rc 0 "SIGTERM exits cleanly"

# ---------------------------------------------------------------- CLI rate flags, state file, lifetime
start_sim --rate export=1/60 --rate-header-style mau --state-file "$TMP/state.json" --seed 3
braze POST /users/export/ids '{"external_ids":["a"]}';       is 201 "--rate export=1/60 first"
braze POST /users/export/ids '{"external_ids":["a"]}';       is 429 "--rate export=1/60 second"
hdr_has '^X-Ratelimit-Retry-After' "--rate-header-style mau"
braze POST /users/track '{"attributes":[{"external_id":"keep","first_name":"K","tags":["t"]}]}'
braze POST /users/external_ids/rename '{"external_id_renames":[{"current_external_id":"keep","new_external_id":"keep2"}]}'
sim_get /_sim/users; before=$OUT
stop_sim
expect_rc 0 "SIGTERM with state file"
if grep -q '"external_id": "keep2"' "$TMP/state.json"; then ok "state dumped on exit"; else bad "state dumped on exit"; fi
start_sim --state-file "$TMP/state.json"
sim_get /_sim/users
if [ "$OUT" = "$before" ]; then ok "state reloaded identically"; else bad "state reload: $OUT vs $before"; fi
braze POST /users/export/ids '{"external_ids":["keep"],"fields_to_export":["external_id"]}'
is 201 "deprecated id survives the state file" '"external_id":"keep2"'
stop_sim

start_sim --max-lifetime 1
sleep 2.5
if kill -0 "$SIMPID" 2>/dev/null; then bad "max-lifetime: still running"; else wait "$SIMPID"; RC=$?; expect_rc 0 "max-lifetime self-exit"; fi
start_sim
sim_post /_sim/shutdown ''
sleep 0.5
if kill -0 "$SIMPID" 2>/dev/null; then bad "/_sim/shutdown"; else ok "/_sim/shutdown"; fi

# determinism: the same seed gives the same ids
for run in 1 2; do
  start_sim --seed 42
  braze POST /users/track '{"attributes":[{"external_id":"z"}]}'
  sim_get /_sim/users; eval "seed$run=\$OUT"
  stop_sim
done
if [ "$seed1" = "$seed2" ] && grep -q '"braze_id":"' <<<"$seed1"; then ok "--seed is deterministic"; else bad "--seed: $seed1 vs $seed2"; fi

# the simulator's own JSON reader reads every body as jansson does (or leaves it to jansson)
JT=$(dirname "$SIM")/braze-sim-jsontest
if [ -x "$JT" ]; then
  set +e; OUT=$("$JT" 2>&1); RC=$?; set -e
  if [ "$RC" = 0 ]; then ok "json_fast agrees with jansson (${OUT#json_fast agrees with jansson: })"
  else ERR=$OUT; bad "json_fast differs from jansson"; fi
else
  RC=1 OUT= ERR=; bad "braze-sim-jsontest not found beside $SIM"
fi
# request bodies on several lines (read by jansson) and with escapes are logged as one JSON line
start_sim
braze POST /users/track $'{\n "attributes": [\r\n  {"external_id": "ml", "first_name": "A\\u00e9\\nB"}\n ]\n}'
sim_get "/_sim/requests?endpoint=track"
if python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"][-1]; b=r["body"]; assert b["attributes"][0]["first_name"]=="A\u00e9\nB", b' <<<"$OUT" 2>"$TMP/ml.err"
then ok "a body on several lines is logged as JSON"; else ERR=$(cat "$TMP/ml.err"); bad "a body on several lines"; fi
sim_get "/_sim/user?external_id=ml"
if python3 -c 'import json,sys; assert json.load(sys.stdin)["first_name"] == "A\u00e9\nB"' <<<"$OUT" 2>/dev/null; then ok "escapes in a body are applied"; else bad "escapes: $OUT"; fi
stop_sim

# sanitizer builds: any report in a simulator's stderr is a failure
if grep -lE 'Sanitizer|runtime error' "$TMP"/sim.*.err >/dev/null 2>&1; then
  RC=1 OUT= ERR=$(cat "$TMP"/sim.*.err); bad "sanitizer report from braze-sim"
else
  ok "no sanitizer reports"
fi
finish
