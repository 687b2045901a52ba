"""The filter registry and the default order: cheap static checks first, most selective early."""
from __future__ import annotations

from scheduler.placement.filters import (
    admin_state, cluster_pool, hardware, labels, liveness, ports, resource_fit, spread,
)
from scheduler.placement.framework import FilterPlugin

FILTERS: dict[str, FilterPlugin] = {
    module.PLUGIN.name: module.PLUGIN
    for module in (liveness, admin_state, cluster_pool, hardware, labels, resource_fit, ports, spread)
}
# A host is rejected by the first filter that fails, so this order decides the reason reported.
DEFAULT_FILTERS: tuple[str, ...] = (
    liveness.NAME, admin_state.NAME, cluster_pool.NAME, hardware.NAME, labels.NAME,
    resource_fit.NAME, ports.NAME, spread.NAME,
)
