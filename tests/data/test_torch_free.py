"""Ray Data's read/resample tasks import only what they run: no torch (seconds per worker process; issue 19)."""

from __future__ import annotations

import subprocess
import sys


def test_data_pipeline_modules_do_not_import_torch() -> None:
    code = ("import sys; import omnivad.data.ray_datasets, omnivad.corpus.format, omnivad.data.pools; "
            "print(sorted(m for m in ('torch', 'omnivad.methods.base') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
