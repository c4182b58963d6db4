"""The report page: one Jinja2 template with its CSS inline, autoescaped (table and column names may hold ``<``)."""

from __future__ import annotations

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="synthdb report v{{ version }}">
<title>{{ title }}</title>
<style>
  :root { --pass: #1a7f37; --warn: #b35900; --na: #6e7781; --line: #d0d7de; --muted: #57606a; }
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328;
         background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 18px 32px; }
  header h1 { margin: 0 0 4px 0; font-size: 22px; }
  header .meta { color: #c9d1d9; font-size: 13px; }
  main { max-width: 1280px; margin: 0 auto; padding: 16px 32px 48px 32px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 20px;
            margin: 16px 0; }
  h2 { font-size: 18px; margin: 6px 0 12px 0; }
  h3 { font-size: 15px; margin: 18px 0 6px 0; }
  table.grid { border-collapse: collapse; font-size: 13px; }
  table.grid th, table.grid td { border-bottom: 1px solid var(--line); padding: 5px 12px; text-align: left; }
  table.grid td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .badge { display: inline-block; padding: 1px 10px; border-radius: 10px; color: #fff; font-weight: 600;
           font-size: 12px; }
  .pass { background: var(--pass); } .warn { background: var(--warn); } .na { background: var(--na); }
  .muted { color: var(--muted); font-size: 13px; }
  ul.notes { font-size: 13px; color: var(--muted); }
  .plot { margin: 4px 0 12px 0; }
  nav a { margin-right: 14px; font-size: 13px; }
</style>
<script type="text/javascript">{{ plotly_js }}</script>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <div class="meta">generated {{ generated_at }} · {{ seconds }} s
  {%- for label, value in sources %} · {{ label }}: {{ value }}{% endfor %}</div>
</header>
<main>
<nav>
  <a href="#headline">headline</a><a href="#tables">tables</a><a href="#distributions">distributions</a>
  <a href="#correlations">correlations</a><a href="#cardinality">children per parent</a>
  <a href="#privacy">privacy</a><a href="#notes">notes</a>
</nav>

<section id="headline">
  <h2>Headline</h2>
  <table class="grid">
    <tr><th>score</th><th>value</th><th>95% CI</th><th>threshold</th><th>status</th><th>what it measures</th></tr>
    {%- for row in headline %}
    <tr>
      <td>{{ row.name }}</td>
      <td class="num">{{ row.score }}</td>
      <td class="num">{{ row.ci }}</td>
      <td class="num">{{ row.bound }}</td>
      <td><span class="badge {{ row.css }}">{{ row.status }}</span></td>
      <td class="muted">{{ row.help }}{% if row.warn_means %}<br>past the threshold: {{ row.warn_means }}{% endif %}
        {%- if row.reason %}<br>n/a: {{ row.reason }}{% endif %}</td>
    </tr>
    {%- endfor %}
  </table>
  <p class="muted">{{ holdout_note }}</p>
  {%- if not_computed %}
  <h3>Not computed</h3>
  <p class="muted">These metrics could not be computed on these columns or tables; they are left out of the
    scores above (n/a), and nothing else was affected.</p>
  <table class="grid">
    <tr><th>metric</th><th>where</th><th>reason</th></tr>
    {%- for f in not_computed %}
    <tr><td>{{ f.metric }}</td><td>{{ f.scope }}</td><td class="muted">{{ f.reason }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
</section>

<section id="tables">
  <h2>Tables</h2>
  <table class="grid">
    <tr><th>table</th><th>real rows</th><th>synthetic rows</th><th>column shapes</th><th>pair trends</th>
        <th>detection</th><th>exact copies</th><th>holdout copies</th><th>DCR share</th><th>MIA AUC</th></tr>
    {%- for t in tables %}
    <tr>
      <td>{{ t.name }}</td><td class="num">{{ t.real_rows }}</td><td class="num">{{ t.synthetic_rows }}</td>
      <td class="num">{{ t.column_shapes }}</td><td class="num">{{ t.column_pair_trends }}</td>
      <td class="num">{{ t.detection }}</td><td class="num">{{ t.exact_copies }}</td>
      <td class="num">{{ t.holdout_copies }}</td><td class="num">{{ t.dcr_share }}</td>
      <td class="num">{{ t.mia_auc }}</td>
    </tr>
    {%- endfor %}
  </table>
  {%- if cardinalities %}
  <h3>Foreign keys</h3>
  <table class="grid">
    <tr><th>child</th><th>foreign key</th><th>cardinality score</th><th>mean children (real)</th>
        <th>mean children (synthetic)</th></tr>
    {%- for c in cardinalities %}
    <tr><td>{{ c.child }}</td><td>{{ c.foreign_key }}</td><td class="num">{{ c.score }}</td>
        <td class="num">{{ c.real }}</td><td class="num">{{ c.synthetic }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
  {%- if intertable %}
  <h3>Inter-table trends</h3>
  <table class="grid">
    <tr><th>path</th><th>score</th><th>joined rows (real / synthetic)</th></tr>
    {%- for p in intertable %}
    <tr><td>{{ p.path }}</td><td class="num">{{ p.score }}</td><td class="num">{{ p.rows }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
  {%- if utility %}
  <h3>Machine-learning utility</h3>
  <p class="muted">predicting {{ utility.target }} ({{ utility.task }}, {{ utility.metric }}): trained on real
    {{ utility.real }}, trained on synthetic {{ utility.synthetic }}, ratio {{ utility.ratio }}</p>
  {%- endif %}
</section>

<section id="distributions">
  <h2>Column distributions: real vs synthetic</h2>
  {%- for block in distributions %}
  <h3>{{ block.table }}</h3>
  {%- if block.note %}<p class="muted">{{ block.note }}</p>{% endif %}
  <div class="plot">{{ block.html }}</div>
  {%- else %}
  <p class="muted">No value column to compare.</p>
  {%- endfor %}
</section>

<section id="correlations">
  <h2>Correlations: real | synthetic</h2>
  {%- for block in correlations %}
  <h3>{{ block.table }}</h3>
  <div class="plot">{{ block.html }}</div>
  {%- else %}
  <p class="muted">No table has two numeric or temporal columns, nor a scored column pair.</p>
  {%- endfor %}
</section>

<section id="cardinality">
  <h2>Children per parent, per foreign key</h2>
  {%- if cardinality_html %}
  <div class="plot">{{ cardinality_html }}</div>
  {%- else %}
  <p class="muted">No foreign key between the compared tables.</p>
  {%- endif %}
</section>

<section id="privacy">
  <h2>Privacy: are training rows given away?</h2>
  <p class="muted">Synthetic rows should be no closer to the training rows than fresh real rows (the holdout) are.
    <b>DCR share</b>: of the synthetic rows, the share whose nearest real row is a training row rather than a
    holdout row, with every training and holdout row indexed; chance (the raw share a fresh row shows, the training
    rows' share of all indexed rows) is rescaled to 0.5, so 0.5 is ideal and a generator copying a share f of its
    rows scores 0.5 + f/2. <b>MIA AUC</b>: an attacker holding a real row calls it a training row when some
    synthetic row lies close to it; its AUC on training rows against holdout rows, 0.5 being a coin toss, with
    DeLong's 95% interval. <b>Exact copies</b>: synthetic rows equal to a training row, beyond the share of holdout
    rows that are (fresh data repeats common rows too). A value past its threshold is a warning that the generator
    copies or memorises its training data.</p>
  {%- if privacy_tables %}
  <table class="grid">
    <tr><th>table</th><th>DCR share</th><th>95% CI</th><th>raw / chance</th><th>indexed (training / holdout)</th>
        <th>MIA AUC</th><th>95% CI</th><th>attacked (members / non-members)</th><th>exact copies beyond holdout</th>
        <th>synthetic vs holdout copies</th></tr>
    {%- for t in privacy_tables %}
    <tr><td>{{ t.table }}</td>
        <td class="num"><span class="badge {{ t.dcr.css }}">{{ t.dcr.value }}</span></td>
        <td class="num">{{ t.dcr_ci }}</td><td class="num">{{ t.dcr_raw }}</td><td class="num">{{ t.indexed }}</td>
        <td class="num"><span class="badge {{ t.mia.css }}">{{ t.mia.value }}</span></td>
        <td class="num">{{ t.mia_ci }}</td><td class="num">{{ t.attacked }}</td>
        <td class="num"><span class="badge {{ t.copies.css }}">{{ t.copies.value }}</span></td>
        <td class="num">{{ t.copies_detail }}</td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
  <h3>Distance to the closest training row</h3>
  <p class="muted">The orange histogram (synthetic rows) should not pile up nearer zero than the green one
    (holdout rows).</p>
  {%- if dcr_html %}
  <div class="plot">{{ dcr_html }}</div>
  {%- else %}
  <p class="muted">{{ privacy_missing }}</p>
  {%- endif %}
  {%- if column_copies %}
  <h3>Real values in key-like columns</h3>
  <p class="muted">Per column whose training values are mostly distinct (identifiers, codes, PII, text): the share
    of synthetic values that are real training values, beside the holdout's share and the share random values of
    the same format would hit by chance. The excess over both is the leak; a whole-row copy score misses it when
    the rest of the row is new. Integer keys generated 1..n equal real keys by construction and are not scored
    against the threshold.</p>
  <table class="grid">
    <tr><th>column</th><th>role</th><th>distinct ratio</th><th>synthetic values real</th><th>holdout</th>
        <th>chance</th><th>excess</th><th>status</th></tr>
    {%- for c in column_copies %}
    <tr><td>{{ c.column }}</td><td>{{ c.role }}</td><td class="num">{{ c.ratio }}</td>
        <td class="num">{{ c.share }}</td><td class="num">{{ c.holdout }}</td><td class="num">{{ c.chance }}</td>
        <td class="num">{{ c.excess }}</td><td><span class="badge {{ c.css }}">{{ c.status }}</span></td></tr>
    {%- endfor %}
  </table>
  {%- endif %}
</section>

<section id="notes">
  <h2>Notes</h2>
  <ul class="notes">
  {%- for note in notes %}
    <li>{{ note }}</li>
  {%- else %}
    <li>none</li>
  {%- endfor %}
  </ul>
</section>
</main>
</body>
</html>
"""
