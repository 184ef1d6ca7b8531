"""The trigger form of the `synth_<dataset>` DAGs: one field per overridable knob.

Its gate fields are generated from `GatesConfig` (one per field, its `description` as help), so a
gate setting added to the model appears in the form, the DAG doc and the flat conf keys by itself.
`resolve_config` turns a run's conf and form values into the validated config of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from pipelines.config import (
    OVERRIDABLE,
    BlendConfig,
    DatasetConfig,
    FitConfig,
    GatesConfig,
    GenerateConfig,
    IngestConfig,
    Params,
    apply_overrides,
    deep_merge,
)
from pipelines.errors import ConfigError

FORCE = "force"
"""Trigger-form / conf key: rebuild even when the source and params are unchanged."""


@dataclass(frozen=True)
class Knob:
    """A trigger-form field and where its value goes in a dataset block."""

    name: str
    path: tuple[str, ...]
    section: str
    help: str


def gate_knobs(model: type[BaseModel] = GatesConfig) -> tuple[Knob, ...]:
    """One form field per field of the gates model, with the field's `description` as help.

    A threshold (`*_min`, `*_max`) keeps its name; another setting is prefixed `gate_`
    (`sample_rows` -> `gate_sample_rows`) so it cannot be taken for a generate knob.
    """
    return tuple(
        Knob(
            name if name.endswith(("_min", "_max")) else f"gate_{name}",
            ("gates", name),
            "Gates",
            field.description or name,
        )
        for name, field in model.model_fields.items()
    )


KNOBS: tuple[Knob, ...] = (
    Knob("rows", ("generate", "rows"), "Generate", "synthetic rows to sample"),
    Knob("shard_rows", ("generate", "shard_rows"), "Generate", "rows per shard (one mapped task each)"),
    Knob("seed", ("seed",), "Generate", "seed of the split, the fit and every shard"),
    Knob("synthesizer", ("fit", "synthesizer"), "Fit", "the engine (`synthgate engines`), or auto"),
    Knob("blend_strategy", ("blend", "strategy"), "Blend", "synthetic_only, or augment with real rows"),
    Knob("real_ratio", ("blend", "real_ratio"), "Blend", "augment: real train rows per synthetic row"),
    *gate_knobs(),
)
"""The trigger form's fields (flat names; the same knobs nest in conf as in params.yaml)."""

_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "ingest": IngestConfig,
    "fit": FitConfig,
    "generate": GenerateConfig,
    "blend": BlendConfig,
    "gates": GatesConfig,
}
"""The params.yaml sections a run may override, each a trigger param checked against its model's schema."""


@cache
def section_schema(section: str) -> dict[str, Any]:
    """The JSON schema of one overridable section (every key optional, unknown keys refused).

    Airflow checks a run's conf against it when the run is created (CLI, REST API, form), so
    `{"generate": {"rows": -5}}` is refused by `airflow dags trigger` instead of failing a task.
    Rules across fields and sections (pydantic validators) are still checked by `start`.
    """
    schema = _SECTION_MODELS[section].model_json_schema()
    keep = {k: v for k, v in schema.items() if k in ("properties", "additionalProperties", "$defs")}
    return {**keep, "type": ["null", "object"]}


def _value_schema(path: tuple[str, ...]) -> dict[str, Any]:
    """The JSON schema of a knob's (non-null) value, taken from the pydantic model."""
    if path == ("seed",):
        field = DatasetConfig.model_json_schema()["properties"]["seed"]
    else:
        section, key = path
        field = _SECTION_MODELS[section].model_json_schema()["properties"][key]
    options = [o for o in field.get("anyOf", [field]) if o.get("type") != "null"]
    (schema,) = options
    keep = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    return {k: v for k, v in schema.items() if k in keep}


