"""Image signature policy: containers-policy.json(5), GPG "simple signing", cosign key-based
sigstore signatures, and lookaside signature storage (containers-registries.d(5)).

    policy = parse_policy(Path("/etc/berth/policy.json").read_bytes(), origin="host policy")
    check_image([policy], ref, manifest_bytes, manifest_digest, source)   # or PolicyDenied
"""

from .common import MAX_SIGNATURE_SIZE, MAX_SIGNATURES
from .cosign import (
    CosignArtifact,
    CosignLayer,
    SigstoreSig,
    build_cosign_artifact,
    cosign_signature_tag,
    parse_cosign_manifest,
    sigstore_sig_from_blob,
)
from .evaluate import SignatureSource, StaticSignatures, check_image
from .gpg import GpgKeyring
from .identity import scope_search_order
from .lookaside import add_signature, read_signatures, signature_url, write_signatures
from .payload import SignedClaims
from .policy import Policy, ScopeMatch, load_policy, parse_policy
from .registries_d import (
    LookasideSection,
    RegistriesConfig,
    load_registries_dir,
    parse_registries_d,
)
from .requirements import (
    InsecureAcceptAnything,
    Reject,
    Requirement,
    SignedBy,
    SigstoreSigned,
)
from .sigstore import load_public_key, sign_sigstore, verify_sigstore
from .simple import sign_simple, verify_simple

__all__ = [
    "MAX_SIGNATURES", "MAX_SIGNATURE_SIZE", "CosignArtifact", "CosignLayer", "GpgKeyring",
    "InsecureAcceptAnything", "LookasideSection", "Policy", "RegistriesConfig", "Reject",
    "Requirement", "ScopeMatch", "SignatureSource", "SignedBy", "SignedClaims", "SigstoreSig",
    "SigstoreSigned", "StaticSignatures", "add_signature", "build_cosign_artifact",
    "check_image", "cosign_signature_tag", "load_policy", "load_public_key",
    "load_registries_dir", "parse_cosign_manifest", "parse_policy", "parse_registries_d",
    "read_signatures", "scope_search_order", "sign_sigstore", "sign_simple",
    "signature_url", "sigstore_sig_from_blob", "verify_sigstore", "verify_simple",
    "write_signatures",
]
