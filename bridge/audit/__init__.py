"""The hash-chained audit log: records, the chain, rotation and budget."""

from linebridge.audit.chain import Verdict, verify
from linebridge.audit.log import AuditConfig, AuditFailure, AuditLog

__all__ = ["AuditConfig", "AuditFailure", "AuditLog", "Verdict", "verify"]
