"""Pods, services and networks in the SDK.

    c.pods.create("web", labels={"app": "web"}, ports=[{"container_port": 80}], start=True)
    c.containers.create({"image": "busybox", "pod": "web", "command": ["httpd", "-f"]},
                        start=True)
    c.services.create("web", "app=web", [{"port": 80}])
    c.networks.connect("backend", "db", aliases=["database"])

Their lists are not paged: each is one JSON array.
"""

from __future__ import annotations

from berth.client.transport import Transport

TYPE_CHECKING = False  # importing typing costs ~10 ms of CLI start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any


def _given(**fields: Any) -> dict[str, Any]:
    """The fields the caller set: the API's defaults stand for the rest."""
    return {k: v for k, v in fields.items() if v is not None}


class Pods:
    """Containers sharing one network namespace (and hostname, IPC, optionally PID)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(self, name: str, *, labels: dict[str, str] | None = None,
               hostname: str | None = None, networks: dict[str, list[str]] | None = None,
               ip_addresses: dict[str, str] | None = None,
               ports: list[dict[str, Any]] | None = None, share: list[str] | None = None,
               dns: list[str] | None = None, dns_search: list[str] | None = None,
               dns_options: list[str] | None = None, start: bool = False) -> dict[str, Any]:
        """networks: name -> aliases (none: the project's bridge); ports: {container_port,
        proto, host_ip, host_port}; share: "ipc" (the default), "pid"; dns: servers for the
        names its networks do not know; dns_search, dns_options: its members' unless they
        name their own. start: start its infra container now, so members join a running
        pod."""
        body = _given(name=name, labels=labels, hostname=hostname, networks=networks,
                      ip_addresses=ip_addresses, ports=ports, share=share, dns=dns,
                      dns_search=dns_search, dns_options=dns_options)
        return self._t.call("POST", "/v1/pods", {"start": start}, body=body)

    def list(self, filters: list[str] | None = None, *,
             selector: str | None = None) -> list[dict[str, Any]]:
        """filters: "name=…", "id=…", "label=k[=v]", "status=running"; selector: labels."""
        return self._t.call("GET", "/v1/pods", {"filter": filters or None,
                                                "selector": selector or None}) or []

    def get(self, ref: str) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/pods/{ref}")

    def start(self, ref: str) -> dict[str, Any]:
        """The infra container first, then the members."""
        return self._t.call("POST", f"/v1/pods/{ref}/start")

    def stop(self, ref: str, timeout: int | None = None) -> dict[str, Any]:
        """The members first, then the infra container."""
        return self._t.call("POST", f"/v1/pods/{ref}/stop", {"timeout": timeout})

    def restart(self, ref: str, timeout: int | None = None) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/pods/{ref}/restart", {"timeout": timeout})

    def remove(self, ref: str, force: bool = False) -> dict[str, Any]:
        """The pod, its members and its infra container; running members need force."""
        return self._t.call("DELETE", f"/v1/pods/{ref}", {"force": force})


class Services:
    """A name, a label selector and ports: a virtual IP over the ready backends."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(self, name: str, selector: str, ports: list[dict[str, Any]],
               labels: dict[str, str] | None = None) -> dict[str, Any]:
        """selector: Kubernetes grammar ("app=web,tier!=db"); ports: {port, target_port,
        proto}. The answer names the service's "vip"."""
        return self._t.call("POST", "/v1/services", body={
            "name": name, "selector": selector, "ports": ports, "labels": labels or {}})

    def list(self, filters: list[str] | None = None, *,
             selector: str | None = None) -> list[dict[str, Any]]:
        """filters: "name=…", "id=…", "label=k[=v]"; selector: the services' own labels."""
        return self._t.call("GET", "/v1/services", {"filter": filters or None,
                                                    "selector": selector or None}) or []

    def get(self, ref: str) -> dict[str, Any]:
        return self._t.call("GET", f"/v1/services/{ref}")

    def remove(self, ref: str) -> dict[str, Any]:
        return self._t.call("DELETE", f"/v1/services/{ref}")


class Networks:
    """The project's bridge networks, and its predefined bridge, host and none."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def create(self, name: str, *, driver: str = "bridge",
               labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
               internal: bool = False, subnet: str | None = None, gateway: str | None = None,
               ip_range: str | None = None) -> dict[str, Any]:
        """subnet: IPv4 CIDR (default: a free one); gateway and ip_range lie inside it.
        options: driver options, e.g. {"com.docker.network.driver.mtu": "1400"}."""
        pool = _given(subnet=subnet, gateway=gateway, ip_range=ip_range)
        return self._t.call("POST", "/v1/networks", body={
            "name": name, "driver": driver, "labels": labels or {}, "options": options or {},
            "internal": internal, "ipam": {"config": [pool] if pool else []}})

    def list(self, filters: list[str] | None = None, *,
             selector: str | None = None) -> list[dict[str, Any]]:
        """filters: name, id, label, driver, type=custom|builtin, dangling; selector: labels."""
        return self._t.call("GET", "/v1/networks", {"filter": filters or None,
                                                    "selector": selector or None}) or []

    def get(self, ref: str) -> dict[str, Any]:
        """With "containers": [{id, name, aliases, address}]."""
        return self._t.call("GET", f"/v1/networks/{ref}")

    def remove(self, ref: str) -> None:
        self._t.call("DELETE", f"/v1/networks/{ref}")

    def prune(self, filters: list[str] | None = None) -> dict[str, Any]:
        """Remove the custom networks no container names; filters: label, label!, until."""
        return self._t.call("POST", "/v1/networks/prune", {"filter": filters or None})

    def connect(self, ref: str, container: str, aliases: list[str] | None = None,
                ip: str | None = None) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/networks/{ref}/connect", body=_given(
            container=container, aliases=aliases or [], ip=ip))

    def disconnect(self, ref: str, container: str) -> dict[str, Any]:
        return self._t.call("POST", f"/v1/networks/{ref}/disconnect",
                            body={"container": container})
