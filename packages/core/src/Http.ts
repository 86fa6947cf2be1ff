/**
 * The plumbing shared by the connectors that speak HTTP (a WebSocket handshake included): URL and header options
 * evaluated per attempt, one classification of HTTP statuses with `Retry-After`, and `fetch` failures.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Connector from "./Connector.ts"
import * as ConnectorError from "./ConnectorError.ts"
import type * as Driver from "./Driver.ts"

/**
 * Headers whose values may be `Redacted` (kept out of logs and errors).
 *
 * @since 0.1.0
 * @category options
 */
export type Headers = Readonly<Record<string, string | Redacted.Redacted<string>>>

/**
 * Parses an absolute URL with one of `protocols` (e.g. `["ws:", "wss:"]`); a `Config` error naming `option`
 * otherwise, with any password in the URL redacted.
 *
 * @since 0.1.0
 * @category options
 */
export const checkUrl = (
  connector: string,
  option: string,
  value: string | URL,
  protocols: ReadonlyArray<string>
): Effect.Effect<string, ConnectorError.ConnectorError> => {
  const expected = `an absolute ${protocols.map((p) => `${p}//`).join(" or ")} URL`
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    return Effect.fail(ConnectorError.config(connector, option, ConnectorError.redactUrl(String(value)), expected))
  }
  if (!protocols.includes(url.protocol)) {
    return Effect.fail(ConnectorError.config(connector, option, ConnectorError.redactUrl(url), expected))
  }
  return Effect.succeed(url.toString())
}

/**
 * A URL option resolved once: checked now when given as a value, checked on every attempt when an Effect.
 *
 * @since 0.1.0
 * @category options
 */
export const urlOption = (
  connector: string,
  value: Connector.PerAttempt<string | URL>,
  protocols: ReadonlyArray<string>
): Effect.Effect<Effect.Effect<string, ConnectorError.ConnectorError>, ConnectorError.ConnectorError> =>
  Effect.isEffect(value)
    ? Effect.succeed(Effect.flatMap(value, (url) => checkUrl(connector, "url", url, protocols)))
    : Effect.map(checkUrl(connector, "url", value, protocols), Effect.succeed)

/**
 * A header value for text that may go beyond Latin-1: its UTF-8 bytes, one character per byte, which is what an
 * HTTP client can put on the wire (undici rejects a character above U+00FF) and what the EventSource spec sends
 * as `Last-Event-ID`. ASCII comes out unchanged.
 *
 * @since 0.2.0
 * @category options
 */
export const utf8HeaderValue = (text: string): string => {
  if (!beyondAscii.test(text)) return text
  let out = ""
  for (const byte of utf8Encoder.encode(text)) out += String.fromCharCode(byte)
  return out
}

const utf8Encoder = new TextEncoder()
// biome-ignore lint/suspicious/noControlCharactersInRegex: the range test is the point
const beyondAscii = /[^\u0000-\u007f]/

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range test is the point
const beyondLatin1 = /[^\u0000-\u00ff]/

/**
 * Headers with their `Redacted` values revealed, for the wire. A value with a character above U+00FF, which no
 * HTTP client can send as is, goes as its UTF-8 bytes (`utf8HeaderValue`).
 *
 * @since 0.1.0
 * @category options
 */
export const revealHeaders = (headers: Headers): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers)) {
    const text = Redacted.isRedacted(value) ? Redacted.value(value) : value
    out[key] = beyondLatin1.test(text) ? utf8HeaderValue(text) : text
  }
  return out
}

/** No headers: a fresh object on every attempt (a driver may add to it), from one Effect shared by every handle. */
const noHeaders: Effect.Effect<Record<string, string>> = Effect.sync(() => ({}))

/**
 * A headers option as an Effect run on every attempt.
 *
 * @since 0.1.0
 * @category options
 */
export const headersOption = (
  value: Connector.PerAttempt<Headers> | undefined
): Effect.Effect<Record<string, string>, ConnectorError.ConnectorError> =>
  value === undefined
    ? noHeaders
    : Effect.isEffect(value)
      ? Effect.map(value, revealHeaders)
      : Effect.sync(() => revealHeaders(value))

