#!/usr/bin/env bash
# The research grid through RQ workers instead of a SLURM array: the same shards, put on the Redis
# queue `grid`, taken by `coding-backend worker --queues grid` on every machine that sees DATA and
# OUT at the same paths (a shared filesystem) and reaches Redis.
#
#   on one machine:   REDIS_URL=redis://queue-host:6379/0 docs/cluster/simulate-rq.sh
#   on each worker:   REDIS_URL=redis://queue-host:6379/0 coding-backend worker --queues grid --burst
#   when they end:    coding-backend simulate --report "$OUT"
#
# --burst makes a worker exit once the queue is empty; without it, it waits for the next grid. A
# shard that failed (its job is in RQ's failed registry, its error in the worker's log) resumes
# with its finished runs kept: run this script again, or `coding-backend simulate ... --shard I/N`
# by hand. Set MLFLOW_TRACKING_URI (on the workers) to a tracking server to see every shard in one
# experiment.
set -euo pipefail
SHARDS=${SHARDS:-6}                  # more shards than workers: a fast worker takes another one
OUT=${OUT:-$HOME/coding-grid/out}
DATA=${DATA:-$HOME/coding-grid/labels_coder_b.jsonl}
: "${REDIS_URL:?set REDIS_URL to the Redis every worker reaches}"
# Settings that neither these options nor the grid set (MODEL_NAME, DEVICE, ...) are each worker's
# own: export them where the workers start, the same on every host but DEVICE.

coding-backend simulate --data "$DATA" \
    --codes physical_health,mental_health,daily_functioning,health_unspecific,freq_mentioned \
    --grid bench/grid.yaml --initial 20 --batch 10 --rounds 4 --seeds 1,2,3,4,5 \
    --queue "$SHARDS" --out "$OUT"
