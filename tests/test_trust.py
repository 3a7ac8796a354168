"""What a lab that shares results relies on: readable modes, reproducible bytes, errors that name the culprit,
nothing wrong accepted silently. One test (or a few) per defect found in review."""

from __future__ import annotations

import errno
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from symzoo import config
from symzoo.atomic import atomic_path
from symzoo.checkpoint import save as save_checkpoint
from symzoo.data.download import DownloadError, fetch
from symzoo.data.images import load_image_set
from symzoo.data.zoo import drop_nonfinite, finalize_models
from symzoo.merge.barrier import pair_barriers
from symzoo.models.autoencoder import Architecture, build_autoencoder, load_autoencoder, save_autoencoder
from symzoo.nets.spec import NetSpec
from symzoo.sources.cifar import read_batches
from symzoo.stages.tables import stack
from tests.fixtures.cifar import make_cifar_archive
from tests.fixtures.smallcnnzoo import build_small_cnn_zoo, make_small_cnn_zoo_archive, read_tar_xz, write_tar_xz

SPEC = NetSpec("mlp", (1, 4, 4), (6,), 3, "tanh")


# 1. modes ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "out.parquet") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.parquet").stat().st_mode & 0o777 == mode


# 2. byte-identical outputs ------------------------------------------------------------------------------------------


def _model():
    arch = Architecture.from_options(config.entry("encoder", kind="ngnn", hidden=8, layers=1, latent=4))
    torch.manual_seed(0)
    return build_autoencoder(SPEC, arch)


def test_equal_models_give_equal_model_files(tmp_path):
    """torch.save on a path stores the (random, temporary) file name inside the zip; the writers do not."""
    ae = _model()
    for name in ("a", "b"):
        with atomic_path(tmp_path / name / "model.pt") as tmp:
            save_autoencoder(tmp, ae, ae.state_dict(), epoch=3)
        save_checkpoint(tmp_path / name / "checkpoint.pt", "autoencoder", 1, {"x": 1}, {"w": torch.ones(3)})
    for file in ("model.pt", "checkpoint.pt"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert load_autoencoder(tmp_path / "a" / "model.pt") is not None


# 3. NaN in curves ---------------------------------------------------------------------------------------------------


def test_a_nan_point_in_the_curves_is_an_error_not_a_smaller_barrier():
    a = np.linspace(0, 1, 11)
    loss = 1 + 0.5 * np.sin(np.pi * a)
    curve = pl.DataFrame(
        {"pair_id": 0, "alpha": a, "loss": loss, "score": 0.8, "dist_a": 0.0, "dist_b": 0.0}
        | {"orig_loss_a": 1.0, "orig_loss_b": 1.0, "orig_score_a": 0.8, "orig_score_b": 0.8}
    )
    assert pair_barriers(curve)["loss_barrier"][0] == pytest.approx(0.5)
    broken = curve.with_columns(
        pl.when(pl.col("alpha") == 0.5).then(float("nan")).otherwise(pl.col("loss")).alias("loss")
    )
    with pytest.raises(ValueError, match=r"NaN or missing .*'alpha': 0.5"):
        pair_barriers(broken)


# 4. a corrupt archive trusted on first use --------------------------------------------------------------------------


def test_a_corrupt_archive_trusted_on_first_use_is_downloaded_again(tmp_path, http_server):
    good = tmp_path / "upstream" / "cifar10.tar.xz"
    good.parent.mkdir()
    make_small_cnn_zoo_archive(good, n_runs=4)
    served = http_server.root / "cifar10.tar.xz"
    served.write_bytes(good.read_bytes()[:-200])  # the server sends a truncated file: recorded on first use
    options = {"archive": "cifar10", "dataset": "cifar10gs", "url": http_server.url("cifar10.tar.xz")}
    with pytest.raises(ValueError, match="corrupt .* downloaded twice"):
        build_small_cnn_zoo(options, tmp_path / "zoo", tmp_path / "cache")
    assert not (tmp_path / "cache" / "cifar10.tar.xz.sha256").exists()  # the bad record is gone
    served.write_bytes(good.read_bytes())  # the server is fixed: the rerun downloads and records the good file
    build_small_cnn_zoo(options, tmp_path / "zoo", tmp_path / "cache")
    assert (tmp_path / "zoo" / "params.npy").is_file()
    recorded = (tmp_path / "cache" / "cifar10.tar.xz.sha256").read_text().split()[0]
    from symzoo.data.download import file_digest

    assert recorded == file_digest(good, "sha256")


# 5. a truncated CIFAR-10 archive ------------------------------------------------------------------------------------


def test_a_truncated_cifar_archive_names_the_archive(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    make_cifar_archive(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cifar-10-python.tar.gz: corrupt or truncated"):
        read_batches(path)


# 6. weights.npy with columns the layout does not describe -----------------------------------------------------------


def test_extra_weight_columns_are_an_error_naming_the_layout(tmp_path):
    path = tmp_path / "cifar10.tar.xz"
    make_small_cnn_zoo_archive(path, n_runs=2)
    folder, members = read_tar_xz(path)
    weights = np.load(io.BytesIO(members["weights.npy"]))
    buffer = io.BytesIO()
    np.save(buffer, np.concatenate([weights, np.zeros((len(weights), 1), weights.dtype)], axis=1))
    write_tar_xz(path, folder, members | {"weights.npy": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"layout.csv: the variables cover 4970 of the 4971 columns"):
        build_small_cnn_zoo(
            {"archive": "cifar10", "dataset": "d", "url": path.as_uri()}, tmp_path / "z", tmp_path / "c"
        )
    assert not (tmp_path / "z" / "params.npy").exists()


# 7. errors that name the file ---------------------------------------------------------------------------------------


def test_a_file_that_is_not_an_image_set_is_named(tmp_path):
    for name, data in (("curves.parquet", b"PAR1 not really"), ("x.csv", b"a,b\n1,2\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}: not an image-set .npz"):
            load_image_set(tmp_path / name)


def test_a_csv_given_as_curves_is_named_in_one_line(tmp_path):
    (tmp_path / "curves.csv").write_text("pair_id,alpha\n0,0.0\n")
    with pytest.raises(ValueError, match=r"curves.csv: not a readable table \(Parquet\) file") as info:
        stack({"zoo/naive": tmp_path / "curves.csv"}, ("zoo", "method"))
    assert "\n" not in str(info.value)


def test_a_parquet_given_as_a_model_is_named(tmp_path):
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "pairs.parquet")
    with pytest.raises(ValueError, match=r"pairs.parquet: not a saved autoencoder \(not a readable torch file"):
        load_autoencoder(tmp_path / "pairs.parquet")


def test_a_full_disk_is_an_error_naming_the_file(tmp_path):
    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    with (
        pytest.raises(OSError, match=r"writing .*results.parquet: No space left"),
        atomic_path(tmp_path / "results.parquet") as tmp,
    ):
        full(tmp)
    assert list(tmp_path.iterdir()) == []  # and no temporary left behind
    with pytest.raises(OSError, match=r"writing .*model.pt: the write failed"), atomic_path(tmp_path / "model.pt"):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
    assert list(tmp_path.iterdir()) == []


# 8. config mistakes found before any job runs -----------------------------------------------------------------------


def _config(**changes) -> dict:
    cfg = config.load(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    for key, value in changes.items():
        *path, last = key.split(".")
        node = cfg
        for part in path:
            node = node[part]
        node[last] = value
    return cfg


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"encoders.scalegmn.clip": 0}, "encoders.scalegmn.clip"),
        ({"datasets.digits.fractions": [0.6, 0.3, 0.2]}, "datasets.digits.fractions"),
        ({"zoos.mlp_digits.fractions": [0.5, 0.1, 0.1]}, "zoos.mlp_digits.fractions"),
        ({"merge.pairs": 800}, "merge.pairs"),
        ({"zoos.mlp_digits.dataset": "cifar"}, "zoos.mlp_digits.dataset"),
        ({"bogus": 1}, "<top level>"),
    ],
)
def test_config_mistakes_name_the_key(changes, key):
    with pytest.raises(config.ConfigError, match=rf"key '{key}"):
        config.validate(_config(**changes))


def test_snakemake_reports_a_config_mistake_in_one_line_before_any_job(tmp_path):
    import yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_config(**{"zoos.mlp_digits.dataset": "cifar", "bogus": 1}) | {}))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "all", "--configfile", str(bad), "-d", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "key '<top level>'" in text and "'bogus' was unexpected" in text
    assert len(text.splitlines()) < 15  # not the schema printed in full
    assert not (tmp_path / "results").exists()


