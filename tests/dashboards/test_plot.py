"""The front chart's geometry, against hand computations."""
from __future__ import annotations

import pytest

from dashboards.plot import front_plot, nice_range, nice_step
from nas.summary import FrontPoint, SearchFront

M = 1_000_000


@pytest.mark.parametrize("span, count, step", [(10, 5, 2), (13.29, 5, 5), (0.3, 5, 0.1), (2.04e9, 5, 5e8),
                                               (306 * M, 5, 1e8), (7, 7, 1)])
def test_nice_step(span, count, step):
    assert nice_step(span, count) == pytest.approx(step)


def test_nice_range_covers_the_data_with_whole_steps():
    assert nice_range(45.11, 58.4) == pytest.approx((45, 60, 5))
    assert nice_range(0, 2.04e9) == pytest.approx((0, 2.5e9, 5e8))
    assert nice_range(3, 3) == pytest.approx((2.8, 3.2, 0.1))  # a single value gets a band around it
    assert nice_range(-12, -3) == pytest.approx((-12, -2, 2))
    with pytest.raises(ValueError, match="not finite"):
        nice_range(0, float("nan"))


def _front(points, direction="minimize"):
    members = tuple(sorted((p for p in points if p.on_front), key=lambda p: p.macs))
    return SearchFront("fid", direction, tuple(points), members, None)


def test_front_plot_geometry_by_hand():
    a = FrontPoint("a", 100 * M, 1, 80.0, True)
    b = FrontPoint("b", 200 * M, 1, 60.0, True)
    c = FrontPoint("c", 250 * M, 1, 70.0, False)
    plot = front_plot(_front([a, b, c]), [300 * M], href=lambda config: f"/c/{config}")
    # plot area x 72..736, y 40..368; x axis 0..400M (306M -> step 100M), y axis 55..85 (59.2..80.8 -> step 5)
    assert (plot.left, plot.right, plot.top, plot.bottom) == (72, 736, 40, 368)
    assert [t.label for t in plot.x_ticks] == ["0", "100M", "200M", "300M", "400M"]
    assert [t.position for t in plot.x_ticks] == [72, 238, 404, 570, 736]
    assert [t.label for t in plot.y_ticks] == ["55", "60", "65", "70", "75", "80", "85"]
    assert plot.y_ticks[0].position == 368 and plot.y_ticks[-1].position == 40
    # a at (238, 368 - 25/30 * 328), b at (404, 368 - 5/30 * 328); the step line runs flat to the right edge
    assert plot.step_path == "M238.0,94.67H404.0V313.33H736.0"
    assert [(p.config, p.x, p.y, p.on_front) for p in plot.points] == [
        ("c", 487.0, 204.0, False), ("a", 238.0, 94.67, True), ("b", 404.0, 313.33, True)]
    assert plot.points[1].href == "/c/a" and "100M MACs, fid 80 (Pareto front)" in plot.points[1].title
    assert [(line.x, line.label) for line in plot.budget_lines] == [(570.0, "budget 300M")]
    assert plot.y_label == "fid (lower is better)"


def test_front_plot_of_a_maximised_metric_and_of_nothing():
    points = [FrontPoint("a", 100 * M, 1, 20.0, True), FrontPoint("b", 300 * M, 1, 30.0, True)]
    plot = front_plot(_front(points, "maximize"), [], href=str)
    assert plot.y_label == "fid (higher is better)"
    assert plot.points[1].y < plot.points[0].y  # larger values are drawn higher
    assert front_plot(_front([]), [300 * M], href=str) is None


def test_front_plot_draws_the_teacher_as_a_reference_line():
    a = FrontPoint("a", 100 * M, 1, 80.0, True)
    b = FrontPoint("b", 200 * M, 1, 60.0, True)
    far = front_plot(_front([a, b]), [300 * M], href=str, teacher_value=45.0, teacher_macs=5000 * M)
    # the y axis covers the teacher too: 45..80, padded by 4% of 35 -> 43.6..81.4 -> 40..90 (step 10);
    # the teacher at 368 - 5/50 * 328
    assert [t.label for t in far.y_ticks] == ["40", "50", "60", "70", "80", "90"]
    assert far.teacher.y == pytest.approx(335.2)
    assert far.teacher.x is None and far.teacher.label == "teacher: fid 45 at 5G MACs (off the chart, to the right)"
    near = front_plot(_front([a, b]), [300 * M], href=str, teacher_value=45.0, teacher_macs=250 * M)
    assert near.teacher.x == 72 + 250 / 400 * 664 and "off the chart" not in near.teacher.label
    assert front_plot(_front([a, b]), [300 * M], href=str).teacher is None



def test_a_crowded_front_draws_every_member_and_thins_the_rest():
    points = [FrontPoint(f"{i}_1", (i + 1) * M, 10, 100.0 - i % 50, on_front=i % 100 == 0) for i in range(1000)]
    plot = front_plot(_front(points), [2000 * M], lambda c: c, max_points=110)
    drawn = [p.config for p in plot.points]
    assert len(drawn) == 110 and plot.left_out == 1000 - 110
    assert drawn[-10:] == [f"{i}_1" for i in range(0, 1000, 100)]  # members last, on top
    assert len(set(drawn)) == 110 and drawn[0] == "1_1"  # evenly spaced from the first dominated one
    assert front_plot(_front(points[:50]), [2000 * M], lambda c: c, max_points=110).left_out == 0
