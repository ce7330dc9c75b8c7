"""The Apache Iceberg destination (pyiceberg): see destination.py."""

from shiftsync.destinations.iceberg.catalog import IcebergSettings
from shiftsync.destinations.iceberg.destination import IcebergDestination, IcebergLoad

__all__ = ["IcebergDestination", "IcebergLoad", "IcebergSettings"]
