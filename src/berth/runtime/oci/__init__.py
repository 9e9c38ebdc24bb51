"""The OCI backend: runc (or crun) under conmon, overlay rootfs, cgroupfs limits."""

from berth.runtime.oci.backend import OciBackend

__all__ = ["OciBackend"]
