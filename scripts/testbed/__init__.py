"""The Berth test bed: real Docker engines, registries, PostgreSQL and Redis on 127.0.0.1.

This package owns every process of the integration-test environment and their files, which all
live under one root directory (default: a fresh /tmp/berth-XXXXXXXX):

    R/eN/        one dockerd per engine (data, exec, docker.sock, dockerd.log), TCP API on a free port
    R/reg-NAME/  one Debian `docker-registry` (v2.8) per registry: config.yml, data/, registry.log
    R/pg/        a PostgreSQL cluster (run as the `postgres` user when we are root) with `berth_test`
    R/redis/     a Redis without persistence

plus a busybox test image, built FROM scratch on the first engine and pushed to the `primary`
registry (the other engines pull it: TestBed.load_image).

Everything listens on 127.0.0.1 only, on ports picked at runtime. Each engine also gets a disjoint
block of host ports for the services it runs (`port_range`), claimed under /tmp/berth-testbed-ports
so that two test beds on one machine don't hand out the same block.

Use it from Python (pytest's conftest puts scripts/ on sys.path):

    from testbed import TestBed
    with TestBed(engines=3) as bed:          # start() on enter, stop() on exit
        bed.state["engines"][0]["url"]        # tcp://127.0.0.1:PORT

or by hand:

    python scripts/testbed up [--detach] [--state FILE]   # prints the state JSON on stdout
    python scripts/testbed status [--state FILE]
    python scripts/testbed down [--state FILE]

Berth's own processes on a bed (web, workers, beat) are `testbed.berth.Berth`.

Only the standard library is used, so it runs before the virtualenv exists (testbed.berth
and TestBed.docker_client import Berth and the docker SDK when called).

Modules: processes (spawn, adopt, stop, sweep), ports, programs, engines, registries,
databases (PostgreSQL, Redis), image, root (directory and state file), bed (TestBed's
lifecycle), running (what callers do with a running bed), cli, berth.
"""
from .bed import DEFAULT_REGISTRIES, TestBed
from .common import DEFAULT_TIMEOUT, LOCALHOST, TestBedError, deep_merge
from .databases import POSTGRES_DB
from .engines import EngineTLS, split_image_ref
from .image import IMAGE_REPOSITORY, IMAGE_TAG
from .ports import free_port

__all__ = ["DEFAULT_REGISTRIES", "DEFAULT_TIMEOUT", "EngineTLS", "IMAGE_REPOSITORY", "IMAGE_TAG",
           "LOCALHOST", "POSTGRES_DB", "TestBed", "TestBedError", "deep_merge", "free_port",
           "split_image_ref"]
