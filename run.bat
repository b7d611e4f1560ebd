@echo off
rem Serve lollms_server with the configuration in lollms_configs\ (or %LOLLMS_CONFIG_DIR%). Same as run.sh;
rem extra arguments go to "lollms-server serve" (e.g. run.bat --port 9602).
setlocal
cd /d "%~dp0"
if not exist "venv\Scripts\lollms-server.exe" (
  echo not installed yet: run install.bat first 1>&2
  exit /b 1
)
venv\Scripts\lollms-server.exe serve %*
exit /b %ERRORLEVEL%
