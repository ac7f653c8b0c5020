// @wssign/client: signers and requesters for wssignd (protocol wssign.v1),
// for Node 20+ and browsers. See docs/CLIENTS.md.

export { Client, signBody } from "./client.js";
export { hasWebCryptoEd25519, verify } from "./ed25519.js";
export {
  ApiError, BadRequestError, ClusterUnavailableError, ConnectionClosedError, ForbiddenError,
  ForbiddenKeyError, IntroductionRefused,
  InvalidSignatureError, KeyError, MethodNotAllowedError, NotConnectedError, NotFoundError,
  OverloadedError, PayloadTooLargeError, ProtocolError, RejectedError, RequestTimeoutError,
  ShuttingDownError,
  TimeoutError, TooManyRequestsError, TransportError, UnauthorizedError, UnsupportedMediaTypeError,
  WssignError, errorFor,
} from "./errors.js";
export { Key, loadKey } from "./key.js";
export * as protocol from "./protocol.js";
export { PROTOCOL } from "./protocol.js";
export { Reject, SignRequest, Signer } from "./signer.js";
