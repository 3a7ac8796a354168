"""The configuration schema, shared by the Snakefile and the ``symzoo`` command.

``workflow/schemas/config.schema.json`` is the single source of truth (the package ships a link to it).
Validation fills in defaults and reports the first error with the dotted path of the offending key.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.json")


class ConfigError(ValueError):
    """A configuration that breaks the schema; the message names the key."""


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _with_defaults(validator_class: type) -> type:
    """A validator that also writes each property's ``default`` into the instance (like Snakemake's)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = json.loads(json.dumps(sub["default"]))
        yield from check_properties(validator, props, instance, subschema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(data: dict, definition: str | None = None, where: str = "config") -> dict:
    """Validate ``data`` against the whole schema or one of its ``$defs``; returns it with defaults filled in."""
    root = schema()
    target = root if definition is None else {"$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    data = json.loads(json.dumps(data))
    errors = sorted(_Validator(target).iter_errors(data), key=lambda e: (-len(e.absolute_path), e.message))
    if errors:
        err = errors[0]
        raise ConfigError(f"{where}: key {_key(err.absolute_path)!r}: {err.message}")
    if definition is None:
        for name, zoo in data["zoos"].items():
            _check_zoo(zoo, data["datasets"], f"{where}: key 'zoos.{name}")
            for encoder in zoo.get("encoders", {}):
                key = f"{where}: key 'zoos.{name}.encoders.{encoder}'"
                if encoder not in data["encoders"]:
                    raise ConfigError(f"{key}: {encoder!r} is not among the encoders {sorted(data['encoders'])}")
                validate(zoo_encoder(data, name, encoder), "encoder", where=key)
        for name, dataset in data["datasets"].items():
            _check_fractions(dataset, f"{where}: key 'datasets.{name}.fractions'")
        _check_merge(data["merge"], f"{where}: key 'merge.")
        if "controls" in data["encoders"]:
            raise ConfigError(f"{where}: key 'encoders.controls': the name is reserved for the fidelity controls")
        for name, model in data["predict"]["models"].items():
            if model["kind"] == "probe" and model["encoder"] not in data["encoders"]:
                raise ConfigError(
                    f"{where}: key 'predict.models.{name}.encoder': {model['encoder']!r} is not among the encoders"
                )
        unknown = sorted(set(data["budget"]["encoders"]) - set(data["encoders"]))
        if unknown:
            raise ConfigError(f"{where}: key 'budget.encoders': {unknown} are not among the encoders")
        from symzoo.fit.generation_methods import CONTROLS

        _check_family(data, "finetune", f"{where}: key '", ("sgd", "initial", "best_train"))
        _check_family(data, "generate", f"{where}: key '", CONTROLS)
        _check_generate(data, f"{where}: key '")
    elif definition in ("zoo", "zoo_generate"):
        _check_zoo(data, None, f"{where}: key '")
    elif definition == "merge":
        _check_merge(data, f"{where}: key '")
    return data


def _check_fractions(entry: dict, key: str) -> None:
    fractions = entry.get("fractions")
    if fractions is not None and abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"{key}: {fractions} must sum to 1, not {sum(fractions):g}")


def _check_merge(merge: dict, key: str) -> None:
    if 2 * merge["pairs"] > merge["top"]:
        raise ConfigError(
            f"{key}pairs': {merge['pairs']} disjoint pairs need {2 * merge['pairs']} networks, but pairs are drawn "
            f"from the top {merge['top']} (merge.top)"
        )


FAMILIES = {"finetune": ("operators", "finetune_operator"), "generate": ("models", "generate_model")}
"""The experiment families run on classifier zoos: their section, the map of named entries in it, and the schema
definition an entry (with a zoo's overrides applied) must satisfy."""


def _classifier_zoos(data: dict) -> list[str]:
    return [name for name, zoo in data["zoos"].items() if zoo["source"] != "inr"]


def _check_family(data: dict, section: str, key: str, reserved: tuple[str, ...]) -> None:
    """A family's ``zoos`` are classifier zoos, its entries' names are not reserved, and every zoo's overrides name an
    entry and give a valid one."""
    entries, definition = FAMILIES[section]
    classifiers = _classifier_zoos(data)
    unknown = sorted(set(data[section]["zoos"] or ()) - set(classifiers))
    if unknown:
        raise ConfigError(f"{key}{section}.zoos': {unknown} are not among the classifier zoos {classifiers}")
    for name in data[section][entries]:
        if name in reserved:
            raise ConfigError(f"{key}{section}.{entries}.{name}': the name is reserved for a baseline or control")
    for zoo in classifiers:
        for name in data["zoos"][zoo].get(section, {}).get(entries, {}):
            where = f"{key}zoos.{zoo}.{section}.{entries}.{name}'"
            if name not in data[section][entries]:
                raise ConfigError(f"{where}: {name!r} is not among {section}.{entries}")
            validate(zoo_section(data, zoo, section)[entries][name], definition, where=where)


def _check_generate(data: dict, key: str) -> None:
    for name, entry in data["generate"]["models"].items():
        if entry["geometry"] == "sphere" and entry["representation"] != "normalized":
            raise ConfigError(
                f"{key}generate.models.{name}.geometry': the spheres hold the 'normalized' representation only"
            )


def family_zoos(data: dict, section: str) -> list[str]:
    """The zoos a family (``finetune``, ``generate``) runs on: its ``zoos``, or every classifier zoo."""
    chosen = data[section]["zoos"]
    return [name for name in _classifier_zoos(data) if chosen is None or name in chosen]


def zoo_section(data: dict, zoo: str, section: str) -> dict:
    """A family's section as it applies to ``zoo``: with the zoo's own overrides (``zoos.<zoo>.<section>``: its keys,
    and keys of the named entries, e.g. an operator's epochs)."""
    entries, _ = FAMILIES[section]
    own = data["zoos"][zoo].get(section, {})
    merged = {name: entry | own.get(entries, {}).get(name, {}) for name, entry in data[section][entries].items()}
    return data[section] | {k: v for k, v in own.items() if k != entries} | {entries: merged}


def zoo_activation(data: dict, zoo: str) -> str:
    """The activation of a classifier zoo's networks, from its config entry."""
    entry = data["zoos"][zoo]
    return entry["arch"]["activation"] if entry["source"] == "generate" else entry["activation"]


def zoo_encoder(data: dict, zoo: str, encoder: str) -> dict:
    """The entry of ``encoder`` as trained on ``zoo``: the encoder's entry with the zoo's own overrides
    (``zoos.<zoo>.encoders.<encoder>``, INR zoos) on top."""
    return data["encoders"][encoder] | data["zoos"][zoo].get("encoders", {}).get(encoder, {})


def entry(definition: str, **keys: Any) -> dict:
    """A config entry of ``$defs/{definition}`` with ``keys`` set and every other key at its schema default
    (validated): e.g. ``entry("encoder", kind="ngnn", hidden=32)`` for tests and benchmarks."""
    return validate(keys, definition, where=definition)


def _check_zoo(zoo: dict, datasets: dict | None, key: str) -> None:
    """Cross-key rules that a JSON schema cannot state; ``key`` prefixes the dotted key in messages."""
    sep = "" if key.endswith("'") else "."
    _check_fractions(zoo, f"{key}{sep}fractions'")
    if datasets is not None and zoo["dataset"] not in datasets:
        raise ConfigError(f"{key}{sep}dataset': {zoo['dataset']!r} is not one of the datasets {sorted(datasets)}")
    if zoo["source"] == "generate":
        if max(zoo["checkpoints"]) > zoo["epochs"]:
            raise ConfigError(f"{key}{sep}checkpoints': {zoo['checkpoints']} goes past epochs = {zoo['epochs']}")
        if zoo["step"] is not None and zoo["step"] not in zoo["checkpoints"]:
            raise ConfigError(f"{key}{sep}step': {zoo['step']} is not one of the checkpoints {zoo['checkpoints']}")


def load(path: str | Path) -> dict:
    """Read and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    return validate(data, where=str(path))
