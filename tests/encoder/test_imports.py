"""What each layer of the project may import: `encoder` is the model and nothing of the page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_encoder_imports_neither_streamlit_nor_plotly():
    code = (
        "import sys, encoder, encoder.pretrained, encoder.torch_import; "
        "loaded = [m for m in ('streamlit', 'plotly') if m in sys.modules]; assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
