"""Make the collection importable as ansible_collections.slm.edge (repo root is the collection)."""

import sys
from pathlib import Path

COLLECTIONS = str(Path(__file__).resolve().parents[2] / ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
