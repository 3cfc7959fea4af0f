"""The heap report: live objects by type and by owner, frozen ones included."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from milkyway.telemetry.heap import measure, write_heap_report


class Marker:
    """A type no other test allocates, so its count is exact."""


def test_every_live_object_of_a_type_is_counted_once() -> None:
    markers = [Marker() for _ in range(321)]
    report = measure()
    usage = report.by_type[f"{__name__}.Marker"]
    assert usage.objects == 321
    assert usage.bytes == 321 * sys.getsizeof(markers[0])


def test_an_owner_holds_what_is_reachable_from_it_and_the_first_owner_counts_it() -> None:
    shared = "x" * 10_000 + "shared"
    first = {"a": [shared, {"b": "y" * 5000}]}
    second = {"c": shared}
    report = measure({"first": first, "second": second})
    # first: the dict, "a", the list, the shared string, the inner dict, "b", its value.
    assert report.by_owner["first"].objects == 7
    assert report.by_owner["first"].bytes >= 15_000
    # second: only its dict and "c": the string is the first owner's.
    assert report.by_owner["second"].objects == 2
    assert report.by_owner["second"].bytes < 1_000
    text = "\n".join(report.lines())
    assert "first" in text and "anything else" in text


def test_frozen_objects_are_counted_and_stay_frozen() -> None:
    markers = [Marker() for _ in range(50)]
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert measure().by_type[f"{__name__}.Marker"].objects == 50
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
    del markers


def test_the_report_file_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "heap.txt"
    cache = {("ns", f"pod-{i}"): {"metadata": {"name": f"pod-{i}"}} for i in range(100)}
    write_heap_report(path, {"pods": cache})
    text = path.read_text()
    assert text.startswith("live Python objects: ")
    assert "by type:" in text
    assert "  pods" in text.replace("objects  pods", "  pods")
    assert not (tmp_path / "heap.txt.partial").exists()


def test_the_walks_own_bookkeeping_is_not_counted() -> None:
    markers = [Marker() for _ in range(200_000)]
    report = measure({"markers": markers})
    # The walk remembers each object it counted by its id (an int): those ints are its
    # own, not the process's, and must not show up as 200,000+ live ints.
    assert report.by_type["builtins.int"].objects < 100_000
    assert report.by_owner["markers"].objects == 200_001


def test_an_owner_holds_the_contents_of_dict_subclasses() -> None:
    class Resource(dict):  # type: ignore[type-arg]
        """As lightkube's generic resources are."""

    app = Resource(spec={"components": ["z" * 20_000]})
    report = measure({"cache": {("ns", "app"): app}})
    assert report.by_owner["cache"].bytes > 20_000
