"""The HTTP app Label Studio talks to (Flask): protocol and metrics blueprints, auth, the predictor.

No ML training happens here: webhooks only ask the work queue and answer at once.
"""
