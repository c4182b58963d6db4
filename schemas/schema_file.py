"""The editable schema file: a YAML that explains itself, and its strict loader.

``synthdb inspect`` writes it; the user edits it (override a kind, exclude a table or column, accept a proposed
foreign key, choose a context parent); ``synthdb run --schema-file`` loads it. Loading checks everything and raises
*one* :class:`~schemas.errors.SchemaError` that lists every problem with the file, line, table and column.

Every kind loaded from a file counts as the user's (its ``kind_reason`` starts with ``"user:"``), so inference never
changes it afterwards. :func:`merge_overrides` re-applies an edited file to a freshly reflected schema.
"""

from __future__ import annotations

import difflib
import io
import logging
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from schemas.errors import SchemaError
from schemas.inference import USER_PREFIX
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, Table
from schemas.profile import TableProfile

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1

Proposal = tuple[str, ForeignKey, str]
"""A proposed virtual foreign key: (child table, the key, why)."""

_HEADER_TITLE = (
    "synthdb schema file (format {version}). "
    "Written by `synthdb inspect`; edit it, then pass it to `synthdb run`."
)
_HEADER_ITEMS = (
    (
        "kind: how a column is modelled. Override it by writing another kind; the comment after each kind says "
        "why it was chosen (a kind read from this file is always kept). Kinds: {kinds}."
    ),
    "PII kinds ({pii}) are never learned: they are generated as realistic fakes. `id` columns are generated too.",
    "excluded: true on a table or a column leaves it out (an excluded column must be nullable or have a default).",
    (
        "foreign_keys: add keys the database does not declare, with `virtual: true`. Proposed ones are written "
        "commented out under their table's foreign_keys: remove the leading '# ' of their lines to accept one."
    ),
    "context: the foreign key name or parent table a child table is conditioned on (default: the plan's choice).",
    (
        "mode: synthesize (the default), keep or subset: a kept table's real rows are copied as they are (a public "
        "lookup table), and synthesized children are conditioned on them and wired to them; a subset table copies "
        "a referentially closed subset of its real rows (seeded by generation.tables.<t>.share or rows). Tables "
        "where keep is proposed say so in a comment after their mode. On a column, mode: keep copies its real "
        "values and conditions the table's synthesized columns on them."
    ),
    "Leave name, type, nullable, primary_key and unique as they are: they come from the database.",
)

_TOP_KEYS = ("version", "dialect", "db_schema", "tables")
_TABLE_KEYS = (
    "name",
    "db_schema",
    "row_count",
    "excluded",
    "context",
    "mode",
    "columns",
    "primary_key",
    "unique",
    "foreign_keys",
    "checks",
)
_COLUMN_KEYS = ("name", "type", "nullable", "kind", "default", "native_type", "excluded", "autoincrement", "mode")
_FK_KEYS = ("columns", "references", "virtual", "name")
_REF_KEYS = ("table", "columns")
_KEY_KEYS = ("columns", "name")
_CHECK_KEYS = ("sqltext", "name")
_STATS_NOTE = re.compile(r"\s*\[[^\]]*\bsample\]\s*$")


# ---------------------------------------------------------------------------------------------------------------
# Writing


def save_schema(
    schema: DatabaseSchema,
    path: Path,
    *,
    proposals: Sequence[Proposal] = (),
    profiles: dict[str, TableProfile] | None = None,
) -> None:
    """Write the schema file (atomically: a temporary file, then a rename).

    Args:
        schema: the schema to write, normally with kinds inferred.
        path: where to write it.
        proposals: proposed virtual foreign keys, written commented out under their tables.
        profiles: when given, each kind's comment also quotes the sample's null share and distinct count.
    """
    path = Path(path)
    text = dump_schema_yaml(schema, proposals=proposals, profiles=profiles)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    logger.info(
        "wrote schema file %s (%d tables, %d proposed foreign keys)", path, len(schema.tables), len(proposals)
    )


