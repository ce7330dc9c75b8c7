"""What a lake load says when data files another process wrote (a Ray worker, through the
load's file sink) cannot be committed: the same three refusals for Iceberg and Delta."""

from __future__ import annotations

from shiftsync.errors import DestinationError

_BUG: str = "this is a bug in shiftsync: report it"


def no_writers_offered(target: str) -> DestinationError:
    return DestinationError(
        f"table {target!r}: data files were added to a load that offered no writers", fix=_BUG
    )


def not_this_loads(target: str, path: str, folder: str) -> DestinationError:
    return DestinationError(
        f"table {target!r}: the written data file {path!r} is not one of this load's files "
        f"in {folder}",
        fix=_BUG,
    )


def not_as_written(
    destination: str, target: str, path: str, size: int, *, place: str
) -> DestinationError:
    """The driver does not see a worker's file as the worker wrote it: `place` is what the
    destination calls its storage (a root, a warehouse)."""
    return DestinationError(
        f"{destination}, table {target!r}: the data file {path} a Ray worker wrote ({size} "
        "bytes) is not there as written, seen from the driver",
        fix=f"give the destination a {place} every node of the cluster sees at the same path "
        "(a shared mount), or run the sync without `executor: ray`",
    )


__all__ = ["no_writers_offered", "not_as_written", "not_this_loads"]
