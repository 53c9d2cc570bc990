@echo off
rem Installs the daily duckbak backup task: runs "duckbak schedule install" with all arguments given,
rem using the duckbak.exe beside this script, else the one on PATH.
setlocal
set "DUCKBAK=%~dp0duckbak.exe"
if exist "%DUCKBAK%" goto run
set "DUCKBAK="
for %%I in (duckbak.exe) do set "DUCKBAK=%%~$PATH:I"
if not defined DUCKBAK (
  echo %~nx0: duckbak.exe not found beside this script or on PATH 1>&2
  exit /b 127
)
:run
"%DUCKBAK%" schedule install %*
exit /b %ERRORLEVEL%
