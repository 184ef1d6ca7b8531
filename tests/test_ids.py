"""Id-like columns: a new dataset with an integer id and a string id is released on its first run.

The release suite used to require the real id range (`loan_id` between 100000 and 100299), which
fresh synthetic ids leave by design, so the first run of such a dataset was blocked; the string
id was a 300-value category whose real values sat in the committed metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import ids
from pipelines.contracts import PROVENANCE, run_suite
from pipelines.io import read_json
from pipelines.paths import paths_for
from tests.conftest import run_stages, small_block


def _loans(folder: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "loan_id": np.arange(100_000, 100_000 + n),
            "ref": [f"R-{i:05d}" for i in rng.permutation(n)],
            "amount": rng.normal(100, 20, n).round(2),
            "grade": rng.choice(["a", "b", "c"], n),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "loans.csv", index=False)
    return folder / "loans.csv"


def _expectations(suite: dict, column: str) -> dict[str, dict]:
    return {e["type"]: e["kwargs"] for e in suite["expectations"] if e["kwargs"].get("column") == column}


@pytest.mark.parametrize(
    ("values", "regex"),
    [
        ([f"R-{i:05d}" for i in range(300)], r"R\-0[0-9]{4}"),  # widened from the right until 6,000 fit
        ([f"CUST{i:04d}" for i in range(300)], "CUST[0-9]{4}"),
        ([f"ab{i}" for i in range(300)], "[a-z0-9]{3,5}"),  # several lengths: keys.key_regex
        (list(range(100_000, 100_300)), "[1-9][0-9]{5}"),
        (["New York", "Boston", "Paris"], None),  # not an id's shape
    ],
)
def test_shape_regex(values, regex):
    assert ids.shape_regex(pd.Series(values)) == regex


def test_bootstrapped_files_treat_ids_as_fresh_ids(tmp_path, make_workspace):
    ws = make_workspace(loans=small_block(_loans(tmp_path / "src")))
    p = paths_for("loans", ws)
    release, raw = read_json(p.release_suite), read_json(p.raw_suite)
    synthetic = {"row_condition": f'{PROVENANCE}=="synthetic"', "condition_parser": "pandas"}
    for col in ("loan_id", "ref"):
        assert set(_expectations(release, col)) == {
            "expect_column_values_to_be_in_type_list",
            "expect_column_values_to_not_be_null",
            "expect_column_values_to_be_unique",
        }, col
        assert _expectations(release, col)["expect_column_values_to_be_unique"] == {"column": col, **synthetic}
        assert "expect_column_values_to_be_between" not in _expectations(raw, col)  # next month's ids are new too
    assert "expect_column_values_to_be_between" in _expectations(release, "amount")  # other columns keep theirs
    columns = read_json(p.metadata)["tables"]["loans"]["columns"]
    assert columns["ref"] == {"sdtype": "id", "regex_format": r"R\-0[0-9]{4}"}  # no real ref in the file
    assert "R-00042" not in p.metadata.read_text() and "R-00042" not in p.release_suite.read_text()


def test_a_dataset_with_ids_is_released_on_its_first_run(tmp_path, make_workspace):
    """Three shards and real rows added (augment): ids are unique over the synthetic rows."""
    block = small_block(
        _loans(tmp_path / "src"),
        generate={"rows": 400, "shard_rows": 150},
        blend={"strategy": "augment", "real_ratio": 0.25},
    )
    ws = make_workspace(loans=block)
    manifest = run_stages(ws, "loans")
    assert all(g["passed"] for g in manifest["gates"]), manifest["gates"]
    released = pd.read_parquet(paths_for("loans", ws).release_file)
    synthetic = released[released[PROVENANCE] == "synthetic"]
    assert len(synthetic) == 400 and synthetic["loan_id"].is_unique and synthetic["ref"].is_unique
    assert synthetic["loan_id"].max() < 100_000  # outside the real range: the old suite blocked this
    assert synthetic["ref"].str.fullmatch(r"R-0\d{4}").all()
    # the unique expectation does fail on repeated synthetic ids (the same suite, two rows alike)
    suite = read_json(paths_for("loans", ws).release_suite)
    repeated = pd.concat([released, synthetic.head(2)], ignore_index=True)
    result = run_suite(repeated, suite)
    assert not result.success and any("'loan_id': expect_column_values_to_be_unique" in f for f in result.failures)


def test_renumber_keeps_shards_apart():
    frame = pd.DataFrame({"n": [7, 7, 9], "s": ["x", "x", "y"], "v": [1.0, 2.0, 3.0]})
    first = ids.renumber(frame, {"n": None, "s": "K[0-9]{3}"}, 0, "ds")
    second = ids.renumber(frame, {"n": None, "s": "K[0-9]{3}"}, 3, "ds")
    assert first["n"].tolist() == [1, 2, 3] and second["n"].tolist() == [4, 5, 6]
    assert first["s"].tolist() == ["K000", "K001", "K002"] and second["s"].tolist() == ["K003", "K004", "K005"]
    assert ids.renumber(frame, {"s": "K[0-9]"}, 9, "ds")["s"].tolist() == ["ds_9", "ds_10", "ds_11"]  # too few
    assert ids.renumber(frame, {"n": "[1-9][0-9]"}, 0, "ds")["n"].tolist() == [10, 11, 12]  # the regex's numbers
    assert ids.renumber(frame, {"n": "[1-9][0-9]"}, 89, "ds")["n"].tolist() == [189, 190, 191]  # then past 99
    assert first["v"].equals(frame["v"]) and first["n"].dtype == frame["n"].dtype
