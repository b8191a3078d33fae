"""Packaging beyond pyproject.toml: which packages the wheel holds.

The wheel holds `mixsuite` and the built-in tasks with their named configs, laid out as in a checkout:
`tasks/<name>/` installs as the package `mixsuite_tasks.<name>` and `configs/<name>/*.yaml` as the data of
`mixsuite_configs`, side by side in site-packages, so `mixsuite run fewshot -c smoke` finds both from any
folder after `pip install .` (mixsuite/task.py). Every sub-package is found here, so a new task or a new folder
of mixsuite needs no edit.
"""
from setuptools import find_packages, setup

DATA = ["*.yaml", "*.yml", "*.json", "*.txt", "*.tsv"]

tasks = [f"mixsuite_tasks.{p}" for p in find_packages("tasks")]
setup(
    packages=find_packages(include=["mixsuite", "mixsuite.*"]) + ["mixsuite_tasks", "mixsuite_configs"] + tasks,
    package_dir={"mixsuite_tasks": "tasks", "mixsuite_configs": "configs"},
    package_data={"mixsuite_configs": ["*/*.yaml"], **{p: DATA for p in tasks}},
)
