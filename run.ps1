# Serve lollms_server with the configuration in lollms_configs\ (or $env:LOLLMS_CONFIG_DIR).
# Same as run.sh; extra arguments go to `lollms-server serve` (e.g. .\run.ps1 --port 9602).
$ErrorActionPreference = "Stop"
Set-Location -LiteralPath $PSScriptRoot
$IsWin = [System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT
$Server = if ($IsWin) { Join-Path (Join-Path "venv" "Scripts") "lollms-server.exe" } else { Join-Path (Join-Path "venv" "bin") "lollms-server" }
if (-not (Test-Path -LiteralPath $Server)) {
    Write-Error "not installed yet: run .\install.ps1 first"
    exit 1
}
& $Server serve @args
exit $LASTEXITCODE
