"""Transport security of the bridge: certificates, tokens, identities and roles, discovery approval."""

from linebridge.security.certs import CertDir
from linebridge.security.config import ApprovalRule, GrpcLimits, SecurityConfig, ServerTls
from linebridge.security.tokens import TokenTable

__all__ = ["ApprovalRule", "CertDir", "GrpcLimits", "SecurityConfig", "ServerTls", "TokenTable"]
