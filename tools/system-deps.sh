#!/usr/bin/env bash
# Debian/Ubuntu packages that Qt (PyQt6) and the virtual display (Xvfb) need
# for napari's GUI tests, plus venv support for Python. Runs apt-get as root,
# or through sudo.
set -euo pipefail
packages=(
  python3-venv xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglx-mesa0
  libegl-mesa0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
  libxcb-xfixes0 libxcb-cursor0 libfontconfig1 libdbus-1-3
)
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "system packages installed: ${packages[*]}"
