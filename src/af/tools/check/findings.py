"""A problem found by a check, named by file and key so that the fix is obvious."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One problem: the file at fault, the key (dotted path) inside it, and what is wrong.

    Example:
        >>> str(Finding("charts/analysis-facility/values.yaml", "networkPolicy.enabeld", "unknown key"))
        'charts/analysis-facility/values.yaml: networkPolicy.enabeld: unknown key'
    """

    file: str
    key: str
    message: str
    # a risk that cannot be settled offline: reported, but does not fail the check
    warning: bool = False

    def __str__(self) -> str:
        text = f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"
        return f"warning: {text}" if self.warning else text


def dotted(path: object) -> str:
    """A JSON path (sequence of keys and indices) as ``a.b[0].c``.

    Example:
        >>> dotted(["hub", "extraEnv", 0, "name"])
        'hub.extraEnv[0].name'
    """
    out = ""
    for part in path:  # type: ignore[attr-defined]
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
