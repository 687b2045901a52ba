"""The data model: desired state (projects, hosts, services) and what was observed."""
from berth.models.identity import ApiToken, User
from berth.models.projects import Membership, Project, Repository, RobotAccount, Tag
from berth.models.registries import (
    MirrorTag,
    Registry,
    ReplicationPolicy,
    ReplicationPolicyMirror,
    SyncJob,
)
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
from berth.models.alerts import AlertNotification, AlertThreshold  # noqa: F401

__all__ = [
    "ApiToken", "Application", "AutoscalingPolicy", "Cluster", "ContainerInstance", "Event",
    "Host", "Membership", "MirrorTag", "Pool", "Project", "Registry", "Release",
    "ReplicationPolicy", "ReplicationPolicyMirror", "Repository", "RobotAccount", "Service",
    "ServiceDependency", "ServiceRevision", "SyncJob", "Tag", "User",
]
