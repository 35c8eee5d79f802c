#!/usr/bin/env bash
# "Sharing the cores" in docs/evidence/benchmarks.md: a DPPO job's env steps/s (dppo bench --job, torch) with the
# cores to itself and beside one busy process, with OpenMP's waiting threads sleeping (the default `dppo` sets)
# or spinning, and with one update thread. One run at a time; prints one line per setting.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-/tmp/dppo-thread-contention}"
mkdir -p "$OUT"
export DPPO_LOG_DIR="$OUT/logs"
JOB=(bench --job configs/hopper/finetune_ppo_diffusion_mlp.yaml --backend torch --iterations 3 --warmup 1
     env.n_envs=10 train.n_steps=100 train.val_freq=100)
run() {  # label, then VAR=value settings
  local label=$1; shift
  env "$@" .venv/bin/python -m dppo.cli "${JOB[@]}" --json "$OUT/$label.json" > "$OUT/$label.txt"
  .venv/bin/python - "$OUT/$label.json" "$label" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
ph = {r["phase"]: r for r in p["phases"]}
print(f"{sys.argv[2]:<24} {p['env_steps_per_second']:6.0f} env steps/s   update {ph['update']['ms_per_iteration']:6.0f} ms/itr"
      f"   action sampling {ph['action sampling']['ms_per_iteration']:6.0f} ms/itr")
PY
}
busy() { python3 -c "while True: pass" > /dev/null 2>&1 & echo $!; }
run alone_sleeping
run alone_spinning OMP_WAIT_POLICY=ACTIVE
B=$(busy); run shared_sleeping; kill "$B"
B=$(busy); run shared_spinning OMP_WAIT_POLICY=ACTIVE; kill "$B"
B=$(busy); run shared_one_thread DPPO_TORCH_UPDATE_THREADS=1; kill "$B"
