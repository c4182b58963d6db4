#!/usr/bin/env bash
# One nightly refresh: `synthdb run` with the nightly configuration, then prune old run directories.
#
# Used by every scheduler example here (crontab, systemd timer, Kubernetes CronJob). Exit codes are synthdb's:
# 0 done, 1 failed run (the live target was left as it was; retrying may help), 2 bad input (fix the
# configuration; retrying will not help). A second refresh never starts while one is running (flock).
#
# Environment:
#   SYNTHDB_CONFIG        run configuration (default /etc/synthdb/nightly.yaml)
#   SYNTHDB_KEEP_RUNS     run directories to keep (default 7); each holds models, Parquet and Data Docs
#   SYNTHDB_LOCK          lock file (default /tmp/synthdb-refresh.lock)
#   SYNTHDB__SOURCE__URL, SYNTHDB__TARGET__URL, ...   the configuration's secrets (see nightly.yaml)
set -euo pipefail

config="${SYNTHDB_CONFIG:-/etc/synthdb/nightly.yaml}"
keep="${SYNTHDB_KEEP_RUNS:-7}"
lock="${SYNTHDB_LOCK:-/tmp/synthdb-refresh.lock}"
runs_dir="${SYNTHDB__RUNS_DIR:-/var/lib/synthdb/runs}"

exec 9>"$lock"
if ! flock -n 9; then
  echo "synthdb refresh: another refresh holds $lock; skipping this one" >&2
  exit 0
fi

echo "synthdb refresh: starting $(date -u +%FT%TZ) with $config"
status=0
synthdb run --config "$config" --runs-dir "$runs_dir" || status=$?
echo "synthdb refresh: finished $(date -u +%FT%TZ) with exit code $status"

# Prune only after a successful run, so the directories of failed nights stay for inspection. Run ids sort by
# time (they start with a UTC timestamp).
if [[ $status -eq 0 && -d "$runs_dir" ]]; then
  mapfile -t old < <(find "$runs_dir" -mindepth 1 -maxdepth 1 -type d -name '20*' | sort | head -n "-$keep")
  if (( ${#old[@]} )); then
    echo "synthdb refresh: removing ${#old[@]} old run director(ies)"
    rm -rf -- "${old[@]}"
  fi
fi
exit "$status"
