"""Faults the stand-in injects: their kinds, the control endpoint, where they hit."""
