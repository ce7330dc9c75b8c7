"""One Data API rate limit for a whole Ray cluster: a named actor holding the token buckets.

AWS counts the Data API quotas per account and region. The machine-wide file bucket
(redshift/rate_limit.py) is shared by the processes of one machine only, so a cluster of N
machines would call N times the quota. Under `executor: ray` the driver and every worker take
their tokens from one actor instead (`SharedBuckets` run by Ray), named after the account, the
region, the endpoint and the rates, and detached, so that two drivers on the same cluster
share it and a driver that ends does not pull it from under the other. Each caller sleeps off
its wait in its own process; the actor only does arithmetic.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol, cast

from shiftsync.errors import SourceError
from shiftsync.redshift.rate_limit import SharedBuckets

if TYPE_CHECKING:
    from ray import ObjectRef

NAMESPACE: Final = "shiftsync"


class RemoteMethod(Protocol):
    def remote(self, operation: str) -> ObjectRef[object]: ...


class BucketsActor(Protocol):
    """The actor's handle as the callers use it (Ray's stubs do not type actor methods)."""

    take: RemoteMethod
    throttled: RemoteMethod


def actor_name(account: str, region: str, rates: Mapping[str, float], endpoint: str | None) -> str:
    """The actor of an account, a region and its rates (and of a custom Data API endpoint)."""
    described = f"{endpoint or ''}|{sorted(rates.items())}"
    digest = hashlib.sha256(described.encode()).hexdigest()[:12]
    return f"rate-limit-{account}-{region}-{digest}"


def cluster_buckets(
    account: str, region: str, rates: Mapping[str, float], endpoint: str | None
) -> BucketsActor:
    """The cluster's actor for these quotas, started if no driver has started it yet."""
    import ray

    actor_class = ray.remote(SharedBuckets)
    handle = actor_class.options(
        name=actor_name(account, region, rates, endpoint),
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        num_cpus=0,
    ).remote(dict(rates))
    return cast(BucketsActor, handle)


class ActorLimiter:
    """The `Limiter` of a driver or worker under `executor: ray`: asks the actor, sleeps here."""

    def __init__(self, actor: BucketsActor, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.actor = actor
        self.sleep = sleep

    def acquire(self, operation: str) -> float:
        import ray

        try:
            wait = float(cast(float, ray.get(self.actor.take.remote(operation))))
        except ray.exceptions.RayActorError as error:
            raise SourceError(
                "the Ray cluster's Data API rate limit (a shiftsync actor) is gone",
                fix="run again; if it keeps failing, restart the cluster (`ray stop`, then "
                "`ray start`)",
            ) from error
        if wait > 0:
            self.sleep(wait)
        return wait

    def throttled(self, operation: str) -> None:
        # Fire and forget: the next `acquire` is ordered after it by the actor's queue.
        self.actor.throttled.remote(operation)


__all__ = ["NAMESPACE", "ActorLimiter", "BucketsActor", "actor_name", "cluster_buckets"]
