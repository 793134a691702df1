"""MLflow: one run per training round in one experiment per Label Studio project, and a parent run
per simulated (configuration, seed) with a nested run per round.

Tracking never fails a round: any MLflow error is logged as a warning and the work goes on. Only
public settings are recorded (no API keys or passwords), and the tracking URI itself is never
logged (it may carry credentials).
"""
