#!/bin/bash
# Prepare, on the development machine (run from the repository root), what run_on_device.sh
# needs on the device machine, which has no network: wheels of the packages its image lacks,
# the IDX files and the cells computed so far. Then call the device tool with
# carry [".device", ".whl"] and the command `bash docs/results/mnist-comparison/run_on_device.sh`.
set -euo pipefail
: "${NONVON_DATA:?set NONVON_DATA to the folder holding mnist/}"
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl .device/data/mnist .device/data/fashion-mnist
for p in qiskit==2.6.2 rustworkx==0.18.1 stevedore==5.10.0 dill==0.4.1 snntorch==1.0.0 torch-hd==5.8.4; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$p"
done
cp "$NONVON_DATA"/mnist/*.gz .device/data/mnist/
cp /usr/share/datasets/fashion-mnist/*.gz .device/data/fashion-mnist/
tmp=$(mktemp -d)
mkdir -p "$tmp/mnist-comparison" && cp -r docs/results/mnist-comparison/cache "$tmp/mnist-comparison/"
tar czf .device/cmp.tgz -C "$tmp" mnist-comparison && rm -rf "$tmp"
du -sh .whl .device
