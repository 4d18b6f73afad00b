#!/usr/bin/env bash
# System packages the test suite uses (Debian bookworm), installed only when missing:
#   python3-onnx          the reference ONNX checker (onnx.checker): an independent check of the models we write
#   libonnx-testdata      ONNX's operator test cases (Momentum reference data for the optimizer tests)
#   mesa-vulkan-drivers   Mesa's software Vulkan (lavapipe), from bookworm-backports: lets onnxruntime-node's
#   libvulkan1            WebGPU provider run on a machine without a GPU (bookworm's own Mesa 22 is too old)
#   python3-torch         PyTorch 1.13 (CPU): an independent reference for gradients of whole models in the tests
#   python3-nltk          NLTK 3.8: the reference corpus BLEU the caption-metric tests compare with
#   chromium              the browser the web-demo tests drive with playwright-core (never `playwright install`)
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install system packages" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Mesa from backports: lavapipe in Mesa 22 lacks features Dawn (WebGPU) needs.
mesa_ok() {
  installed mesa-vulkan-drivers && installed libvulkan1 \
    && dpkg --compare-versions "$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)" ge 24
}

need_update=0
missing=()
installed python3-onnx || missing+=(python3-onnx)
installed libonnx-testdata || missing+=(libonnx-testdata)
installed chromium || missing+=(chromium)
installed python3-torch || missing+=(python3-torch)
installed python3-nltk || missing+=(python3-nltk)
if ! mesa_ok; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "adding the bookworm-backports apt source"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $SUDO tee /etc/apt/sources.list.d/deepvision-backports.sources >/dev/null
  fi
  need_update=1
fi
if [ ${#missing[@]} -eq 0 ] && [ $need_update -eq 0 ]; then
  echo "system packages present: python3-onnx, libonnx-testdata, python3-torch, python3-nltk, chromium, mesa-vulkan-drivers (backports), libvulkan1"
  exit 0
fi

$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! mesa_ok; then
  echo "installing mesa-vulkan-drivers and libvulkan1 from bookworm-backports"
  $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1
fi
