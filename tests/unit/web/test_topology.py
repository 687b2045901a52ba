"""The dependency graph's layout (web.topology): pure, names and edges in, boxes out."""
from __future__ import annotations

from web import topology


def test_depth_is_one_more_than_the_deepest_dependency():
    names = ["web", "api", "db", "cache", "worker"]
    edges = [("web", "api"), ("api", "db"), ("api", "cache"), ("worker", "db"), ("web", "db")]
    assert topology.depths(names, edges) == {"db": 0, "cache": 0, "api": 1, "worker": 1, "web": 2}


def test_lone_services_and_unknown_or_self_edges_sit_in_the_first_layer():
    assert topology.depths(["a", "b"], [("a", "a"), ("b", "ghost")]) == {"a": 0, "b": 0}


def test_a_cycle_is_cut_so_every_service_gets_a_finite_depth():
    found = topology.depths(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert set(found) == {"a", "b", "c"}
    assert sorted(found.values()) == [0, 1, 2]


def test_layout_puts_layers_in_columns_and_arrows_from_dependent_to_dependency():
    graph = topology.layout(["web", "api", "db"], [("web", "api"), ("api", "db")],
                            {"web": "healthy", "api": "failing"})
    by_name = {node["name"]: node for node in graph["nodes"]}
    assert [by_name[n]["layer"] for n in ("db", "api", "web")] == [0, 1, 2]
    assert by_name["db"]["x"] < by_name["api"]["x"] < by_name["web"]["x"]
    assert by_name["web"]["fill"] == "#198754" and by_name["api"]["fill"] == "#dc3545"
    assert by_name["db"]["status"] == "unknown" and by_name["db"]["fill"] == topology.UNKNOWN_COLOUR[0]
    (first, second) = sorted(graph["edges"], key=lambda e: e["from"])
    assert (first["from"], first["to"]) == ("api", "db")
    assert first["x1"] == by_name["api"]["x"] and first["x2"] == by_name["db"]["x"] + topology.NODE_W
    assert (second["from"], second["to"]) == ("web", "api")
    assert graph["width"] == 2 * topology.MARGIN + 3 * topology.NODE_W + 2 * topology.GAP_X
    assert graph["height"] == 2 * topology.MARGIN + topology.NODE_H


def test_services_of_one_layer_stack_by_name():
    graph = topology.layout(["b", "a", "top"], [("top", "a"), ("top", "b")])
    a, b = (next(n for n in graph["nodes"] if n["name"] == name) for name in "ab")
    assert a["x"] == b["x"] and a["y"] < b["y"]
    assert graph["height"] == 2 * topology.MARGIN + 2 * topology.NODE_H + topology.GAP_Y


def test_an_empty_application_has_an_empty_graph():
    assert topology.layout([], []) == {"nodes": [], "edges": [], "width": 2 * topology.MARGIN,
                                       "height": 2 * topology.MARGIN}
