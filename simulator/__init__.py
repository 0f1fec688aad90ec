"""Upstream simulator: Wall Connector local API, Tessie (+ Fleet energy-site passthrough) and the
ComEd price feed, driven by YAML scenarios, with fault injection and a ground-truth endpoint.

Entry points: ``simulator.scenario.load_scenario``, ``simulator.app.SimulatorServer``,
``simulator.testing.simulate`` (tests) and the ``charging-sim`` command. See README.md here.
"""
