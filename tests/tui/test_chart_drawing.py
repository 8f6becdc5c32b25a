"""The chart's drawing shortcuts draw exactly what the plain way draws."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from kantai_tui.tui.widgets.loss_chart import LossChart, Trace, _per_column, _polyline

DOTS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30)), max_size=200).map(
    lambda dots: sorted(dots, key=lambda d: d[0])  # a run's points go left to right; y anywhere
)


@given(DOTS)
def test_a_few_dots_per_column_draw_the_same_path_as_all_of_them(dots: list[tuple[int, int]]) -> None:
    every: dict[int, int] = {}
    thinned: dict[int, int] = {}
    _polyline(dots, every, 21)
    _polyline(_per_column(dots), thinned, 21)
    assert thinned == every
    assert len(_per_column(dots)) <= 4 * len({x for x, _ in dots})


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield LossChart()


async def test_the_chart_draws_again_only_when_what_it_shows_changed() -> None:
    async with ChartApp().run_test(size=(80, 24)) as pilot:
        chart = pilot.app.query_one(LossChart)
        trace = Trace("a")
        trace.add_step({"step": 10, "loss": 5.0, "tokens": 10, "elapsed_s": 1.0})
        chart.compare([trace])
        drawn: list[int] = []
        draw = chart._draw
        chart._draw = lambda: drawn.append(1) or draw()  # type: ignore[method-assign]
        first = chart.render().plain
        assert chart.render().plain == first and len(drawn) == 1  # the same state: the same drawing, kept
        trace.add_step({"step": 20, "loss": 4.0, "tokens": 20, "elapsed_s": 2.0})
        assert chart.render().plain != first and len(drawn) == 2
        chart.x_axis = "tokens"
        chart.render()
        assert len(drawn) == 3
