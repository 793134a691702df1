"""The label configs this backend ships: paste one into Label Studio's Labeling Interface (Code).

In the wheel this folder is the package ``backend.resources.label_configs`` (setup.py), read with
``backend.resources.label_config(name)``.
"""
