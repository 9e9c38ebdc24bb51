"""Tables. Every row that a user owns carries project_id; names are unique per project.

Schema changes go through Alembic migrations (store/migrations); keep this file and the newest
migration in step (tests/unit/test_migrations.py compares them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    # The project's own containers-policy.json, checked on top of the host's (never instead).
    signature_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Its slot of host uids: container root is userns_base + slot * USERNS_SIZE, so no two
    # projects ever share a host uid. Unique; slot 0 is the default project.
    userns_slot: Mapped[int] = mapped_column(Integer, unique=True)
    # Admin-only features an admin granted this project ("privileged", "host_mounts", …).
    grants: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Bumped by every create that counts against a quota: the update takes the write lock
    # (SQLite) or the row lock (PostgreSQL) first, so concurrent creates check in turn.
    quota_serial: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # the cloud's admins
    created_at: Mapped[float] = mapped_column(Float)


class Membership(Base):
    """A user's role in a project: admin, member or reader."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class Token(Base):
    """An API token: shown once; only a hash of its secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public part
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))  # where it acts
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Quota(Base):
    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    limit: Mapped[int] = mapped_column(BigInteger)  # -1: unlimited


class Image(Base):
    """An image a project holds. Blobs and layers are host content, shared by digest."""

    __tablename__ = "images"
    __table_args__ = (Index("ix_images_project_created", "project_id", "created_at", "id"),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # sha256 of config
    manifest_digest: Mapped[str] = mapped_column(String(80))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # LayerRef fields, lowest first
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
    # Where it was pulled from ("registry/repo:tag" in full), None for built or imported images.
    source: Mapped[str | None] = mapped_column(String(400), nullable=True)
    # The digest of the manifest the policy was checked on (the index, when the tag names
    # one): what every create re-checks.
    source_digest: Mapped[str | None] = mapped_column(String(80), nullable=True)
    repo_digests: Mapped[list[str]] = mapped_column(JSON, default=list)  # "name@sha256:…"
    # Signatures fetched at pull time, kept so every create re-checks them against the policy
    # in force then, offline: {"kind": "simple", "blob": digest} or
    # {"kind": "sigstore", "blob": payload digest, "signature": base64}.
    signatures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # A Dockerfile step's result that is not the image a build ended at: build cache, as
    # BuildKit's. Listings hide it (`images -a` shows it), image prune leaves it to
    # `builder prune`. Any other use of the image (a build ending at it, a tag, a pull, a
    # commit) makes it an ordinary image for good.
    intermediate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class RegistryCredential(Base):
    """A project's login at one registry; the secret is encrypted with the host's key."""

    __tablename__ = "registry_credentials"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    registry_host: Mapped[str] = mapped_column(String(255), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class ImageTag(Base):
    __tablename__ = "image_tags"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # familiar "repo:tag"
    image_id: Mapped[str] = mapped_column(String(80), index=True)


class Container(Base):
    """Desired state (what the user asked) beside observed state (what the agent saw)."""

    __tablename__ = "containers"
    __table_args__ = (
        Index("ix_containers_project_name", "project_id", "name", unique=True),
        Index("ix_containers_host", "host"),
        # Lists are pages in SQL (keyset): each sort key, then the id, in index order.
        Index("ix_containers_project_created", "project_id", "created_at", "id"),
        Index("ix_containers_project_status", "project_id", "status", "id"),
        Index("ix_containers_created", "created_at", "id"),  # an admin's all_projects list
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(128))
    image_id: Mapped[str] = mapped_column(String(80))
    image_ref: Mapped[str] = mapped_column(String(300))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the normalised create request
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)

    # desired: created | running | stopped | paused | removed
    desired: Mapped[str] = mapped_column(String(16))
    # observed: creating | created | running | paused | restarting | exited | dead | removing
    status: Mapped[str] = mapped_column(String(16))
    pid: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    oom_killed: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    restart_count: Mapped[int] = mapped_column(Integer, default=0)
    # When the agent may next restart it (restart-policy back-off), unix time.
    restart_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Set when the user stopped it explicitly: "unless-stopped" and "always" respect it.
    stopped_by_user: Mapped[bool] = mapped_column(Boolean, default=False)
    # Health while it runs with a check (service/health.py): {"status": starting|healthy|
    # unhealthy, "failing_streak": n, "log": [last results]}; NULL without a check or a process.
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class Volume(Base):
    __tablename__ = "volumes"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    driver: Mapped[str] = mapped_column(String(32), default="local")
    host: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    # The local driver's options as given (type, device, o): a tmpfs or a host directory
    # mounted on the volume's data directory while containers use it (volume/options.py).
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class Network(Base):
    """A bridge network of a project: a user-defined one, or the project's own "bridge"
    (``builtin``, made the first time a container asks for it). Host and none are virtual,
    never rows. The subnet is allocated host-wide at create (no two networks overlap)."""

    __tablename__ = "networks"
    __table_args__ = (Index("ix_networks_project_name", "project_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    driver: Mapped[str] = mapped_column(String(32), default="bridge")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    attachable: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_ipv6: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"driver": ..., "config": [{"subnet", "gateway", "ip_range"}], "options": {}} as given
    ipam: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    # Set when the network is made real (NULL on rows older than bridge networking, which
    # get theirs the first time a container joins).
    subnet: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gateway: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip_range: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class Endpoint(Base):
    """A container (or pod) on a network: its address there (never handed out twice: the
    unique index), its aliases. Made with the container, freed with it."""

    __tablename__ = "endpoints"
    __table_args__ = (Index("ix_endpoints_address", "network_id", "address", unique=True),)

    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    # eth0, eth1, ... in join order; the MAC is derived from the address, as Docker does
    ifname: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)


class PortBinding(Base):
    """A published port: host address (0.0.0.0 = every address), port and protocol are the
    key, so no two containers get one port; an any-address binding is checked against
    specific ones in the same transaction."""

    __tablename__ = "port_bindings"

    host_ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    host_port: Mapped[int] = mapped_column(Integer, primary_key=True)
    proto: Mapped[str] = mapped_column(String(4), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    container_port: Mapped[int] = mapped_column(Integer)


class Pod(Base):
    """Containers sharing one network namespace (and optionally IPC and PID), held by an
    infra container (``infra_id``, a row of containers). The pod's addresses and published
    ports are the infra container's endpoint and port rows."""

    __tablename__ = "pods"
    __table_args__ = (Index("ix_pods_project_name", "project_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    infra_id: Mapped[str] = mapped_column(String(64), unique=True)
    hostname: Mapped[str] = mapped_column(String(64))
    shared: Mapped[list[str]] = mapped_column(JSON, default=list)  # "net", "ipc", "uts", "pid"
    created_at: Mapped[float] = mapped_column(Float)


class Service(Base):
    """A name, a label selector and ports: a virtual IP of the project load-balanced over
    the matching, running, healthy containers and pods (agent/netops renders it)."""

    __tablename__ = "services"
    __table_args__ = (Index("ix_services_project_name", "project_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    selector: Mapped[str] = mapped_column(Text)  # Kubernetes' grammar (service/selectors)
    ports: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # port, target_port, proto
    vip: Mapped[str] = mapped_column(String(64), unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)


class NetworkLock(Base):
    """One row: subnet and host-port allocation take it first (an UPDATE), so concurrent
    creates check overlaps in turn, on SQLite and PostgreSQL alike."""

    __tablename__ = "network_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[int] = mapped_column(Integer, default=0)


class Action(Base):
    """One operation on a container, Zun-style: queued by the api, carried out by the agent."""

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_container", "container_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    # "container" (container_id names it) or "image" (target names it: a pull's reference;
    # container_id is empty). Image work runs in the api's host, not in an agent.
    kind: Mapped[str] = mapped_column(String(16), default="container")
    target: Mapped[str | None] = mapped_column(String(512), nullable=True)
    container_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(String(128))
    # pending | running | success | error
    state: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    # the HTTP-ish status of an error (400/404/409/500) so the api can answer like the service
    error_status: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class BuildCache(Base):
    """A Dockerfile step's result in a project: the image its key (parent image, instruction,
    sources' checksum) led to. An entry whose image is gone is a miss."""

    __tablename__ = "build_cache"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    image_id: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float)
    # Each build that took the step from the cache: what `builder prune --keep-storage`
    # keeps (the most recently used) and what `system df -v` shows.
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    usage_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
