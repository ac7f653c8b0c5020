// Exceptions of @wssign/client. Every error code of the control API
// (docs/openapi.yaml) has its class, derived from ApiError; the names and
// the hierarchy are those of the Python package.

export class WssignError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The daemon could not be reached, or the connection broke before an answer. */
export class TransportError extends WssignError {}

/** The peer's answer does not follow wssign.v1 or the control API. */
export class ProtocolError extends WssignError {}

/** A key (seed, JWK, PEM, key file) was refused. */
export class KeyError extends WssignError {}

/** The daemon refused the introduction for a reason no retry can fix. */
export class IntroductionRefused extends WssignError {
  constructor(code, message = "", closeCode = null) {
    super(`introduction refused: ${code}${message ? ": " + message : ""}`);
    this.code = code;
    this.detail = message;
    this.closeCode = closeCode;
  }
}

/** An error answer of the control API: status, code, message, requestId. */
export class ApiError extends WssignError {
  static code = "";
  static retryable = false;

  constructor(message = "", { status = null, code = null, requestId = null } = {}) {
    const c = code ?? new.target.code;
    super(`${c || "error"}${message ? ": " + message : ""}`);
    this.status = status;
    this.code = c;
    this.detail = message;
    this.requestId = requestId;
    this.retryable = new.target.retryable;
  }
}

function apiError(code, retryable = false) {
  return class extends ApiError {
    static code = code;
    static retryable = retryable;
  };
}

export const BadRequestError = apiError("bad_request");
export const UnauthorizedError = apiError("unauthorized");
export const ForbiddenError = apiError("forbidden");
export const ForbiddenKeyError = apiError("forbidden_key");
export const NotConnectedError = apiError("not_connected", true);
export const NotFoundError = apiError("not_found");
export const MethodNotAllowedError = apiError("method_not_allowed");
export const RequestTimeoutError = apiError("request_timeout", true);
export const PayloadTooLargeError = apiError("payload_too_large");
export const UnsupportedMediaTypeError = apiError("unsupported_media_type");
export const RejectedError = apiError("rejected");
export const TooManyRequestsError = apiError("too_many_requests", true);
export const InvalidSignatureError = apiError("invalid_signature");
export const ConnectionClosedError = apiError("connection_closed", true);
export const ShuttingDownError = apiError("shutting_down", true);
export const OverloadedError = apiError("overloaded", true);
export const ClusterUnavailableError = apiError("cluster_unavailable", true);
export const TimeoutError = apiError("timeout", true);

const classes = {
  BadRequestError, UnauthorizedError, ForbiddenError, ForbiddenKeyError, NotConnectedError,
  NotFoundError, MethodNotAllowedError,
  RequestTimeoutError, PayloadTooLargeError, UnsupportedMediaTypeError, RejectedError, TooManyRequestsError,
  InvalidSignatureError, ConnectionClosedError, ShuttingDownError, OverloadedError,
  ClusterUnavailableError, TimeoutError,
};
const byCode = new Map();
for (const [name, cls] of Object.entries(classes)) {
  Object.defineProperty(cls, "name", { value: name });
  byCode.set(cls.code, cls);
}

/** The exception for an error answer: its code's class, else ApiError. */
export function errorFor(status, code, message = "", requestId = null) {
  const Cls = byCode.get(code) ?? ApiError;
  return new Cls(message, { status, code, requestId });
}
