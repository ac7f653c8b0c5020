// Type declarations of @wssign/client.

export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView;

// ---------------------------------------------------------------- errors

export class WssignError extends Error {}
/** The daemon could not be reached, or the connection broke before an answer. */
export class TransportError extends WssignError {}
/** The peer's answer does not follow wssign.v1 or the control API. */
export class ProtocolError extends WssignError {}
/** A key (seed, JWK, PEM, key file) was refused. */
export class KeyError extends WssignError {}
/** The daemon refused the introduction for a reason no retry can fix. */
export class IntroductionRefused extends WssignError {
  constructor(code: string, message?: string, closeCode?: number | null);
  /** bad_host, bad_key, bad_proof or missing_proof */
  readonly code: string;
  readonly detail: string;
  closeCode: number | null;
}

export interface ApiErrorOptions {
  status?: number | null;
  code?: string | null;
  requestId?: string | null;
}

/** An error answer of the control API. */
export class ApiError extends WssignError {
  constructor(message?: string, options?: ApiErrorOptions);
  static readonly code: string;
  static readonly retryable: boolean;
  /** HTTP status; null for a check this library made itself. */
  readonly status: number | null;
  /** The daemon's error code (docs/openapi.yaml, ErrorCode). */
  readonly code: string;
  /** Text for people; not stable. */
  readonly detail: string;
  /** Set once the daemon had queued the request. */
  readonly requestId: string | null;
  /** Whether the same request may succeed later. */
  readonly retryable: boolean;
}
export class BadRequestError extends ApiError {}
export class UnauthorizedError extends ApiError {}
export class ForbiddenError extends ApiError {}
export class ForbiddenKeyError extends ApiError {}
export class NotConnectedError extends ApiError {}
export class NotFoundError extends ApiError {}
export class MethodNotAllowedError extends ApiError {}
export class RequestTimeoutError extends ApiError {}
export class PayloadTooLargeError extends ApiError {}
export class UnsupportedMediaTypeError extends ApiError {}
export class RejectedError extends ApiError {}
export class TooManyRequestsError extends ApiError {}
export class InvalidSignatureError extends ApiError {}
export class ConnectionClosedError extends ApiError {}
export class ShuttingDownError extends ApiError {}
export class OverloadedError extends ApiError {}
export class ClusterUnavailableError extends ApiError {}
export class TimeoutError extends ApiError {}

/** The exception for an error answer: its code's class, else ApiError. */
export function errorFor(status: number | null, code: string | null, message?: string, requestId?: string | null): ApiError;

// ---------------------------------------------------------------- keys

export type Backend = "webcrypto" | "noble";

export interface KeyOptions {
  /** Default false: a WebCrypto key that cannot be read back. */
  extractable?: boolean;
  /** Default: WebCrypto when it has Ed25519, else @noble/ed25519. */
  backend?: Backend;
}

/** What a Signer needs from a key: a hardware token or remote signer may provide it. */
export interface KeyLike {
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array> | Uint8Array;
}

export class Key implements KeyLike {
  static generate(options?: KeyOptions): Promise<Key>;
  static fromSeed(seed: Bytes, options?: KeyOptions): Promise<Key>;
  static fromJwk(jwk: string | { kty: string; crv: string; d: string; x?: string }, options?: KeyOptions): Promise<Key>;
  static fromPem(pem: string, options?: KeyOptions): Promise<Key>;
  static fromCryptoKey(privateKey: CryptoKey, publicKey: Bytes): Key;
  readonly publicKey: Uint8Array;
  readonly publicKeyB64: string;
  readonly backend: Backend;
  readonly extractable: boolean;
  /** The WebCrypto private key, for a webcrypto key. */
  readonly cryptoKey?: CryptoKey;
  sign(data: Bytes | string): Promise<Uint8Array>;
  /** The 32-byte seed; only for a key made with extractable: true. */
  exportSeed(): Promise<Uint8Array>;
}

/** Node only: reads a key file (PKCS#8 PEM or hex seed) of mode 0600 or 0400. */
export function loadKey(path: string, options?: KeyOptions): Promise<Key>;

export function hasWebCryptoEd25519(): Promise<boolean>;
export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;

// ---------------------------------------------------------------- signer

export const PROTOCOL: "wssign.v1";

/** Returned or thrown by a policy to decline with a reason (at most 256 bytes). */
export class Reject extends Error {
  constructor(reason?: string);
  readonly reason: string;
}

export class SignRequest {
  readonly requestId: string;
  /** The exact bytes to sign. */
  readonly message: Uint8Array;
  /** The daemon's deadline, unix ms. */
  readonly expiresAt: number | null;
  /** Sent by daemons that support request labels. */
  readonly label: string | null;
  readonly requester: string | null;
  /** The whole sign_request frame. */
  readonly frame: Record<string, unknown>;
  /** Aborted when the daemon cancels the request or its connection is lost. */
  readonly signal: AbortSignal;
  /** timeout, requester_cancelled, shutting_down, connection_closed or signer_stopping. */
  readonly cancelReason: string | null;
  expiresIn(): number | null;
}

