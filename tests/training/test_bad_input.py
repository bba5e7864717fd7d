"""Bad files and bad pipeline files: clear errors naming the problem."""

from pathlib import Path

import pytest

from peak_memory import BOUNDED_RSS_BYTES, run_measured, sparse_file
from servewell.errors import InvalidConfig, InvalidData, InvalidReference, TrainingFailed
from servewell.training.config import load_config
from servewell.training.data import dataset_from_frame, load_dataset
from servewell.training.progress import SilentProgress
from servewell.training.run import train_pipeline
from servewell.training.textfile import SNIFF_BYTES


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("binary.csv", b"\x00\x01\x02PK\x03\x04" * 20, "not a CSV file"),
        ("header.csv", b"a,b,c\n", "no data rows"),
        ("model.json", b"{}", "unsupported file type '.json'"),
        ("broken.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidData, match=message):
        load_dataset(path)


def test_missing_target_column_suggests_a_close_name(frame, make_config) -> None:
    with pytest.raises(InvalidData, match=r"no target column 'clickd' \(did you mean 'clicked'"):
        train_pipeline(dataset_from_frame(frame, "t"), make_config(target="clickd"))


def test_one_class_target(frame, make_config) -> None:
    frame["clicked"] = 1
    with pytest.raises(InvalidData, match="has one class only"):
        train_pipeline(dataset_from_frame(frame, "t"), make_config())


def test_unknown_key_in_pipeline_file(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text("target: clicked\ncleaning:\n  mising: drop\n")
    with pytest.raises(InvalidConfig, match=r"unknown key 'cleaning\.mising'"):
        load_config(path)


def test_derived_feature_on_a_missing_column(frame, make_config) -> None:
    config = make_config(features={"derived": [{"name": "rate", "ratio": ["clicks", "views"]}]})
    with pytest.raises(InvalidConfig, match="'rate' uses column 'views', which is not in the data"):
        train_pipeline(dataset_from_frame(frame, "t"), config)


def test_derived_feature_named_like_a_column(frame, make_config) -> None:
    config = make_config(features={"derived": [{"name": "clicks", "log": "clicks"}]})
    with pytest.raises(InvalidConfig, match="derived feature 'clicks' has the name of a column"):
        train_pipeline(dataset_from_frame(frame, "t"), config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "bad name"}, "invalid model reference 'bad name'"),
        ({"register": {"alias": "9lives"}}, "invalid model reference '9lives'"),
    ],
)
def test_a_name_it_cannot_register_under_fails_before_training(
    frame, make_config, overrides: dict[str, object], message: str
) -> None:
    stages: list[str] = []

    class Stages(SilentProgress):
        def stage_started(self, stage: str) -> None:
            stages.append(stage)

    with pytest.raises(InvalidReference, match=message):
        train_pipeline(dataset_from_frame(frame, "t"), make_config(**overrides), Stages())
    assert stages == []


def test_wrong_types_in_a_declared_numeric_column(frame, make_config) -> None:
    frame["impressions"] = frame["impressions"].astype(str)
    frame.loc[: len(frame) * 0.6, "impressions"] = "many"
    config = make_config(columns={"impressions": "numeric"})
    with pytest.raises(InvalidData, match=r"invalid `impressions` \(e.g. 'many'\)"):
        train_pipeline(dataset_from_frame(frame, "t"), config)


def test_estimator_that_does_not_converge(frame, make_config) -> None:
    config = make_config(estimator={"kind": "mlp", "max_epochs": 2, "tol": 0.0})
    with pytest.raises(TrainingFailed, match="did not converge in 2 epochs"):
        train_pipeline(dataset_from_frame(frame, "t"), config)


def test_bad_estimator_parameter(frame, make_config) -> None:
    config = make_config(estimator={"kind": "logistic", "params": {"C": -1}})
    with pytest.raises(InvalidConfig, match=r"estimator\.params for LogisticRegression"):
        train_pipeline(dataset_from_frame(frame, "t"), config)


def test_gate_naming_an_unknown_class(frame, make_config) -> None:
    config = make_config(gate={"min_recall": {"fraud": 0.8}})
    with pytest.raises(InvalidConfig, match="names class 'fraud'"):
        train_pipeline(dataset_from_frame(frame, "t"), config)


def test_schema_is_inferred_from_the_values(frame, make_config) -> None:
    frame["user"] = [f"user-{i}" for i in range(len(frame))]
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    kinds = {c.name: c.kind for c in result.schema.columns}
    assert kinds == {
        "timestamp": "datetime",
        "last_click_at": "datetime",
        "device": "categorical",
        "impressions": "numeric",
        "clicks": "numeric",
        "user": "ignore",
    }


def test_a_gigabyte_of_nul_bytes_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    big = sparse_file(tmp_path / "big.csv")  # what profile, retrain, train and evaluate read
    code = (
        "import sys; from pathlib import Path; from servewell.errors import InvalidData\n"
        "from servewell.training.data import load_dataset\n"
        "try: load_dataset(Path(sys.argv[1]))\n"
        "except InvalidData as exc: sys.exit(str(exc))\n"
    )
    run = run_measured(code, str(big), cwd=tmp_path)
    assert run.stderr.strip() == "big.csv is not a CSV file (it holds binary data)"
    assert run.peak_rss_bytes < BOUNDED_RSS_BYTES


def test_one_endless_line_is_refused_before_it_is_read(tmp_path: Path) -> None:
    endless = tmp_path / "endless.csv"
    endless.write_text("x" * (SNIFF_BYTES + 1))
    with pytest.raises(InvalidData, match=f"no line break in its first {SNIFF_BYTES} bytes"):
        load_dataset(endless)


def test_a_one_column_table_is_read_only_for_a_column_expected(tmp_path: Path) -> None:
    one = tmp_path / "x1.csv"
    one.write_text("x\n1\n")
    assert load_dataset(one, columns=["x", "y"]).frame["x"].tolist() == [1]
    with pytest.raises(InvalidData, match=r"does not look like a CSV table: found 1 column"):
        load_dataset(one, columns=["y"])  # prose reads as one column too
