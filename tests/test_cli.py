"""The stage interface on the command line: every command declares its arguments, NAME=PATH everywhere, clear
errors for missing inputs, and only the chosen stage is imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symzoo.cli import COMMANDS, main, parser


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_declares_its_arguments(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert name in capsys.readouterr().out


def test_the_whole_parser_builds_with_every_command():
    subs = next(a for a in parser()._actions if a.dest == "command")
    assert set(subs.choices) == set(COMMANDS)


def test_a_repeated_input_is_name_equals_path(capsys):
    with pytest.raises(SystemExit) as done:
        main(["orbit", "--options", "{}", "--zoo", "z", "--data", "d", "--medoid", "m", "--out", "o", "--model", "x"])
    assert done.value.code == 2
    assert "expected NAME=PATH, not 'x'" in capsys.readouterr().err


def test_a_second_model_where_one_is_taken_is_an_error(tmp_path, capsys):
    args = ["fidelity", "--zoo", str(tmp_path), "--data", "d.npz", "--out", str(tmp_path / "f.parquet")]
    assert main([*args, "--model", "ae_a=a.pt", "ae_b=b.pt"]) == 1
    assert "--model takes one NAME=PATH here, not 2" in capsys.readouterr().err


def test_the_medoid_method_without_its_record_is_an_error_naming_the_flag(tmp_path, capsys):
    args = ["endpoints", "--method", "medoid", "--zoo", str(tmp_path), "--pairs", "p.parquet"]
    assert main([*args, "--out", str(tmp_path / "e.npy")]) == 1
    assert "method 'medoid' needs the zoo's medoid.json (--medoid)" in capsys.readouterr().err
    assert not (tmp_path / "e.npy").exists()


def test_another_section_s_options_are_validated_and_default_to_the_schema(capsys):
    args = ["medoid", "--zoo", "z", "--data", "d", "--out", "o"]
    parsed = parser(args).parse_args(args)
    assert parsed.fidelity_options == {"networks": 500, "images": 1000, "seed": 0, "train_pool": 5000}
    with pytest.raises(SystemExit):
        main([*args, "--fidelity-options", json.dumps({"networks": 1})])
    assert "--fidelity-options: key 'networks'" in capsys.readouterr().err


def test_a_command_imports_only_its_own_stage():
    code = (
        "import sys; from symzoo.cli import parser; parser(['pairs', '--help'][:1]);"
        "print(sorted(m for m in sys.modules if m.startswith('symzoo.stages.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['symzoo.stages.common', 'symzoo.stages.pairs']"


def test_a_stage_loads_the_model_it_is_given_by_name(tmp_path):
    """`endpoints --method ae_x --model ae_x=PATH`: the named model.pt is loaded and its reconstructions written."""
    import numpy as np
    import polars as pl
    import torch

    from symzoo import config
    from symzoo.data.merge import read_endpoints, write_pairs
    from symzoo.data.zoo import write_zoo
    from symzoo.fit.autoencoder import FitSettings
    from symzoo.models.autoencoder import build_autoencoder, reconstruct, save_autoencoder
    from tests.test_fit_autoencoder import SPEC, _models
    from tests.test_nets import init_params

    thetas = init_params(SPEC, 6)
    write_zoo(tmp_path / "zoo", SPEC, thetas.numpy(), _models(6, ["train"] * 2 + ["val"] * 2 + ["test"] * 2))
    write_pairs(tmp_path / "pairs.parquet", pl.DataFrame({"pair_id": [0], "model_a": [1], "model_b": [4]}))
    arch = FitSettings.from_options(config.entry("encoder", kind="scalegmn", hidden=8, layers=1, latent=8)).arch
    ae = build_autoencoder(SPEC, arch, thetas_train=thetas).eval()
    save_autoencoder(tmp_path / "model.pt", ae, ae.state_dict())
    args = ["endpoints", "--method", "ae_x", "--zoo", str(tmp_path / "zoo"), "--pairs", str(tmp_path / "pairs.parquet")]
    assert main([*args, "--model", f"ae_x={tmp_path / 'model.pt'}", "--out", str(tmp_path / "e.npy")]) == 0
    a, b = read_endpoints(tmp_path / "e.npy", SPEC, 1)
    expected = reconstruct(ae, thetas[[1, 4]])
    np.testing.assert_allclose(torch.cat([a, b]).numpy(), expected.numpy(), atol=1e-5)
