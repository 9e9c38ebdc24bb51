"""Forwarding for the DNS responder: a query that is not ours goes to the host's resolvers, in
order, UDP first and TCP when the answer is truncated, under a bound on queries in flight."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Collection, Sequence

import dns.asyncbackend
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode

from berth.network.dns import Forward

log = logging.getLogger("berth.network")

Address = tuple[str, int]

FORWARD_TIMEOUT = 2.0  # per upstream, its UDP query and TCP retry together; then the next one
MAX_FORWARDS = 256  # forwarded queries in flight per responder; more get SERVFAIL at once

# Upstream answers worth asking the next server about, as glibc's stub resolver does.
_TRY_NEXT = (dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.NOTIMP)
_BACKEND = dns.asyncbackend.get_backend("asyncio")


class Forwarder:
    """Asks the upstream servers, in order, about queries that are not ours."""

    def __init__(
        self,
        servers: Sequence[Address] = (),
        *,
        timeout: float = FORWARD_TIMEOUT,
        max_in_flight: int = MAX_FORWARDS,
    ) -> None:
        self.servers: list[Address] = list(servers)
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[bytes]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def forward(
        self, request: Forward, avoid: Collection[Address] = (),
        servers: Sequence[Address] | None = None,
    ) -> asyncio.Task[bytes] | None:
        """A task resolving to the reply bytes for *request* (never raising), or None when
        ``max_in_flight`` are already out. Servers in *avoid* (our own listeners) are skipped;
        *servers*, when given, are asked instead of ours (a client's own, docker --dns)."""
        if len(self._tasks) >= self.max_in_flight:
            return None
        task = asyncio.get_running_loop().create_task(
            self._resolve(request, avoid, self.servers if servers is None else servers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resolve(self, request: Forward, avoid: Collection[Address],
                       servers: Sequence[Address]) -> bytes:
        fallback: dns.message.Message | None = None
        for server in list(servers):
            if server in avoid:
                continue  # a resolv.conf naming one of our own listeners: no loops
            try:
                response = await self._ask(request, server)
            except Exception as e:  # timeouts, refused connections, garbage: the next server
                log.debug("dns: upstream %s port %d failed: %r", server[0], server[1], e)
                continue
            if response.rcode() in _TRY_NEXT:
                fallback = response
                continue
            return request.reply(response)
        return request.reply(fallback) if fallback is not None else request.failure()

    async def _ask(self, request: Forward, server: Address) -> dns.message.Message:
        host, port = server
        query = dns.message.from_wire(request.wire)
        query.id = secrets.randbelow(65536)  # ours, not the client's: a spoofer has to guess it
        async with asyncio.timeout(self.timeout):
            response = await dns.asyncquery.udp(
                query,
                host,
                timeout=self.timeout,
                port=port,
                ignore_unexpected=True,  # only the server's datagrams,
                ignore_errors=True,  # and only a reply to this query (id and question)
                backend=_BACKEND,
            )
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(
                    query, host, timeout=self.timeout, port=port, backend=_BACKEND
                )
        return response
