"""The downloads: the whole trace as .npz, and the settings as JSON."""

from __future__ import annotations

import dataclasses
import json

import streamlit as st

from encoder import TraceArrays
from ui import compute, session
from ui.settings import (
    Settings,
    to_query_params,
)


def section(settings: Settings, trace: TraceArrays, run: compute.Run) -> None:
    t = session.strings()
    st.subheader(t["downloads"])
    left, right = st.columns(2)
    left.download_button(
        t["download_trace"],
        data=lambda: compute.trace_npz(run.key, run.device, run.text, run.upload_data),
        file_name="attention_trace.npz",
        mime="application/octet-stream",
        on_click="ignore",
        help=t["download_trace_help"],
    )
    encoder = dataclasses.asdict(trace.config) | {"limits": None, "model_name": trace.model_name}
    document = {"link": to_query_params(settings), "encoder": encoder}
    right.download_button(
        t["download_settings"],
        data=json.dumps(document, ensure_ascii=False, indent=2),
        file_name="attention_settings.json",
        mime="application/json",
        on_click="ignore",
    )
