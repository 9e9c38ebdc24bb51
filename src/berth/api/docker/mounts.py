"""Docker's Binds, Mounts, Tmpfs and anonymous Volumes -> Berth's mount requests."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from berth.api.docker.fields import Fields, is_zero, parse_size
from berth.api.errors import validation_message
from berth.errors import InvalidArgument
from berth.service.specs import MountRequest

_PROPAGATION_OK = ("", "rprivate", "private")
_BIND_FLAGS = ("ro", "rw", "z", "Z", "nocopy", "rprivate", "private")


def mounts(cfg: Fields, host: Fields) -> list[MountRequest]:
    """Every mount a create body asks for, in Docker's order of precedence."""
    found: list[MountRequest] = []
    for i, text in enumerate(host.strs("Binds") or []):
        found.append(parse_bind(text, f"HostConfig.Binds[{i}]"))
    for i, obj in enumerate(host.objects("Mounts")):
        found.append(parse_mount(Fields(obj, f"HostConfig.Mounts[{i}]")))
    tmpfs = host.mapping("Tmpfs")
    for target, opts in tmpfs.items():
        if not isinstance(opts, str):
            raise InvalidArgument(f"HostConfig.Tmpfs[{target!r}]: expected a string of options")
        found.append(parse_tmpfs(target, opts))
    taken = {m.target.rstrip("/") for m in found}
    for target in cfg.mapping("Volumes"):  # anonymous volumes, unless mounted otherwise
        if target.rstrip("/") not in taken:
            found.append(make_mount("Config.Volumes", type="volume", target=target))
    return found


def make_mount(what: str, **fields: Any) -> MountRequest:
    try:
        return MountRequest(**fields)
    except ValidationError as e:
        raise InvalidArgument(f"{what}: " + validation_message(list(e.errors()))) from None
    except InvalidArgument as e:  # a validator's own refusal (a bad volume name)
        raise InvalidArgument(f"{what}: {e.message}") from None


def parse_bind(text: str, what: str = "bind") -> MountRequest:
    """ "/host:/ctr[:ro,...]", "volume:/ctr[:opts]" or "/ctr" (an anonymous volume)."""
    parts = text.split(":")
    if len(parts) == 1:
        return make_mount(what, type="volume", target=parts[0])
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"{what}: invalid volume specification {text!r}")
    source, target = parts[0], parts[1]
    flags = parts[2].split(",") if len(parts) == 3 else []
    for flag in flags:
        if flag not in _BIND_FLAGS:
            raise InvalidArgument(f"{what}: mode {flag!r} of {text!r} is not supported by "
                                  "Berth (ro, rw, z, Z, nocopy and rprivate are)")
    kind = "bind" if source.startswith("/") else "volume"
    return make_mount(what, type=kind, source=source, target=target, readonly="ro" in flags)


def parse_mount(f: Fields) -> MountRequest:
    """HostConfig.Mounts[i]: {Type, Source, Target, ReadOnly, *Options}."""
    f.zero_except({"Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions",
                   "VolumeOptions", "TmpfsOptions"})
    kind = f.str("Type") or ""
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"{f.name('Type')}: mount type {kind!r} is not supported by "
                              "Berth (bind, volume and tmpfs are)")
    fields: dict[str, Any] = {"type": kind, "target": f.str("Target") or "",
                              "source": f.str("Source") or "", "readonly": f.bool("ReadOnly")}
    bind, vol, tmpfs = f.sub("BindOptions"), f.sub("VolumeOptions"), f.sub("TmpfsOptions")
    bind.zero_except({"Propagation"})
    if (bind.str("Propagation") or "") not in _PROPAGATION_OK:
        raise InvalidArgument(f"{bind.name('Propagation')}: only rprivate is supported by "
                              "Berth")
    vol.zero_except({"NoCopy", "Labels", "DriverConfig"})
    vol.bool("NoCopy")  # Berth never copies image content into a volume
    driver = vol.sub("DriverConfig")
    driver.zero_except({"Name", "Options"})
    if (driver.str("Name") or "local") != "local":
        raise InvalidArgument(f"{driver.name('Name')}: volume driver {driver.str('Name')!r} "
                              "is not supported: only 'local'")
    if kind == "volume":
        fields["volume_options"] = driver.strings_map("Options")
        fields["volume_labels"] = vol.strings_map("Labels")
    tmpfs.zero_except({"SizeBytes", "Mode"})
    if kind != "bind" and bind.obj:
        raise InvalidArgument(f"{bind.prefix}: only for bind mounts")
    if kind != "volume" and any(not is_zero(v) for v in vol.obj.values()):
        raise InvalidArgument(f"{vol.prefix}: only for volume mounts")
    if kind == "tmpfs":
        fields["tmpfs_size"] = tmpfs.int("SizeBytes") or None
        fields["tmpfs_mode"] = tmpfs.int("Mode")
    elif tmpfs.obj:
        raise InvalidArgument(f"{tmpfs.prefix}: only for tmpfs mounts")
    return make_mount(f.prefix, **fields)


def parse_tmpfs(target: str, options: str) -> MountRequest:
    """HostConfig.Tmpfs: target -> "rw,noexec,size=64m,mode=1777" (Docker adds noexec)."""
    what = f"HostConfig.Tmpfs[{target!r}]"
    fields: dict[str, Any] = {"type": "tmpfs", "target": target, "tmpfs_noexec": True}
    for opt in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = opt.partition("=")
        if key == "size" and eq:
            fields["tmpfs_size"] = parse_size(value, what)
        elif key == "mode" and eq:
            try:
                fields["tmpfs_mode"] = int(value, 8)
            except ValueError:
                raise InvalidArgument(f"{what}: invalid mode {value!r}") from None
        elif opt in ("ro", "rw"):
            fields["readonly"] = opt == "ro"
        elif opt in ("exec", "noexec"):
            fields["tmpfs_noexec"] = opt == "noexec"
        elif opt not in ("nosuid", "nodev"):  # always set by Berth
            raise InvalidArgument(f"{what}: option {opt!r} is not supported by Berth (size, "
                                  "mode, ro, rw, exec, noexec, nosuid and nodev are)")
    return make_mount(what, **fields)
