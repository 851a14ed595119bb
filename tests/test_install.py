"""A non-editable install serves the dashboard from an empty folder, with a token.

Offline and fast: the project is built as a wheel and installed, without dependencies, into
a fresh venv; the dependencies come from the test interpreter's site-packages through a .pth
line (which adds that folder but runs none of its .pth files, so the editable checkout there
stays invisible). The test checks that the venv imports its own installed copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, find_free_port, running_server

pytestmark = pytest.mark.slow

# What a build needs; copying it keeps build/ and *.egg-info out of the checkout.
SOURCES = ["pyproject.toml", "explorer", "README.md", "LICENSE"]
TOKEN = "install-test-token"
PAGE_TIMEOUT_S = 300


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert result.returncode == 0, f"{cmd}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with the project installed from a wheel; returns its bin/ folder."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, src / name)
    wheels = tmp / "wheels"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            wheels,
            src,
        ]
    )
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    site = Path(
        run(
            [venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    (site / "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: never touch the copy registered in the dependencies' site-packages.
    run(
        [
            venv / "bin/python",
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            *sorted(wheels.glob("*.whl")),
        ]
    )
    return venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "EXPLORER_TOKEN", "VIRTUAL_ENV")
    }
    # Voila's templates and the kernel spec are data files of the dependencies' install.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return {**env, **extra}


def test_installed_copy_is_the_one_imported(installed, tmp_path):
    """From an empty folder, the venv's explorer and its packaged resources are used."""
    code = (
        "import explorer, explorer.cli.main as c; print(explorer.__file__); "
        "print(c.resource_path('dashboard.ipynb').is_file(), "
        "c.resource_path('talk.ipynb').is_file(), c.resource_path('digits_mlp.pt').is_file())"
    )
    out = run([installed / "python", "-c", code], cwd=tmp_path, env=clean_env()).stdout.split()
    assert Path(out[0]).is_relative_to(installed.parent), out
    assert out[1:] == ["True", "True", "True"], out


def test_installed_dashboard_serves_the_app_with_a_token(installed, tmp_path):
    """``explorer dashboard`` of the install, run from an empty folder with a token in the
    environment: no token is refused, with the token the notebook runs and shows the app."""
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [str(installed / "explorer"), "dashboard", "--no-browser", "--port", str(port)]
    env = clean_env(EXPLORER_TOKEN=TOKEN)
    with running_server(
        cmd, f"{url}voila/static/", f"install-dashboard-{port}.log", cwd=tmp_path, env=env
    ) as proc:
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(url, timeout=30)
        assert refused.value.code in (302, 403), refused.value.code
        with pytest.raises(urllib.error.HTTPError) as files:
            opener.open(f"{url}voila/files/digits_mlp.pt?token={TOKEN}", timeout=30)
        assert files.value.code == 403
        with urllib.request.urlopen(f"{url}?token={TOKEN}", timeout=PAGE_TIMEOUT_S) as page:
            html = page.read().decode()
        assert proc.poll() is None
    assert "application/vnd.jupyter.widget-view+json" in html
    assert "ExplorerApp(" in html  # the app's repr: the notebook ran to its display call
    assert "There was an error when executing cell" not in html
    assert "Traceback" not in html
    assert not list(tmp_path.iterdir())  # nothing written into the visitor's folder


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # surface the 302 to the login page as an HTTPError
