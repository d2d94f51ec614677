#!/bin/sh
# prebuildify calls "$PREBUILD_NODE_GYP rebuild --target=<node> --devdir=... [--arch=...] --release".
# cmake-js reads --target as a CMake target, so keep only what it understands (ecosystem.md section 2).
set -e
args="--config=Release"
for a in "$@"; do
  case "$a" in
    --debug) args="--config=Debug" ;;
    --arch=*) args="$args $a" ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/node_modules/.bin/cmake-js" rebuild $args
