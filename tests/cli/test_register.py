"""`servewell register` and friends: happy paths, and every bad input leaving the registry
exactly as it was."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from servewell.core.figure import format_figure

Invoke = Callable[..., Result]
State = Callable[[], object]


def test_register_list_show_alias(invoke: Invoke, model_files: dict[str, Path]) -> None:
    result = invoke("register", str(model_files["onnx"]), "--name", "iris", "--tag", "team=ml")
    assert result.exit_code == 0, result.output
    assert "registered iris@1" in result.stdout
    result = invoke("register", str(model_files["joblib"]), "--name", "iris", "--trust", "--json")
    version = json.loads(result.stdout)
    assert version["version"] == 2
    assert {a["role"] for a in version["artifacts"]} == {"original", "onnx"}

    assert invoke("alias", "set", "iris", "production", "1").exit_code == 0
    listing = json.loads(invoke("models", "--json").stdout)
    assert listing[0]["aliases"] == {"production": 1}

    shown = invoke("models", "show", "iris")
    assert shown.exit_code == 0
    for text in ("iris@1", "production", "FP32", "[-1, 4]", "probabilities", "team"):
        assert text in shown.stdout
    table = invoke("models")
    assert "production→1" in table.stdout
    assert invoke("alias", "remove", "iris", "production").exit_code == 0


def test_lineage_is_shown(invoke: Invoke, model_files: dict[str, Path]) -> None:
    invoke("register", str(model_files["onnx"]), "--name", "iris")
    invoke("register", str(model_files["onnx"]), "--name", "iris", "--parent", "iris@1")
    shown = json.loads(invoke("models", "show", "iris@2", "--json").stdout)
    assert shown["lineage"] == ["iris@2", "iris@1"]


def _corrupt(tmp_path: Path, model_files: dict[str, Path]) -> dict[str, Path]:
    onnx_bytes = model_files["onnx"].read_bytes()
    files = {
        "truncated.onnx": onnx_bytes[: len(onnx_bytes) // 3],
        "garbage.onnx": b"this is not a protobuf",
        "empty.onnx": b"",
        "model.h5": b"HDF5",
        "model.joblib": model_files["joblib"].read_bytes(),
        "not-a-model.pkl": pickle.dumps({"just": "a dict"}),
        "truncated.joblib": model_files["joblib"].read_bytes()[:100],
        "one-byte.joblib": b"x",
        "bad-signature.json": b"{not json",
        "wrong-signature.json": json.dumps(
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 7]}]}
        ).encode(),
        "huge-signature.json": json.dumps(
            {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 10**20]}]}
        ).encode(),
        "inverted-range.json": json.dumps(
            {
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
                "feature_names": ["a", "b", "c", "d"],
                "feature_ranges": {"a": {"min": 5, "max": 1}},
            }
        ).encode(),
        "two-labels-three-classes.json": json.dumps(
            {
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
                "outputs": [
                    {"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
                ],
                "class_labels": ["a", "b"],
            }
        ).encode(),
        "two-labels-labels-only.json": json.dumps(
            {
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
                "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
                "class_labels": [7, 8],
            }
        ).encode(),
        "matrix-not-named-input.json": json.dumps(
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]}
        ).encode(),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["truncated.onnx"], "not a valid ONNX model|not a loadable ONNX model|cannot be loaded"),
        (["garbage.onnx"], "ONNX model"),
        (["empty.onnx"], "ONNX model|empty"),
        (["model.h5"], "unsupported model format '.h5'"),
        (["model.joblib"], "loading it runs arbitrary code.*--trust"),
        (["not-a-model.pkl", "--trust"], "holds a dict, not a fitted estimator"),
        (["truncated.joblib", "--trust"], "not a readable joblib/pickle file"),
        (["one-byte.joblib", "--trust"], r"not a readable joblib/pickle file \(it ends early"),
        (["missing.onnx"], "does not exist"),
        (["model.joblib", "--trust", "--signature", "bad-signature.json"], "not valid JSON"),
        (
            ["model.joblib", "--trust", "--signature", "wrong-signature.json"],
            "does not run on inputs of its signature",
        ),
        (
            ["model.joblib", "--trust", "--signature", "huge-signature.json"],
            "invalid signature: .*one row of tensor 'input' would hold 100000000000000000000 "
            "values; at most 134217728",
        ),
        (
            ["model.joblib", "--trust", "--signature", "inverted-range.json"],
            "invalid signature: .*feature range of 'a': min 5.0 is above max 1.0",
        ),
        (
            ["model.joblib", "--trust", "--signature", "two-labels-three-classes.json"],
            r"class_labels has 2 labels, but output 'probabilities' is \[-1, 3\] \(3 classes\)",
        ),
        (
            ["model.joblib", "--trust", "--signature", "two-labels-labels-only.json"],
            "class_labels has 2 labels, but the model has 3 classes",
        ),
        (
            ["model.joblib", "--trust", "--signature", "matrix-not-named-input.json"],
            "does not run on inputs of its signature: input 'x' holds 4 values per row",
        ),
        (["model.joblib", "--trust", "--parent", "ghost@1"], "'ghost' is not registered"),
        (["model.joblib", "--trust", "--alias", "9lives"], "invalid model reference '9lives'"),
        (["model.joblib", "--trust", "--tag", "novalue"], "tag 'novalue' is not key=value"),
    ],
)
def test_bad_registrations_fail_cleanly(
    invoke: Invoke,
    registry_state: State,
    model_files: dict[str, Path],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    invoke("register", str(model_files["onnx"]), "--name", "iris", "--alias", "production")
    before = registry_state()
    store = tmp_path / "home" / "artifacts" / "sha256"
    files_before = sorted(p for p in store.rglob("*") if p.is_file())
    paths = _corrupt(tmp_path, model_files)
    resolved = [str(paths[arg]) if arg in paths else arg for arg in args]
    result = invoke("register", *resolved, "--name", "iris")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert registry_state() == before
    if "--parent" in args:
        # Failed in the transaction, after storing: the file stays (a concurrent
        # registration may be using it) until `servewell gc` finds it unreferenced.
        assert invoke("gc", "--apply", "--grace-s", "0").exit_code == 0
    assert sorted(p for p in store.rglob("*") if p.is_file()) == files_before


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_a_remote_spec_without_format_is_told_to_pass_format_remote(
    invoke: Invoke, registry_state: State, tmp_path: Path, suffix: str
) -> None:
    spec = tmp_path / f"llm{suffix}"
    spec.write_text("kind: openai\nurl: http://127.0.0.1:9\nmodel: gpt-4o-mini\n")
    before = registry_state()
    result = invoke("register", str(spec), "--name", "llm")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: unsupported model format")
    assert "looks like a remote model's spec: pass --format remote" in line
    assert registry_state() == before
    # An openai spec reads nothing from its upstream: the hint is all it took.
    assert invoke("register", str(spec), "--name", "llm", "--format", "remote").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["models", "show", "ghost"], "model 'ghost' is not registered", 4),
        (["models", "show", "iris@staging"], "model 'iris' has no alias 'staging'", 4),
        (["models", "show", "iris@3"], "model 'iris' has no version 3", 4),
        (["models", "show", "iris@"], "nothing after '@'", 2),
        (["alias", "set", "iris", "production", "5"], "no version 5", 4),
        (["alias", "set", "iris", "production", "9" * 20], "no version 99999999999999999999", 4),
        (["alias", "set", "iris", "x\n", "1"], "invalid model reference 'x\\n'", 2),
        (["alias", "remove", "iris", "canary"], "no alias 'canary'", 4),
        (["alias", "set", "ghost", "production", "1"], "'ghost' is not registered", 4),
    ],
)
def test_unknown_models_and_aliases(
    invoke: Invoke,
    registry_state: State,
    model_files: dict[str, Path],
    args: list[str],
    message: str,
    code: int,
) -> None:
    invoke("register", str(model_files["onnx"]), "--name", "iris", "--alias", "production")
    before = registry_state()
    result = invoke(*args)
    assert result.exit_code == code
    assert result.stderr.strip() == f"error: {message}" or message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert registry_state() == before


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("bogus: 1\n", "unknown setting 'bogus' in servewell.yaml"),
        ("runtime:\n  intra_op_threads: -1\n", "runtime.intra_op_threads"),
        ("runtime: [\n", "is not valid YAML"),
    ],
)
def test_bad_settings_file_is_one_line(
    invoke: Invoke, home: Path, yaml_text: str, message: str
) -> None:
    (home.parent / "servewell.yaml").write_text(yaml_text)  # the working directory's
    result = invoke("models")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def _given_settings(
    home: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, env: dict[str, str]
) -> None:
    """The working directory's servewell.yaml holds ``content`` (if any), and ``env`` is set."""
    if content is not None:
        (home.parent / "servewell.yaml").write_bytes(content)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        (b"- 1\n", {}, "servewell.yaml must be a mapping of setting names to values"),
        (b"server: {port: 1}\n\xff\xfe\n", {}, "servewell.yaml is not UTF-8 text"),
        (None, {"SERVEWELL_SERVER": "{"}, 'error parsing value for field "server"'),
    ],
)
def test_unreadable_settings_are_one_line(
    invoke: Invoke,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes | None,
    env: dict[str, str],
    message: str,
) -> None:
    _given_settings(home, monkeypatch, content, env)
    result = invoke("models")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


