"""Great Expectations suites: bootstrapped from real data, owned by people, run as gates.

`expectations/<ds>.raw.json` is the input contract checked at ingest; `expectations/<ds>.release.json`
is checked on the blended data before release. Both are plain GX 1.x ExpectationSuite JSON.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import InvalidInputError
from pipelines.io import read_json

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.config import SourceConfig
    from pipelines.tableset import Layout

MAX_CATEGORIES = 50
"""String columns with at most this many distinct values get a value-set expectation."""

INTEGER_SHARE = 0.99
"""A numeric column whose non-null values are whole numbers in at least this share is integer-valued,
and the types gate requires the same share of whole numbers in its release. hdma's `mcs` is one:
2,380 of its 2,381 values are whole, one is an imputed 1.721."""

PROVENANCE = "_provenance"
"""Column added by blend: 'synthetic' or 'real' for each released row."""

SYNTHETIC_ROWS = {"row_condition": f'{PROVENANCE}=="synthetic"', "condition_parser": "pandas"}
"""GX arguments restricting an expectation to the synthetic rows (ids are new values there; real
rows added by `augment` keep theirs, which may equal one)."""

TYPE_FAMILIES: dict[str, list[str]] = {
    "integer": ["int64", "Int64", "int32", "Int32", "float64"],
    "float": ["float64", "float32", "int64", "Int64"],
    "boolean": ["bool", "boolean"],
    "datetime": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"],
    "string": ["object", "str", "string"],
}


def type_family(dtype: Any) -> str:
    """The coarse type of a pandas dtype, as the contracts speak of it."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def whole_share(values: pd.Series) -> float | None:
    """Share of a column's non-null values that are whole numbers; None when it holds no numbers."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    present = values.dropna().to_numpy(dtype=float)
    return float(np.mean(present == np.round(present))) if len(present) else None


def _exp(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


def _num(value: Any) -> float | int:
    value = value.item() if hasattr(value, "item") else value
    return int(value) if float(value).is_integer() else float(value)


def build_suite(
    df: pd.DataFrame,
    name: str,
    kind: str,
    identifiers: Collection[str] = (),
    dropped: Collection[str] = (),
    unique: Collection[str] = (),
) -> dict[str, Any]:
    """Bootstrap a suite from real data.

    kind 'raw': the input contract (ranges widened by 10% of their span, row count within
    [n/2, 20n]); kind 'release': what a release must look like (exact real ranges, no new
    categories, no nulls where the real data has none, a provenance column, at least one row).
    `identifiers` (PII, key and id-like columns) get no value set or range (real identifiers never
    reach a suite file, and synthetic ids are new values); in a release the `unique` ones must be
    unique over the synthetic rows (`pipelines.ids`);
    `dropped` columns (PII policy drop) are left out of the release suite.
    """
    n = len(df)
    exps: list[dict[str, Any]] = []
    columns = [c for c in df.columns if not (kind == "release" and c in dropped)]
    if kind == "raw":
        exps.append(_exp("expect_table_row_count_to_be_between", min_value=max(1, n // 2), max_value=max(n * 20, 100)))
        exps.append(_exp("expect_table_columns_to_match_ordered_list", column_list=columns))
    else:
        exps.append(_exp("expect_table_row_count_to_be_between", min_value=1, max_value=None))
        exps.append(_exp("expect_table_columns_to_match_set", column_set=[*columns, PROVENANCE], exact_match=True))
        exps.append(_exp("expect_column_values_to_be_in_set", column=PROVENANCE, value_set=["real", "synthetic"]))
        exps.append(_exp("expect_column_values_to_not_be_null", column=PROVENANCE))
    for col in columns:
        s = df[col]
        family = type_family(s.dtype)
        exps.append(_exp("expect_column_values_to_be_in_type_list", column=col, type_list=TYPE_FAMILIES[family]))
        null_rate = float(s.isna().mean())
        if null_rate == 0:
            exps.append(_exp("expect_column_values_to_not_be_null", column=col))
        elif kind == "raw":
            mostly = max(0.0, round(1 - min(1.0, null_rate * 1.5 + 0.01), 4))
            exps.append(_exp("expect_column_values_to_not_be_null", column=col, mostly=mostly))
        if kind == "release" and col in unique:
            exps.append(_exp("expect_column_values_to_be_unique", column=col, **SYNTHETIC_ROWS))
        nonnull = s.dropna()
        if nonnull.empty or col in identifiers:
            continue
        if family in ("integer", "float"):
            lo, hi = nonnull.min(), nonnull.max()
            if kind == "raw":
                pad = (hi - lo) * 0.1
                lo_w = lo - pad if lo < 0 or lo - pad >= 0 else 0
                lo, hi = lo_w, hi + pad
                if family == "integer":
                    lo, hi = math.floor(lo), math.ceil(hi)
            exps.append(_exp("expect_column_values_to_be_between", column=col, min_value=_num(lo), max_value=_num(hi)))
        elif family == "string":
            values = sorted(map(str, nonnull.unique()))
            if len(values) <= MAX_CATEGORIES:
                exps.append(_exp("expect_column_values_to_be_in_set", column=col, value_set=values))
        elif family == "boolean":
            exps.append(_exp("expect_column_values_to_be_in_set", column=col, value_set=[False, True]))
    meta = {
        "synthgate": {
            "kind": kind,
            "bootstrapped_from_rows": n,
            "note": "bootstrapped by `synthgate expectations init`; edit freely",
        }
    }
    return {"name": f"{name}.{kind}", "expectations": exps, "meta": meta}


def load_suite(path: Path) -> dict[str, Any]:
    """Read a suite file, naming it (and the command that creates it) when missing."""
    if not Path(path).is_file():
        ds = Path(path).name.split(".")[0]
        raise InvalidInputError(
            str(path),
            ["expectation suite not found"],
            hint=f"Create it with `synthgate expectations init {ds}` and commit it.",
        )
    suite = read_json(path)
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise InvalidInputError(str(path), ["not a GX ExpectationSuite (needs `expectations`)"])
    return suite


@dataclass(frozen=True)
class GxResult:
    """Outcome of a suite run: overall success and one line per failed expectation."""

    suite: str
    success: bool
    evaluated: int
    successful: int
    failures: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def success_share(self) -> float:
        return self.successful / self.evaluated if self.evaluated else 0.0


_CTX: dict[str, Any] = {}


def _gx() -> Any:
    """Import GX with its import-time INFO chatter (hundreds of lines) silenced."""
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import great_expectations as gx

    return gx


def _batch_definition() -> Any:
    if "bd" not in _CTX:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = ctx.data_sources.add_pandas("synthgate").add_dataframe_asset("frame")
        _CTX["bd"] = asset.add_batch_definition_whole_dataframe("whole")
    return _CTX["bd"]


def _describe(result: dict[str, Any]) -> str:
    cfg = result["expectation_config"]
    kwargs = {k: v for k, v in cfg["kwargs"].items() if k != "batch_id"}
    col = kwargs.pop("column", None)
    res = result.get("result") or {}
    detail = []
    if "observed_value" in res:
        detail.append(f"observed {res['observed_value']!r}")
    if res.get("unexpected_count"):
        detail.append(f"{res['unexpected_count']} unexpected, e.g. {res.get('partial_unexpected_list', [])[:3]}")
    if result.get("exception_info", {}).get("raised_exception"):
        detail.append(str(result["exception_info"].get("exception_message")))
    where = f"column '{col}': " if col else ""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "type_list")
    return f"{where}{cfg['type']}({args}) failed; {'; '.join(detail)}"


def run_suite(df: pd.DataFrame, suite_json: dict[str, Any]) -> GxResult:
    """Validate a DataFrame against a suite with GX Core (ephemeral context)."""
    gx = _gx()

    suite = gx.ExpectationSuite(
        name=suite_json.get("name", "suite"),
        expectations=suite_json["expectations"],
        meta=suite_json.get("meta") or {},
    )
    result = _batch_definition().get_batch(batch_parameters={"dataframe": df}).validate(suite)
    raw = result.to_json_dict()
    results = raw["results"]
    failures = [_describe(r) for r in results if not r["success"]]
    ok = sum(1 for r in results if r["success"])
    return GxResult(
        suite=suite.name,
        success=bool(raw["success"]),
        evaluated=len(results),
        successful=ok,
        failures=failures,
        raw=raw,
    )


def schema_problems(df: pd.DataFrame, suite_json: dict[str, Any]) -> list[str]:
    """Readable schema drift (added, removed, retyped columns) against a raw contract."""
    problems: list[str] = []
    expected_cols: list[str] | None = None
    types: dict[str, list[str]] = {}
    for e in suite_json["expectations"]:
        kw = e.get("kwargs", {})
        if e.get("type") == "expect_table_columns_to_match_ordered_list":
            expected_cols = list(kw.get("column_list", []))
        elif e.get("type") == "expect_column_values_to_be_in_type_list":
            types[kw["column"]] = kw["type_list"]
    if expected_cols is not None:
        added = [c for c in df.columns if c not in expected_cols]
        removed = [c for c in expected_cols if c not in df.columns]
        problems += [f"column '{c}' is not in the contract (added)" for c in added]
        problems += [f"column '{c}' is missing (removed)" for c in removed]
    for col, allowed in types.items():
        if col in df.columns and str(df[col].dtype) not in allowed:
            problems.append(
                f"column '{col}' has type {type_family(df[col].dtype)} ({df[col].dtype}); "
                f"the contract expects one of {allowed}"
            )
    return problems


def suite_for(suite_json: dict[str, Any], table: str, lay: Layout) -> dict[str, Any]:
    """The part of a suite file for one table of a set.

    One suite file holds every table's expectations: one tagged `meta.table` belongs to that
    table, an untagged one to the main table (a single table's suite, and the expectations of
    business rules added after `expectations init`).
    """
    exps = [e for e in suite_json["expectations"] if (e.get("meta") or {}).get("table", lay.main) == table]
    name = suite_json.get("name", "suite")
    return {**suite_json, "name": name if lay.single else f"{name}.{table}", "expectations": exps}


@dataclass(frozen=True)
class SetResult:
    """A suite run over every table of a set (one GxResult per table)."""

    suite: str
    results: dict[str, GxResult]
    lay: Layout

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results.values())

    @property
    def evaluated(self) -> int:
        return sum(r.evaluated for r in self.results.values())

    @property
    def successful(self) -> int:
        return sum(r.successful for r in self.results.values())

    @property
    def success_share(self) -> float:
        return self.successful / self.evaluated if self.evaluated else 0.0

    @property
    def failures(self) -> list[str]:
        """One line per failed expectation, prefixed with its table in a set of several."""
        return [self.lay.where(t) + f for t, r in self.results.items() for f in r.failures]

    @property
    def raw(self) -> dict[str, Any]:
        """GX's own result: the single table's, or one per table."""
        if self.lay.single:
            return self.results[self.lay.main].raw
        return {t: r.raw for t, r in self.results.items()}


def run_suites(tables: Mapping[str, pd.DataFrame], suite_json: dict[str, Any], lay: Layout) -> SetResult:
    """Validate every table of a set against its part of the suite."""
    results = {t: run_suite(df, suite_for(suite_json, t, lay)) for t, df in tables.items()}
    return SetResult(suite_json.get("name", "suite"), results, lay)


def set_schema_problems(tables: Mapping[str, pd.DataFrame], suite_json: dict[str, Any], lay: Layout) -> list[str]:
    """Schema drift of every table against its part of a raw contract."""
    return [lay.where(t) + p for t, df in tables.items() for p in schema_problems(df, suite_for(suite_json, t, lay))]


def build_set_suite(
    tables: Mapping[str, pd.DataFrame],
    src: SourceConfig,
    name: str,
    kind: str,
    lay: Layout,
    identifiers: Collection[str] = (),
    dropped: Collection[str] = (),
    unique: Collection[str] = (),
) -> dict[str, Any]:
    """The suite file of a table set: a single table's own suite (`identifiers`: PII and id-like
    columns, `dropped`: left out of a release, `unique`: ids unique over the synthetic rows), or one
    file for all tables where each expectation names its table in `meta.table`.

    Key columns get no value set or range (synthetic keys are new values); the release suite
    also expects primary keys to be unique.
    """
    from pipelines.keys import key_columns

    if lay.single:
        keys = [*identifiers, *key_columns(src, lay.main)]  # a sequence key: new values in the release
        return build_suite(tables[lay.main], name, kind, identifiers=keys, dropped=dropped, unique=unique)
    exps = []
    for table, df in tables.items():
        keys = key_columns(src, table)
        suite = build_suite(df, f"{name}.{table}", kind, identifiers=keys)
        if kind == "release" and src.tables[table].primary_key:
            suite["expectations"].append(
                {
                    "type": "expect_column_values_to_be_unique",
                    "kwargs": {"column": src.tables[table].primary_key},
                    "meta": {},
                }
            )
        for e in suite["expectations"]:
            e["meta"] = {**(e.get("meta") or {}), "table": table}
        exps += suite["expectations"]
    meta = {
        "synthgate": {
            "kind": kind,
            "tables": sorted(tables),
            "note": "bootstrapped by `synthgate expectations init`; one suite per table (meta.table); edit freely",
        }
    }
    return {"name": f"{name}.{kind}", "expectations": exps, "meta": meta}
