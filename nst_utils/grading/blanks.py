"""Blanking a graded cell as the original notebook did, and telling an untouched blank.

Between each `### START CODE HERE ###` line (it may go on, e.g. "(1 line)") and the next
`### END CODE HERE ###`, hint comments stay and each statement is blanked: an assignment keeps
its target (`J_content = None`), a call keeps its function (`sess.run(None)`), anything else
becomes `None`. Standard library only: the students' self-check uses it too.
"""

from __future__ import annotations

import ast
import textwrap

from ..errors import NSTError
from .catalog import END_MARKER, START_MARKER


def is_start(line: str) -> bool:
    return line.strip().startswith(START_MARKER)


def _is_end(line: str) -> bool:
    return line.strip().startswith(END_MARKER)


def code_blocks(source: str, name: str = "the cell") -> list:
    """[(first, last)] line indexes (exclusive of the markers) of each START..END pair."""
    lines, blocks, start = source.split("\n"), [], None
    for i, line in enumerate(lines):
        if is_start(line):
            if start is not None:
                raise NSTError(
                    f"{name}: a {START_MARKER} line before the previous one's {END_MARKER}"
                )
            start = i + 1
        elif _is_end(line):
            if start is None:
                raise NSTError(
                    f"{name}: an {END_MARKER} line with no {START_MARKER} line before it"
                )
            blocks.append((start, i))
            start = None
    if start is not None or not blocks:
        raise NSTError(f"{name} needs {START_MARKER} and {END_MARKER} lines around its code")
    return blocks


def _statements(lines: list):
    """The block's statements as (first line, last line, ast node), or None if it does not parse."""
    try:
        tree = ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError:
        return None
    return [(node.lineno - 1, node.end_lineno - 1, node) for node in tree.body]


def _blank_statement(node, text: str) -> str:
    """The blank of one statement; `text` is the block's (dedented) source, the node's origin."""
    segment = lambda part: ast.get_source_segment(text, part)  # noqa: E731
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        return f"{segment(node.targets[0])} = None"
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
        operator = "=" if isinstance(node, ast.AnnAssign) else ast.unparse(node).split(" ", 2)[1]
        return f"{segment(node.target)} {operator} None"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return f"{segment(node.value.func)}(None)"
    return "None"


def _blank_block(lines: list, name: str) -> list:
    statements = _statements(lines)
    indent = next((ln[: len(ln) - len(ln.lstrip())] for ln in lines if ln.strip()), "    ")
    if statements is None:
        return [ln for ln in lines if ln.strip().startswith("#")] + [
            f'{indent}raise NotImplementedError("{name} is not implemented yet")'
        ]
    dedented = textwrap.dedent("\n".join(lines))
    firsts = {first: (last, node) for first, last, node in statements}
    out, skip_to = [], -1
    for i, line in enumerate(lines):
        if i <= skip_to:
            continue
        if i in firsts:
            last, node = firsts[i]
            out.append(indent + _blank_statement(node, dedented))
            skip_to = last
        else:
            out.append(line)
    return out


def blank_body(source: str, name: str) -> str:
    """The cell's source with every statement between the markers blanked."""
    lines = source.split("\n")
    for first, last in reversed(code_blocks(source, f"the graded cell of {name}")):
        lines[first:last] = _blank_block(lines[first:last], name)
    return "\n".join(lines)


def is_untouched_blank(source: str) -> bool:
    """True when the code between the markers is still the blank the student was given and
    no code outside them can make the function work (a `return` before the markers, or the
    returned variable set after them): such a function is "not implemented yet"."""
    try:
        blocks = code_blocks(source)
    except NSTError:
        return False
    blank = (
        source.split("\n") == blank_body(source, "x").split("\n")
        and any(
            any(
                line.strip() and not line.strip().startswith("#")
                for line in source.split("\n")[a:b]
            )
            for a, b in blocks
        )
        or _legacy_blank(source, blocks)
    )
    return blank and not _works_outside_markers(source, blocks)


_ASSIGNING = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With, ast.NamedExpr)


def _assigned_names(node) -> set:
    """Names a statement (or walrus) binds directly."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.NamedExpr)):
        targets = [node.target]
    elif isinstance(node, ast.With):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    else:
        return set()
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _works_outside_markers(source: str, blocks) -> bool:
    """Whether the code outside the markers of the function holding them can give its result
    without the blank: a return before the blank or of an expression, or the returned variable
    set outside the markers with no blank statement after it (which would undo it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True  # not the given cell: let running it tell
    inside = {n for a, b in blocks for n in range(a, b + 2)}  # 1-based lines, markers included
    first_block = blocks[0][0]  # 1-based line of the START marker
    holders = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.lineno <= first_block <= node.end_lineno
    ]
    scope = min(holders, key=lambda n: n.end_lineno - n.lineno) if holders else tree
    nodes = list(ast.walk(scope))
    returned, set_outside, set_inside = set(), {}, {}
    for node in nodes:
        if isinstance(node, ast.Return) and node.lineno not in inside:
            if node.lineno < first_block:
                return True
            if isinstance(node.value, ast.Name):
                returned.add(node.value.id)
            elif not (node.value is None or isinstance(node.value, ast.Constant)):
                return True
        if isinstance(node, _ASSIGNING):
            where = set_inside if node.lineno in inside else set_outside
            for name in _assigned_names(node):
                where.setdefault(name, []).append(node.lineno)
    return any(
        line > max(set_inside.get(name, [0]))
        for name in returned
        for line in set_outside.get(name, [])
    )


def _legacy_blank(source: str, blocks) -> bool:
    lines = source.split("\n")
    code = [
        ln.strip()
        for a, b in blocks
        for ln in lines[a:b]
        if ln.strip() and not ln.strip().startswith("#")
    ]
    return bool(code) and all(c.startswith("raise NotImplementedError(") for c in code)