# 9. smaller ones ----------------------------------------------------------------------------------------------------


def test_dropped_networks_are_named_by_run_and_step(caplog):
    params = np.zeros((4, 3), np.float32)
    params[2, 1] = np.nan
    models = pl.DataFrame({"model_id": range(4), "run_id": ["a", "b", "c", "d"], "step": [5, 5, 7, 5]})
    with caplog.at_level(logging.WARNING):
        kept, _ = drop_nonfinite(params, models)
    assert len(kept) == 3 and "('c', 7)" in caplog.text


def test_an_empty_split_is_warned_about_when_the_zoo_is_made(caplog):
    models = pl.DataFrame({"model_id": range(3), "run_id": ["a", "b", "c"], "step": [1, 1, 1], "test_accuracy": 0.5})
    with caplog.at_level(logging.WARNING):
        finalize_models(np.zeros((3, 2), np.float32), models, pl.lit(True), [0.98, 0.01, 0.01])
    assert "came out empty" in caplog.text and "val" in caplog.text


def test_a_failed_download_mentions_partial_data_only_when_there_is_some(tmp_path, http_server):
    (http_server.root / "f.bin").write_bytes(b"x" * 1000)
    http_server.cut_next(0)
    with pytest.raises(DownloadError) as info:
        fetch(http_server.url("f.bin"), tmp_path / "f.bin")
    assert "partial data" not in str(info.value)


def test_check_config_into_a_closed_pipe_is_quiet():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        f"{sys.executable} -m symzoo.cli check-config config/config.yaml | head -1",
        shell=True,
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "{" and "Error" not in out.stderr and "Traceback" not in out.stderr