export type PolicyResult = boolean | Reject | null | undefined;
export type Policy = (request: SignRequest) => PolicyResult | Promise<PolicyResult>;

export type SignerState = "idle" | "connecting" | "introducing" | "introduced" | "waiting" | "closed";

export interface SignerOptions {
  policy: Policy;
  /** First reconnect delay cap, doubled per failure (default 500). */
  backoffInitialMs?: number;
  /** Cap of the reconnect delay, and the wait after a 4001 (default 30000). */
  backoffMaxMs?: number;
  /** An attempt that is not introduced after this long fails (default 30000). */
  connectTimeoutMs?: number;
  /** Node's ws only (default 30000; 0 turns pings off). */
  pingIntervalMs?: number;
  /** Allow ws:// to a host that is not loopback. */
  insecure?: boolean;
  /** A WebSocket constructor to use instead of the platform's or ws's. */
  WebSocket?: unknown;
  /** Passed to ws in Node, e.g. { ca }. */
  webSocketOptions?: Record<string, unknown>;
}

export interface SignerEventMap {
  state: CustomEvent<{ state: SignerState; sessionId?: string; delayMs?: number; closeCode?: number | null }>;
  introduced: CustomEvent<{ sessionId: string }>;
  request: CustomEvent<{ request: SignRequest }>;
  cancel: CustomEvent<{ request: SignRequest; reason: string }>;
  decision: CustomEvent<{ request: SignRequest | null; requestId: string; decision: "signed" | "rejected" | "refused"; reason: string | null }>;
  serverError: CustomEvent<{ code: string; message: string; requestId: string | null }>;
  disconnected: CustomEvent<{ code: number | null; reason: string }>;
}

export class Signer extends EventTarget {
  constructor(url: string, key: KeyLike, options: SignerOptions);
  readonly url: string;
  /** The host the proofs name. */
  readonly host: string;
  readonly publicKey: Uint8Array;
  readonly publicKeyB64: string;
  readonly state: SignerState;
  readonly sessionId: string | null;
  /** The close code of the last connection. */
  readonly closeCode: number | null;
  readonly introductions: number;
  /** The requests the policy is deciding. */
  readonly pending: Map<string, SignRequest>;
  /** Resolves when stopped; rejects with IntroductionRefused when refused for good. */
  readonly closed: Promise<void>;
  start(): this;
  waitIntroduced(options?: { timeoutMs?: number }): Promise<string>;
  close(): Promise<void>;
  addEventListener<K extends keyof SignerEventMap>(type: K, listener: (event: SignerEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

// ---------------------------------------------------------------- requester

export interface SignOptions {
  /** 1..60000; default the daemon's requests.default_timeout_ms. */
  timeoutMs?: number;
  /** Needs a daemon that supports request labels. */
  label?: string;
  /** Needs a daemon that supports waiting for a signer. */
  waitMs?: number;
  signal?: AbortSignal;
}

export interface Signature {
  requestId: string;
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  signatureB64: string;
}

export interface KeyStatus {
  publicKey: Uint8Array;
  connected: boolean;
  connectedAt: number;
  sessionId: string;
  pending: number;
}

export class Client {
  constructor(url?: string, options?: { token?: string | null; fetch?: typeof fetch });
  sign(publicKey: Bytes | string, message: Bytes | string, options?: SignOptions): Promise<Signature>;
  keyStatus(publicKey: Bytes | string, options?: { signal?: AbortSignal }): Promise<KeyStatus>;
  isConnected(publicKey: Bytes | string, options?: { signal?: AbortSignal }): Promise<boolean>;
  health(options?: { signal?: AbortSignal }): Promise<boolean>;
}

export function signBody(publicKey: Bytes | string, message: Bytes | string, options?: Omit<SignOptions, "signal">): string;

// ---------------------------------------------------------------- wire format

export namespace protocol {
  const PROTOCOL: "wssign.v1";
  const INTRODUCTION_PREFIX: "wssign-introduction-v1";
  const REASON_MAX_BYTES: 256;
  function toBytes(data: Bytes | string): Uint8Array;
  function b64encode(bytes: Bytes | string): string;
  function b64decode(text: string, length?: number): Uint8Array;
  function b64urlNoPad(bytes: Bytes): string;
  function introductionHost(url: string): string;
  function introductionTranscript(host: string, nonce: string): Uint8Array;
  function startsWith(bytes: Uint8Array, prefix: string | Uint8Array): boolean;
  function introductionFrame(publicKey: Uint8Array, host: string, proof: Uint8Array): string;
  function responseFrame(requestId: string, messageB64: string, signature: Uint8Array): string;
  function rejectFrame(requestId: string, reason?: string | null): string;
}
