"""The mirror copy engine (registry_sync.copy) against real registries: Debian `docker-registry`
(distribution 2.8) processes started here, on 127.0.0.1 free ports, without auth (they ignore
the Authorization header), stopped in teardown.

Content is pushed over the API by the tests themselves: random-byte layers, a config blob and a
schema2 manifest per image, an OCI index with two children, a layer shared by two repositories.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time

import pytest
import requests

from registry_sync.client import HTTPStatusError, SyncClient
from registry_sync.copy import Cancelled, CorruptTarget, copy_tag
from tests.support import REPOSITORY, require_parts, system_program

sys.path.insert(0, str(REPOSITORY / "scripts"))
from testbed.ports import free_port  # noqa: E402
from testbed.processes import terminate  # noqa: E402
from testbed.registries import Registry, spawn_registry, wait_registry  # noqa: E402

SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG = "application/vnd.docker.container.image.v1+json"
TOKEN = lambda access: "x"  # noqa: E731 - registries without auth ignore it
START_TIMEOUT_S = 30.0
MiB = 1 << 20


class Registries:
    def __init__(self, root, program):
        self.root, self.program, self.all = root, program, []

    def start(self, name: str, port: int | None = None) -> Registry:
        registry = Registry(name, self.root / f"reg-{name}", port or free_port())
        spawn_registry(registry, self.program)
        self.all.append(registry)
        wait_registry(registry, time.monotonic() + START_TIMEOUT_S)
        return registry

    def kill(self, registry: Registry) -> None:
        registry.proc.send(signal.SIGKILL, group=True)
        assert registry.proc.wait(10), f"{registry.name} outlived SIGKILL"

    def restart(self, registry: Registry) -> Registry:
        """Same port, same storage, same http secret (so upload state survives)."""
        spawn_registry(registry, self.program)
        wait_registry(registry, time.monotonic() + START_TIMEOUT_S)
        return registry

    def stop(self) -> None:
        terminate([(r.name, r.proc, signal.SIGTERM) for r in self.all], timeout=10)


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    program = system_program("docker-registry")
    require_parts([] if program else ["docker-registry"], "run scripts/install-system-deps.sh as root")
    regs = Registries(tmp_path_factory.mktemp("registry-copy"), program)
    try:
        regs.primary = regs.start("primary")
        yield regs
    finally:
        regs.stop()


@pytest.fixture
def source(registries) -> SyncClient:
    return SyncClient(registries.primary.url, TOKEN)


@pytest.fixture
def mirror(registries, request):
    """A fresh, empty target registry for one test."""
    registry = registries.start(f"mirror-{request.node.name[:40].replace('[', '-').strip(']')}")
    return registry, SyncClient(registry.url, TOKEN)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: SyncClient, repository: str, data: bytes) -> str:
    digest = digest_of(data)
    location = client.start_upload(repository)
    location = client.patch_chunk(repository, location, data, 0)
    client.finish_upload(repository, location, digest)
    return digest


def push_image(client: SyncClient, repository: str, tag: str | None, layers: list[bytes],
               media_type: str = SCHEMA2) -> tuple[str, bytes, list[str]]:
    """Pushes blobs, config and manifest; (manifest digest, manifest bytes, blob digests)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex(),
                         "rootfs": {"type": "layers",
                                    "diff_ids": [digest_of(layer) for layer in layers]}}).encode()
    layer_descs = [{"mediaType": LAYER, "digest": push_blob(client, repository, layer), "size": len(layer)}
                   for layer in layers]
    config_desc = {"mediaType": CONFIG, "digest": push_blob(client, repository, config), "size": len(config)}
    manifest = {"schemaVersion": 2, "mediaType": media_type, "config": config_desc, "layers": layer_descs}
    if media_type == OCI_MANIFEST:
        config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json"
        for layer in layer_descs:
            layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    body = json.dumps(manifest).encode()
    digest = client.put_manifest(repository, tag or digest_of(body), media_type, body)
    assert digest == digest_of(body)
    return digest, body, [config_desc["digest"], *(layer["digest"] for layer in layer_descs)]


def blob_data_path(registry: Registry, digest: str):
    hexa = digest.split(":", 1)[1]
    return registry.data_dir / "docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"


