"""`hftel demo`: a simulated trading engine, instrumented through hftel's public API, with the
exporter alongside. runner.py starts the processes, engine.py is the simulation, scenarios.py the
failures it can inject. (Nothing is imported here, so the CLI can read the scenario names cheaply.)"""