def dump_schema_yaml(
    schema: DatabaseSchema,
    *,
    proposals: Sequence[Proposal] = (),
    profiles: dict[str, TableProfile] | None = None,
) -> str:
    """The schema file's text (see :func:`save_schema`)."""
    root = CommentedMap()
    root["version"] = FORMAT_VERSION
    root["dialect"] = schema.dialect
    root["db_schema"] = schema.db_schema
    tables = CommentedSeq()
    from schemas.inference import lookup_tables

    lookups = lookup_tables(schema)
    for t in schema.tables:
        mine = [(fk, why) for child, fk, why in proposals if child == t.name]
        tables.append(_table_node(t, mine, (profiles or {}).get(t.name), lookups.get(t.name)))
    root["tables"] = tables
    root.yaml_set_start_comment(_header())
    buf = io.StringIO()
    _yaml().dump(root, buf)
    return buf.getvalue()


def _header() -> str:
    kinds = ", ".join(k.value for k in Kind)
    pii = ", ".join(k.value for k in Kind if k.is_pii)
    lines = [_HEADER_TITLE.format(version=FORMAT_VERSION), "", "How to edit:"]
    for item in _HEADER_ITEMS:
        text = item.format(kinds=kinds, pii=pii)
        lines.extend(textwrap.wrap(text, width=108, initial_indent="  - ", subsequent_indent="    "))
    return "\n".join(lines)


def _yaml() -> YAML:
    yaml = YAML()  # round-trip mode: keeps comments and gives line numbers on load
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a long comment or default expression
    return yaml


