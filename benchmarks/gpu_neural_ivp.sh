#!/usr/bin/env bash
# NeuralIVP's paper claims R10 (3-D wave vs EDNN and 100^3 finite differences) and R11
# (Fokker-Planck d = 8 and Vlasov d = 6 vs EDNN) at the paper's sizes, on one GPU. Runs as is on a device
# machine lent to a task (an H100/H200: ~1-2 h; the 2-core CPU runs use the reductions listed
# in benchmarks/results/bench_neural_ivp.json instead).
#
#   bash benchmarks/gpu_neural_ivp.sh            # writes benchmarks/results/bench_neural_ivp_gpu.json
#
# Paper / reference-code sizes: 5000 samples per step, Adam fit 1e5 steps on 10^4 points, RK23
# under the PID controller, restarts on (the solver's default RestartPolicy, 50 at most),
# the wave to T = 0.5, Fokker-Planck to T = 1.0.
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/bench_neural_ivp.py --platform gpu --parts bce \
  --wave-samples 5000 --fp-samples 5000 \
  --fit-steps 100000 --wave-fit-batch 10000 --fit-batch 10000 \
  --wave-steps 0 --fp-steps 0 --rtol 1e-4 --max-restarts 50 \
  --fp-T 1.0 --max-steps 4000 \
  --out benchmarks/results/bench_neural_ivp_gpu.json
