"""Grafana dashboards as code: `python -m grafana.generate` writes grafana/dashboards/*.json.

panels.py holds the shared defaults (datasources, units, thresholds, variables, the Infinity query),
boards.py one function per dashboard, generate.py the writer and `--check`.
"""
