/**
 * The one error type of every StreamEmit connector: the connector's name plus a `reason` that says what went
 * wrong and whether trying again can help.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

const TypeId = "~@streamemit/core/ConnectorError" as const
const ReasonTypeId = "~@streamemit/core/ConnectorError/Reason" as const

const ReasonFields = {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect()),
  /** Overrides the reason's default retry classification (a driver knows its library best). */
  retryable: Schema.optional(Schema.Boolean),
  /** The HTTP status of a refused request or handshake, when there was one. */
  status: Schema.optional(Schema.Number),
  /** The delay the server asked for (`Retry-After`), in milliseconds, when it gave one. */
  retryAfterMillis: Schema.optional(Schema.Number),
  /** The close code of a connection the peer closed (WebSocket), when there was one. */
  closeCode: Schema.optional(Schema.Number),
  /** The first bytes of a refused response's body (an API's error message), when there was one. */
  body: Schema.optional(Schema.String)
}

/**
 * Dialing, handshake or transport failure: refused, reset, DNS, TLS, 5xx/429.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Connect extends Schema.TaggedError<Connect>("@streamemit/core/ConnectorError/Connect")(
  "Connect",
  ReasonFields
) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? true
  }
}

/**
 * Credentials refused (401/403, wrong password): trying again with the same credentials cannot help.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Auth extends Schema.TaggedError<Auth>("@streamemit/core/ConnectorError/Auth")("Auth", ReasonFields) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? false
  }
}

/**
 * The peer broke the protocol: malformed or oversized frame, wrong content type, unexpected status.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Protocol extends Schema.TaggedError<Protocol>("@streamemit/core/ConnectorError/Protocol")(
  "Protocol",
  ReasonFields
) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? true
  }
}

/**
 * A payload did not match the user's `Schema` (under the `"fail"` decode policy).
 *
 * @since 0.1.0
 * @category reasons
 */
export class Decode extends Schema.TaggedError<Decode>("@streamemit/core/ConnectorError/Decode")(
  "Decode",
  ReasonFields
) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? false
  }
}

/**
 * The buffer between source and consumer overflowed under the `"fail"` strategy, or past the hard cap of a
 * source that cannot pause.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Overflow extends Schema.TaggedError<Overflow>("@streamemit/core/ConnectorError/Overflow")("Overflow", {
  ...ReasonFields,
  bufferSize: Schema.Number,
  strategy: Schema.String
}) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? false
  }
}

/**
 * Connect, handshake or liveness timeout: the peer went silent.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Timeout extends Schema.TaggedError<Timeout>("@streamemit/core/ConnectorError/Timeout")(
  "Timeout",
  ReasonFields
) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? true
  }
}

/**
 * The peer closed the connection (or the handle was used after its scope closed).
 *
 * @since 0.1.0
 * @category reasons
 */
export class Closed extends Schema.TaggedError<Closed>("@streamemit/core/ConnectorError/Closed")(
  "Closed",
  ReasonFields
) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? true
  }
}

/**
 * An option is invalid: reported at once, naming the option and the offending value.
 *
 * @since 0.1.0
 * @category reasons
 */
export class Config extends Schema.TaggedError<Config>("@streamemit/core/ConnectorError/Config")("Config", {
  ...ReasonFields,
  option: Schema.String,
  value: Schema.optional(Schema.Unknown)
}) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? false
  }
}

/**
 * A failure of no known kind: a defect in a driver or in `onResync`, or an error that is not a `ConnectorError`.
 * Not retried by default: retrying a bug repeats it.
 *
 * @since 0.2.0
 * @category reasons
 */
