"""The scorer registry."""
from __future__ import annotations

from scheduler.placement.framework import ScorerPlugin
from scheduler.placement.scorers import idc_balance, image_locality, least_allocated, most_allocated

SCORERS: dict[str, ScorerPlugin] = {
    module.PLUGIN.name: module.PLUGIN
    for module in (least_allocated, most_allocated, image_locality, idc_balance)
}