/**
 * A `Retry-After` header value as a delay: delay-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`,
 * measured from `now`). `undefined` when absent, unparsable, or not in the future.
 *
 * @since 0.2.0
 * @category http
 */
export const retryAfter = (
  value: string | null | undefined,
  now: number = Date.now()
): Duration.Duration | undefined => {
  if (value === null || value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) {
    const seconds = Number(text)
    return seconds > 0 ? Duration.seconds(seconds) : undefined
  }
  const at = Date.parse(text)
  if (Number.isNaN(at) || at <= now) return undefined
  return Duration.millis(at - now)
}

/**
 * The error for a non-2xx HTTP status, the same for every connector that speaks HTTP (a WebSocket handshake
 * included): 401/403 → `Auth`; 408, 429 and 5xx → `Connect` (retried; a `Retry-After` in seconds or as an
 * HTTP-date becomes the floor of the next reconnect delay); any other status → a non-retryable `Protocol` error
 * naming it. `message` replaces the default `HTTP <status>`.
 *
 * @since 0.1.0
 * @category http
 */
export const statusError = (
  connector: string,
  status: number,
  retryAfterHeader: string | null | undefined,
  session: Driver.Session<never>,
  message = `HTTP ${status}`,
  body?: string | undefined
): ConnectorError.ConnectorError => {
  if (body !== undefined && body !== "") {
    message = `${message}: ${body}`
  }
  const withBody = body === undefined || body === "" ? {} : { body }
  if (status === 401 || status === 403) {
    return ConnectorError.make(connector, new ConnectorError.Auth({ message, status, ...withBody }))
  }
  if (status === 408 || status === 429 || status >= 500) {
    const delay = retryAfter(retryAfterHeader)
    if (delay !== undefined) session.setReconnectFloor(delay)
    return ConnectorError.make(
      connector,
      new ConnectorError.Connect({
        message,
        status,
        ...withBody,
        ...(delay === undefined ? {} : { retryAfterMillis: Duration.toMillis(delay) })
      })
    )
  }
  return ConnectorError.make(connector, new ConnectorError.Protocol({ message, status, retryable: false, ...withBody }))
}

/**
 * One Server-Sent Event, as both SSE readers deliver it (`@streamemit/sse`'s `Event`, `@streamemit/http-stream`'s
 * `SseEvent`): `id` is the event's last event ID (an event without an `id:` field keeps the previous one), `event`
 * is `"message"` unless the server sent an `event:` field, `data` is the text or its decoded value.
 *
 * @since 0.2.0
 * @category sse
 */
export interface SseEvent<A = string> {
  readonly id: string | undefined
  readonly event: string
  readonly data: A
}

/**
 * The first `max` bytes of a response body as text (invalid UTF-8 replaced), then the body is cancelled: what a
 * refused request's error says (a model API's 400 explains what was wrong). Never fails: an unreadable body is "".
 *
 * @since 0.2.0
 * @category http
 */
export const bodyPreview = async (
  body: { getReader: () => ReadableStreamDefaultReader<Uint8Array> } | null,
  max = 1024
): Promise<string> => {
  if (body === null) return ""
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  try {
    while (size < max) {
      const next = await reader.read()
      if (next.done) break
      chunks.push(next.value)
      size += next.value.byteLength
    }
  } catch {
    // What was read so far is the preview.
  } finally {
    reader.cancel().catch(() => {})
  }
  const bytes = Buffer.concat(chunks).subarray(0, max)
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes).trim()
}

/**
 * A rejected `fetch` as a `Connect` error (`ConnectorError.socketError` of undici's cause: the system code first, TLS
 * mismatches not retried).
 *
 * @since 0.1.0
 * @category http
 */
export const fetchError = (connector: string, cause: unknown): ConnectorError.ConnectorError => {
  const inner = (cause as { cause?: unknown }).cause
  return inner === undefined || inner === null
    ? ConnectorError.make(
        connector,
        new ConnectorError.Connect({ message: String((cause as Error).message ?? cause), cause })
      )
    : ConnectorError.socketError(connector, inner)
}
