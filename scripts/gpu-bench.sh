#!/usr/bin/env bash
# Graft's benchmark on a machine with a real GPU, end to end, writing bench-results.json in the repository root:
#   npm ci; the FMA peak; matmul at 2048³ in NN/NT/TN with every plan; the autotuner; bench/train.ts at full depth
#   (SmolLM2-135M shape, 30 layers, LoRA, 512 and 4096 tokens per step). All but `npm ci` is bench/gpu.ts, one
#   process on one device. Aimed at under 8 minutes on a data-centre GPU; prints the time it took.
#
#   scripts/gpu-bench.sh                       full run
#   GRAFT_BENCH_QUICK=1 scripts/gpu-bench.sh   the same steps reduced to run anywhere (SwiftShader included):
#                                              matmul 256³, 1 layer at 64 tokens; skips `npm ci` (which
#                                              replaces node_modules) unless GRAFT_BENCH_NPM_CI=1
#   GRAFT_BENCH_NPM_CI=0                       never run `npm ci` (use the node_modules that are there)
#   extra arguments go to bench/gpu.ts (e.g. --seq 512 --layers 30 --out other.json)
#
# Node needs a WebGPU adapter through Dawn (npm `webgpu`): on Linux a Vulkan driver for the GPU (NVIDIA's
# libnvidia-gl / AMD's Mesa RADV); the adapter line printed first says which device ran.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
quick="${GRAFT_BENCH_QUICK:-0}"
ci="${GRAFT_BENCH_NPM_CI:-}"
if [[ -z "$ci" ]]; then
  if [[ "$quick" == "1" ]]; then ci=0; else ci=1; fi
fi
if [[ "$ci" == "1" ]]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
else
  echo "== npm ci skipped (GRAFT_BENCH_QUICK=1 or GRAFT_BENCH_NPM_CI=0): using the node_modules present"
  [[ -d node_modules/webgpu ]] || { echo "node_modules/webgpu is missing: run npm ci first (or GRAFT_BENCH_NPM_CI=1)" >&2; exit 1; }
fi
args=()
[[ "$quick" == "1" ]] && args+=(--quick)
echo "== bench/gpu.ts ${args[*]:-} $*"
npx tsx bench/gpu.ts "${args[@]}" "$@"
echo "== done in $(( $(date +%s) - start )) s"
