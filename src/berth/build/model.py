"""A parsed Dockerfile: what the parser hands the builder."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.errors import InvalidArgument


class DockerfileError(InvalidArgument):
    """A Dockerfile the builder cannot follow; the message starts with "line N: "."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"Dockerfile line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, COPY, ENV, ...
    # Exec/JSON form: the list as written. Shell form: one item, the rest of the line (for
    # RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK CMD); for the others the arguments split as the
    # instruction defines (ENV/LABEL/ARG keep "k=v" items, COPY/ADD keep sources + dest).
    args: tuple[str, ...]
    json_form: bool = False
    flags: dict[str, str] = field(default_factory=dict)  # --from=, --chown=, --chmod=, ...
    line: int = 0  # 1-based line where the instruction starts
    original: str = ""  # the instruction as written, continuations joined (messages, cache)
    # ONBUILD's trigger, HEALTHCHECK CMD's options live in flags; ONBUILD keeps its inner
    # instruction here.
    inner: Instruction | None = None


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # as written after FROM (variables expanded by the builder with global ARGs)
    name: str | None = None  # FROM base AS name (lower-cased, as Docker does)
    platform: str | None = None
    line: int = 0
    instructions: tuple[Instruction, ...] = ()
    original: str = ""  # the FROM line as written (step messages: "Step 1/5 : FROM ...")


@dataclass(frozen=True)
class Dockerfile:
    stages: tuple[Stage, ...]
    global_args: tuple[Instruction, ...] = ()  # ARGs before the first FROM
    escape: str = "\\"
