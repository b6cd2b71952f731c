# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.bench_comparisons: B/A of every benchmark configuration against the first."""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_comparisons
short_description: Compare every benchmark configuration with the first (B/A per workload and concurrency)
version_added: 0.3.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - For every configuration after the first (B) and every level (workload and concurrency) it shares with the
    first one (A), returns the aggregate output tokens/s and the p95 end-to-end latency of A and B and their
    ratios B/A, rounded to three decimals. An aggregate tokens/s ratio above 1 is better; a p95 latency ratio
    above 1 is worse. A ratio is V(null) when a value is unknown or A is zero.
  - The rows are the ones the Markdown report of the benchmark role renders (both come from the collection's
    C(bench_report) module utility), so the summary, C(run.json) and the report always agree.
  - The filter P(slm.edge.bench_comparison_lines#filter) turns the rows into one sentence each.
options:
  _input:
    description:
      - Results documents of M(slm.edge.llm_benchmark) (its C(benchmark) return value, or a registered result), or
        records with a C(label) and the C(levels) of such a document; the first one is A.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Compare every configuration with the first
  ansible.builtin.set_fact:
    comparisons: "{{ configurations | slm.edge.bench_comparisons }}"

- name: Show them
  ansible.builtin.debug:
    msg: "{{ comparisons | slm.edge.bench_comparison_lines }}"
"""

RETURN = r"""
_value:
  description:
    - One row per configuration B and level shared with A, with the keys C(a) and C(b) (labels), C(workload),
      C(concurrency), C(aggregate_output_tps_a), C(aggregate_output_tps_b), C(aggregate_output_tps_ratio),
      C(e2e_p95_ms_a), C(e2e_p95_ms_b) and C(e2e_p95_ratio).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.slm.edge.plugins.module_utils.bench_report import comparisons


def bench_comparisons(results):
    """B/A rows of every configuration after the first against the first."""
    if not isinstance(results, list):
        raise AnsibleFilterError("bench_comparisons expects a list of benchmark results")
    try:
        return comparisons(results)
    except (ValueError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError(f"bench_comparisons: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"bench_comparisons": bench_comparisons}
