#!/usr/bin/env bash
# Deploys the flow-logs platform (infra/) to AWS: builds and pushes its images, applies
# the Terraform, waits for the services and prints the dashboard's URL. The command is
# deploy/flowlogs.py (`deploy/flowlogs.sh --help` lists its flags and variables).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
# A checkout without `make install` runs it with whatever python3 has boto3.
[[ -x "$python" ]] || python="$(command -v python3)"
cd "$root"
exec "$python" -m deploy.flowlogs "$@"
