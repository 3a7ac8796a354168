"""`symzoo bench`: every benchmark runs (quick sizes) and prints one JSON object with its keys, and its tables to
stderr (no timing asserted)."""

import json

import pytest

from symzoo.bench import merge, tables
from symzoo.bench.canonicalize import all_pairs_break_even
from symzoo.cli import main

KEYS = {
    "zoo-train": {"M", "sequential_nps", "vmap_nps", "bound_nps", "vmap_over_sequential", "bound_over_vmap"},
    "encode": {"networks_per_s", "s_per_network"},
    "merge": {"batched_s", "loop_s", "batched_over_loop", "memory"},
    "canonicalize": {"rows", "crossover_width", "crossover_width_inference", "faster_widths", "exponents"},
    "convert": {"rows", "build_s", "extract_s", "convert_s", "networks", "baseline_rss_bytes", "peak_rss_bytes"},
}


def _bench(capsys, *argv: str) -> tuple[dict, str]:
    assert main(["--threads", "1", "bench", *argv]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


@pytest.mark.parametrize("name", ["zoo-train", "encode"])
def test_bench_prints_one_json_object_with_its_keys(name, capsys):
    result, _ = _bench(capsys, name, "--quick", "--device", "cpu")
    rows = result["results"] if name == "zoo-train" else [result]
    for row in rows:
        assert KEYS[name] <= set(row), row
        assert all(v > 0 for k, v in row.items() if k in KEYS[name] and isinstance(v, float))


def _table(stderr: str, key: str) -> list[list[str]]:
    """The lines of the table ``key`` printed to stderr, split into cells."""
    lines = stderr.splitlines()
    start = lines.index(f"{key}:") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].endswith(":")), len(lines))
    return [line.split() for line in lines[start:end]]


def test_bench_merge_times_both_sides_and_measures_memory_per_pair_count(capsys, monkeypatch):
    def in_this_process(fn, *args):  # the child process itself is exercised by bench convert's test
        return fn(*args), {"baseline_rss_bytes": 1, "peak_rss_bytes": 2}

    monkeypatch.setattr(merge, "in_child", in_this_process)
    result, stderr = _bench(capsys, "merge", "--quick", "--device", "cpu", "--repeats", "2")
    assert KEYS["merge"] <= set(result)
    assert result["device"] == "CPU" and result["repeats"] == 2 and result["batched_over_loop"] > 0
    header, *rows = _table(stderr, "memory")
    assert header == ["pairs", "pairs_per_pass", "images_per_pass", "planned_activation_bytes", "peak_bytes"]
    assert [row[0] for row in rows] == ["2", "4"] and [row[-1] for row in rows] == ["1", "1"]
    planned = {row["planned_activation_bytes"] for row in result["memory"]}
    assert len(planned) == 1 and planned.pop() <= 2**20  # one pass size for both pair counts, within the budget


def test_bench_canonicalize_prints_a_row_per_width_and_the_cnn(capsys):
    result, stderr = _bench(capsys, "canonicalize", "--quick", "--device", "cpu", "--widths", "4,8", "--zoo-size", "10")
    assert KEYS["canonicalize"] <= set(result)
    header, *rows = _table(stderr, "rows")
    assert header == result["columns"]
    assert [" ".join(row[: -len(result["columns"]) + 1]) for row in rows] == ["mlp h=4", "mlp h=8", "small cnn zoo"]
    assert [row["params"] for row in result["rows"]] == [4 * 64 + 4 + 4 * 4 + 4 + 4 * 10 + 10, 682, 4970]
    assert set(result["exponents"]) == {"rebasin", "encode_decode", "train_step", "align"}
    assert result["zoo_size"] == 10
    for row in result["rows"]:  # the all-pairs view: its costs at zoo_size, and the zoo size it pays off from
        assert row["all_pairs_rebasin_s"] == pytest.approx(45 * row["rebasin_s"])
        assert row["all_pairs_n_reference"] <= row["all_pairs_n_inference"] <= row["all_pairs_n"]


@pytest.mark.parametrize(("pair_s", "network_s", "fixed_s"), [(1, 1, 0), (1, 0, 10), (0.3, 0.7, 55.5), (2, 0.1, 0)])
def test_all_pairs_break_even_is_the_first_zoo_size_where_per_network_is_cheaper(pair_s, network_s, fixed_s):
    n = all_pairs_break_even(pair_s, network_s, fixed_s)
    cheaper = [m * (m - 1) / 2 * pair_s > m * network_s + fixed_s for m in range(2, 200)]
    assert n == 2 + cheaper.index(True)


def test_bench_convert_takes_its_size_and_rejects_options_it_does_not_take(capsys):
    result, _ = _bench(capsys, "convert", "--runs", "3")
    assert KEYS["convert"] <= set(result)
    assert (result["runs"], result["rows"], result["columns"]) == (3, 27, 4970)
    assert result["peak_rss_bytes"] >= result["baseline_rss_bytes"] > 0
    assert main(["bench", "encode", "--runs", "3"]) != 0
    assert "takes no options" in capsys.readouterr().err


def test_tables_render_every_list_of_rows():
    text = tables({"a": 1, "rows": [{"x": 1, "y": 0.123456}, {"x": 22, "y": None}]})
    assert text.splitlines() == ["rows:", " x       y", " 1  0.1235", "22    None"]
