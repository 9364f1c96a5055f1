"""The answer key of a graded function: its cases, the reference's outputs on them, and what each
known mistake would return; computed in the grader's process, never sent to a sandbox.

A key is plain data ({spec, cases, expected, mistakes, public}), so the student build of the
package can carry the public cases' key without any reference code.
"""

from __future__ import annotations

import functools

import numpy as np

from .functions import BY_NAME, hidden_cases, inputs, public_cases
from .sandbox.box import protocol, runner

#: The seed of the random cases only the grader knows, unless the instructor picks another.
DEFAULT_HIDDEN_SEED = 1


def reference_function(name: str):
    from .. import costs

    return getattr(costs, name)


def build_key(name: str, cases: list, public: int) -> dict:
    """The key of graded function `name` on `cases`, the first `public` of which students see."""
    record = BY_NAME[name]
    expected = runner.run_cases(reference_function(name), cases)
    bad = [out for out in expected if "error" in out]
    if bad:
        raise RuntimeError(f"the reference {name} failed on its own cases: {bad[0]['error']}")
    mistakes = []
    for mistake in record.mistakes:
        values = []
        for case in cases:
            value = mistake.value(inputs(case))
            values.append(None if value is None else np.asarray(value, dtype=np.float64))
        mistakes.append({"key": mistake.key, "message": mistake.message, "values": values})
    return {
        "spec": record.spec,
        "cases": cases,
        "expected": expected,
        "mistakes": mistakes,
        "public": public,
    }


def public_part(key: dict) -> dict:
    """The key restricted to its public cases."""
    n = key["public"]
    return dict(
        key,
        cases=key["cases"][:n],
        expected=key["expected"][:n],
        public=n,
        mistakes=[dict(m, values=m["values"][:n]) for m in key["mistakes"]],
    )


@functools.lru_cache(maxsize=None)
def grading_key(name: str, hidden_seed: int = DEFAULT_HIDDEN_SEED) -> dict:
    """Public then hidden cases of `name`, with the reference's outputs."""
    record = BY_NAME[name]
    public = public_cases(record)
    return build_key(name, public + hidden_cases(record, hidden_seed), len(public))


@functools.lru_cache(maxsize=None)
def public_key(name: str) -> dict:
    """The key of the public cases; for a function that calls another graded one, with
    "answers": {that one: [[matrix, its answer]]} for what it gives it on them (record.asks)."""
    record = BY_NAME[name]
    cases = public_cases(record)
    key = build_key(name, cases, len(cases))
    if record.asks is not None:
        asked = [m for c in cases for m in record.asks(inputs(c))]
        asked.sort(key=lambda m: (m.shape, m.tobytes()))  # in no telling order
        key["answers"] = {
            dep: [[m, BY_NAME[dep].oracle(m)] for m in asked] for dep in record.spec.dependencies
        }
    return key


def dumps(keys: dict) -> str:
    """{name: key} as JSON text (for the student build)."""
    import dataclasses

    return protocol.dumps(
        {name: dict(key, spec=dataclasses.asdict(key["spec"])) for name, key in keys.items()}
    )
