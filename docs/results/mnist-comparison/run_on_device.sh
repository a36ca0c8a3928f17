#!/bin/bash
# The whole comparison (both tasks) from scratch in one `compare` on the device machine (issue #23).
# Needs, prepared by prepare_device.sh and carried with the device tool: .whl (wheels the image
# lacks) and .device/data (the IDX files). Writes to $OUT: cmp.log (one line per finished cell,
# then compare_wall's record), cmp.tgz.part* (the results folder with its cache, split),
# gpu_check.* (the precision check on digits), env.log. Environment: SIMS (comma-separated, default
# the committed comparison's 22 simulators), JOBS (workers, default 8), MPS (1: run the workers'
# kernels side by side through NVIDIA MPS when the image has it), CHECK (1: run the precision
# check after the comparison, if time is left), BUDGET (seconds the whole call may take, install
# included; the comparison is stopped in time to pack what finished).
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 || { echo "editable install failed"; exit 1; }
export NONVON_DATA=$PWD/.device/data PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,power.draw,clocks.sm --format=csv
  python3 -c "import torch, qiskit, snntorch, torchhd, jax; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'qiskit', qiskit.__version__, 'jax', jax.__version__)"
  echo "install: $(( $(date +%s) - t0 )) s"; } > $OUT/env.log 2>&1
if [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null; then
  # MPS lets kernels of several worker processes run on the GPU at once instead of taking
  # turns; most cells here are launch-bound (docs/results/cell-times-h200)
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
  nvidia-cuda-mps-control -d && echo "MPS daemon started" >> $OUT/env.log
  # an MPS client that cannot connect fails every cell: check one first, else go without
  if ! timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()" >> $OUT/env.log 2>&1; then
    echo quit | nvidia-cuda-mps-control; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    MPS=0; echo "MPS client check failed: running without MPS" >> $OUT/env.log
  fi
fi
# brainscales2 and truenorth cannot hold 784 inputs; the analog CNNs are not in the comparison
SIMS=${SIMS:-analog-pcm,analog-rram,brainscales2-ttfs,gpu-cnn,gpu-cnn-bf16,gpu-cnn-int8,gpu-mlp,gpu-mlp-bf16,gpu-mlp-int8,hdc-idlevel,hdc-lowdim,hdc-projection,loihi,onn-diffractive,onn-mzi,snn-cnn,snn-converted,snn-mlp,snn-ttfs,spinnaker2,vqc,vqc-classical-twin}
rm -rf results/mnist-comparison && mkdir -p results
left=$(( ${BUDGET:-575} - ($(date +%s) - t0) - 20 ))
timeout -k 5 $left python3 benchmarks/compare_wall.py --task mnist,fashion-mnist --sim $SIMS \
  --jobs ${JOBS:-8} --out results/mnist-comparison > $OUT/cmp.log 2>&1
echo "rc=$? compare+install wall=$(( $(date +%s) - t0 )) s" >> $OUT/cmp.log
[ "${MPS:-1}" = 1 ] && echo quit | nvidia-cuda-mps-control 2>/dev/null
left=$(( ${BUDGET:-575} - ($(date +%s) - t0) - 20 ))
if [ "${CHECK:-1}" = 1 ] && [ $left -ge 40 ]; then  # the precision check, in what time is left
  timeout $(( left < 80 ? left : 80 )) python3 docs/results/gpu-precision-check/check.py > $OUT/gpu_check.log 2>&1
  echo "check rc=$? at $(( $(date +%s) - t0 )) s" >> $OUT/gpu_check.log
fi
# the training memo is left behind (the cells hold their weights); files over 16 MiB, or more than 64 MiB in
# all do not come back
tar --sort=name --exclude=mnist-comparison/cache/training -cf - -C results mnist-comparison | gzip -n \
  | split -b 15M -d - $OUT/cmp.tgz.part
tail -45 $OUT/cmp.log; cat $OUT/env.log; tail -3 $OUT/gpu_check.log 2>/dev/null
