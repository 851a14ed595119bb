"""Lean dashboard (room) kernels: the shipped digits copy splits exactly as scikit-learn's does,
the first screen imports neither scikit-learn nor SciPy nor nbformat's jsonschema chain
(nor Torch-Pruning: the zoo traces its dependency graph on the first structured prune),
and plotly's renderers still reach nbformat when a figure is shown."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, checkout_env

from explorer.cli.room_pages import plotly_module_path
from explorer.config import PLOTLY_MODULE_ENV


@pytest.mark.parametrize("seed", [0, 3])
def test_shipped_digits_split_is_bit_identical_to_sklearn(seed):
    from sklearn.datasets import load_digits as sk_digits

    from explorer.data.datasets import _from_arrays, load_digits

    bunch = sk_digits()
    ref = _from_arrays("digits", bunch.data.astype(np.float64), bunch.target, seed,
                       "classification", (1, 8, 8), "cpu")
    ours = load_digits(seed)
    for part in ("train", "val", "test"):
        a, b = getattr(ref, part), getattr(ours, part)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y), part
        assert a.x.dtype == b.x.dtype and a.y.dtype == b.y.dtype
    assert (ref.n_outputs, ref.input_shape) == (ours.n_outputs, ours.input_shape)


def test_the_first_screen_imports_no_scipy_sklearn_nbformat_or_torch_pruning():
    code = ("import sys\nfrom explorer.ui import ExplorerApp\nExplorerApp.default()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'scipy', 'sklearn', 'pandas', 'matplotlib', 'nbformat', 'jsonschema', "
            "'rfc3987_syntax', 'lark', 'torch_pruning', 'PIL'}), flush=True)\n"
            # the app's background one-shot curve may still run: leave without waiting
            # for it (a kernel never exits mid-page; interpreter teardown under a running
            # torch thread aborts)
            "import os\nos._exit(0)\n")
    assert last_line_printed(code) == "[]"


def test_plotly_renderers_load_nbformat_on_first_use():
    """The stand-in imports the real nbformat when plotly's mime renderer asks for it."""
    code = ("import sys\nimport explorer.ui\nimport plotly.io._renderers as r\n"
            "assert 'nbformat' not in sys.modules\n"
            "print(r.nbformat.__version__ == sys.modules['nbformat'].__version__)\n")
    assert last_line_printed(code) == "True"


def test_plotlys_image_helper_loads_pillow_on_first_use():
    """Pillow is kept out of the kernel until plotly's image helper (px.imshow) needs it."""
    code = ("import sys\nimport explorer.ui\nimport numpy as np\n"
            "import _plotly_utils.data_utils as d\nassert 'PIL' not in sys.modules\n"
            "uri = d.image_array_to_data_uri(np.zeros((4, 4, 3), dtype='uint8'))\n"
            "print(uri.startswith('data:image/png;base64,') and 'PIL.Image' in sys.modules)\n")
    assert last_line_printed(code) == "True"


def last_line_printed(code: str) -> str:
    """Run `code` in a fresh interpreter from the checkout, as a room's kernel (where the
    lean import applies: explorer.ui.served.prepare_room_kernel); the last line printed."""
    env = checkout_env(**{PLOTLY_MODULE_ENV: plotly_module_path()})
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]
