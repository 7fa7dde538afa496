"""hftel's failure drills: the demo engine, the exporter, a real Prometheus with the project's rules and
a real Alertmanager with its routing, a fault injected and the alert, its notifications and the audit
trail checked (`hftel drill`). See docs/drills/README.md."""
