"""The data model: desired state (projects, hosts, services) and what was observed."""
from berth.models.identity import ApiToken, User
from berth.models.projects import Membership, Project, Repository, RobotAccount, Tag
from berth.models.registries import Registry
from berth.models.inventory import Cluster, Host, Pool
from berth.models.services import (
    Application,
    AutoscalingPolicy,
    ContainerInstance,
    Release,
    Service,
    ServiceDependency,
    ServiceRevision,
)
from berth.models.events import Event

__all__ = [
    "ApiToken", "Application", "AutoscalingPolicy", "Cluster", "ContainerInstance", "Event",
    "Host", "Membership", "Pool", "Project", "Registry", "Release", "Repository",
    "RobotAccount", "Service", "ServiceDependency", "ServiceRevision", "Tag", "User",
]
