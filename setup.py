"""What pyproject.toml cannot say: the wheel's package `backend.resources.label_configs` is the
top-level folder `label_config/` (the forms a lead pastes into Label Studio live where they look),
beside every package under `backend/`. The rest of the metadata is in pyproject.toml."""

from setuptools import find_packages, setup

FORMS = "backend.resources.label_configs"

setup(
    packages=[*find_packages(include=["backend*"]), FORMS],
    package_dir={FORMS: "label_config"},
)
