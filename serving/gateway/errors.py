"""OpenAI-shaped error bodies: `{"error": {"message", "type", "param", "code"}}`. Pure."""

from __future__ import annotations

import re

# A filesystem path in a message (POSIX or Windows): what public responses must not show.
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\\/\s'\"():,]+){2,}[\\/]?|~[\\/][^\s'\"():,]+")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "server_error")


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None, type_: str | None = None
) -> dict:
    return {"error": {"message": message, "type": type_ or error_type(status), "param": param, "code": code}}


class HTTPError(Exception):
    """A request that ends in an OpenAI-shaped error response (status, fields, extra headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type_: str | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type, self.headers = (
            status,
            message,
            param,
            code,
            type_,
            headers,
        )

    def body(self) -> dict:
        return error_body(self.status, self.message, self.param, self.code, self.type)

    @classmethod
    def from_item(cls, item: dict) -> HTTPError:
        """From a model server's error item (see serving.replica.server)."""
        return cls(item["status"], item["message"], item.get("param"), item.get("code"), item.get("error_type"))


def without_paths(text: str) -> str:
    """`text` with filesystem paths replaced by "<path>" (for public bodies such as /health)."""
    return _PATH.sub("<path>", text)
