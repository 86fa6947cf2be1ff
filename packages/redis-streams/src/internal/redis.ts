/**
 * What the consumer, the reader and the relay share: option checks, the error classifier, our ioredis settings,
 * and the reading connection.
 *
 * @internal
 */
import { Connector, ConnectorError, type Driver, Http } from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Redis, type RedisOptions } from "ioredis"

export const connector = "redis-streams"

/** One entry of a stream: its fields as the producer wrote them. */
export type Entry = Readonly<Record<string, string>>

export const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

export const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

export const positiveInteger = (option: string, value: number | undefined, fallback: number) => {
  const n = value ?? fallback
  return Number.isInteger(n) && n >= 1 ? Effect.succeed(n) : Effect.fail(config(option, value, "a positive integer"))
}

export const nonEmpty = (option: string, value: unknown) =>
  typeof value === "string" && value !== ""
    ? Effect.succeed(value)
    : Effect.fail(config(option, value, "a non-empty string"))

export const connectionUrl = (connection: string | Redacted.Redacted<string>) =>
  Http.checkUrl(
    connector,
    "connection",
    Redacted.isRedacted(connection) ? Redacted.value(connection as Redacted.Redacted<string>) : connection,
    ["redis:", "rediss:"]
  )

export const blockOption = (block: Duration.Input | undefined) =>
  Effect.map(Connector.duration(connector, "block", block, "5 seconds"), (d) => Math.max(1, Duration.toMillis(d)))

/**
 * Server replies: bad credentials are `Auth`; a missing group or a key that is not a stream `Config`; anything else
 * a transport failure.
 */
export const redisError = (cause: unknown): ConnectorError.ConnectorError => {
  if (cause instanceof ConnectorError.ConnectorError) return cause
  const message = String((cause as Error)?.message ?? cause)
  if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(message)) return error(new ConnectorError.Auth({ message, cause }))
  if (/^WRONGTYPE/.test(message)) {
    return error(
      new ConnectorError.Config({ option: "stream", message: `${message} (the key is not a stream)`, cause })
    )
  }
  if (/^NOGROUP/.test(message)) {
    return error(new ConnectorError.Config({ option: "group", message: `${message} (createGroup: false)`, cause }))
  }
  return ConnectorError.socketError(connector, cause)
}

/** Our settings on top of the URL's: core owns reconnect, and nothing is queued while down. */
export const ours = {
  lazyConnect: true,
  retryStrategy: () => null,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0
} satisfies RedisOptions

/** An XREAD / XREADGROUP reply: per stream, its entries (fields `null` for an entry deleted while pending). */
export type Reply = Array<[string, Array<[string, Array<string> | null]>]> | null

/** An entry's size for the byte metrics: its fields and values, in UTF-16 units (no encoding pass). */
export const sizeOf = (fields: ReadonlyArray<string>) => {
  let size = 0
  for (const field of fields) size += field.length
  return size
}

export const entryOf = (fields: ReadonlyArray<string>): Entry => {
  const entry: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!
  return entry
}

export const fieldsOf = (entry: Readonly<Record<string, string>>) => {
  const fields: Array<string> = []
  for (const key in entry) fields.push(key, entry[key]!)
  return fields
}

/** The connection that reads, closed with the attempt's scope; its errors and its end fail the session. */
export const openReader = (url: string, connectionName: string, session: Driver.Session<never>) =>
  Effect.gen(function* () {
    const reader = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(url, { ...ours, connectionName })),
      (client) => Effect.sync(() => client.disconnect())
    )
    reader.on("error", (cause) => session.fail(redisError(cause)))
    reader.on("end", () =>
      session.fail(error(new ConnectorError.Closed({ message: "the server closed the connection" })))
    )
    yield* Effect.tryPromise({ try: () => reader.connect(), catch: redisError })
    return reader
  })