def get_blob_digest(client: SyncClient, repository: str, digest: str) -> str:
    sha = hashlib.sha256()
    for chunk in client.get_blob(repository, digest, MiB):
        sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def test_copy_gives_identical_digests_and_a_second_copy_sends_nothing(source, mirror):
    _, target = mirror
    digest, body, blobs = push_image(source, "copy/plain", "v1", [os.urandom(2 * MiB), os.urandom(MiB)])

    result = copy_tag(source, target, "copy/plain", "v1")

    assert result.digest == digest and not result.up_to_date
    assert target.head_manifest("copy/plain", "v1") == digest
    assert target.get_manifest("copy/plain", "v1")[2] == body  # the bytes unchanged
    for blob in blobs:
        assert get_blob_digest(target, "copy/plain", blob) == blob
    assert result.blobs_done == result.blobs_total == 3
    assert result.bytes_sent == result.bytes_total >= 3 * MiB

    again = copy_tag(source, target, "copy/plain", "v1")
    assert again.up_to_date and again.bytes_sent == 0 and again.blobs_done == 0
    verified = copy_tag(source, target, "copy/plain", "v1", verify_existing=True)
    assert verified.bytes_sent == 0 and verified.blobs_skipped == 3


def test_a_blob_shared_by_two_repositories_is_mounted_not_resent(source, mirror):
    _, target = mirror
    shared = os.urandom(3 * MiB)
    digest_a, _, _ = push_image(source, "shared/a", "v1", [shared, os.urandom(MiB // 2)])
    digest_b, _, _ = push_image(source, "shared/b", "v1", [shared, os.urandom(MiB // 2)])
    known: dict[str, str] = {}

    first = copy_tag(source, target, "shared/a", "v1", known_blobs=known)
    second = copy_tag(source, target, "shared/b", "v1", known_blobs=known)

    assert first.blobs_mounted == 0 and first.bytes_sent >= len(shared)
    assert second.blobs_mounted == 1
    assert second.bytes_sent < len(shared)  # only its own layer and config
    assert target.head_manifest("shared/a", "v1") == digest_a
    assert target.head_manifest("shared/b", "v1") == digest_b
    assert get_blob_digest(target, "shared/b", digest_of(shared)) == digest_of(shared)


def test_a_blob_shared_by_parallel_copies_is_sent_once(source, mirror):
    """Two tags copied at the same time, one known_blobs map: the shared layer goes over once."""
    _, target = mirror
    shared = os.urandom(8 * MiB)
    push_image(source, "race/a", "v1", [shared])
    push_image(source, "race/b", "v1", [shared])
    known: dict[str, str] = {}
    results, errors = {}, []

    def run(repo):
        try:
            results[repo] = copy_tag(source, target, repo, "v1", known_blobs=known)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(repo,)) for repo in ("race/a", "race/b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(results) == 2
    sent = sum(r.bytes_sent for r in results.values())
    assert len(shared) <= sent < 2 * len(shared)
    assert sum(r.blobs_mounted for r in results.values()) == 1


def test_verify_existing_replaces_a_blob_corrupted_on_the_target(source, mirror):
    registry, target = mirror
    layer = os.urandom(2 * MiB)
    digest, _, _ = push_image(source, "verify/app", "v1", [layer])
    copy_tag(source, target, "verify/app", "v1")
    path = blob_data_path(registry, digest_of(layer))
    assert path.exists()
    path.write_bytes(os.urandom(len(layer)))  # same size, wrong bytes
    assert get_blob_digest(target, "verify/app", digest_of(layer)) != digest_of(layer)

    # distribution 2.8 keeps a blob's data once it has it (an upload of content it already
    # stores is not written), so deleting and sending again cannot replace the bad bytes over
    # the API: the engine must say so rather than report a repair.
    with pytest.raises(CorruptTarget):
        copy_tag(source, target, "verify/app", "v1", verify_existing=True)
    assert get_blob_digest(target, "verify/app", digest_of(layer)) != digest_of(layer)

    path.unlink()  # what the operator (or the garbage collector) does with the bad copy
    result = copy_tag(source, target, "verify/app", "v1", verify_existing=True)

    assert result.bytes_sent >= len(layer)  # found missing, sent again
    assert get_blob_digest(target, "verify/app", digest_of(layer)) == digest_of(layer)
    assert target.head_manifest("verify/app", "v1") == digest
    assert copy_tag(source, target, "verify/app", "v1", verify_existing=True).bytes_sent == 0


def test_an_index_copies_with_its_children(source, mirror):
    _, target = mirror
    children = [push_image(source, "multi/app", None, [os.urandom(MiB)], media_type=OCI_MANIFEST)
                for _ in range(2)]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
         "platform": {"architecture": arch, "os": "linux"}}
        for (digest, body, _), arch in zip(children, ("amd64", "arm64"))]}
    body = json.dumps(index).encode()
    index_digest = source.put_manifest("multi/app", "v1", OCI_INDEX, body)

    result = copy_tag(source, target, "multi/app", "v1")

    assert result.digest == index_digest
    got = target.get_manifest("multi/app", "v1")
    assert got[0] == index_digest and got[1] == OCI_INDEX and got[2] == body
    for digest, child_body, blobs in children:
        assert target.get_manifest("multi/app", digest)[2] == child_body
        for blob in blobs:
            assert target.head_blob("multi/app", blob) is not None
    assert result.blobs_total == 4  # two configs, two layers


def _served_manifests_are_complete(target: SyncClient, repository: str, refs: list[str]) -> list[str]:
    """Every manifest the target serves (by tag or digest) has all its blobs: problems found."""
    problems = []
    for ref in refs:
        try:
            got = target.get_manifest(repository, ref)
        except Exception:  # noqa: BLE001 - the target is down part of the time
            continue
        if got is None:
            continue
        doc = json.loads(got[2])
        for blob in [doc["config"], *doc["layers"]]:
            try:
                if target.head_blob(repository, blob["digest"]) is None:
                    problems.append(f"{ref} served without {blob['digest']}")
            except Exception:  # noqa: BLE001
                pass
    return problems


def test_a_target_killed_mid_copy_converges_on_a_rerun(registries, source, mirror):
    registry, target = mirror
    digest, _, blobs = push_image(source, "kill/app", "v1", [os.urandom(4 * MiB) for _ in range(4)])
    killed = threading.Event()
    stop_polling = threading.Event()
    problems: list[str] = []
    polls = [0]

    def on_progress(state):
        if state["blobs_done"] >= 1 and not killed.is_set():
            killed.set()  # from another thread: the callback runs under the copier's lock
            threading.Thread(target=registries.kill, args=(registry,)).start()

    def poll():
        deadline = time.monotonic() + 120
        while not stop_polling.is_set() and time.monotonic() < deadline:
            problems.extend(_served_manifests_are_complete(target, "kill/app", ["v1", digest]))
            polls[0] += 1

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with pytest.raises((requests.RequestException, HTTPStatusError)):  # refused, after the retries
            copy_tag(source, target, "kill/app", "v1", progress=on_progress, parallelism=2, retries=1)
        assert killed.is_set()
        assert registry.proc.wait(10)
        registries.restart(registry)
        result = copy_tag(source, target, "kill/app", "v1")
    finally:
        stop_polling.set()
        poller.join(130)
    assert not result.up_to_date
    assert target.head_manifest("kill/app", "v1") == digest
    for blob in blobs:
        assert get_blob_digest(target, "kill/app", blob) == blob
    assert polls[0] >= 1
    assert problems == []
    assert copy_tag(source, target, "kill/app", "v1").up_to_date


def test_cancellation_raises_and_leaves_no_manifest(source, mirror):
    _, target = mirror
    push_image(source, "cancel/app", "v1", [os.urandom(2 * MiB) for _ in range(4)])
    flag = threading.Event()

    def on_progress(state):
        if state["blobs_done"] >= 1:
            flag.set()

    with pytest.raises(Cancelled):
        copy_tag(source, target, "cancel/app", "v1", progress=on_progress, cancelled=flag.is_set,
                 parallelism=1)
    assert flag.is_set()
    assert target.head_manifest("cancel/app", "v1") is None
    assert target.tags("cancel/app") == []
