"""UCloud's API: one signed form POST per action, answered by JSON whose ``RetCode`` is 0 on success.

The signature is the one UCloud documents (docs.ucloud.cn/api/summary/signature, and ``verify_ac`` in
ucloud-sdk-python3's ``ucloud/core/auth/_cfg.py``): the parameters sorted by name, each name followed
by its value with no separator and no URL escaping, the private key appended, the SHA-1 of that in
hex as ``Signature``. Lists are sent as ``Name.0``, ``Name.1`` (the SDK's ``encoder.encode``). Used
by the USMS notifier (notify/sms.py) and the UCloud snapshot methods (snapshots/ucloud.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ncbackup.errors import BackupError

DEFAULT_BASE_URL = "https://api.ucloud.cn"
TIMEOUT_SECONDS = 30.0


def signature(params: Mapping[str, str], private_key: str) -> str:
    """UCloud's request signature: SHA-1 hex of the sorted name+value pairs followed by the private key."""
    joined = "".join(name + params[name] for name in sorted(params)) + private_key
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 - the provider's scheme, not our choice


def signed(params: Mapping[str, str], *, public_key: str, private_key: str) -> dict[str, str]:
    """params plus PublicKey and their Signature: the form fields of one request."""
    fields = {**params, "PublicKey": public_key}
    fields["Signature"] = signature(fields, private_key)
    return fields


class UCloudApiError(BackupError):
    """UCloud answered RetCode != 0 (or no usable answer); the message is one sentence."""

    def __init__(self, message: str, *, ret_code: int | None = None) -> None:
        super().__init__(message)
        self.ret_code = ret_code


@dataclass(frozen=True)
class UCloudClient:
    """Calls UCloud API actions with one key pair (and project, for sub-accounts)."""

    public_key: str = field(repr=False)
    private_key: str = field(repr=False)
    project_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = TIMEOUT_SECONDS

    def call(self, action: str, params: Mapping[str, str], *, doing: str) -> dict[str, Any]:
        """The JSON answer of action; UCloudApiError saying what was being done (doing) and UCloud's reason otherwise."""
        # Imported here: requests costs ~0.1 s at start-up and only some runs need it.
        import requests

        fields = {"Action": action, **params}
        if self.project_id:
            fields["ProjectId"] = self.project_id
        form = signed(fields, public_key=self.public_key, private_key=self.private_key)
        try:
            answer = requests.post(self.base_url, data=form, timeout=self.timeout_seconds)
        except requests.RequestException as error:
            raise UCloudApiError(f"could not {doing}: the UCloud API at {self.base_url} did not answer "
                                 f"({type(error).__name__}); check BASE_URL and the network") from None
        try:
            body = answer.json()
            code = int(body.get("RetCode", -1))
            reason = str(body.get("Message") or "no message")
        except (ValueError, AttributeError, TypeError):
            raise UCloudApiError(f"could not {doing}: the UCloud API at {self.base_url} answered HTTP "
                                 f"{answer.status_code} without a JSON RetCode; check BASE_URL") from None
        if code != 0:
            raise UCloudApiError(f"could not {doing}: UCloud answered RetCode {code} ({reason.rstrip('.')}); "
                                 f"{advice(code, reason)}", ret_code=code)
        return dict(body)


# RetCodes whose fix is known (UCloud's signature page: 171 "Signature VerifyAC Error", 172 "User Not Exists").
_ADVICE = {
    171: "check PUBLIC_KEY and PRIVATE_KEY in CREDENTIALS_FILE (the signature did not match)",
    172: "check PUBLIC_KEY in CREDENTIALS_FILE (UCloud does not know it)",
}


def advice(ret_code: int, reason: str) -> str:
    """How to fix a failed call, by UCloud's RetCode and Message."""
    if ret_code in _ADVICE:
        return _ADVICE[ret_code]
    if "quota" in reason.lower():
        return "delete old images or snapshots in the UCloud console, raise the quota, or lower KEEP"
    return "check the credentials (PUBLIC_KEY, PRIVATE_KEY, PROJECT_ID), REGION, ZONE and the ids in the section"
