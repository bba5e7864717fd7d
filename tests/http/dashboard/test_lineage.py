"""The lineage graph's layout: parents left of their children, an outside parent drawn."""

from __future__ import annotations

from servewell.http.dashboard.lineage import layout


def test_children_sit_right_of_their_parents() -> None:
    graph = layout("iris", {1: None, 2: "iris@1", 3: "iris@2", 4: "iris@1"}, aliased={3})
    x = {node.label: node.x for node in graph.nodes}
    assert x["iris@1"] < x["iris@2"] < x["iris@3"]
    assert x["iris@4"] == x["iris@2"]
    assert {(edge.parent, edge.child) for edge in graph.edges} == {
        ("iris@1", "iris@2"),
        ("iris@2", "iris@3"),
        ("iris@1", "iris@4"),
    }
    assert [node.label for node in graph.nodes if node.highlighted] == ["iris@3"]


def test_a_parent_in_another_model_is_drawn_and_a_cycle_ends() -> None:
    graph = layout("small", {1: "iris@2"}, aliased=set())
    assert {node.label for node in graph.nodes} == {"iris@2", "small@1"}
    looped = layout("m", {1: "m@2", 2: "m@1"}, aliased=set())
    assert len(looped.nodes) == 2


def test_no_versions_no_graph() -> None:
    graph = layout("empty", {}, aliased=set())
    assert graph.nodes == []
    assert graph.width == 0
