#!/usr/bin/env bash
# Deploys the SpaceX launches job to ECS Fargate and checks its object: the command is
# deploy/launches.py (`deploy/launches.sh --help` lists its flags and variables).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
# A checkout without `make install` runs it with whatever python3 has boto3 and pytest.
[[ -x "$python" ]] || python="$(command -v python3)"
cd "$root"
exec "$python" -m deploy.launches "$@"
