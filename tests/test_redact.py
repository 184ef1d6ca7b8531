"""Credentials are masked wherever Synthgate prints or records text."""

from __future__ import annotations

import pytest

from pipelines.redact import redact, split_credentials


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://mlflow:s3cr3t@host:5000", "http://mlflow:***@host:5000"),
        ("postgresql+psycopg2://u:p%40ss@db/mlflow ok", "postgresql+psycopg2://u:***@db/mlflow ok"),
        ("https://h/api?token=abc123&x=1", "https://h/api?token=***&x=1"),
        ("sqlite:////work/mlflow.db", "sqlite:////work/mlflow.db"),
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_redact_masks_passwords_and_tokens(text, shown):
    assert redact(text) == shown


def test_split_credentials():
    assert split_credentials("http://u:pw@h:5/x") == ("http://h:5/x", ("u", "pw"))
    assert split_credentials("http://h:5/x") == ("http://h:5/x", None)


def test_lineage_never_prints_the_tracking_password(tmp_path, monkeypatch, capsys):
    """An unreachable server with credentials in MLFLOW_TRACKING_URI: the error names it, masked."""
    from pipelines.lineage.mlflow_store import MlflowUnavailable, mlflow_client

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:hunter2@127.0.0.1:9/")
    with pytest.raises(MlflowUnavailable) as err:
        mlflow_client(tmp_path)
    assert "hunter2" not in str(err.value) and "alice:***@127.0.0.1:9" in str(err.value)


def test_cli_errors_are_redacted(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("datasets: {}\ndefaults: {}\n")
    code = main(["lineage", "http://bob:pa55word@example.invalid/data.parquet"])
    err = capsys.readouterr()
    assert code != 0 and "pa55word" not in err.err + err.out
