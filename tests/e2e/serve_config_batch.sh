#!/usr/bin/env bash
# serve_config_batch.sh: several config objects in one write, POST /api/v1/config
# (see serve_config_batch.py).
exec python3 "$(dirname "$0")/serve_config_batch.py"
