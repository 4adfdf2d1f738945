"""A Ray cluster of two nodes on this machine for the tests and the benchmarks, made with Ray's
own multi-node test utility (ray.cluster_utils.Cluster): a head with one CPU and a second node
with one CPU and the resource `node_b`, so that a run can tell where it ran."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def two_node_ray() -> Iterator[tuple[Any, Any]]:
    """Yields the cluster (its `address` is what hydra.launcher.ray.init.address takes) and its
    second node; shuts both down when the block ends. Within the block RAY_AUTH_MODE=disabled is
    set, as a local test cluster is started without a token, so that a sweep's process started
    meanwhile connects without one. Its GCS and raylets listen on the machine's address, not only
    on 127.0.0.1 (docs/guide/scaling.md)."""
    from ray.cluster_utils import Cluster

    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
        )
        node_b = cluster.add_node(num_cpus=1, resources={"node_b": 1})
        cluster.wait_for_nodes()
        yield cluster, node_b
    finally:
        if cluster is not None:
            cluster.shutdown()
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before
