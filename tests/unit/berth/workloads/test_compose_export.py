"""An application written out as Compose reads back as the same application: applying the
text to it changes nothing."""
from berth import db
from berth.workloads import apply, compose, definitions
from berth.workloads.compose_export import to_compose

TEXT = """
name: shop
services:
  db:
    image: registry.test/shop/db:1
    command: ["sh", "-c", "exec httpd -f -p 127.0.0.1:$$PORT"]
    ports: ["80"]
    environment: {MODE: primary, GREETING: "cost $$5"}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$$PORT/"]
      interval: 500ms
      retries: 2
    deploy:
      resources: {limits: {cpus: "0.25", memory: 64M}}
      placement: {constraints: ["node.labels.disk==ssd"]}
  api:
    image: registry.test/shop/api:1
    depends_on: {db: {condition: service_healthy}}
    cap_add: [NET_BIND_SERVICE]
    read_only: true
    deploy: {replicas: 3}
    x-berth: {pool: core, idc: tucheng, min_memory: 1g, constraints: ["!gpu"]}
"""


def test_an_application_reads_back_from_its_compose_text(database, config):
    application = definitions.create_application(compose.parse(TEXT), actor="t")
    db.session.commit()
    text = to_compose(application)
    assert "$$PORT" in text and "node.labels.disk==ssd" in text and "project: default" in text
    again = compose.parse(text)
    answer = apply.apply_existing(application, again, actor="t", config=config, dry_run=True)
    assert answer["changed"] == [] and sorted(answer["unchanged"]) == ["api", "db"], answer
    api = next(s for s in again["services"] if s["name"] == "api")
    assert (api["replicas"], api["pool"], api["min_memory"], api["constraints"]) == (
        3, "core", 2**30, ["!gpu"])
