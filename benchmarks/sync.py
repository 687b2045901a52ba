"""Mirror sync: Berth's copy engine (registry_sync) against skopeo, primary -> empty mirrors.

Starts five Debian `docker-registry` (distribution 2.8) processes of its own on 127.0.0.1 free
ports in a temp folder: a primary and four empty mirrors. Pushes generated images straight to
the primary over the API (not timed): --images images (bench/img00..) on two base stacks, each
image with a layer of its own and --tags tags, each tag a manifest with a small layer of its
own and a config; os.urandom bytes, so sizes are real (~200 MB distinct in all). Then:

  berth    the two berth mirrors, at the same time, each by `read_tags` (primary and mirror)
           + `plan_sync` + `copy_tag` of every planned tag in a bounded pool (--tag-parallelism
           tags at once, --blob-parallelism blobs per tag), one shared `known_blobs` map per
           mirror, so a layer already on the mirror in another repository is mounted;
  skopeo   the two skopeo mirrors by `skopeo sync --src docker --dest docker --preserve-digests`
           per repository
           (all its tags), --skopeo-parallelism processes at once;
  resync   no change: read_tags on the primary and on both berth mirrors, plan_sync: nothing
           to copy.

Checks that every mirror serves every tag with the primary's digest. bytes_ratio is the bytes
Berth sent over the bytes the two mirrors lacked (the distinct blobs' sizes, per mirror).
Prints a table and, as its last line, one JSON object. Every registry is stopped and the temp
folder removed in a `finally`.

    .venv/bin/python benchmarks/sync.py [--images 20] [--tags 5]
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "scripts"))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from registry_sync.client import SyncClient  # noqa: E402
from registry_sync.copy import copy_tag  # noqa: E402
from registry_sync.diff import plan_sync, read_tags  # noqa: E402
from testbed.ports import free_port  # noqa: E402
from testbed.processes import child_env, terminate  # noqa: E402
from testbed.programs import find_program  # noqa: E402
from testbed.registries import Registry, spawn_registry, wait_registry  # noqa: E402

MiB = 1 << 20
SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG = "application/vnd.docker.container.image.v1+json"
TOKEN = lambda access: "x"  # noqa: E731 - the registries have no auth
ALL = lambda repository, tag: True  # noqa: E731
SKOPEO_TIMEOUT_S = 600


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Content:
    """The generated images, pushed once to the primary; blob sizes by digest."""

    def __init__(self, images: int, tags: int, base_layer_mib: float, image_layer_mib: float,
                 tag_layer_mib: float):
        self.repositories = [f"bench/img{n:02d}" for n in range(images)]
        self.tags = [f"v{n}" for n in range(tags)]
        self.blobs: dict[str, int] = {}
        self.sizes = (base_layer_mib, image_layer_mib, tag_layer_mib)

    def push(self, client: SyncClient, parallelism: int) -> None:
        base_mib, image_mib, tag_mib = self.sizes
        bases = [[os.urandom(int(base_mib * MiB)) for _ in range(2)] for _ in range(2)]  # two stacks

        def push_blob(repository: str, data: bytes) -> dict:
            digest = sha(data)
            location = client.start_upload(repository)
            location = client.patch_chunk(repository, location, data, 0)
            client.finish_upload(repository, location, digest)
            self.blobs[digest] = len(data)
            return {"mediaType": LAYER, "digest": digest, "size": len(data)}

        def push_repository(number: int) -> None:
            repository = self.repositories[number]
            own = push_blob(repository, os.urandom(int(image_mib * MiB)))
            base = [push_blob(repository, layer) for layer in bases[number % 2]]
            for tag in self.tags:
                layers = [*base, own, push_blob(repository, os.urandom(int(tag_mib * MiB)))]
                config = json.dumps({"architecture": "amd64", "os": "linux",
                                     "config": {"Labels": {"tag": f"{repository}:{tag}"}},
                                     "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode()
                config_desc = push_blob(repository, config) | {"mediaType": CONFIG}
                body = json.dumps({"schemaVersion": 2, "mediaType": SCHEMA2, "config": config_desc,
                                   "layers": layers}).encode()
                client.put_manifest(repository, tag, SCHEMA2, body)

        with ThreadPoolExecutor(parallelism) as pool:
            list(pool.map(push_repository, range(len(self.repositories))))

    @property
    def distinct_bytes(self) -> int:
        return sum(self.blobs.values())


def berth_sync(primary: SyncClient, mirror: SyncClient, repositories: list[str], tag_parallelism: int,
               blob_parallelism: int) -> dict:
    started = time.perf_counter()
    source_tags = read_tags(primary, repositories)
    plan = plan_sync(source_tags, read_tags(mirror, repositories), ALL, propagate_deletes=False)
    known: dict[str, str] = {}
    with ThreadPoolExecutor(tag_parallelism) as pool:
        results = list(pool.map(lambda key: copy_tag(primary, mirror, *key, known_blobs=known,
                                                     parallelism=blob_parallelism), plan.copies))
    return {"seconds": time.perf_counter() - started, "copies": len(plan.copies),
            "bytes_sent": sum(r.bytes_sent for r in results),
            "mounted": sum(r.blobs_mounted for r in results),
            "skipped": sum(r.blobs_skipped for r in results)}


def skopeo_sync(skopeo: str, primary: Registry, mirror: Registry, repository: str, log: Path) -> float:
    started = time.perf_counter()
    # 127.0.0.1:P/bench/img00 -> 127.0.0.1:Q/bench/img00 (the last path element is kept)
    argv = [skopeo, "sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false",
            "--dest-tls-verify=false", "--preserve-digests", f"{primary.host}/{repository}",
            f"{mirror.host}/{repository.rsplit('/', 1)[0]}"]
    with open(log, "ab") as out:
        subprocess.run(argv, check=True, stdout=out, stderr=subprocess.STDOUT, env=child_env(),
                       stdin=subprocess.DEVNULL, timeout=SKOPEO_TIMEOUT_S)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--tags", type=int, default=5, help="tags per image")
    parser.add_argument("--base-layer-mib", type=float, default=12.5, help="4 base layers in 2 stacks")
    parser.add_argument("--image-layer-mib", type=float, default=4.0)
    parser.add_argument("--tag-layer-mib", type=float, default=0.7)
    parser.add_argument("--tag-parallelism", type=int, default=8)
    parser.add_argument("--blob-parallelism", type=int, default=4)
    parser.add_argument("--skopeo-parallelism", type=int, default=4)
    args = parser.parse_args()

    program = find_program("docker-registry", "docker-registry")
    skopeo = find_program("skopeo", "skopeo")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-sync-"))
    registries: list[Registry] = []
    try:
        for name in ("primary", "berth-1", "berth-2", "skopeo-1", "skopeo-2"):
            registry = Registry(name, root / f"reg-{name}", free_port(),
                                extra_config={"log": {"level": "warn"}})
            spawn_registry(registry, program)
            registries.append(registry)
        for registry in registries:
            wait_registry(registry, time.monotonic() + 30)
        primary, *mirrors = registries
        pool_size = args.tag_parallelism * args.blob_parallelism + 4
        client = lambda r: SyncClient(r.url, TOKEN, pool_size=pool_size)  # noqa: E731
        source = client(primary)

        content = Content(args.images, args.tags, args.base_layer_mib, args.image_layer_mib, args.tag_layer_mib)
        started = time.perf_counter()
        content.push(source, parallelism=8)
        push_s = time.perf_counter() - started
        source_tags = read_tags(source, content.repositories)
        assert len(source_tags) == args.images * args.tags, len(source_tags)

        berth_mirrors = [client(m) for m in mirrors[:2]]
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            berth_runs = list(pool.map(lambda m: berth_sync(source, m, content.repositories,
                                                            args.tag_parallelism, args.blob_parallelism),
                                       berth_mirrors))
        berth_s = time.perf_counter() - started

        log = root / "skopeo.log"
        jobs = [(m, repo) for m in mirrors[2:] for repo in content.repositories]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.skopeo_parallelism) as pool:
            list(pool.map(lambda job: skopeo_sync(skopeo, primary, job[0], job[1], log), jobs))
        skopeo_s = time.perf_counter() - started

        # Every mirror serves every tag with the primary's digest.
        for mirror in mirrors:
            got = read_tags(client(mirror), content.repositories)
            if got != source_tags:
                wrong = sorted(k for k in source_tags if got.get(k) != source_tags[k])
                raise SystemExit(f"{mirror.name}: {len(wrong)} tags differ from the primary, "
                                 f"e.g. {wrong[:3]}")

        started = time.perf_counter()
        again = read_tags(source, content.repositories)
        with ThreadPoolExecutor(2) as pool:
            plans = list(pool.map(lambda m: plan_sync(again, read_tags(m, content.repositories), ALL, False),
                                  berth_mirrors))
        noop_resync_s = time.perf_counter() - started
        assert all(not p.copies and p.up_to_date == len(again) for p in plans), plans

        lacked = content.distinct_bytes * 2
        sent = sum(run["bytes_sent"] for run in berth_runs)
        print(f"mirror sync: {len(content.repositories)} images x {len(content.tags)} tags = "
              f"{len(source_tags)} tags, {len(content.blobs)} distinct blobs, "
              f"{content.distinct_bytes / MiB:.1f} MiB distinct; pushed to the primary in {push_s:.1f} s")
        print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
        print(f"berth: 2 mirrors at once, {args.tag_parallelism} tags x {args.blob_parallelism} blobs per mirror, "
              f"one known_blobs per mirror; skopeo: `skopeo sync` per repository, "
              f"{args.skopeo_parallelism} processes at once ({subprocess.run([skopeo, '--version'], capture_output=True, text=True).stdout.strip()})")
        print(f"machine: nproc {os.cpu_count()}, loopback 127.0.0.1, load average at the end "
              f"{os.getloadavg()[0]:.2f}")
        print()
        print("| run | seconds | tags copied | MiB sent | mounted | skipped |")
        print("|---|---:|---:|---:|---:|---:|")
        for mirror, run in zip(mirrors[:2], berth_runs):
            print(f"| berth -> {mirror.name} | {run['seconds']:.2f} | {run['copies']} | "
                  f"{run['bytes_sent'] / MiB:.1f} | {run['mounted']} | {run['skipped']} |")
        print(f"| berth, both mirrors | {berth_s:.2f} | {sum(r['copies'] for r in berth_runs)} | "
              f"{sent / MiB:.1f} | | |")
        print(f"| skopeo, both mirrors | {skopeo_s:.2f} | {2 * len(source_tags)} | | | |")
        print(f"| no-change resync (berth) | {noop_resync_s:.3f} | 0 | 0 | | |")
        print()
        print(f"bytes the berth mirrors lacked: {lacked / MiB:.1f} MiB; Berth sent {sent / MiB:.1f} MiB")
        print(json.dumps({"berth_s": round(berth_s, 2), "skopeo_s": round(skopeo_s, 2),
                          "ratio": round(berth_s / skopeo_s, 3), "bytes_ratio": round(sent / lacked, 3),
                          "noop_resync_s": round(noop_resync_s, 3)}))
    finally:
        terminate([(r.name, r.proc, signal.SIGTERM) for r in registries], timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
