"""The parallel lanes of a profile's computation: who computes what, and what the parent prints."""

from __future__ import annotations

import pytest

from advsamples import lanes
from advsamples.runner import chapter_order


def test_every_chapter_is_in_exactly_one_lane() -> None:
    listed = [c for lane in lanes.LANES for c in lane]
    assert sorted(listed) == sorted(chapter_order()) and len(set(listed)) == len(listed)
    assert "jsma" in lanes.LANES[0] and "hardness" in lanes.LANES[0]  # they share their runs


@pytest.mark.parametrize(("profile", "epochs"), [("paper", [10, 50, None]), ("quick", [1, None])])
def test_the_lenet_is_trained_from_the_shortest_run_up(profile: str, epochs: list[int | None]) -> None:
    runs = lanes.lenet_runs(profile)
    assert [o.get("epochs") for _, o in runs] == epochs and {n for n, _ in runs} == {lanes.LENET}


def test_lane_status_reads_the_step_and_the_last_bar() -> None:
    log = (
        "LANE train lenet_paper {}\nLANE chapter jsma\n"
        "JSMA train:  10%|#  | 9000/90000\rJSMA train:  15%|## | 13500/90000"
    )
    assert lanes.lane_status(log) == "chapter jsma: JSMA train:  15%|## | 13500/90000"
    assert lanes.lane_status("LANE done jsma 12 s\n") == "done jsma 12 s"


def test_bad_lane_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="lanes must be 1 or 2, got lanes=3"):
        lanes.compute_profile("quick", lanes=3)
