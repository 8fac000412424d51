#!/bin/sh
# One-shot set-up of the orders lake and the launches bucket on MinIO, run by the
# `minio-init` service with the root account: the buckets, the app's policy
# (app-policy.json beside this file, only those buckets) and the app's user with that
# policy. Every step is safe to run again, so each `docker compose up` re-applies it (a
# changed app password or policy included).
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${MINIO_APP_USER:?}" "${MINIO_APP_PASSWORD:?}"
: "${LAKE_BUCKET:?}" "${LAUNCHES_BUCKET:?}" "${APP_POLICY_FILE:?}"
policy=orders-lake-app

mc alias set lake http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "lake/$LAKE_BUCKET"
mc mb --ignore-existing "lake/$LAUNCHES_BUCKET"
mc admin policy create lake "$policy" "$APP_POLICY_FILE"
mc admin user add lake "$MINIO_APP_USER" "$MINIO_APP_PASSWORD"
# mc before RELEASE.2024-10 fails an attach that changes nothing (minio/mc#4863):
# that one failure means the user already has the policy.
if ! attached=$(mc admin policy attach lake "$policy" --user "$MINIO_APP_USER" 2>&1); then
    case "$attached" in
        *"already in effect"*) ;;
        *) echo "$attached" >&2; exit 1 ;;
    esac
fi
echo "lake ready: buckets $LAKE_BUCKET and $LAUNCHES_BUCKET, user $MINIO_APP_USER with policy $policy"
