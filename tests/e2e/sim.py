#!/usr/bin/env python3
"""sim.py: assertions against the Braze simulator for e2e tests.

  sim.py check URL EXPR    exit 0 if EXPR is true; EXPR sees:
                             users  {external_id: user dict from /_sim/users}
                             reqs   [request dicts from /_sim/requests] (path, status, body)
                             stats  /_sim/stats
                             track  [attribute objects of every /users/track request]
                             subs(u) {subscription_group_id: state} of user u
                             ca(u)   custom_attributes of user u
  sim.py mark URL          print the number of requests seen so far (for since=)
Requests can be restricted with the SINCE environment variable (count from `mark`).
"""
import json, os, sys, urllib.request

def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)

def main():
    cmd, url = sys.argv[1], sys.argv[2].rstrip("/")
    if cmd == "mark":
        print(get(url + "/_sim/stats")["requests_total"])
        return 0
    since = int(os.environ.get("SINCE", "0"))
    users = {u["external_id"]: u for u in get(url + "/_sim/users")["users"] if "external_id" in u}
    r = get(url + "/_sim/requests?since=%d" % since)
    reqs = r["requests"] if isinstance(r, dict) else r
    reqs = [q for q in reqs if not q.get("path", "").startswith("/_sim")]
    stats = get(url + "/_sim/stats")
    track = [a for q in reqs if q.get("path") == "/users/track" and isinstance(q.get("body"), dict)
             for a in q["body"].get("attributes", [])]
    subs = lambda u: {s["subscription_group_id"]: s["subscription_state"]
                      for s in users.get(u, {}).get("subscription_groups", [])}
    ca = lambda u: users.get(u, {}).get("custom_attributes", {})
    expr = sys.argv[3]
    ok = eval(expr, {"users": users, "reqs": reqs, "stats": stats, "track": track, "subs": subs, "ca": ca,
                     "len": len, "set": set, "sorted": sorted, "all": all, "any": any, "json": json})
    if not ok:
        print("assertion failed: " + expr, file=sys.stderr)
        print("users: " + json.dumps(users, sort_keys=True)[:3000], file=sys.stderr)
        print("requests: " + json.dumps([(q.get("path"), q.get("status"), q.get("body")) for q in reqs])[:3000],
              file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