export class Unknown extends Schema.TaggedError<Unknown>("@streamemit/core/ConnectorError/Unknown")(
  "Unknown",
  ReasonFields
) {
  readonly [ReasonTypeId] = ReasonTypeId
  get isRetryable(): boolean {
    return this.retryable ?? false
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export type Reason = Connect | Auth | Protocol | Decode | Overflow | Timeout | Closed | Config | Unknown

/**
 * @since 0.1.0
 * @category schemas
 */
export const Reason = Schema.Union([Connect, Auth, Protocol, Decode, Overflow, Timeout, Closed, Config, Unknown])

/**
 * @since 0.1.0
 * @category models
 */
export type ReasonTag = Reason["_tag"]

/**
 * @since 0.1.0
 * @category errors
 */
export class ConnectorError extends Schema.TaggedError<ConnectorError>("@streamemit/core/ConnectorError")(
  "ConnectorError",
  {
    connector: Schema.String,
    reason: Reason
  }
) {
  readonly [TypeId] = TypeId
  override readonly cause = this.reason
  override get message(): string {
    return `${this.connector}: ${this.reason._tag}: ${this.reason.message}`
  }
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isConnectorError = (u: unknown): u is ConnectorError => Predicate.hasProperty(u, TypeId)

/**
 * @since 0.1.0
 * @category guards
 */
export const isReason = (u: unknown): u is Reason => Predicate.hasProperty(u, ReasonTypeId)

/**
 * An invalid option, reported as a `Config` reason naming the option and the value given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const config = (connector: string, option: string, value: unknown, expected: string): ConnectorError =>
  new ConnectorError({
    connector,
    reason: new Config({
      option,
      value,
      message: `invalid option "${option}": expected ${expected}, got ${describeValue(value)}`
    })
  })

const describeValue = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value)
  if (value === null || value === undefined) return String(value)
  try {
    return JSON.stringify(value) ?? typeof value
  } catch {
    return typeof value
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (connector: string, reason: Reason): ConnectorError => new ConnectorError({ connector, reason })

const secretParams =
  /^(password|passwd|pass|pwd|token|access_token|auth|authorization|key|api_key|apikey|secret|signature|sig)$/i

/**
 * A URL fit for messages and logs: the password of its user-info and secret-looking query parameters become `***`.
 *
 * @since 0.1.0
 * @category redaction
 */
export const redactUrl = (url: string | URL): string => {
  let parsed: URL
  try {
    parsed = new URL(String(url))
  } catch {
    return "<invalid URL>"
  }
  if (parsed.password !== "") parsed.password = "***"
  for (const key of [...parsed.searchParams.keys()]) {
    if (secretParams.test(key)) parsed.searchParams.set(key, "***")
  }
  return parsed.toString().replace(/%2A%2A%2A/g, "***")
}

/** TLS failures that retrying cannot fix: the peer does not speak TLS, or its certificate is refused. */
const tlsMismatch = /wrong version number|ERR_SSL_WRONG_VERSION_NUMBER|packet length too long|unknown protocol/i
const certificateCodes = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])

/**
 * A socket-level failure (dial, DNS, TLS) as a `Connect` error whose message starts with the system code
 * (`ECONNREFUSED: …`, `ENOTFOUND: …`) and whose `cause` is the native error. A TLS handshake with a peer that does
 * not speak TLS (`wss://`/`https://` against a plain server) or a refused certificate is not retryable, with a
 * message that says so instead of OpenSSL's.
 *
 * @since 0.2.0
 * @category classification
 */
export const socketError = (connector: string, cause: unknown): ConnectorError => {
  const native = cause as { code?: string; message?: string }
  const code = native.code
  const text = String(native.message ?? cause)
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    ((code === "EPROTO" || code === undefined) && tlsMismatch.test(text))
  ) {
    return make(
      connector,
      new Connect({
        message:
          "TLS handshake failed: the server does not speak TLS (wrong version number); use ws:// or http:// for a plain server",
        cause,
        retryable: false
      })
    )
  }
  if (code !== undefined && certificateCodes.has(code)) {
    return make(
      connector,
      new Connect({ message: `TLS certificate refused (${code}): ${text}`, cause, retryable: false })
    )
  }
  const message = code === undefined || text.includes(code) ? text : `${code}: ${text}`
  return make(connector, new Connect({ message, cause }))
}

/**
 * The system code of an error's native cause (`ENOTFOUND`, `ECONNREFUSED`, …), when it has one: for callers that
 * decide from data (e.g. give up on an unknown host), not from messages.
 *
 * @since 0.2.0
 * @category classification
 */
export const systemCode = (error: ConnectorError): string | undefined => {
  let cause: unknown = error.reason.cause
  for (let depth = 0; depth < 3 && typeof cause === "object" && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === "string") return code
    cause = (cause as { cause?: unknown }).cause
  }
  return undefined
}
