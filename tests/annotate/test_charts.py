"""The one chart module: every chart escapes the text it is given, one way, and renders as
markup in a template."""

from django.template import Context, Template

from annotate.charts import bar_chart, interval_chart, loss_chart, metrics_chart, rate_chart

EVIL = '<script>alert(1)</script>" onload="x'


def point(label, kind, accuracy, log_loss):
    return {
        "label": label,
        "kind": kind,
        "kind_label": kind.title(),
        "accuracy": accuracy,
        "log_loss": log_loss,
    }


def test_every_chart_escapes_its_text():
    charts = [
        bar_chart([EVIL, "b"], [1, 2], title=EVIL),
        rate_chart([(EVIL, 0.5, False), ("b", None, False)], title=EVIL, reference=0.5),
        interval_chart([(EVIL, 1000.0, 980.0, 1020.0)], title=EVIL),
        metrics_chart([point(EVIL, "training", 0.8, 0.5), point("v2", "reevaluation", 0.7, None)]),
    ]
    for chart in charts:
        assert chart.startswith("<svg") and chart.endswith("</svg>")
        assert "<script>" not in chart and '" onload="' not in chart
        assert "&lt;script&gt;" in chart


def test_a_chart_is_markup_in_a_template_and_text_is_not():
    chart = metrics_chart([point("v1", "training", 0.9, 0.3)])
    html = Template("{{ chart }}|{{ text }}").render(Context({"chart": chart, "text": "<b>"}))
    assert html.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="metrics-chart"')
    assert html.endswith("|&lt;b&gt;")


def test_the_metrics_chart_marks_training_filled_and_reevaluations_hollow():
    chart = metrics_chart(
        [point("v1", "training", 0.9, 0.3), point("v1", "reevaluation", 0.85, 0.35)]
    )
    assert chart.count('data-series="accuracy"') == 2 and chart.count('data-series="log_loss"') == 2
    assert 'fill="white" data-series="accuracy"' in chart
    assert metrics_chart([]) == ""


def test_the_loss_chart_draws_the_curve_from_zero_to_its_highest_loss():
    chart = loss_chart([[1, 0.7], [2, 0.6], [3, 0.65]])
    assert chart.startswith('<svg xmlns="http://www.w3.org/2000/svg" id="loss-curve"')
    # x from the first step (left edge, 48) to the last (right edge, 632); y from the highest
    # loss (top, 8) down to 0 (bottom, 140).
    assert 'points="48.0,8.0 340.0,26.9 632.0,17.4"' in chart
    assert ">0.700</text>" in chart and ">0.000</text>" in chart and ">step 3</text>" in chart


def test_the_loss_chart_of_a_run_without_points_is_its_empty_frame():
    chart = loss_chart([])
    assert 'id="loss-curve"' in chart and "<polyline" not in chart
    # One point: in the middle, not divided by a zero span.
    assert 'points="340.0,74.0"' in loss_chart([[5, 0.0]])
