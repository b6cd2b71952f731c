"""slm.edge.job_progress: the progress line it shows (a real job: tests/integration/test_job_progress.py)."""

from __future__ import annotations

from ansible_collections.slm.edge.plugins.action.job_progress import NINJA, format_progress, progress_line


def test_last_ninja_step_wins():
    tail = "== build\n[1/240] Building C object a.o\n[57/240] Building CXX object b.o\nwarning: x\n"
    assert progress_line(tail, NINJA) == ("[57/240] Building CXX object b.o", 57, 240)
    assert format_progress("llama.cpp build", 125, *progress_line(tail, NINJA)[0:3]) == (
        "llama.cpp build: 57/240 steps (23%), 2m05s elapsed"
    )


def test_without_steps_the_last_matching_line_is_shown():
    line, done, total = progress_line("Collecting torch\nDownloading torch (800 MB)\n", r"^(Collecting|Downloading)")
    assert (line, done, total) == ("Downloading torch (800 MB)", None, None)
    assert format_progress("venv", 5, line, done, total) == "venv: 0m05s elapsed, Downloading torch (800 MB)"
    assert format_progress("venv", 61, "", None, None) == "venv: 1m01s elapsed"
