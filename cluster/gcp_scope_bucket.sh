#!/usr/bin/env bash
# Scope the GCP head's storage access to the project's bucket. `ray up` makes the head's
# service account (ray-autoscaler-sa-v1) and grants it roles/storage.objectAdmin on the whole
# project, every bucket in it, at each run; this takes that grant back and grants the role on
# the one bucket instead. Run it after every `ray up cluster/gcp-gpu.yaml`:
#   bash cluster/gcp_scope_bucket.sh PROJECT_ID MY-BUCKET
set -euo pipefail
PROJECT="${1:?usage: $0 PROJECT_ID BUCKET}"
BUCKET="${2:?usage: $0 PROJECT_ID BUCKET}"
SA="serviceAccount:ray-autoscaler-sa-v1@${PROJECT}.iam.gserviceaccount.com"
gcloud storage buckets add-iam-policy-binding "gs://${BUCKET#gs://}" \
    --member="$SA" --role=roles/storage.objectAdmin > /dev/null
gcloud projects remove-iam-policy-binding "$PROJECT" \
    --member="$SA" --role=roles/storage.objectAdmin > /dev/null 2>&1 || true
echo "$SA: roles/storage.objectAdmin on gs://${BUCKET#gs://} only"
