"""The test image: busybox FROM scratch, built on the first engine and pushed to the primary,
as `:1` and as `:2` (the same files with another label, so another digest): a release has a
real new version to go to."""
from __future__ import annotations

import io
import tarfile
import time

from .common import log
from .engines import DockerAPI, Engine
from .registries import Registry

IMAGE_REPOSITORY = "library/busybox"
IMAGE_TAG = "1"
NEXT_TAG = "2"


def build_test_image(engine: Engine, registry: Registry, busybox: str, deadline: float,
                     push_auth: dict | None = None) -> str:
    """Build the image on `engine`, push it to `registry`, and return its reference."""
    ref = f"{registry.host}/{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    api = DockerAPI(engine, max(deadline - time.monotonic(), 1))
    began = time.monotonic()
    api.build(image_context(busybox), ref)
    api.push(ref, push_auth)
    following = f"{registry.host}/{IMAGE_REPOSITORY}:{NEXT_TAG}"
    api.build(_dockerfile_only(f"FROM {ref}\nLABEL berth.test.version={NEXT_TAG}\n"), following)
    api.push(following, push_auth)
    log.info("built and pushed %s in %.1fs", ref, time.monotonic() - began)
    return ref


def image_context(busybox: str) -> bytes:
    """The build context: a Dockerfile and the static busybox, as a tar archive."""
    dockerfile = "\n".join([
        "FROM scratch",
        "COPY busybox /bin/busybox",
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin'
        ' && /bin/busybox mkdir -p -m 1777 /tmp"]',
        'CMD ["sh"]',
        "",
    ]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode = len(dockerfile), 0o644
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(busybox, arcname="busybox", filter=_root_owned)
    return buffer.getvalue()


def _dockerfile_only(dockerfile: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode = len(dockerfile.encode()), 0o644
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    return buffer.getvalue()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755
    return info
