"""The report's ``rebalance`` section: per rebalanced column, the shares wanted, reached and real.

Like :mod:`pipelines._internal.report_budget`, it is added to ``report.json`` and ``report.html`` (atomically)
after the metrics' report is written, from what the generate stage measured on the run's Parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines._internal.report_budget import attach_section

_SECTION = """
<section id="rebalance">
<h2>Rebalanced columns</h2>
<p>Shares set by <code>generation.rebalance</code>: the rest of each row, and its children, follow the model.</p>
<table>
<tr><th>column</th><th>value</th><th>wanted</th><th>reached</th><th>real</th></tr>
{% for key, values in r.items() %}{% for value, s in values.items() %}
<tr><td>{{ key }}</td><td>{{ value }}</td><td>{{ "%.1f%%"|format(100 * s.wanted) }}</td>
<td>{{ "%.1f%%"|format(100 * s.get("reached", 0)) }}</td><td>{{ "%.1f%%"|format(100 * s.get("real", 0)) }}</td></tr>
{% endfor %}{% endfor %}
</table>
</section>
"""


def attach_rebalance(out_dir: Path, summary: dict[str, Any]) -> None:
    """Add ``rebalance`` to ``out_dir/report.json`` and its section to ``out_dir/report.html``."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    attach_section(out_dir, "rebalance", summary, env.from_string(_SECTION).render(r=summary))
