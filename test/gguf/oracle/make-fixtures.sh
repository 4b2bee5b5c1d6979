#!/bin/sh
# Regenerates test/gguf/fixtures/ggml-oracle.bin from node-llama-cpp's bundled libggml-base.so.
set -eu
cd "$(dirname "$0")/../../.."
lib=$(dirname "$(ls node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so | head -1)")
gcc -O1 -o /tmp/ggml-oracle test/gguf/oracle/ggml-oracle.c -L"$lib" -l:libggml-base.so -Wl,-rpath,"$(pwd)/$lib" -lm
/tmp/ggml-oracle test/gguf/fixtures/ggml-oracle.bin
echo "wrote test/gguf/fixtures/ggml-oracle.bin"
