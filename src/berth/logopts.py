"""docker's log options (--log-driver, --log-opt max-size / max-file) as Berth's log request.
Shared by the CLI and the Docker API, each of which words the refusal its own way."""

from __future__ import annotations

from berth.units import bytes_of

FILE_DRIVERS = ("json-file", "local", "k8s-file")  # all mean Berth's own file log


class LogOptError(ValueError):
    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key, self.why = key, why


def from_docker(opts: dict[str, object]) -> dict[str, int]:
    """{"max-size": "10m", "max-file": "3"} -> {"max_size": 10485760, "max_files": 3}
    ("-1": no size limit)."""
    out = {}
    for key, value in opts.items():
        if not isinstance(value, str):
            raise LogOptError(key, "expected a string")
        if key == "max-size":
            size = -1 if value.strip() == "-1" else bytes_of(value)
            if size is None:
                raise LogOptError(key, f"invalid size {value!r}: a number with an optional "
                                       "unit (k, m, g), e.g. 10m")
            out["max_size"] = size
        elif key == "max-file":
            if not (value.isascii() and value.isdigit() and len(value) < 10):
                raise LogOptError(key, f"invalid number of files {value!r}")
            out["max_files"] = int(value)
        else:
            raise LogOptError(key, "unsupported log option (use max-size or max-file)")
    return out
