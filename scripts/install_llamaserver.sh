#!/usr/bin/env bash
# Build llama.cpp's own C++ server (`llama-server`: parallel slots with continuous batching) from the
# llama.cpp tree vendored in the pinned llama-cpp-python source package, so the server engine runs the
# same llama.cpp code as the in-process wheel. Only the source package is downloaded (from the package
# registry); the build is portable (-DGGML_NATIVE=OFF), static (one self-contained binary) and cached like
# the wheel: keyed by version and flags, under the same cache root as scripts/install_llamacpp.sh.
# Idempotent and non-interactive. Prints the binary's path last. About 7 minutes on 2 cores.
#   LLAMA_CPP_PYTHON_VERSION  version of the source package (default: the pinned one)
#   LOLLMS_WHEEL_CACHE        cache root (default: $XDG_CACHE_HOME or ~/.cache, then lollms_server/wheels)
#   LLAMA_SERVER_BUILD_JOBS   parallel compile jobs (default: the number of CPUs)
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
# -DLLAMA_USE_PREBUILT_UI=OFF: never fetch the web UI assets from a model hub (the UI stays off).
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF
       -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON
       -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF)
CACHE_ROOT="${LOLLMS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lollms_server/wheels}"
# the folder name is the cache key; zoos/bindings/llamacpp_binding/server_binary.py looks it up
BIN_DIR="$CACHE_ROOT/llama-server-${VERSION}-native-off-static"
BINARY="$BIN_DIR/llama-server"
PIP="${PIP:-python -m pip}"
JOBS="${LLAMA_SERVER_BUILD_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}"

if [ -x "$BINARY" ] && "$BINARY" --version >/dev/null 2>&1; then
  echo "llama-server $VERSION (portable static build) already built: $BINARY"
  exit 0
fi
for tool in cmake c++; do
  command -v "$tool" >/dev/null || { echo "llama-server not built: '$tool' is missing" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "[1/4] downloading the llama-cpp-python $VERSION source package..."
$PIP download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK"
echo "[2/4] unpacking..."
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
[ -f "$SRC/tools/server/server.cpp" ] || { echo "no llama.cpp server source in the package" >&2; exit 1; }
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
echo "[3/4] configuring (${FLAGS[*]})..."
cmake -S "$SRC" -B "$WORK/build" "${GENERATOR[@]}" "${FLAGS[@]}" >"$WORK/configure.log" 2>&1 \
  || { tail -30 "$WORK/configure.log" >&2; exit 1; }
echo "[4/4] compiling llama-server with $JOBS jobs (about 7 minutes on 2 cores)..."
start=$SECONDS
cmake --build "$WORK/build" --target llama-server -j "$JOBS" >"$WORK/build.log" 2>&1 &
build_pid=$!
while kill -0 "$build_pid" 2>/dev/null; do
  sleep 30
  kill -0 "$build_pid" 2>/dev/null && echo "  ... $((SECONDS - start)) s, $(grep -c '^\[' "$WORK/build.log" || true) steps"
done
wait "$build_pid" || { tail -30 "$WORK/build.log" >&2; exit 1; }
built="$WORK/build/bin/llama-server"
"$built" --version >/dev/null 2>&1 || { echo "the built llama-server does not run" >&2; exit 1; }
# publish atomically: a half-copied binary is never found by the binding
mkdir -p "$CACHE_ROOT"
staging="$(mktemp -d "$CACHE_ROOT/.llama-server.XXXXXX")"
cp "$built" "$staging/llama-server"
rm -rf "$BIN_DIR"
mv "$staging" "$BIN_DIR"
chmod 755 "$BIN_DIR"
echo "llama-server built in $((SECONDS - start)) s: $BINARY"
