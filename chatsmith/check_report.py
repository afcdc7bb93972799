"""What `chatsmith config check` found: one report that every check adds to."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckReport:
    """What `check` found: problems (each with its fix), notes (fine, but worth knowing), and passes."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def problem(self, variable: str, message: str) -> None:
        self.problems.append(f"{variable}: {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)

    def ok(self, message: str) -> None:
        self.passed.append(message)
