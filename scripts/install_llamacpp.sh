#!/usr/bin/env bash
# Install llama-cpp-python built portable (-DGGML_NATIVE=OFF): the native build crashes on CPUs that
# advertise AMX without usable AMX tiles. The wheel is built once into our own cache folder, keyed by
# version and flags, because pip's own wheel cache ignores CMAKE_ARGS and would hand back a native build.
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
FLAGS="-DGGML_NATIVE=OFF"
CACHE_ROOT="${LOLLMS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lollms_server/wheels}"
WHEEL_DIR="$CACHE_ROOT/llama-cpp-python-${VERSION}-native-off"
PIP="${PIP:-python -m pip}"

if python - "$VERSION" <<'PY' 2>/dev/null; then
import sys, importlib.metadata as m
sys.exit(0 if m.version("llama-cpp-python") == sys.argv[1] and m.distribution("llama-cpp-python").read_text("lollms_native_off") else 1)
PY
  echo "llama-cpp-python $VERSION (portable build) already installed"
  exit 0
fi
shopt -s nullglob
wheels=("$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "Building llama-cpp-python $VERSION with CMAKE_ARGS=$FLAGS (about 4 minutes on 2 cores)..."
  mkdir -p "$WHEEL_DIR"
  CMAKE_ARGS="$FLAGS" $PIP wheel --no-cache-dir --no-deps "llama-cpp-python==$VERSION" -w "$WHEEL_DIR"
  wheels=("$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl)
fi
$PIP install --force-reinstall --no-deps "${wheels[0]}"
$PIP install "numpy>=1.20" "typing-extensions>=4.5" "diskcache>=5.6.1" "jinja2>=2.11.3"
# mark this install as the portable build so the next run can skip it
python - <<'PY'
import importlib.metadata as m, pathlib
d = m.distribution("llama-cpp-python")
pathlib.Path(d._path, "lollms_native_off").write_text("-DGGML_NATIVE=OFF\n")
PY
