#!/usr/bin/env bash
# serve_auth.sh: accounts, roles, sessions, CSRF, tokens, audit log, rate limits, setup link,
# joey user and TLS of joey serve (see serve_auth.py).
exec python3 "$(dirname "$0")/serve_auth.py"
