#!/bin/bash
# Full MNIST + Fashion-MNIST comparison on the device machine; resumes from .device/cmp.tgz if carried.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 || { echo "editable install failed"; exit 1; }
export NONVON_DATA=$PWD/.device/data PYTHONUNBUFFERED=1
mkdir -p results
[ -f .device/cmp.tgz ] && tar xzf .device/cmp.tgz -C results
python3 -c "import qiskit, snntorch, torchhd, rich, matplotlib, scipy, jax, torch; print(jax.devices(), torch.cuda.get_device_name(0), qiskit.__version__)"
nvidia-smi --query-gpu=name,power.draw,clocks.sm --format=csv
start=$(date +%s)
# the cells that read NVML first, alone on the GPU; then the rest in parallel
timeout -k 10 ${GPU_LIMIT:-150} python3 studies/mnist_comparison.py --sim gpu-mlp,gpu-cnn --out results/mnist-comparison --no-progress > $OUT/gpu.log 2>&1
echo "gpu rc=$? wall=$(( $(date +%s) - start ))s" >> $OUT/gpu.log
timeout -k 10 $(( ${LIMIT:-520} - $(date +%s) + start )) python3 studies/mnist_comparison.py --jobs ${JOBS:-2} --out results/mnist-comparison --no-progress "$@" > $OUT/cmp.log 2>&1
echo "rc=$? wall=$(( $(date +%s) - start ))s" >> $OUT/cmp.log
pkill -f mnist_comparison; sleep 1
tar czf $OUT/cmp.tgz -C results mnist-comparison
ls -la $OUT; tail -30 $OUT/cmp.log
