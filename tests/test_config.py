"""The one config schema: shipped configs validate, bad keys and types are named, defaults filled in."""

from pathlib import Path

import pytest
import yaml

from symzoo import config
from symzoo.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["config", "test", "paper"])
def test_shipped_configs_validate(name):
    cfg = config.load(ROOT / "config" / f"{name}.yaml")
    assert cfg["seed"] >= 0 and cfg["device"] in ("auto", "cpu", "cuda")


def test_package_schema_is_the_workflow_schema():
    assert config.SCHEMA_PATH.resolve() == (ROOT / "workflow/schemas/config.schema.json").resolve()


def test_defaults_are_filled_in():
    cfg = config.validate({"datasets": {"d": {"source": "digits"}}, "zoos": {}})
    assert cfg["datasets"]["d"]["fractions"] == [0.6, 0.2, 0.2]
    assert cfg["device"] == "auto"


def _zoo(**keys) -> dict:
    """A generated zoo entry on dataset ``d`` with ``keys`` added."""
    return {"source": "generate", "dataset": "d", "arch": {"kind": "mlp", "widths": [4]}, "num_models": 8} | keys


@pytest.mark.parametrize(
    ("cfg", "key", "message"),
    [
        ({"datasets": {}, "zoos": {}, "sede": 1}, "<top level>", "'sede' was unexpected"),
        ({"datasets": {"d": {"source": "digits", "fractons": 1}}, "zoos": {}}, "datasets.d", "'fractons'"),
        ({"datasets": {"d": {"source": "imagenet"}}, "zoos": {}}, "datasets.d.source", "imagenet"),
        ({"datasets": {"d": {"source": "cifar10", "resize": "8"}}, "zoos": {}}, "datasets.d.resize", "not of type"),
        (
            {"datasets": {}, "zoos": {"z": {"source": "smallcnnzoo", "archive": "cifar10", "dataset": "d"}}},
            "zoos.z.dataset",
            "not one of the datasets",
        ),
        (
            {
                "datasets": {"d": {"source": "digits"}},
                "zoos": {"z": {"source": "smallcnnzoo", "archive": "cifar10", "dataset": "d", "step": "86"}},
            },
            "zoos.z.step",
            "not of type 'integer'",
        ),
        (
            {"datasets": {"d": {"source": "digits"}}, "zoos": {}, "finetune": {"zoos": ["nope"]}},
            "finetune.zoos",
            "not among the classifier zoos",
        ),
        (
            {"datasets": {"d": {"source": "digits"}}, "zoos": {"z": _zoo(finetune={"operators": {"gcn": {}}})}},
            "zoos.z.finetune.operators.gcn",
            "not among finetune.operators",
        ),
        (
            {
                "datasets": {"d": {"source": "digits"}},
                "zoos": {"z": _zoo(generate={"models": {"flat_raw": {"hidden": 0}}})},
            },
            "zoos.z.generate.models.flat_raw",
            "hidden",
        ),
        (
            {
                "datasets": {"d": {"source": "digits"}},
                "zoos": {},
                "generate": {"models": {"test": {"representation": "raw"}}},
            },
            "generate.models.test",
            "reserved for a baseline or control",
        ),
    ],
)
def test_bad_configs_name_the_key(cfg, key, message):
    with pytest.raises(config.ConfigError, match=message) as err:
        config.validate(cfg)
    assert f"key '{key}'" in str(err.value)


def test_check_config_command(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"datasets": {"d": {"source": "digits", "sed": 3}}, "zoos": {}}))
    assert main(["check-config", str(bad)]) == 1
    assert "datasets.d" in capsys.readouterr().err
    assert main(["check-config", str(ROOT / "config/config.yaml")]) == 0
    assert '"fractions"' in capsys.readouterr().out


def test_stage_options_are_validated(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--options", '{"source": "digits", "seeed": 1}', "--out", "x.npz"])
    assert "seeed" in capsys.readouterr().err
