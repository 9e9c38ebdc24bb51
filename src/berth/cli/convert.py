"""Turn Docker-style command-line values into API request fields."""

from __future__ import annotations

import argparse
import re

from berth.units import bytes_of

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any



class UsageError(Exception):
    """A command-line value that cannot be understood; printed as one line."""


def parse_size(text: str, what: str) -> int:
    """'64m', '1g', '512k', '1048576' -> bytes; '-1' stays -1 (unlimited)."""
    if text.strip() == "-1":
        return -1
    size = bytes_of(text)
    if size is None:
        raise UsageError(f"invalid {what} {text!r}: use a number with an optional unit "
                         "(b, k, m, g), e.g. 64m")
    return size


def digits(text: str) -> bool:
    """A plain number as docker reads one: ASCII digits ("²" and "٣" are digits to Python,
    and int() takes "٣"), short enough for an int64."""
    return text.isascii() and text.isdigit() and len(text) <= 19


def octal_mode(text: str, what: str) -> int:
    """A file mode as docker writes it: 1777, 0755."""
    if not (text.isascii() and 0 < len(text) <= 5 and all(c in "01234567" for c in text)):
        raise UsageError(f"invalid {what} {text!r}: an octal mode such as 1777")
    return int(text, 8)


def parse_kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _volume_mount(spec: str) -> dict[str, Any]:
    parts = spec.split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}  # anonymous volume
    if len(parts) > 3 or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise UsageError(f"invalid volume {spec!r}: expected SRC:DST[:ro|rw]")
    source, target = parts[0], parts[1]
    kind = "bind" if source.startswith(("/", ".")) else "volume"
    if kind == "bind" and source.startswith("."):
        import os

        source = os.path.abspath(source)
    return {"type": kind, "source": source, "target": target,
            "readonly": len(parts) == 3 and parts[2] == "ro"}


