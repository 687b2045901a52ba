"""The nginx upstream block rendered from discovery, checked by nginx itself."""
from berth.workloads.upstream import render_upstream
from tests import nginx_runner


def test_the_block_lists_the_endpoints_sorted_under_the_service_name():
    text = render_upstream("shop", "api", ["127.0.0.1:20002", "127.0.0.1:20001"], 7)
    assert text.splitlines() == [
        "# Berth discovery: shop/api, index 7. Generated; do not edit.",
        "upstream shop-api {",
        "    server 127.0.0.1:20001;",
        "    server 127.0.0.1:20002;",
        "}"]


def test_nginx_accepts_the_block_with_and_without_instances(tmp_path):
    for endpoints in (["127.0.0.1:20001", "127.0.0.1:20002"], []):
        upstream = render_upstream("shop", "api", endpoints, 3)
        site = "server { listen 127.0.0.1:8080; location / { proxy_pass http://shop-api; } }"
        result = nginx_runner.check(tmp_path, upstream + site)
        assert result.returncode == 0, result.stderr
    assert "down;" in render_upstream("shop", "api", [], 3)
