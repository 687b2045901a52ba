"""Project quotas, the pure part: what a change would take over, how many replicas fit."""
from berth.workloads.quotas import Quota, Usage, excess, most_replicas, of_service

MiB = 2**20


def test_only_what_grows_is_held_against_a_quota():
    quota = Quota(cpus=2.0, memory=1024 * MiB, replicas=10)
    used = Usage(1.5, 512 * MiB, 6)
    assert excess(quota, used, of_service(2, 0.25, 128 * MiB)) == []  # 2.0 cores: exactly full
    assert excess(quota, used, of_service(3, 0.25, 128 * MiB)) == [
        "CPU 2.25 of 2 cores (now 1.5)"]
    assert excess(quota, used, of_service(5, 0.0, 128 * MiB)) == [
        "memory 1152 of 1024 MiB (now 512)", "replicas 11 of 10 (now 6)"]
    # Over a quota lowered since, a change that shrinks is still allowed.
    assert excess(Quota(cpus=1.0), used, of_service(-1, 0.5, 0)) == []
    assert excess(Quota(), used, of_service(100, 8, 2**40)) == []  # no quota, no cap


def test_the_most_replicas_one_service_may_have():
    quota = Quota(cpus=1.0, memory=512 * MiB, replicas=20)
    others = Usage(0.4, 128 * MiB, 2)
    assert most_replicas(quota, others, 0.1, 32 * MiB) == 6  # CPU: 0.6 / 0.1
    assert most_replicas(quota, others, 0.01, 128 * MiB) == 3  # memory: 384 / 128
    assert most_replicas(Quota(replicas=3), Usage(replicas=5), 0.1, MiB) == 0
    assert most_replicas(Quota(), others, 0.1, MiB) is None
