"""containers-registries.d(5): where an image's lookaside signatures live, strictly parsed.

    default-docker: {lookaside: URL, lookaside-staging: URL, use-sigstore-attachments: bool}
    docker:
      registry.example.com/team: {lookaside: ..., ...}

The older ``sigstore``/``sigstore-staging`` keys are accepted as names for ``lookaside``/
``lookaside-staging``. Only the most specific matching ``docker`` section is used, whole; the
``default-docker`` section applies when none matches. Files of a directory are merged, and one
scope (or ``default-docker``) configured in two files is an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.errors import InvalidArgument
from berth.image.reference import Reference

from .common import MAX_POLICY_SIZE
from .identity import scope_search_order, validate_docker_scope
from .lookaside import validate_base_url
from .strictjson import kind_of

_SECTION_KEYS = {"lookaside", "lookaside-staging", "sigstore", "sigstore-staging",
                 "use-sigstore-attachments"}
MAX_FILES = 256


@dataclass(frozen=True)
class LookasideSection:
    """One configuration section: where to read and write signatures for its scope."""

    lookaside: str | None = None
    lookaside_staging: str | None = None
    use_sigstore_attachments: bool | None = None

    def base(self, *, write: bool = False) -> str | None:
        """The lookaside base URL for reading, or for writing (staging first)."""
        if write and self.lookaside_staging:
            return self.lookaside_staging
        return self.lookaside


@dataclass(frozen=True)
class RegistriesConfig:
    default_docker: LookasideSection | None = None
    docker: Mapping[str, LookasideSection] = field(default_factory=dict)

    def section_for(self, ref: Reference) -> LookasideSection | None:
        """The most specific section configured for ``ref``, else default-docker."""
        for scope in scope_search_order(ref):
            if scope in self.docker:
                return self.docker[scope]
        return self.default_docker

    def lookaside_base(self, ref: Reference, *, write: bool = False) -> str | None:
        section = self.section_for(ref)
        return section.base(write=write) if section else None

    def use_sigstore_attachments(self, ref: Reference) -> bool:
        section = self.section_for(ref)
        return bool(section and section.use_sigstore_attachments)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and aliases (no silent overrides, no bombs)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping keys must be strings, got {key!r}", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _url(section: dict[str, Any], names: tuple[str, str], where: str, *,
         writable: bool) -> str | None:
    given = [n for n in names if n in section]
    if len(given) > 1:
        raise InvalidArgument(f"{where}: {names[0]!r} and its old name {names[1]!r} are both set")
    if not given:
        return None
    value = section[given[0]]
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{where}.{given[0]}: expected a URL string, got {kind_of(value)}")
    try:
        return validate_base_url(value, writable=writable)
    except InvalidArgument as e:
        raise InvalidArgument(f"{where}.{given[0]}: {e.message}") from None


def _section(value: Any, where: str) -> LookasideSection:
    if value is None:
        return LookasideSection()
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: expected a mapping, got {kind_of(value)}")
    for key in value:
        if key not in _SECTION_KEYS:
            raise InvalidArgument(f"{where}: unknown key {key!r}")
    attachments = value.get("use-sigstore-attachments")
    if attachments is not None and not isinstance(attachments, bool):
        raise InvalidArgument(f"{where}.use-sigstore-attachments: expected true or false, "
                              f"got {kind_of(attachments)}")
    return LookasideSection(
        lookaside=_url(value, ("lookaside", "sigstore"), where, writable=False),
        lookaside_staging=_url(value, ("lookaside-staging", "sigstore-staging"), where,
                               writable=True),
        use_sigstore_attachments=attachments)


def parse_registries_d(data: bytes, *, source: str = "registries.d") -> RegistriesConfig:
    """Parse one registries.d YAML file; InvalidArgument names ``source`` and the key."""
    if len(data) > MAX_POLICY_SIZE:
        raise InvalidArgument(f"{source}: larger than {MAX_POLICY_SIZE} bytes")
    try:
        doc = yaml.load(data.decode("utf-8"), Loader=_StrictLoader)
    # ValueError: PyYAML's constructors let int()/datetime() errors through ("2001-02-30",
    # "!!int x", an integer of 5000 digits); UnicodeDecodeError is one too.
    except (ValueError, yaml.YAMLError, RecursionError) as e:
        raise InvalidArgument(f"{source}: not valid YAML: {e}") from None
    if doc is None:
        return RegistriesConfig()
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{source}: expected a mapping at the top level")
    for key in doc:
        if key not in ("default-docker", "docker"):
            raise InvalidArgument(f"{source}: unknown top-level key {key!r}")
    default = (_section(doc["default-docker"], f"{source}: default-docker")
               if "default-docker" in doc else None)
    docker_raw = doc.get("docker") or {}
    if not isinstance(docker_raw, dict):
        raise InvalidArgument(f"{source}: docker: expected a mapping of scopes")
    docker = {}
    for scope, section in docker_raw.items():
        where = f"{source}: docker[{scope!r}]"
        try:
            if scope == "":
                raise ValueError("the empty scope is not allowed (use default-docker)")
            validate_docker_scope(scope)
        except ValueError as e:
            raise InvalidArgument(f"{where}: invalid scope: {e}") from None
        docker[scope] = _section(section, where)
    return RegistriesConfig(default, docker)


def load_registries_dir(directory: Path | str) -> RegistriesConfig:
    """Merge every ``*.yaml`` file of a registries.d directory (missing dir: empty config)."""
    directory = Path(directory)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".yaml"))
    except FileNotFoundError:
        return RegistriesConfig()
    except OSError as e:
        raise InvalidArgument(f"cannot read {str(directory)!r}: {e.strerror or e}") from None
    if len(names) > MAX_FILES:
        raise InvalidArgument(f"{str(directory)!r}: more than {MAX_FILES} files")
    default: LookasideSection | None = None
    default_from = ""
    docker: dict[str, LookasideSection] = {}
    docker_from: dict[str, str] = {}
    for name in names:
        path = directory / name
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_POLICY_SIZE + 1)
        except OSError as e:
            raise InvalidArgument(f"cannot read {str(path)!r}: {e.strerror or e}") from None
        config = parse_registries_d(data, source=str(path))
        if config.default_docker is not None:
            if default is not None:
                raise InvalidArgument(f"default-docker is configured in both {default_from!r} "
                                      f"and {str(path)!r}")
            default, default_from = config.default_docker, str(path)
        for scope, section in config.docker.items():
            if scope in docker:
                raise InvalidArgument(f"docker scope {scope!r} is configured in both "
                                      f"{docker_from[scope]!r} and {str(path)!r}")
            docker[scope], docker_from[scope] = section, str(path)
    return RegistriesConfig(default, docker)
