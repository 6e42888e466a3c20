"""Errors the foundation's services raise; views turn them into messages or 4xx answers."""


class BackofficeError(Exception):
    """Base of every domain error: its message is safe to show to staff."""


class ApprovalError(BackofficeError):
    pass


class SelfApprovalRefused(ApprovalError):
    pass


class ApprovalNotPending(ApprovalError):
    pass


class UnknownApprovalAction(ApprovalError):
    pass
