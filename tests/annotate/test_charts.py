"""The one chart module: every chart escapes the text it is given, one way, and renders as
markup in a template."""

from django.template import Context, Template

from annotate.charts import bar_chart, interval_chart, metrics_chart, rate_chart

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