@pytest.mark.parametrize("command", ["models", "serve"])
@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        (
            "rate_limit: {default_rate: 1/second}\n",
            {},
            "error: unknown setting 'rate_limit' in servewell.yaml; did you mean 'rate_limits'?",
        ),
        (
            "models: {fraud: {cache: {ttl: 5}}}\n",
            {},
            "error: unknown setting 'models.fraud.cache.ttl' in servewell.yaml; "
            "did you mean 'models.fraud.cache.ttl_s'?",
        ),
        (
            None,
            {"SERVEWELL_SERVER__MAX_BODY_BYTE": "1"},
            "error: unknown setting SERVEWELL_SERVER__MAX_BODY_BYTE in the environment; "
            "did you mean SERVEWELL_SERVER__MAX_BODY_BYTES?",
        ),
    ],
)
def test_an_unknown_setting_is_one_line_and_exit_2(
    invoke: Invoke,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    yaml_text: str | None,
    env: dict[str, str],
    message: str,
) -> None:
    _given_settings(home, monkeypatch, yaml_text and yaml_text.encode(), env)
    result = invoke(command)
    assert result.exit_code == 2
    assert result.stderr.strip() == message


def test_a_signature_with_labels_only_registers_and_predicts(
    invoke: Invoke, model_files: dict[str, Path], tmp_path: Path
) -> None:
    signature = tmp_path / "labels-only.json"
    signature.write_text(
        json.dumps(
            {
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
                "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
            }
        )
    )
    args = ["--name", "iris", "--trust", "--signature", str(signature)]
    result = invoke("register", str(model_files["joblib"]), *args)
    assert result.exit_code == 0, result.output
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([[5.1, 3.5, 1.4, 0.2]]))
    predicted = invoke("predict", "iris@1", str(rows), "--json")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["predictions"] == [{"label": 0}]


def test_show_gives_the_conversions_difference_as_register_measured_it(
    invoke: Invoke, model_files: dict[str, Path]
) -> None:
    result = invoke("register", str(model_files["joblib"]), "--name", "iris", "--trust", "--json")
    diff = json.loads(result.stdout)["metrics"]["onnx_max_abs_diff"]
    assert 0 < diff < 1e-3  # float32 ONNX against the float64 pipeline: tiny, not zero
    shown = invoke("models", "show", "iris")
    row = next(line for line in shown.stdout.splitlines() if "onnx_max_abs_diff" in line)
    figure = row.split("│")[2].strip()
    assert figure == format_figure(diff)
    assert re.fullmatch(r"-?\d\.?\d*e-\d\d", figure), figure  # 3.6e-07, never 0.0000
