/**
 * What the consumer, the reader and the relay share: option checks, the error classifier, our ioredis settings,
 * and the reading connection.
 *
 * @internal
 */
import { createRequire } from "node:module"
import { Connector, ConnectorError, type Driver, Http } from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Cluster, Redis, type RedisOptions } from "ioredis"

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

/**
 * A Redis Cluster: seed nodes as `redis://` URLs (the first one's user, password and TLS are used for every node
 * the cluster reports).
 */
export interface ClusterConnection {
  readonly cluster: ReadonlyArray<string | Redacted.Redacted<string>>
}

/** Where to connect: one server (a URL, as ioredis takes it) or a cluster (its seeds, and what every node shares). */
export type Target =
  | { readonly _tag: "Single"; readonly url: string }
  | {
      readonly _tag: "Cluster"
      readonly seeds: ReadonlyArray<{ readonly host: string; readonly port: number }>
      readonly shared: RedisOptions
    }

const urlOf = (option: string, value: string | Redacted.Redacted<string>) =>
  Http.checkUrl(
    connector,
    option,
    Redacted.isRedacted(value) ? Redacted.value(value as Redacted.Redacted<string>) : value,
    ["redis:", "rediss:"]
  )

export const connectionTarget = (
  connection: string | Redacted.Redacted<string> | ClusterConnection
): Effect.Effect<Target, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof connection !== "object" || connection === null || !("cluster" in connection)) {
      return { _tag: "Single", url: yield* urlOf("connection", connection) }
    }
    const given = connection.cluster
    if (!Array.isArray(given) || given.length === 0) {
      return yield* Effect.fail(config("connection.cluster", given, "a non-empty array of seed URLs"))
    }
    const urls: Array<URL> = []
    for (const seed of given) urls.push(new URL(yield* urlOf("connection.cluster", seed)))
    if (urls.some((url) => url.pathname.length > 1 && url.pathname !== "/0")) {
      return yield* Effect.fail(config("connection.cluster", "db", "database 0: a Redis Cluster has no other"))
    }
    const first = urls[0]!
    return {
      _tag: "Cluster",
      seeds: urls.map((url) => ({
        host: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port === "" ? 6379 : Number(url.port)
      })),
      shared: {
        ...(first.username === "" ? {} : { username: decodeURIComponent(first.username) }),
        ...(first.password === "" ? {} : { password: decodeURIComponent(first.password) }),
        ...(first.protocol === "rediss:" ? { tls: {} } : {})
      }
    }
  })

/** A client of ours (not connected yet); `overrides` replace our settings (a lease reconnects by itself). */
export const client = (target: Target, connectionName: string, overrides: RedisOptions = {}): Redis | Cluster => {
  const settings = { ...ours, connectionName, ...overrides }
  if (target._tag === "Single") return new Redis(target.url, settings)
  // ioredis' Cluster routes each command to its slot's master and follows MOVED itself; core owns reconnect.
  return new Cluster(target.seeds as Array<{ host: string; port: number }>, {
    redisOptions: { ...target.shared, ...settings },
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: overrides.retryStrategy === undefined ? () => null : () => 100
  })
}

/** The hash slot of a key (with hash tags): `cluster-key-slot`, the function ioredis uses; a CommonJS module. */
export const slotOf: (key: string) => number = createRequire(import.meta.url)("cluster-key-slot")

/**
 * The key of a stream's hash slot with `suffix`: the stream's own hash tag if it has one, else the stream as the
 * tag, so that the key lives on the stream's node of a cluster.
 */
export const besideStream = (stream: string, suffix: string) => {
  const open = stream.indexOf("{")
  const close = open === -1 ? -1 : stream.indexOf("}", open + 1)
  const tagged = close > open + 1 ? stream : `{${stream}}`
  return `${tagged}${suffix}`
}

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
export const openReader = (target: Target, connectionName: string, session: Driver.Session<never>) =>
  Effect.gen(function* () {
    const reader = yield* Effect.acquireRelease(
      Effect.sync(() => client(target, connectionName)),
      (client) => Effect.sync(() => client.disconnect())
    )
    reader.on("error", (cause) => session.fail(redisError(cause)))
    reader.on("end", () =>
      session.fail(error(new ConnectorError.Closed({ message: "the server closed the connection" })))
    )
    yield* Effect.tryPromise({ try: () => reader.connect(), catch: redisError })
    if (reader instanceof Cluster) {
      // A node's connection lost under a blocking read: the cluster client would wait for it; core reconnects.
      reader.on("-node", (_node: Redis, key: string) =>
        session.fail(error(new ConnectorError.Closed({ message: `the connection to cluster node ${key} closed` })))
      )
      reader.on("node error", (cause: unknown) => session.fail(redisError(cause)))
    }
    return reader
  })
