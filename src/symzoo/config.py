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
        _check_finetune(data, f"{where}: key 'finetune.")
        _check_generate(data, f"{where}: key 'generate.")
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


def _check_finetune(data: dict, key: str) -> None:
    classifiers = [name for name, zoo in data["zoos"].items() if zoo["source"] != "inr"]
    unknown = sorted(set(data["finetune"]["zoos"] or ()) - set(classifiers))
    if unknown:
        raise ConfigError(f"{key}zoos': {unknown} are not among the classifier zoos {classifiers}")
    for name in data["finetune"]["operators"]:
        if name in ("sgd", "initial", "best_train"):
            raise ConfigError(f"{key}operators.{name}': the name is reserved for a baseline or control")
    for zoo in classifiers:
        own = data["zoos"][zoo].get("finetune", {}).get("operators", {})
        for name in own:
            where = key.replace("'finetune.", f"'zoos.{zoo}.finetune.") + f"operators.{name}'"
            if name not in data["finetune"]["operators"]:
                raise ConfigError(f"{where}: {name!r} is not among finetune.operators")
            validate(zoo_finetune(data, zoo)["operators"][name], "finetune_operator", where=where)


def _check_generate(data: dict, key: str) -> None:
    from symzoo.fit.generation_methods import CONTROLS

    classifiers = [name for name, zoo in data["zoos"].items() if zoo["source"] != "inr"]
    unknown = sorted(set(data["generate"]["zoos"] or ()) - set(classifiers))
    if unknown:
        raise ConfigError(f"{key}zoos': {unknown} are not among the classifier zoos {classifiers}")
    for name, entry in data["generate"]["models"].items():
        if name in CONTROLS:
            raise ConfigError(f"{key}models.{name}': the name is reserved for a control")
        if entry["geometry"] == "sphere" and entry["representation"] != "normalized":
            raise ConfigError(f"{key}models.{name}.geometry': the spheres hold the 'normalized' representation only")
    for zoo in classifiers:
        own = data["zoos"][zoo].get("generate", {}).get("models", {})
        for name in own:
            where = key.replace("'generate.", f"'zoos.{zoo}.generate.") + f"models.{name}'"
            if name not in data["generate"]["models"]:
                raise ConfigError(f"{where}: {name!r} is not among generate.models")
            validate(zoo_generate(data, zoo)["models"][name], "generate_model", where=where)


def generate_zoos(data: dict) -> list[str]:
    """The zoos the generation experiment runs on: ``generate.zoos``, or every classifier zoo."""
    chosen = data["generate"]["zoos"]
    return [name for name, zoo in data["zoos"].items() if zoo["source"] != "inr" and (chosen is None or name in chosen)]


def zoo_generate(data: dict, zoo: str) -> dict:
    """The ``generate`` section as it applies to ``zoo``: with the zoo's own overrides of its models' keys."""
    own = data["zoos"][zoo].get("generate", {}).get("models", {})
    models = {name: entry | own.get(name, {}) for name, entry in data["generate"]["models"].items()}
    return data["generate"] | {"models": models}


def zoo_activation(data: dict, zoo: str) -> str:
    """The activation of a classifier zoo's networks, from its config entry."""
    entry = data["zoos"][zoo]
    return entry["arch"]["activation"] if entry["source"] == "generate" else entry["activation"]


def finetune_zoos(data: dict) -> list[str]:
    """The zoos the fine-tuning experiment runs on: ``finetune.zoos``, or every classifier zoo."""
    chosen = data["finetune"]["zoos"]
    return [name for name, zoo in data["zoos"].items() if zoo["source"] != "inr" and (chosen is None or name in chosen)]


def zoo_finetune(data: dict, zoo: str) -> dict:
    """The ``finetune`` section as it applies to ``zoo``: with the zoo's own overrides (``zoos.<zoo>.finetune``:
    its ``l1``, and keys of an operator's entry)."""
    own = data["zoos"][zoo].get("finetune", {})
    operators = {
        name: entry | own.get("operators", {}).get(name, {}) for name, entry in data["finetune"]["operators"].items()
    }
    return data["finetune"] | {k: v for k, v in own.items() if k != "operators"} | {"operators": operators}


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
