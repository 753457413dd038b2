"""The graph steps of person resolution, on plain frames and independent of the model: records
linked into clusters strongest link first (:func:`cluster_labels`), and clusters given the person
they are offered (:func:`choose_persons`), both under one constraint that Splink's own clustering
(plain connected components, ``cluster_pairwise_predictions_at_threshold``) cannot express: the
persons one household visit lists are different persons (twins, brothers of one name, a father and
a son whose names sound alike), so no cluster and no person ever takes two of them.
"""

from __future__ import annotations

import polars as pl


def cluster_labels(nodes: pl.DataFrame, visits: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """Each node's cluster ``label``: the connected components of ``edges`` (``a``, ``b``, ``p``),
    joined strongest link first, except that two parts are never joined when both hold a record of
    the same visit (``visits``: ``node``, ``visit``); a cluster is labelled by its smallest node
    ``label`` (``nodes``: ``node``, ``label``, the order first seen). Without such a conflict this
    is the plain connected components."""
    label = dict(nodes.iter_rows())
    parent = {node: node for node in label}
    seen: dict[str, set[str]] = {node: set() for node in label}
    for node, visit in visits.drop_nulls("visit").iter_rows():
        seen[node].add(visit)

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b, _ in edges.sort("p", "a", "b", descending=[True, False, False]).iter_rows():
        ra, rb = root(a), root(b)
        if ra == rb or seen[ra] & seen[rb]:
            continue
        if label[rb] < label[ra]:
            ra, rb = rb, ra
        parent[rb] = ra
        seen[ra] |= seen.pop(rb)
    return pl.DataFrame(
        {"node": list(label), "label": [label[root(n)] for n in label]},
        schema={"node": pl.String, "label": nodes.schema["label"]},
    )


def choose_persons(offers: pl.DataFrame, visits: pl.DataFrame, listed: pl.DataFrame) -> pl.DataFrame:
    """``label``, ``cluster_person``: for each cluster, the best-scoring person it is offered
    (``offers``: ``label``, ``person_key``, ``match_probability``) none of whose records comes from
    a visit the cluster holds a record of (``visits``: ``label``, ``visit``; the persons' visits so
    far: ``listed``, ``person_key``, ``visit``), strongest offers first."""
    held: dict[int, set[str]] = {}
    for cluster, visit in visits.drop_nulls("visit").iter_rows():
        held.setdefault(cluster, set()).add(visit)
    taken: dict[str, set[str]] = {}
    for person, visit in listed.drop_nulls().iter_rows():
        taken.setdefault(person, set()).add(visit)
    chosen: dict[int, str] = {}
    ranked = offers.sort("match_probability", "person_key", "label", descending=[True, False, False])
    for cluster, person in ranked.select("label", "person_key").iter_rows():
        if cluster in chosen or held.get(cluster, set()) & taken.get(person, set()):
            continue
        chosen[cluster] = person
        taken.setdefault(person, set()).update(held.get(cluster, ()))
    return pl.DataFrame(
        {"label": list(chosen), "cluster_person": list(chosen.values())},
        schema={"label": visits.schema["label"], "cluster_person": pl.String},
    )
