"""A model's lineage (each version's parent, as registered) laid out for a small inline
SVG: one column per generation, parents left of their children. A parent in another
model (an optimized copy registered under a new name) is drawn too, as it is named."""

from __future__ import annotations

from dataclasses import dataclass

NODE_WIDTH = 120
NODE_HEIGHT = 30
COLUMN_GAP = 50
ROW_GAP = 14
MARGIN = 6


@dataclass(frozen=True, slots=True)
class Node:
    label: str
    x: int
    y: int
    highlighted: bool
    """Carries an alias."""


@dataclass(frozen=True, slots=True)
class Edge:
    parent: str
    child: str
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def layout(name: str, parents: dict[int, str | None], aliased: set[int]) -> Graph:
    """The graph of ``name``'s versions; ``parents``: each version's parent reference
    (``iris@1``, None for none), ``aliased``: the versions an alias points at."""
    labels = {number: f"{name}@{number}" for number in parents}
    depth: dict[str, int] = {}

    def depth_of(label: str, seen: frozenset[str] = frozenset()) -> int:
        if label in depth:
            return depth[label]
        number = _number_in(name, label)
        parent = parents.get(number) if number is not None else None
        found = 0 if parent is None or parent in seen else depth_of(parent, seen | {label}) + 1
        depth[label] = found
        return found

    for label in labels.values():
        depth_of(label)
    columns: dict[int, list[str]] = {}
    for label, column in sorted(depth.items(), key=lambda item: _sort_key(item[0])):
        columns.setdefault(column, []).append(label)
    places = {
        label: (
            MARGIN + column * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
        for column, members in columns.items()
        for row, label in enumerate(members)
    }
    nodes = [
        Node(label, x, y, _number_in(name, label) in aliased) for label, (x, y) in places.items()
    ]
    edges = [
        _edge(parent, labels[number], places)
        for number, parent in sorted(parents.items())
        if parent is not None and parent in places
    ]
    width = max(x for x, _ in places.values()) + NODE_WIDTH + MARGIN if places else 0
    height = max(y for _, y in places.values()) + NODE_HEIGHT + MARGIN if places else 0
    return Graph(nodes, edges, width, height)


def _edge(parent: str, child: str, places: dict[str, tuple[int, int]]) -> Edge:
    (px, py), (cx, cy) = places[parent], places[child]
    middle = NODE_HEIGHT // 2
    return Edge(parent, child, px + NODE_WIDTH, py + middle, cx, cy + middle)


def _number_in(name: str, label: str) -> int | None:
    model, _, number = label.rpartition("@")
    return int(number) if model == name and number.isdigit() else None


def _sort_key(label: str) -> tuple[str, int]:
    model, _, number = label.rpartition("@")
    return (model, int(number) if number.isdigit() else 0)
