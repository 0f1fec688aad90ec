#!/usr/bin/env bash
# Idempotent set-up used by `make up` and `make test`: Debian packages, a venv, this package.
# As root, missing Debian packages are installed; otherwise the exact command to run is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
missing=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
{ command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1; } \
  && command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# `setup.sh --test` (make test): the browser tests drive Debian's chromium through its chromedriver.
if [ "${1:-}" = "--test" ]; then
  { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } \
    || missing+=(chromium chromium-driver)
  # the report tests render the PDFs to pages and text (pdftoppm, pdfinfo, pdftotext)
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
fi
# VictoriaMetrics (vmagent, vmalert): the tests run the suite on it too; `make up METRICS_ENGINE=victoriametrics`
# (or prometheus.engine: victoriametrics in the configuration, which then says what to install) runs it.
if [ "${1:-}" = "--test" ] || [ "${METRICS_ENGINE:-}" = victoriametrics ]; then
  { command -v victoria-metrics >/dev/null 2>&1 && command -v vmagent >/dev/null 2>&1 \
    && command -v vmalert >/dev/null 2>&1; } || missing+=(victoria-metrics)
fi
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: no node-exporter or other services started on shared ports.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages. Run, then retry:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the suite and its test tools into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # setuptools says "Editable installation ... be careful with folders named like your package" at every
  # editable install, even with -q: nothing to act on here, so it is filtered.
  PYTHONWARNINGS='ignore:Editable installation' "$VENV/bin/python" -m pip install -q -e '.[test]'
  touch "$stamp"
fi
