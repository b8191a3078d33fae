"""Namespace under which task folders are imported: `tasks/spirals` becomes `mixsuite.plugins.spirals`.

The folders' parents are kept in $MIXSUITE_TASK_PATHS, so spawned DataLoader workers and DDP ranks, which
inherit the environment, re-import a task under the same stable name.
"""
import os

__path__ = list(__path__) + [p for p in os.environ.get("MIXSUITE_TASK_PATHS", "").split(os.pathsep) if p]