def _get(block: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = block
    for key in path:
        value = value[key]
    return value


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def form_params(cfg: DatasetConfig) -> dict[str, dict[str, Any]]:
    """Keyword arguments of `airflow.sdk.Param` for each trigger-form field of a dataset.

    Every field defaults to null ("keep the params.yaml value", shown in its description), so a
    scheduled run, or a manual run where nothing was typed, uses params.yaml unchanged.
    """
    current = cfg.to_params()
    fields: dict[str, dict[str, Any]] = {}
    for knob in KNOBS:
        schema = _value_schema(knob.path)
        kind = schema.pop("type")
        spec: dict[str, Any] = {
            "default": None,
            "type": ["null", kind],
            "title": knob.name,
            "description": f"{knob.help}; params.yaml: {_get(current, knob.path)!r} "
            f"({'.'.join(knob.path)}); empty keeps it",
            "section": knob.section,
            **schema,
        }
        if "enum" in spec:
            spec["enum"] = [*spec["enum"], None]
        fields[knob.name] = spec
    for section in OVERRIDABLE:
        if section in _SECTION_MODELS:
            fields[section] = {
                "default": None,
                **section_schema(section),
                "title": section,
                "description": f"overrides of the params.yaml `{section}` section, as JSON shaped like it "
                '(e.g. {"rows": 20000} for generate); checked when the run is created; empty keeps params.yaml',
                "section": "Overrides (params.yaml sections)",
            }
    fields[FORCE] = {
        "default": False,
        "type": "boolean",
        "title": FORCE,
        "description": "rebuild even when the source and the params are unchanged since the last release",
        "section": "Run",
    }
    return fields


def resolve_config(
    params: Params, dataset: str, conf: Mapping[str, Any] | None, form: Mapping[str, Any] | None
) -> tuple[DatasetConfig, dict[str, Any], bool]:
    """The run's effective config, its overrides and the force flag, validated up front.

    `conf` is the run's conf: nested sections shaped like a params.yaml dataset block
    (`{"generate": {"rows": 20000}}`) and/or flat trigger-form fields (`{"rows": 20000}`).
    `form` holds the trigger-form values Airflow resolved (conf merged over the defaults).
    Raises ConfigError naming every bad key path.
    """
    conf = dict(conf or {})
    form = dict(form or {})
    names = {k.name for k in KNOBS}
    problems = [
        f"{key}: unknown key (use a params.yaml section: {', '.join(OVERRIDABLE)}, "
        f"or a form field: {', '.join(sorted(names | {FORCE}))})"
        for key in conf
        if key not in OVERRIDABLE and key not in names and key != FORCE
    ]
    nested = {k: v for k, v in conf.items() if k in OVERRIDABLE and k not in names}
    flat: dict[str, Any] = {}
    for knob in KNOBS:
        value = conf[knob.name] if knob.name in conf else form.get(knob.name)
        if value is None:
            continue
        try:
            given = _get(nested, knob.path)
        except (KeyError, TypeError):
            given = value
        if given != value:
            problems.append(
                f"{'.'.join(knob.path)}: set twice with different values "
                f"({given!r} in conf, {value!r} as {knob.name!r}); keep one"
            )
        flat = deep_merge(flat, _nest(knob.path, value))
    force = conf.get(FORCE, form.get(FORCE, False))
    if not isinstance(force, bool):
        problems.append(f"{FORCE}: must be true or false, got {force!r}")
    overrides = deep_merge(nested, flat)
    try:
        cfg = apply_overrides(params, dataset, overrides)
    except ConfigError as err:
        problems += err.problems
    if problems:
        raise ConfigError(problems, "run overrides")
    return cfg, overrides, bool(force)


def dag_doc(cfg: DatasetConfig, intro: str) -> str:
    """The DAG's doc_md: the module docstring, then this dataset's facts and knobs."""
    current = cfg.to_params()
    rows = "\n".join(f"| `{k.name}` | `{'.'.join(k.path)}` | `{_get(current, k.path)!r}` | {k.help} |" for k in KNOBS)
    return (
        f"{intro.strip()}\n\n## Dataset `{cfg.name}`\n\n{cfg.description or '(no description)'}\n\n"
        f"- source: `{cfg.source.path}` ({cfg.source.format})\n"
        f"- schedule: `{cfg.schedule}`\n- target: `{cfg.target}`\n\n"
        "## Trigger-form fields (empty keeps params.yaml)\n\n"
        "| field | params.yaml key | params.yaml value | meaning |\n|---|---|---|---|\n"
        f"{rows}\n| `{FORCE}` | - | `false` | rebuild even when nothing changed |\n"
    )
