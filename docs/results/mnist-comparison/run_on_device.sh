#!/bin/bash
# Full MNIST + Fashion-MNIST comparison on the device machine; resumes from .device/cmp.tgz if carried.
# Extra arguments go to the study (e.g. --task mnist). GPU_LIMIT=0: the NVML cells run inside the
# study, after its workers; JOBS: its workers; LIMIT: seconds the study may run; TESTS=1: see below.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 || { echo "editable install failed"; exit 1; }
export NONVON_DATA=$PWD/.device/data PYTHONUNBUFFERED=1
# TESTS=1: the CUDA tests first (graphs, Triton kernels, counting and onn-mzi on the GPU)
if [ "${TESTS:-0}" = 1 ]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider -k "cuda or triton or gpu" tests/test_spiking_ttfs.py \
    tests/test_spiking_ttfs_training.py tests/test_spiking_lif.py tests/test_spiking_sim.py \
    tests/test_optical_simulators.py 2>&1 | tail -5 > $OUT/pytest.log
fi
mkdir -p results
[ -f .device/cmp.tgz ] && tar xzf .device/cmp.tgz -C results
python3 -c "import qiskit, snntorch, torchhd, rich, matplotlib, scipy, jax, torch; print(jax.devices(), torch.cuda.get_device_name(0), qiskit.__version__)"
nvidia-smi --query-gpu=name,power.draw,clocks.sm --format=csv
start=$(date +%s)
# the cells that read NVML first, alone on the GPU (GPU_LIMIT=0: leave them to the study,
# which runs them alone after its parallel workers); then the rest in parallel
if [ "${GPU_LIMIT:-150}" != 0 ]; then
  timeout -k 10 ${GPU_LIMIT:-150} python3 studies/mnist_comparison.py --sim gpu-mlp,gpu-cnn --out results/mnist-comparison --no-progress > $OUT/gpu.log 2>&1
  echo "gpu rc=$? wall=$(( $(date +%s) - start ))s" >> $OUT/gpu.log
fi
# each line stamped with the seconds since the start, to show when each cell finished
timeout -k 10 $(( ${LIMIT:-520} - $(date +%s) + start )) python3 studies/mnist_comparison.py --jobs ${JOBS:-2} --out results/mnist-comparison --no-progress "$@" 2>&1 \
  | while IFS= read -r line; do echo "[$(( $(date +%s) - start ))s] $line"; done > $OUT/cmp.log
echo "rc=${PIPESTATUS[0]} wall=$(( $(date +%s) - start ))s" >> $OUT/cmp.log
pkill -f mnist_comparison; sleep 1
tar czf $OUT/cmp.tgz -C results mnist-comparison
ls -la $OUT; tail -30 $OUT/cmp.log
