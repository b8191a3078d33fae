"""Imported first by every bench script: the checkout's own mixsuite importable. A script runs as
`python bench/NAME.py`, which puts bench/ on sys.path, not the checkout (the tests put bench/ there too)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
