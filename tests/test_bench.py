"""`symzoo bench`: every benchmark runs (quick sizes) and prints one JSON object with its keys (no timing asserted)."""

import json

import pytest

from symzoo.cli import main

KEYS = {
    "zoo-train": {"M", "sequential_nps", "vmap_nps", "bound_nps", "vmap_over_sequential", "bound_over_vmap"},
    "encode": {"networks_per_s", "s_per_network"},
    "merge": {"batched_over_loop", "rebasin_s_per_pair", "autoencoder_s_per_pair"},
    "convert": {"rows", "build_s", "extract_s", "convert_s", "networks", "baseline_rss_bytes", "peak_rss_bytes"},
}


@pytest.mark.parametrize("name", KEYS)
def test_bench_prints_one_json_object_with_its_keys(name, capsys):
    assert main(["--threads", "1", "bench", name, "--quick", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["results"] if name == "zoo-train" else [result]
    for row in rows:
        assert KEYS[name] <= set(row), row
        assert all(v > 0 for k, v in row.items() if k in KEYS[name] and isinstance(v, float))


def test_bench_convert_takes_its_size_and_rejects_options_it_does_not_take(capsys):
    assert main(["bench", "convert", "--runs", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["runs"], result["rows"], result["columns"]) == (3, 27, 4970)
    assert result["peak_rss_bytes"] >= result["baseline_rss_bytes"] > 0
    assert main(["bench", "encode", "--runs", "3"]) != 0
    assert "takes no options" in capsys.readouterr().err
