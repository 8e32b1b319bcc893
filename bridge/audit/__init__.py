"""The hash-chained audit log: records, the chain, rotation and budget."""

from linebridge.audit.chain import Verdict, verify
from linebridge.audit.log import AuditConfig, AuditLog

__all__ = ["AuditConfig", "AuditLog", "Verdict", "verify"]
