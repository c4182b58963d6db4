"""The report's ``privacy_budget`` section: the accounted epsilon and delta per table and statistic, in total.

Kept apart from the metrics' report code: it reads the run's ``privacy.json`` (see
:mod:`pipelines.stages.budget`), adds it to ``report.json`` and a section to ``report.html``, both atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.manifest import atomic_write_text

_SECTION = """
<section id="privacy-budget">
<h2>Privacy budget</h2>
<p>Differential privacy: epsilon <b>{{ "%.4f"|format(b.epsilon) }}</b> spent of {{ b.budget.epsilon }}
(delta {{ "%.2g"|format(b.delta) }}: {{ "%.2g"|format(b.accountant_delta) }} for the Gaussian mechanisms,
{{ "%.2g"|format(b.selection_delta) }} for thresholded vocabularies), composed by {{ b.accountant }}.
Per-table and per-statistic figures are each composed alone and do not add up to the total.</p>
<table>
<tr><th>table</th><th>statistic</th><th>epsilon</th><th>releases</th><th>noise multiplier</th><th>mechanism</th></tr>
{% for table, t in b.tables.items() %}
<tr><td><b>{{ table }}</b></td><td>all</td><td><b>{{ "%.4f"|format(t.epsilon) }}</b></td><td></td><td></td><td></td></tr>
{% for stat, s in t.statistics.items() %}
<tr><td></td><td>{{ stat }}</td><td>{{ "%.4f"|format(s.epsilon) }}</td><td>{{ s.releases }}</td>
<td>{{ "%.2f"|format(s.noise_multiplier) }}</td><td>{{ s.mechanism }}</td></tr>
{% endfor %}
{% endfor %}
</table>
{% if b.public %}<p>Declared public (exact, not charged): {{ b.public|join(", ") }}</p>{% endif %}
<p>Not covered by the budget:</p>
<ul>{% for item in b.not_covered %}<li>{{ item }}</li>{% endfor %}</ul>
</section>
"""


def budget_html(budget: dict[str, Any]) -> str:
    """The HTML section (autoescaped: table names may hold HTML characters)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_SECTION).render(b={**budget, "public": budget.get("public", [])})


def attach_privacy_budget(out_dir: Path, budget: dict[str, Any]) -> None:
    """Add ``privacy_budget`` to ``out_dir/report.json`` and its section to ``out_dir/report.html``."""
    section = {k: v for k, v in budget.items() if k != "allocation"}
    attach_section(out_dir, "privacy_budget", section, budget_html(section))


def attach_section(out_dir: Path, key: str, value: Any, html_block: str) -> None:
    """Add ``key: value`` to ``out_dir/report.json`` and ``html_block`` before the end of ``report.html``
    (each only where the file exists, atomically): sections computed after the metrics' report is written."""
    json_path = out_dir / "report.json"
    if json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
        report[key] = value
        atomic_write_text(json_path, json.dumps(report, indent=2, default=str))
    html_path = out_dir / "report.html"
    if html_path.exists():
        page = html_path.read_text(encoding="utf-8")
        page = page.replace("</body>", html_block + "</body>", 1) if "</body>" in page else page + html_block
        atomic_write_text(html_path, page)