def _mount_flag(spec: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip()
        if key in ("type",):
            out["type"] = value
        elif key in ("source", "src"):
            out["source"] = value
        elif key in ("target", "destination", "dst"):
            out["target"] = value
        elif key in ("readonly", "ro"):
            out["readonly"] = not eq or value.lower() in ("1", "true")
        elif key == "tmpfs-size":
            out["tmpfs_size"] = parse_size(value, "tmpfs-size")
        elif key == "tmpfs-mode":
            out["tmpfs_mode"] = octal_mode(value, "tmpfs-mode")
        elif key in ("volume-opt", "volume-label"):  # for the volume this mount makes
            name, eq2, setting = value.partition("=")
            if not eq2 or not name:
                raise UsageError(f"invalid --mount {key} {value!r}: expected KEY=VALUE")
            field = "volume_options" if key == "volume-opt" else "volume_labels"
            out.setdefault(field, {})[name] = setting
        elif key == "volume-driver":
            if value != "local":
                raise UsageError(f"invalid --mount volume-driver {value!r}: only 'local'")
        elif key == "volume-nocopy":  # Berth never copies image content into a volume
            pass
        else:
            raise UsageError(f"invalid --mount field {key!r} in {spec!r}")
    out.setdefault("type", "volume")
    return out


def _tmpfs(spec: str) -> dict[str, Any]:
    target, _, opts = spec.partition(":")
    out: dict[str, Any] = {"type": "tmpfs", "target": target}
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key == "size":
            out["tmpfs_size"] = parse_size(value, "tmpfs size")
        elif key == "mode":
            out["tmpfs_mode"] = octal_mode(value, "--tmpfs mode")
        else:
            raise UsageError(f"invalid --tmpfs option {opt!r}: use size= and mode=")
    return out


def _settings_lines(path: str, what: str) -> list[tuple[str, str, bool, str]]:
    """The KEY[=VALUE] lines of an env or label file, # comments and blank lines skipped:
    (key, value, whether "=" was there, "path:line" for messages)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: a NUL in the path
        raise UsageError(f"cannot read {what} {path!r}: {e}") from None
    out = []
    for number, line in enumerate(lines, 1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key or " " in key:
            raise UsageError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        out.append((key, value, bool(eq), f"{path}:{number}"))
    return out


def env_files(paths: list[str]) -> list[str]:
    """Docker's --env-file: KEY=VALUE per line, # comments and blank lines skipped, and a
    bare KEY taking its value from this environment (dropped when unset there)."""
    import os

    out = []
    for path in paths:
        for key, value, eq, _where in _settings_lines(path, "env file"):
            if eq:
                out.append(f"{key}={value}")
            elif key in os.environ:
                out.append(f"{key}={os.environ[key]}")
    return out


def label_files(paths: list[str]) -> dict[str, str]:
    """Docker's --label-file: KEY[=VALUE] per line (a bare KEY: an empty value)."""
    return {key: value for path in paths
            for key, value, _eq, _where in _settings_lines(path, "label file")}


def exposed_ports(items: list[str]) -> list[str]:
    """--expose 80, 53/udp, 8000-8010/tcp as the API's "PORT/PROTO" list."""
    out: list[str] = []
    for item in items:
        ports, _, proto = item.partition("/")
        first, dash, last = ports.partition("-")
        proto = proto or "tcp"
        if not digits(first) or (dash and not digits(last)) or proto not in ("tcp", "udp") \
                or not 0 < int(first) <= int(last or first) <= 65535:
            raise UsageError(f"invalid --expose {item!r}: expected PORT[-PORT][/tcp|udp] "
                             "with ports from 1 to 65535")
        out += [f"{p}/{proto}" for p in range(int(first), int(last or first) + 1)]
    return list(dict.fromkeys(out))


def resources(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.memory:
        out["memory"] = parse_size(args.memory, "memory")
    if args.memory_swap:
        out["memory_swap"] = parse_size(args.memory_swap, "memory-swap")
    if args.memory_reservation:
        out["memory_reservation"] = parse_size(args.memory_reservation, "memory-reservation")
    for field in ("cpus", "cpu_shares", "pids_limit", "cpuset_cpus", "cpuset_mems",
                  "blkio_weight"):
        if getattr(args, field) is not None:
            out[field] = getattr(args, field)
    if args.cpu_quota is not None or args.cpu_period is not None:
        out["cpus"] = _cpu_quota(args)
    return out


def _cpu_quota(args: argparse.Namespace) -> float:
    """--cpu-quota/--cpu-period as a share of CPUs: Berth limits over a fixed period."""
    if args.cpus is not None:
        raise UsageError("--cpus cannot go with --cpu-quota or --cpu-period: give one")
    if args.cpu_quota is None:
        raise UsageError("--cpu-period needs --cpu-quota")
    period = 100_000 if args.cpu_period is None else args.cpu_period
    if not 1000 <= period <= 1_000_000:
        raise UsageError(f"invalid --cpu-period {period}: from 1000 to 1000000 microseconds")
    if args.cpu_quota < 1000:
        raise UsageError(f"invalid --cpu-quota {args.cpu_quota}: at least 1000 microseconds")
    return args.cpu_quota / period


def parse_publish(text: str) -> dict[str, Any]:
    """-p [IP:][HOST_PORT:]PORT[/PROTO], as docker reads it."""
    rest, _, proto = text.partition("/")
    parts = rest.split(":")
    if len(parts) > 3 or not digits(parts[-1]):
        raise UsageError(f"invalid -p {text!r}: expected [IP:][HOST_PORT:]PORT[/tcp|udp]")
    host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
    host_port = parts[-2] if len(parts) >= 2 else ""
    if host_port and not digits(host_port):
        raise UsageError(f"invalid -p {text!r}: the host port must be a number")
    return {"container_port": int(parts[-1]), "proto": proto or "tcp",
            "host_ip": host_ip or "0.0.0.0", "host_port": int(host_port or 0)}


def network_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--network/--network-alias/--ip/-p/-P as the spec's network fields."""
    ports = [parse_publish(p) for p in args.publish]
    shared = args.network.startswith("container:")  # docker's: share that one's network
    if args.network in ("none", "host") or shared:
        if args.network_alias or args.ip:
            raise UsageError("--network-alias and --ip need a bridge network (--network)")
        out: dict[str, Any] = {"network": args.network} if not shared else {
            "network": "none", "network_of": args.network.removeprefix("container:")}
    else:
        out = {"network": "none", "networks": {args.network: args.network_alias}}
        if args.ip:
            out["ip_addresses"] = {args.network: args.ip}
    if ports:
        out["ports"] = ports
    if args.publish_all:
        out["publish_all"] = True
    return out


def check_fixed_settings(args: argparse.Namespace) -> None:
    """docker's options that may only name what Berth does anyway (berth.fixedsettings)."""
    from berth import fixedsettings as fixed

    for setting in fixed.CHOICES:
        value = getattr(args, setting.replace("-", "_"))
        if value is not None and (why := fixed.refusal(setting, value)):
            raise UsageError(f"--{setting} {why}")
    for opt in args.security_opt:
        if why := fixed.security_opt_refusal(opt):
            raise UsageError(f"--security-opt {why}")
    if args.memory_swappiness not in (None, -1):
        raise UsageError("--memory-swappiness is not supported by Berth")
    if args.oom_kill_disable:
        raise UsageError("--oom-kill-disable is not supported by Berth: a container past its "
                         "memory limit is OOM-killed")
    if args.platform is not None and args.platform.split("/")[0] != "linux":
        raise UsageError(f"--platform {args.platform!r}: Berth runs linux containers "
                         "(linux/ARCH[/VARIANT])")


def container_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /v1/containers body for `berth run` / `berth create`."""
    check_fixed_settings(args)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    _pod_alone(args)
    from berth.cli.blockio import device_settings

    spec: dict[str, Any] = {
        "image": args.image,
        "env": env_files(args.env_file) + args.env,  # -e wins over a file, as in docker
        "labels": {**label_files(args.label_file), **parse_kv(args.label, "label")},
        "mounts": [_volume_mount(v) for v in args.volume] + [_mount_flag(m) for m in args.mount]
        + [_tmpfs(t) for t in args.tmpfs],
        "restart_policy": _restart(args.restart),
        "auto_remove": args.rm,
        "readonly_rootfs": args.read_only,
        "cap_add": args.cap_add,
        "cap_drop": args.cap_drop,
        **({"privileged": True} if args.privileged else {}),
        **network_settings(args),
        "tty": args.tty,
        "stdin_open": args.interactive,
        **resources(args),
        **device_settings(args),
        **run_options(args),
    }
    if command:
        spec["command"] = command
    if args.expose:
        spec["exposed_ports"] = exposed_ports(args.expose)
    for field in ("name", "workdir", "user", "hostname", "domainname", "stop_signal",
                  "stop_timeout", "pod", "oom_score_adj"):
        if getattr(args, field) is not None:
            spec[field] = getattr(args, field)
    if args.entrypoint is not None:
        spec["entrypoint"] = [args.entrypoint] if args.entrypoint else []
    check = healthcheck(args)
    if check is not None:
        spec["healthcheck"] = check
    return spec


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """--init, --add-host, --dns*, --ulimit, --group-add, --shm-size, --sysctl, --log-*,
    --volumes-from, --pid, --ipc, --uts (checked by the API)."""
    out: dict[str, Any] = {}
    if args.init:
        out["init"] = True
    if args.add_host:
        out["extra_hosts"] = [_host_entry(v) for v in args.add_host]
    for flag, key in (("dns", "dns"), ("dns_search", "dns_search"),
                      ("dns_option", "dns_options"), ("group_add", "group_add")):
        if getattr(args, flag):
            out[key] = getattr(args, flag)
    if args.ulimit:
        out["ulimits"] = [_ulimit(u) for u in args.ulimit]
    if args.shm_size is not None:
        out["shm_size"] = parse_size(args.shm_size, "--shm-size")
    if args.sysctl:
        out["sysctls"] = parse_kv(args.sysctl, "sysctl")
    if args.log_driver is not None or args.log_opt:
        out.update(_log(args.log_driver, parse_kv(args.log_opt, "--log-opt")))
    if args.volumes_from:
        out["volumes_from"] = args.volumes_from
    for flag in ("pid", "ipc", "uts"):  # the API checks the modes
        if getattr(args, flag) is not None:
            out[f"{flag}_mode"] = getattr(args, flag)
    return out


def _log(driver: str | None, opts: dict[str, str]) -> dict[str, Any]:
    from berth.logopts import FILE_DRIVERS, LogOptError, from_docker

    if driver not in (None, *FILE_DRIVERS):
        raise UsageError(f"invalid --log-driver {driver!r}: Berth keeps every container's log "
                         f"itself ({', '.join(FILE_DRIVERS)})")
    try:
        return {"log": from_docker(opts)} if opts else {}
    except LogOptError as e:
        raise UsageError(f"invalid --log-opt {e.key!r}: {e.why}") from None


def _host_entry(text: str) -> str:
    """NAME:IP, or NAME=IP as newer docker CLIs take it too (IPv6 keeps its colons)."""
    eq, colon = text.find("="), text.find(":")
    if eq > 0 and (colon < 0 or eq < colon):
        return text[:eq] + ":" + text[eq + 1:]
    return text


def _ulimit(text: str) -> dict[str, Any]:
    name, eq, limits = text.partition("=")
    soft, _, hard = limits.partition(":")
    hard = hard or soft
    if not eq or not all(digits(x) or x == "-1" for x in (soft, hard)):
        raise UsageError(f"invalid --ulimit {text!r}: expected NAME=SOFT[:HARD] (-1: "
                         "unlimited)")
    return {"name": name, "soft": int(soft), "hard": int(hard)}


def _pod_alone(args: argparse.Namespace) -> None:
    """--pod: the pod owns the network and hostname, so refuse flags that would set them here
    (the API refuses too; this names the flags)."""
    if args.pod is None:
        return
    given = [flag for flag, on in (
        ("--network", args.network != "none"), ("--network-alias", args.network_alias),
        ("--ip", args.ip), ("-p", args.publish), ("-P", args.publish_all),
        ("--hostname", args.hostname), ("--domainname", args.domainname),
        ("--pid", args.pid), ("--ipc", args.ipc), ("--uts", args.uts)) if on]
    if given:
        raise UsageError(f"{', '.join(given)} cannot go with --pod: a container in a pod has "
                         "the pod's network, hostname and namespaces (give them to `berth pod "
                         "create`)")


def healthcheck(args: argparse.Namespace) -> dict[str, Any] | None:
    """docker run's --health-* flags (durations as Go's: 30s, 500ms, 1m30s) and
    --no-healthcheck as the request's healthcheck; None: the image's."""
    durations = {key: getattr(args, f"health_{key}") for key in
                 ("interval", "timeout", "start_period", "start_interval")}
    given = args.health_cmd is not None or args.health_retries is not None or any(
        v is not None for v in durations.values())
    if args.no_healthcheck:
        if given:
            raise UsageError("--no-healthcheck conflicts with the --health-* options")
        return {"test": ["NONE"]}
    if not given:
        return None
    out: dict[str, Any] = {"test": ["CMD-SHELL", args.health_cmd] if args.health_cmd else []}
    for key, text in durations.items():
        if text is not None:
            out[key] = go_duration(text, "--health-" + key.replace("_", "-"))
    if args.health_retries is not None:
        out["retries"] = args.health_retries
    return out


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def go_duration(text: str, what: str) -> float:
    """A Go duration ("1m30s", "500ms", "0") in seconds."""
    value = text.strip()
    if value == "0":
        return 0.0
    parts = _GO_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise UsageError(f"invalid {what} {text!r}: a duration such as 30s, 500ms or 1m30s")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def _restart(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    if count and not digits(count):
        raise UsageError(f"invalid restart policy {text!r}: N must be a number")
    return {"name": name, "max_retries": int(count or 0)}


def restart_policy(text: str) -> dict[str, Any]:
    return _restart(text)


# -- pods, services, networks --------------------------------------------------------------

MTU_OPTION = "com.docker.network.driver.mtu"  # service/networks.py's; not imported: start-up
_NET_OPTIONS = {"mtu": MTU_OPTION}  # short names `-o` takes for the driver's options


def pod_networks(items: list[str]) -> dict[str, list[str]]:
    """--network NET[:ALIAS,ALIAS] (repeatable) -> {net: [aliases]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, _, aliases = item.partition(":")
        if not name:
            raise UsageError(f"invalid --network {item!r}: expected NET[:ALIAS,ALIAS]")
        if name in out:
            raise UsageError(f"network {name} is given twice")
        out[name] = [a for a in aliases.split(",") if a]
    return out


def pod_addresses(items: list[str], networks: dict[str, list[str]]) -> dict[str, str]:
    """--ip NET=IP, or a bare IP on the one network the pod joins (the project's bridge
    when none is named, as the API defaults)."""
    out: dict[str, str] = {}
    for item in items:
        net, eq, ip = item.rpartition("=")
        if not eq:
            if len(networks) > 1:
                raise UsageError(f"--ip {item}: the pod joins {len(networks)} networks, so "
                                 "say which: --ip NET=IP")
            net, ip = next(iter(networks), "bridge"), item
        if not net or not ip:
            raise UsageError(f"invalid --ip {item!r}: expected IP or NET=IP")
        if net in out:
            raise UsageError(f"--ip: network {net} has two addresses")
        out[net] = ip
    return out


def parse_share(items: list[str] | None) -> list[str] | None:
    """--share ipc,pid (repeatable); "none" or "": only the network and UTS; None: the
    API's default (ipc)."""
    if items is None:
        return None
    words = [w.strip() for item in items for w in item.split(",")]
    return sorted({w for w in words if w and w != "none"})


def pod_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of Client.pods.create for `berth pod create`."""
    networks = pod_networks(args.network)
    return {
        "labels": parse_kv(args.label, "label"),
        "hostname": args.hostname,
        "networks": networks or None,
        "ip_addresses": pod_addresses(args.ip, networks) or None,
        "ports": [parse_publish(p) for p in args.publish] or None,
        "share": parse_share(args.share),
        "dns": args.dns or None,
        "dns_search": args.dns_search or None,
        "dns_options": args.dns_option or None,
        "start": args.start,
    }


def parse_service_port(text: str) -> dict[str, Any]:
    """-p PORT[:TARGET][/PROTO] -> {port, target_port, proto} (target: the same port)."""
    rest, _, proto = text.partition("/")
    port, _, target = rest.partition(":")
    if not digits(port) or (target and not digits(target)) or proto not in (
            "", "tcp", "udp") or (":" in rest and not target):
        raise UsageError(f"invalid -p {text!r}: expected PORT[:TARGET_PORT][/tcp|udp]")
    return {"port": int(port), "target_port": int(target or port), "proto": proto or "tcp"}


def network_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of Client.networks.create for `berth network create`."""
    options = {_NET_OPTIONS.get(k, k): v for k, v in parse_kv(args.opt, "-o option").items()}
    if (args.gateway or args.ip_range) and not args.subnet:
        raise UsageError("--gateway and --ip-range need the --subnet they lie in")
    return {"driver": args.driver, "labels": parse_kv(args.label, "label"),
            "options": options, "internal": args.internal, "subnet": args.subnet,
            "gateway": args.gateway, "ip_range": args.ip_range}
