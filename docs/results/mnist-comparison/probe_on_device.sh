#!/bin/bash
# Before the one-call run (run_on_device.sh): on the device machine, the CUDA tests of the
# code the run depends on, then single cells alone on full MNIST, timed (issue #23's plan).
# Same carry and preparation as run_on_device.sh. Environment: CELLS (simulators timed one
# by one, default "onn-mzi analog-pcm"), CELL_LIMIT (seconds each may take, default 150).
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 || { echo "editable install failed"; exit 1; }
export NONVON_DATA=$PWD/.device/data PYTHONUNBUFFERED=1
echo "install: $(( $(date +%s) - t0 )) s" | tee $OUT/probe.log
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_optical_mzi.py tests/test_analog.py \
  tests/test_analog_toolkit.py tests/test_gpu_baseline.py -k "cuda or graph or gpu or nvml" 2>&1 | tail -15 >> $OUT/probe.log
echo "tests done at $(( $(date +%s) - t0 )) s" >> $OUT/probe.log
for sim in ${CELLS:-onn-mzi analog-pcm}; do
  timeout ${CELL_LIMIT:-150} python3 benchmarks/compare_wall.py --task mnist --sim $sim 2>&1 | grep -v "^\[.*skipping" | tail -4 >> $OUT/probe.log
  echo "$sim: rc=${PIPESTATUS[0]} at $(( $(date +%s) - t0 )) s" >> $OUT/probe.log
done
cat $OUT/probe.log
