"""Paths to the test fixtures shared by several test folders."""
from pathlib import Path

GRAPH_FIXTURE = Path(__file__).resolve().parent.parent / "schema" / "data"
