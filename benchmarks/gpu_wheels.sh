#!/usr/bin/env bash
# The wheels a lent GPU machine lacks for kantai (its image has torch, transformers, tokenizers, rich,
# psutil, nvidia-ml-py, pytest and pytest-xdist; not textual and its helpers, textual-serve, zstandard or
# pytest-asyncio: /work/.library/device/KINDS.md). Downloaded here, into .whl (git ignores it), for the
# GPU machine's Python 3.12; gpu_session.sh installs them there from .whl with no network.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl \
  textual==8.2.8 platformdirs==4.14.9 mdit-py-plugins==0.7.0 linkify-it-py==2.2.0 uc-micro-py \
  textual-serve==1.1.3 aiohttp-jinja2==1.6 zstandard==0.25.0 pytest-asyncio==1.5.0
ls .whl
