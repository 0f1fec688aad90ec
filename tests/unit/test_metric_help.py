"""An enumeration's `_code` gauge says what its codes mean, in the exposition as in the metric
reference, and its state set says how to read it (the `_code` HELP once claimed "1 for the current
state")."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from servicekit.metrics import ENUM, Metric, build_families
from session_store.smart_metrics import REFERENCE, STATUS


def help_lines(families) -> dict[str, str]:
    registry = CollectorRegistry()
    registry.register(type("C", (), {"collect": lambda self: families, "describe": lambda self: []})())
    text = generate_latest(registry).decode()
    return {line.split()[2]: line.split(" ", 3)[3] for line in text.splitlines() if line.startswith("# HELP")}


def test_the_code_gauge_lists_its_codes_and_the_state_set_says_how_to_read_it() -> None:
    row = Metric("demo_state", ENUM, "State of the demo.", lambda record: 2, states={0: "idle", 2: "busy"})
    found = help_lines(build_families([row], ("unit",), [(("u",), None)]))
    assert found["demo_state_code"] == "State of the demo. Numeric code: 0=idle, 2=busy; others exported as is."
    assert found["demo_state"].startswith("State of the demo. 1 for the current state")
    assert {(name, text) for name, _, _, text in row.reference(("unit",))} == set(found.items())


def test_smart_charging_status_code_help_names_every_status() -> None:
    [code_help] = [text for name, _, _, text in REFERENCE if name == "smart_charging_status_code"]
    assert all(f"{code}={state}" in code_help for code, state in STATUS.items())
    assert "1 for the current state" not in code_help
