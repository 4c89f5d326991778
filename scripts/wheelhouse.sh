#!/usr/bin/env bash
# Wheels of the locked dependencies for another machine (e.g. an offline GPU node that has torch):
#   scripts/wheelhouse.sh PYTHON PLATFORM OUT [NAME ...]
# PYTHON like 3.12, PLATFORM like manylinux_2_28_x86_64 (older manylinux tags are accepted too, as pip
# would there). Without NAMEs: every pin of requirements.lock except torch and SKIP (default: wandb decord,
# the large optional ones). Packages published only as sdists (antlr4-python3-runtime) are built here.
set -euo pipefail
python=$1; platform=$2; out=$3; shift 3
skip=" ${SKIP-wandb decord} "
lock="$(dirname "$0")/../requirements.lock"
arch=${platform##*_2_*_}; arch=${platform#manylinux_2_*_}
glibc=$(echo "$platform" | sed -n 's/^manylinux_2_\([0-9]*\)_.*/\1/p')
tags=(--platform "$platform")
if [ -n "$glibc" ]; then
  for ((m = glibc - 1; m >= 5; m--)); do tags+=(--platform "manylinux_2_${m}_${arch}"); done
  tags+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}")
fi
mkdir -p "$out"
if [ $# -gt 0 ]; then
  pins=(); for name in "$@"; do pins+=("$(grep -iE "^${name}==" "$lock" || echo "$name")"); done
else
  mapfile -t pins < <(grep -vE '^(#|$)' "$lock")
fi
built=0; fetched=0
for pin in "${pins[@]}"; do
  name=${pin%%==*}
  case "$skip" in *" $name "*) continue ;; esac
  if python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python" --implementation cp \
       "${tags[@]}" -d "$out" "$pin" 2>/dev/null; then
    fetched=$((fetched + 1))
  else  # no wheel for that Python/platform: build one from the sdist (pure-Python packages)
    python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$out" "$pin"
    built=$((built + 1))
  fi
done
echo "wheelhouse $out: $fetched downloaded, $built built ($(du -sh "$out" | cut -f1))"