def _flow(items: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _flow_map(**items: Any) -> CommentedMap:
    node = CommentedMap(items)
    node.fa.set_flow_style()
    return node


def _key_node(columns: list[str], name: str | None) -> CommentedSeq | CommentedMap:
    return _flow_map(columns=_flow(list(columns)), name=name) if name else _flow(list(columns))


def _table_node(
    t: Table, proposals: list[tuple[ForeignKey, str]], profile: TableProfile | None, lookup: str | None = None
) -> CommentedMap:
    node = CommentedMap()
    node["name"] = t.name
    node["db_schema"] = t.db_schema
    node["row_count"] = t.row_count
    node["excluded"] = t.excluded
    node["context"] = t.context
    node["mode"] = t.mode
    if lookup is not None and t.mode != "keep":
        node.yaml_add_eol_comment(f"proposed: keep ({lookup}); write keep to copy its real rows", "mode")
    cols = CommentedSeq()
    for c in t.columns:
        cols.append(_column_node(c, profile))
    node["columns"] = cols
    node["primary_key"] = _key_node(t.primary_key.columns, t.primary_key.name) if t.primary_key else None
    node["unique"] = CommentedSeq([_key_node(u.columns, u.name) for u in t.unique])
    fks = CommentedSeq()
    for fk in t.foreign_keys:
        fk_node = CommentedMap()
        fk_node["columns"] = _flow(list(fk.columns))
        fk_node["references"] = _flow_map(table=fk.ref_table, columns=_flow(list(fk.ref_columns)))
        fk_node["virtual"] = fk.virtual
        if fk.name:
            fk_node["name"] = fk.name
        fks.append(fk_node)
    # With proposals and no declared key, `foreign_keys:` stays empty (null) so uncommented items form its list.
    node["foreign_keys"] = fks if fks or not proposals else None
    node["checks"] = CommentedSeq(
        [
            _flow_map(sqltext=ck.sqltext, name=ck.name) if ck.name else _flow_map(sqltext=ck.sqltext)
            for ck in t.checks
        ]
    )
    if proposals:
        lines: list[str] = []
        for fk, why in proposals:
            lines.append(f"- columns: {_flow_text(fk.columns)}  # proposed: {_one_line(why)}")
            lines.append(
                f"  references: {{table: {_scalar(fk.ref_table)}, columns: {_flow_text(fk.ref_columns)}}}"
            )
            lines.append("  virtual: true")
        # Indented like the items of foreign_keys (6), so uncommenting yields list items in the right place.
        node.yaml_set_comment_before_after_key("checks", before="\n".join(lines), indent=6)
    return node


def _column_node(c: Column, profile: TableProfile | None) -> CommentedMap:
    node = CommentedMap()
    node["name"] = c.name
    node["type"] = c.type
    node["nullable"] = c.nullable
    node["kind"] = c.kind.value
    for key in ("default", "native_type"):
        if getattr(c, key) is not None:
            node[key] = getattr(c, key)
    if c.excluded:
        node["excluded"] = True
    if c.autoincrement:
        node["autoincrement"] = True
    if c.mode != "synthesize":
        node["mode"] = c.mode
    reason = c.kind_reason or ""
    if reason.startswith(USER_PREFIX):
        reason = reason[len(USER_PREFIX) :].strip()
    cprof = profile.columns.get(c.name) if profile is not None else None
    if cprof is not None and cprof.sample_rows:
        reason = _STATS_NOTE.sub("", reason)
        reason += f" [{cprof.null_share * 100:.0f}% null, {cprof.distinct_count} distinct in sample]"
    if reason:
        node.yaml_add_eol_comment(_one_line(reason), "kind")
    return node


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _scalar(value: str) -> str:
    """A YAML scalar for a name, quoted only when plain style would misread it."""
    return _flow_text([value])[1:-1]


def _flow_text(items: Sequence[str]) -> str:
    buf = io.StringIO()
    yaml = YAML()
    yaml.width = 4096
    yaml.default_flow_style = True
    yaml.dump(list(items), buf)
    return buf.getvalue().strip()


# ---------------------------------------------------------------------------------------------------------------
# Reading


def load_schema(path: Path) -> DatabaseSchema:
    """Load and validate a schema file.

    Raises:
        SchemaError: listing every problem at once, each naming the file and line, the table and the column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"schema file {path} does not exist; run `synthdb inspect` to write one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"schema file {path} cannot be read: {exc}") from None
    return parse_schema_yaml(text, source=str(path))


def parse_schema_yaml(text: str, *, source: str = "<schema file>") -> DatabaseSchema:
    """Parse and validate a schema file's text; ``source`` names it in messages (see :func:`load_schema`)."""
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SchemaError(
            f"{source}{line}: not valid YAML: {what}; fix the syntax there (indentation, a missing ':' or bracket)",
            header=f"The schema file {source} cannot be read",
        ) from None
    except YAMLError as exc:
        raise SchemaError(
            f"{source}: not valid YAML: {exc}", header=f"The schema file {source} cannot be read"
        ) from None
    reader = _Reader(source)
    schema = reader.read(data)
    problems = list(reader.problems)
    if schema is not None:
        for problem in schema.problems():
            problems.append(reader.locate(problem))
    if problems:
        raise SchemaError(problems, header=f"The schema file {source} has problems")
    assert schema is not None
    return schema


class _Reader:
    """Walks the loaded YAML, collecting every problem (with its line) instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.table_lines: dict[str, int] = {}
        self.dropped = False  # an entry was unreadable and left out: model-level checks would mislead

    def at(self, line: int | None, where: str, message: str) -> None:
        loc = f"{self.source}:{line + 1}" if line is not None else self.source
        self.problems.append(f"{loc}: {where}{': ' if where else ''}{message}")

    def locate(self, problem: str) -> str:
        """Prefix a model-level problem with the file and the line of the table it names."""
        match = re.match(r"table '((?:[^'\\]|\\.)*)'", problem)
        line = self.table_lines.get(match.group(1)) if match else None
        loc = f"{self.source}:{line + 1}" if line is not None else self.source
        return f"{loc}: {problem}"

    # -- structure helpers ------------------------------------------------------------------------------------

    def keys(
        self, node: dict[str, Any], allowed: Sequence[str], where: str, required: Sequence[str] = ()
    ) -> None:
        for key in node:
            if key not in allowed:
                guess = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {guess[0]!r}? " if guess else ""
                self.at(
                    _key_line(node, key),
                    where,
                    f"unknown key {key!r}; {hint}allowed keys: {', '.join(allowed)}",
                )
        for key in required:
            if key not in node:
                self.at(_line(node), where, f"missing required key {key!r}")

    def typed(self, node: dict[str, Any], key: str, types: tuple[type, ...], where: str, what: str) -> Any:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types)
        if not ok:
            self.at(_key_line(node, key), where, f"{key} must be {what}, got {value!r}")
            return None
        return value

    def names(self, node: Any, line: int | None, where: str, what: str) -> list[str] | None:
        if isinstance(node, list) and node and all(isinstance(n, str) for n in node):
            return [str(n) for n in node]
        self.at(line, where, f"{what} must be a non-empty list of column names, got {_show(node)}")
        return None

    def key(self, node: Any, line: int | None, where: str, what: str) -> dict[str, Any] | None:
        """A key written as ``[a, b]`` or ``{columns: [a, b], name: x}``."""
        parsed = self._key(node, line, where, what)
        if parsed is None:
            self.dropped = True
        return parsed

    def _key(self, node: Any, line: int | None, where: str, what: str) -> dict[str, Any] | None:
        if isinstance(node, dict):
            self.keys(node, _KEY_KEYS, where, required=("columns",))
            cols = self.names(node.get("columns"), line, where, f"{what} columns")
            name = node.get("name")
            if name is not None and not isinstance(name, str):
                self.at(line, where, f"{what} name must be text, got {name!r}")
                name = None
            return {"columns": cols, "name": name} if cols is not None else None
        cols = self.names(node, line, where, what)
        return {"columns": cols} if cols is not None else None

    # -- the document -----------------------------------------------------------------------------------------

    def read(self, data: Any) -> DatabaseSchema | None:
        if not isinstance(data, dict):
            self.at(None, "", f"the file must hold a mapping with {', '.join(_TOP_KEYS)}; got {_show(data)}")
            return None
        self.keys(data, _TOP_KEYS, "top level", required=("tables",))
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            self.at(
                _key_line(data, "version"), "top level", f"version must be {FORMAT_VERSION}, got {version!r}"
            )
        dialect = self.typed(data, "dialect", (str,), "top level", "text")
        db_schema = self.typed(data, "db_schema", (str,), "top level", "text")
        raw_tables = data.get("tables")
        if not isinstance(raw_tables, list):
            if "tables" in data:
                self.at(
                    _key_line(data, "tables"), "top level", f"tables must be a list, got {_show(raw_tables)}"
                )
            return None
        tables: list[dict[str, Any]] = []
        for i, raw in enumerate(raw_tables):
            table = self.table(raw, _item_line(raw_tables, i), i)
            if table is not None:
                tables.append(table)
        if self.dropped:
            return None  # a table or column could not be read: model checks would only echo that
        try:
            return DatabaseSchema.model_validate(
                {"tables": tables, "dialect": dialect, "db_schema": db_schema}
            )
        except ValidationError as exc:  # a shape the checks above missed: still one readable report
            for err in exc.errors():
                self.at(
                    None,
                    "",
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})",
                )
            return None

    def table(self, raw: Any, line: int | None, index: int) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.at(line, f"table #{index + 1}", f"must be a mapping with name and columns, got {_show(raw)}")
            self.dropped = True
            return None
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            self.at(line, f"table #{index + 1}", f"name must be the table's name, got {_show(name)}")
            name = f"#{index + 1}"
            self.dropped = True
        else:
            table_line = _line(raw)
            self.table_lines.setdefault(name, table_line if table_line is not None else line or 0)
        where = f"table {name!r}"
        self.keys(raw, _TABLE_KEYS, where, required=("columns",))
        out: dict[str, Any] = {"name": name}
        for key, types, what in (
            ("db_schema", (str,), "text"),
            ("context", (str,), "a foreign key name or parent table"),
            ("mode", (str,), "synthesize, keep or subset"),
            ("excluded", (bool,), "true or false"),
            ("row_count", (int,), "a whole number"),
        ):
            value = self.typed(raw, key, types, where, what)
            if value is not None:
                out[key] = value
        if isinstance(out.get("row_count"), int) and out["row_count"] < 0:
            self.at(
                _key_line(raw, "row_count"), where, f"row_count must be 0 or more, got {out['row_count']}"
            )
            del out["row_count"]

        raw_cols = raw.get("columns")
        columns: list[dict[str, Any]] = []
        if not isinstance(raw_cols, list) or not raw_cols:
            if "columns" in raw:
                self.at(
                    _key_line(raw, "columns"),
                    where,
                    f"columns must be a non-empty list, got {_show(raw_cols)}",
                )
            self.dropped = True
        else:
            for i, col in enumerate(raw_cols):
                parsed = self.column(col, _item_line(raw_cols, i), name, i)
                if parsed is not None:
                    columns.append(parsed)
        out["columns"] = columns

        if raw.get("primary_key") is not None:
            pk = self.key(raw["primary_key"], _key_line(raw, "primary_key"), where, "primary_key")
            if pk is not None:
                out["primary_key"] = pk
        out["unique"] = []
        for i, u in enumerate(self.seq(raw, "unique", where)):
            parsed = self.key(u, _item_line(raw["unique"], i), where, f"unique constraint #{i + 1}")
            if parsed is not None:
                out["unique"].append(parsed)
        out["foreign_keys"] = []
        for i, fk in enumerate(self.seq(raw, "foreign_keys", where)):
            parsed = self.foreign_key(fk, _item_line(raw["foreign_keys"], i), where, i)
            if parsed is not None:
                out["foreign_keys"].append(parsed)
        self.duplicate_keys(out, where, _key_line(raw, "foreign_keys"))
        out["checks"] = []
        for i, ck in enumerate(self.seq(raw, "checks", where)):
            line_i = _item_line(raw["checks"], i)
            if not isinstance(ck, dict) or not isinstance(ck.get("sqltext"), str):
                self.at(line_i, where, f"check #{i + 1} must be {{sqltext: ..., name: ...}}, got {_show(ck)}")
                continue
            self.keys(ck, _CHECK_KEYS, f"{where}, check #{i + 1}")
            out["checks"].append({"sqltext": ck["sqltext"], "name": ck.get("name")})
        if out.get("mode") not in (None, "synthesize", "keep", "subset"):
            self.at(
                _key_line(raw, "mode"), where, f"mode must be synthesize, keep or subset, got {_show(out['mode'])}"
            )
            out.pop("mode")
        if out.get("context") is not None and not out["foreign_keys"]:
            self.at(
                _key_line(raw, "context"),
                where,
                f"context {out['context']!r} is set but the table has no foreign keys; remove it or add the key",
            )
        return out

    def seq(self, raw: dict[str, Any], key: str, where: str) -> list[Any]:
        value = raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.at(_key_line(raw, key), where, f"{key} must be a list, got {_show(value)}")
            return []
        return value

    def column(self, raw: Any, line: int | None, table: str, index: int) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.at(
                line,
                f"table {table!r}, column #{index + 1}",
                f"must be a mapping with name and type, got {_show(raw)}",
            )
            self.dropped = True
            return None
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            where = f"table {table!r}, column #{index + 1}"
            self.at(line, where, f"name must be the column's name, got {_show(name)}")
            name = None
        else:
            where = f"table {table!r}, column {name!r}"
        self.keys(raw, _COLUMN_KEYS, where, required=("name", "type"))
        out: dict[str, Any] = {"name": name}
        ctype = raw.get("type")
        if "type" in raw and not isinstance(ctype, str):
            self.at(
                _key_line(raw, "type"),
                where,
                f"type must be a SQL type such as INTEGER or VARCHAR(20), got {ctype!r}",
            )
        out["type"] = ctype
        for key in ("nullable", "excluded", "autoincrement"):
            value = self.typed(raw, key, (bool,), where, "true or false")
            if value is not None:
                out[key] = value
        for key in ("default", "native_type"):
            value = raw.get(key)
            if value is not None:
                if isinstance(value, (dict, list)):
                    self.at(_key_line(raw, key), where, f"{key} must be text, got {_show(value)}")
                else:
                    out[key] = str(value)  # a bare `default: 0` means the text "0"
        if "kind" in raw:
            kind = raw.get("kind")
            valid = [k.value for k in Kind]
            if kind not in valid:
                guess = difflib.get_close_matches(str(kind), valid, n=1)
                hint = f"did you mean {guess[0]!r}? " if guess else ""
                self.at(
                    _key_line(raw, "kind"),
                    where,
                    f"unknown kind {kind!r}; {hint}valid kinds: {', '.join(valid)}",
                )
            else:
                out["kind"] = kind
                out["kind_reason"] = _user_reason(_eol_comment(raw, "kind"))
        if "mode" in raw:
            if raw["mode"] in ("synthesize", "keep"):
                out["mode"] = raw["mode"]
            else:
                self.at(
                    _key_line(raw, "mode"), where, f"a column's mode must be synthesize or keep, got {_show(raw['mode'])}"
                )
        if name is None or not isinstance(ctype, str):
            self.dropped = True
            return None
        return out

    def foreign_key(self, raw: Any, line: int | None, where: str, index: int) -> dict[str, Any] | None:
        label = f"{where}, foreign key #{index + 1}"
        if not isinstance(raw, dict):
            self.at(
                line,
                label,
                f"must be {{columns: [...], references: {{table: ..., columns: [...]}}}}, got {_show(raw)}",
            )
            return None
        self.keys(raw, _FK_KEYS, label, required=("columns", "references"))
        cols = self.names(raw.get("columns"), _key_line(raw, "columns") or line, label, "columns")
        ref = raw.get("references")
        ref_table, ref_cols = None, None
        if isinstance(ref, dict):
            self.keys(ref, _REF_KEYS, f"{label} references", required=("table", "columns"))
            ref_table = ref.get("table")
            if not isinstance(ref_table, str):
                self.at(
                    _key_line(raw, "references"),
                    label,
                    f"references.table must be a table name, got {_show(ref_table)}",
                )
                ref_table = None
            ref_cols = self.names(
                ref.get("columns"), _key_line(raw, "references"), label, "references.columns"
            )
        elif "references" in raw:
            self.at(
                _key_line(raw, "references"),
                label,
                f"references must be {{table: ..., columns: [...]}}, got {_show(ref)}",
            )
        virtual = self.typed(raw, "virtual", (bool,), label, "true or false")
        name = self.typed(raw, "name", (str,), label, "text")
        if cols is None or ref_table is None or ref_cols is None:
            self.dropped = True
            return None
        return {
            "columns": cols,
            "ref_table": ref_table,
            "ref_columns": ref_cols,
            "virtual": bool(virtual),
            "name": name,
        }

    def duplicate_keys(self, table: dict[str, Any], where: str, line: int | None) -> None:
        seen: set[tuple[tuple[str, ...], str, tuple[str, ...]]] = set()
        for fk in table["foreign_keys"]:
            sig = (tuple(fk["columns"]), fk["ref_table"], tuple(fk["ref_columns"]))
            if sig in seen:
                self.at(
                    line,
                    where,
                    f"foreign key ({', '.join(sig[0])}) -> {sig[1]}({', '.join(sig[2])}) is declared twice; keep one",
                )
            seen.add(sig)


def _line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return lc.line if lc is not None else None


def _key_line(node: Any, key: Any) -> int | None:
    try:
        return int(node.lc.key(key)[0])
    except (AttributeError, KeyError, TypeError):
        return _line(node)


def _item_line(seq: Any, index: int) -> int | None:
    try:
        return int(seq.lc.item(index)[0])
    except (AttributeError, KeyError, TypeError, IndexError):
        return _line(seq)


def _eol_comment(node: Any, key: str) -> str | None:
    entry = node.ca.items.get(key)
    if not entry or len(entry) < 3 or entry[2] is None:
        return None
    text = str(entry[2].value).split("\n", 1)[0].strip()
    return text.lstrip("#").strip() or None


def _user_reason(comment: str | None) -> str:
    text = _STATS_NOTE.sub("", comment or "").strip()
    if text.startswith(USER_PREFIX):
        text = text[len(USER_PREFIX) :].strip()
    return f"{USER_PREFIX} {text}" if text else f"{USER_PREFIX} set in the schema file"


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


# ---------------------------------------------------------------------------------------------------------------
# Re-applying a user's file


def merge_overrides(reflected: DatabaseSchema, edited: DatabaseSchema) -> DatabaseSchema:
    """Re-apply a user's edited schema file to a freshly reflected schema.

    The database stays the truth for tables, columns, types, nullability and declared keys. The file wins for
    what the user decides: kinds (marked as the user's), excluded tables and columns, context parents and virtual
    foreign keys. Differences are logged as warnings: new tables or columns (added with their inferred or
    reflected kind), and tables, columns or virtual keys in the file that the database no longer has (dropped).

    Args:
        reflected: the schema as the database reports it now (kinds possibly inferred).
        edited: the schema loaded from the user's file.

    Returns:
        The merged schema; not validated (call ``validate_all`` on it).
    """
    edited_tables = {t.name: t for t in edited.tables}
    reflected_names = {t.name for t in reflected.tables}
    for gone in sorted(set(edited_tables) - reflected_names):
        logger.warning("schema file names table %r, which the database no longer has; it is dropped", gone)
    tables: list[Table] = []
    for t in reflected.tables:
        mine = edited_tables.get(t.name)
        if mine is None:
            logger.warning(
                "table %r is new in the database (not in the schema file); it is added as reflected", t.name
            )
            tables.append(t)
            continue
        tables.append(_merge_table(t, mine, reflected_names))
    return reflected.model_copy(update={"tables": tables})


def check_against(reflected: DatabaseSchema, edited: DatabaseSchema, *, source: str) -> None:
    """Refuse a schema file that names tables or columns the database does not have, listing all of them.

    A file used instead of reflecting (``--schema``) must describe the database: a misspelt or dropped table or
    column would otherwise fail later, inside a query. Tables and columns of the database that the file leaves
    out are fine (they are not part of the run).

    Raises:
        SchemaError: one line per unknown table or column, each with the closest name and the fix.
    """
    import difflib

    problems: list[str] = []
    tables = {t.name: t for t in reflected.tables}
    for t in edited.tables:
        real = tables.get(t.name)
        if real is None:
            near = difflib.get_close_matches(t.name, list(tables), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            problems.append(
                f"table {t.name!r} is not in the database ({hint}tables: {', '.join(tables) or 'none'}); "
                "fix its name, or remove it from the file (`synthdb inspect` writes a fresh one)"
            )
            continue
        names = [c.name for c in real.columns]
        for c in t.columns:
            if c.name not in names:
                near = difflib.get_close_matches(c.name, names, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                problems.append(
                    f"table {t.name!r}, column {c.name!r} is not in the database ({hint}columns: "
                    f"{', '.join(names)}); fix its name, or remove it from the file"
                )
    if problems:
        raise SchemaError(problems, header=f"The schema file does not match the database {source}")


def _merge_table(t: Table, mine: Table, tables: set[str]) -> Table:
    mine_cols = {c.name: c for c in mine.columns}
    columns: list[Column] = []
    for col in t.columns:
        edit = mine_cols.get(col.name)
        if edit is None:
            logger.warning(
                "column %s.%s is new in the database (not in the schema file); added with kind %s",
                t.name,
                col.name,
                col.kind.value,
            )
            columns.append(col)
            continue
        reason = edit.kind_reason or ""
        if not reason.startswith(USER_PREFIX):
            reason = f"{USER_PREFIX} {reason}".strip()
        columns.append(
            col.model_copy(
                update={"kind": edit.kind, "kind_reason": reason, "excluded": edit.excluded, "mode": edit.mode}
            )
        )
    for gone in sorted(set(mine_cols) - {c.name for c in t.columns}):
        logger.warning(
            "schema file names column %s.%s, which the database no longer has; it is dropped", t.name, gone
        )
    names = {c.name for c in t.columns}
    declared = {(tuple(fk.columns), fk.ref_table, tuple(fk.ref_columns)) for fk in t.foreign_keys}
    fks = list(t.foreign_keys)
    for fk in mine.foreign_keys:
        sig = (tuple(fk.columns), fk.ref_table, tuple(fk.ref_columns))
        if not fk.virtual or sig in declared:
            continue
        if fk.ref_table not in tables or not all(c in names for c in fk.columns):
            logger.warning(
                "virtual foreign key %s%s no longer fits the database; it is dropped", t.name, fk.label
            )
            continue
        fks.append(fk)
    merged = t.model_copy(
        update={"columns": columns, "excluded": mine.excluded, "context": mine.context, "mode": mine.mode}
    )
    # Rebuild through validation so the foreign keys' nullability follows the (database's) columns.
    return Table.model_validate({**merged.model_dump(), "foreign_keys": [fk.model_dump() for fk in fks]})
