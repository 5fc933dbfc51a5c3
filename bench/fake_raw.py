#!/usr/bin/env python3
"""fake_raw.py: the raw read bench/sources_fakes.sh compares joey with: one statement
(Snowflake SQL API, a programmatic access token) or job (BigQuery: a JWT signed by the
openssl command, exchanged for a token), every partition or page fetched and parsed,
the cells counted. Standard library only.

    fake_raw.py snowflake URL TOKEN SQL
    fake_raw.py bigquery URL KEY.pem SQL
"""
import base64, json, subprocess, sys, time, urllib.request, uuid

def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

mode, url, cred, sql = sys.argv[1:5]
cells = 0
if mode == "snowflake":
    h = {"Authorization": "Bearer " + cred, "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN",
         "Content-Type": "application/json", "Accept": "application/json", "User-Agent": "bench"}
    body = json.dumps({"statement": sql, "database": "BENCH", "schema": "PUBLIC", "warehouse": "COMPUTE_WH"}).encode()
    r = call("POST", f"{url}/api/v2/statements?requestId={uuid.uuid4()}", body, h)
    parts = len(r["resultSetMetaData"]["partitionInfo"])
    cells += sum(len(row) for row in r["data"])
    for i in range(1, parts):
        d = call("GET", f"{url}/api/v2/statements/{r['statementHandle']}?partition={i}", None, h)
        cells += sum(len(row) for row in d["data"])
else:
    now = int(time.time())
    head = b64u(b'{"alg":"RS256","typ":"JWT"}')
    claims = b64u(json.dumps({"iss": "joey@bench.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/bigquery",
                              "aud": f"{url}/token", "iat": now, "exp": now + 3600}).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", cred], input=f"{head}.{claims}".encode(),
                         capture_output=True, check=True).stdout
    form = f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={head}.{claims}.{b64u(sig)}"
    tok = call("POST", f"{url}/token", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})["access_token"]
    h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
    body = json.dumps({"query": sql, "useLegacySql": False, "defaultDataset": {"projectId": "bench", "datasetId": "bench"},
                       "formatOptions": {"useInt64Timestamp": True}}).encode()
    r = call("POST", f"{url}/bigquery/v2/projects/bench/queries", body, h)
    job = r["jobReference"]["jobId"]
    while True:
        cells += sum(len(row["f"]) for row in r.get("rows", []))
        if not r.get("pageToken"):
            break
        r = call("GET", f"{url}/bigquery/v2/projects/bench/queries/{job}?pageToken={r['pageToken']}"
                 "&formatOptions.useInt64Timestamp=true", None, h)
print(cells)
