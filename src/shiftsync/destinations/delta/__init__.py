"""The Delta Lake destination (deltalake, delta-rs): see destination.py."""

from shiftsync.destinations.delta.destination import DeltaDestination, DeltaLoad
from shiftsync.destinations.delta.storage import DeltaSettings

__all__ = ["DeltaDestination", "DeltaLoad", "DeltaSettings"]
