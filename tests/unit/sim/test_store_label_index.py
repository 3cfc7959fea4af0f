"""A list by label reads the store's label index: it answers what filtering every object
of the namespace answers, as objects come, change their labels and go."""

from __future__ import annotations

import random

from milkyway.sim.apiserver.selectors import parse_label_selector
from milkyway.sim.apiserver.store import ADDED, DELETED, MODIFIED, Store

KEY = ("", "pods")
SELECTORS = [
    "app=a",
    "app==b,tier=x",
    "app in (a,b),zone=z1",
    "tier=x,zone!=z2",
    "app=c,tier notin (y)",
    "zone in (z1,z2,z3)",
]


def _labels(rng: random.Random) -> dict[str, str]:
    pool = {"app": "abc", "tier": "xy", "zone": ["z1", "z2", "z3"]}
    return {k: rng.choice(list(v)) for k, v in pool.items() if rng.random() < 0.75}


def test_a_list_by_label_from_the_index_equals_a_filtered_scan() -> None:
    for seed in range(5):
        rng = random.Random(seed)
        store = Store()
        for step in range(300):
            ns, name = rng.choice(["n1", "n2"]), f"p{rng.randrange(30)}"
            present = store.get(KEY, ns, name) is not None
            obj = {"metadata": {"name": name, "namespace": ns, "labels": _labels(rng)}}
            if present and rng.random() < 0.3:
                store.commit(KEY, DELETED, obj)
            else:
                store.commit(KEY, MODIFIED if present else ADDED, obj)
            for text in SELECTORS:
                selector = parse_label_selector(text)
                for space in ("n1", "n2"):
                    scanned = [
                        (n, name_, o)
                        for n, name_, o in store.sorted_objects(KEY, space)
                        if selector.matches(o["metadata"].get("labels"))
                    ]
                    indexed = [
                        (n, name_, o)
                        for n, name_, o in store.sorted_labelled(KEY, space, selector.equalities())
                        if selector.matches(o["metadata"].get("labels"))
                    ]
                    assert indexed == scanned, (seed, step, text, space)
