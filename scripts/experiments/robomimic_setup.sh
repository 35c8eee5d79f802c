# Sourced (from the repository root) by the robomimic experiment scripts once their settings are read, OUT among
# them: OUT made absolute (the configs resolve their paths from the repository root), data and logs under it, one
# thread per process, upstream's vendored configs in CFG, the CLI at low priority in DPPO, and `has STAGE` for
# the STAGES list.
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
export DPPO_DATA_DIR="$PWD/data" DPPO_LOG_DIR="$OUT" OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 \
  TF_NUM_INTEROP_THREADS=1 DPPO_TORCH_UPDATE_THREADS=1
CFG=tests/fixtures/upstream_cfg/cfg/robomimic
DPPO="nice .venv/bin/dppo"
has() { [[ " $STAGES " == *" $1 "* ]]; }
