# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.bench_comparison_lines: one sentence per B/A row of slm.edge.bench_comparisons."""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_comparison_lines
short_description: One sentence per row of slm.edge.bench_comparisons
version_added: 0.3.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - "Turns each row of P(slm.edge.bench_comparisons#filter) into a sentence such as
    C(tuned vs baseline, chatbot at concurrency 4: aggregate tok/s B/A 1.25x (80.0 -> 100.0), p95 E2E B/A 0.90x
    (5000.0 -> 4500.0 ms)); an unknown ratio is shown as C(-)."
options:
  _input:
    description: Rows of P(slm.edge.bench_comparisons#filter).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the B/A ratios
  ansible.builtin.debug:
    msg: "{{ configurations | slm.edge.bench_comparisons | slm.edge.bench_comparison_lines }}"
"""

RETURN = r"""
_value:
  description: One sentence per row.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.slm.edge.plugins.module_utils.bench_report import comparison_line


def bench_comparison_lines(rows):
    """One sentence per row of bench_comparisons."""
    try:
        return [comparison_line(row) for row in rows]
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"bench_comparison_lines: not a row of bench_comparisons ({exc})") from exc


class FilterModule:
    def filters(self):
        return {"bench_comparison_lines": bench_comparison_lines}
