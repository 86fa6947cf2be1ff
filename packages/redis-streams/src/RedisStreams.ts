/**
 * A consumer in a Redis Streams consumer group (`ioredis`) as a scoped, bounded, self-healing stream of
 * deliveries that are acknowledged after the work is done: at-least-once, shared by every consumer of the group.
 * On every connection it first reads its own pending entries again (delivered, never acknowledged), so nothing is
 * forgotten across a reconnect; at most `maxInFlight` deliveries are unacknowledged at a time. Reconnect,
 * lifecycle, overflow and metrics are core's.
 *
 * @since 0.2.0
 */
import * as Os from "node:os"
import { Connector, ConnectorError, type Delivery, type Driver, Http, type Lifecycle } from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { Redis, type RedisOptions } from "ioredis"

const connector = "redis-streams"

/**
 * One entry of the stream: its fields as the producer wrote them (`XADD key * field value …`).
 *
 * @since 0.2.0
 * @category models
 */
export type Entry = Readonly<Record<string, string>>

/**
 * @since 0.2.0
 * @category options
 */
export interface Options extends Connector.CommonOptions<Delivery.Delivery<Entry>> {
  /** A `redis://` / `rediss://` URL, as is or `Redacted`. */
  readonly connection: string | Redacted.Redacted<string>
  /** The stream's key. */
  readonly stream: string
  /** The consumer group. */
  readonly group: string
  /** This consumer's name in the group. Default: host name, process id and a random suffix (unique per process). */
  readonly consumer?: string | undefined
  /**
   * Create the group (and the stream) if it does not exist: from `"$"` (new entries only, the default) or from
   * `"0"` (everything in the stream); `false` expects it to exist (a missing group is a `Config` error).
   */
  readonly createGroup?: "$" | "0" | false | undefined
  /** Entries read at most per `XREADGROUP` (COUNT). Default 100. */
  readonly batch?: number | undefined
  /** How long a read waits for new entries (BLOCK); every answer counts as traffic for the watchdog. Default 5 s. */
  readonly block?: Duration.Input | undefined
  /** Deliveries unacknowledged at most; reading waits for acknowledgements beyond. Default 1,000. */
  readonly maxInFlight?: number | undefined
  /**
   * Entries of the group unacknowledged for this long (their consumer died, or is stuck) are claimed by this
   * consumer and delivered again (`XAUTOCLAIM`); `false` never claims. Default 1 minute.
   */
  readonly claimAfter?: Duration.Input | false | undefined
  /**
   * An entry delivered this many times without an ack is not delivered again: it is moved to `deadLetter`
   * (required with it) and acknowledged. Default: no limit.
   */
  readonly maxDeliveries?: number | undefined
  /** The stream key dead letters are added to, with their original id, stream, group and delivery count. */
  readonly deadLetter?: string | undefined
}

/**
 * Entries moved to their dead-letter stream, by connector and name.
 *
 * @since 0.2.0
 * @category metrics
 */
export const deadLetteredTotal: Metric.Counter<number> = Metric.counter("streamemit_dead_lettered_total", {
  description: "Entries moved to the dead letters after maxDeliveries",
  incremental: true
})

interface Resolved {
  readonly common: Connector.Resolved<Delivery.Delivery<Entry>>
  readonly url: string
  readonly stream: string
  readonly group: string
  readonly consumer: string
  readonly createGroup: "$" | "0" | false
  readonly batch: number
  readonly blockMillis: number
  readonly maxInFlight: number
  readonly claimAfterMillis: number | undefined
  readonly claimEveryMillis: number
  readonly maxDeliveries: number | undefined
  readonly deadLetter: string | undefined
}

const config = (option: string, value: unknown, expected: string) =>
  ConnectorError.config(connector, option, value, expected)

const error = (reason: ConnectorError.Reason) => ConnectorError.make(connector, reason)

const positiveInteger = (option: string, value: number | undefined, fallback: number) => {
  const n = value ?? fallback
  return Number.isInteger(n) && n >= 1 ? Effect.succeed(n) : Effect.fail(config(option, value, "a positive integer"))
}

const nonEmpty = (option: string, value: unknown) =>
  typeof value === "string" && value !== ""
    ? Effect.succeed(value)
    : Effect.fail(config(option, value, "a non-empty string"))

const connectionUrl = (connection: string | Redacted.Redacted<string>) =>
  Http.checkUrl(
    connector,
    "connection",
    Redacted.isRedacted(connection) ? Redacted.value(connection as Redacted.Redacted<string>) : connection,
    ["redis:", "rediss:"]
  )

const blockOption = (block: Duration.Input | undefined) =>
  Effect.map(Connector.duration(connector, "block", block, "5 seconds"), (d) => Math.max(1, Duration.toMillis(d)))

const resolve = (options: Options): Effect.Effect<Resolved, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const url = yield* connectionUrl(options.connection)
    const stream = yield* nonEmpty("stream", options.stream)
    const group = yield* nonEmpty("group", options.group)
    const consumer = yield* nonEmpty(
      "consumer",
      options.consumer ?? `${Os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    )
    const createGroup = options.createGroup ?? "$"
    if (createGroup !== "$" && createGroup !== "0" && createGroup !== false) {
      return yield* Effect.fail(config("createGroup", createGroup, '"$", "0" or false'))
    }
    const batch = yield* positiveInteger("batch", options.batch, 100)
    const maxInFlight = yield* positiveInteger("maxInFlight", options.maxInFlight, 1000)
    const blockMillis = yield* blockOption(options.block)
    let claimAfterMillis: number | undefined
    if (options.claimAfter !== false) {
      const claimAfter = yield* Connector.duration(connector, "claimAfter", options.claimAfter, "1 minute")
      claimAfterMillis = Math.max(1, Duration.toMillis(claimAfter))
    }
    let maxDeliveries: number | undefined
    let deadLetter: string | undefined
    if (options.maxDeliveries !== undefined || options.deadLetter !== undefined) {
      if (options.maxDeliveries === undefined) {
        return yield* Effect.fail(config("maxDeliveries", undefined, "a positive integer (required with deadLetter)"))
      }
      if (options.deadLetter === undefined) {
        return yield* Effect.fail(config("deadLetter", undefined, "a stream key (required with maxDeliveries)"))
      }
      maxDeliveries = yield* positiveInteger("maxDeliveries", options.maxDeliveries, 1)
      deadLetter = yield* nonEmpty("deadLetter", options.deadLetter)
      if (deadLetter === stream) return yield* Effect.fail(config("deadLetter", deadLetter, "a key other than stream"))
    }
    const common = yield* Connector.resolve<Delivery.Delivery<Entry>>(connector, options, {
      // Every read answers within `block` (with entries or none): three blocks of silence is a dead connection.
      liveness: { interval: blockMillis * 3, timeout: blockMillis * 3 },
      // Reading stops at maxInFlight; the buffer only holds what was read.
      overflow: { strategy: "suspend", bufferSize: Math.max(batch, 1024) }
    })
    return {
      common,
      url,
      stream,
      group,
      consumer,
      createGroup,
      batch,
      blockMillis,
      maxInFlight,
      claimAfterMillis,
      // Looked for at half the idle time: an entry waits at most 1.5 × claimAfter (or one block, if longer).
      claimEveryMillis: claimAfterMillis === undefined ? 0 : claimAfterMillis / 2,
      maxDeliveries,
      deadLetter
    }
  })

/**
 * Server replies: bad credentials are `Auth`; a missing group or a key that is not a stream `Config`; anything else
 * a transport failure.
 */
const redisError = (cause: unknown): ConnectorError.ConnectorError => {
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
const ours = {
  lazyConnect: true,
  retryStrategy: () => null,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0
} satisfies RedisOptions

type Reply = Array<[string, Array<[string, Array<string> | null]>]> | null

/** An entry's size for the byte metrics: its fields and values, in UTF-16 units (no encoding pass). */
const sizeOf = (fields: ReadonlyArray<string>) => {
  let size = 0
  for (const field of fields) size += field.length
  return size
}

const entryOf = (fields: ReadonlyArray<string>): Entry => {
  const entry: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!
  return entry
}

/** The connection that reads, closed with the attempt's scope; its errors and its end fail the session. */
const openReader = (url: string, connectionName: string, session: Driver.Session<never>) =>
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

const consumerClosed = error(
  new ConnectorError.Closed({ message: "the consumer is closed: the entry stays pending and is delivered again" })
)

const driver = (options: Resolved): Effect.Effect<Driver.Driver<Redis, Delivery.Delivery<Entry>>, never, Scope.Scope> =>
  Effect.gen(function* () {
    // Acknowledgements go through a connection of their own (the reader blocks), shared across reconnects: a
    // delivery of a connection that died can still be acknowledged. It closes with the handle's scope. One
    // connection at a time, shared by concurrent acks; a broken one is replaced by the next ack.
    let acker: Promise<Redis> | undefined
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        acker?.then(
          (client) => client.disconnect(),
          () => {}
        )
      })
    )
    const ackConnection = (): Promise<Redis> => {
      if (closed) return Promise.reject(consumerClosed)
      if (acker === undefined) {
        const client = new Redis(options.url, { ...ours, connectionName: `streamemit:${options.consumer}:ack` })
        // Its failures reach the caller as the ack's error; the next ack connects again.
        client.on("error", () => {})
        client.on("close", () => {
          if (acker === connecting) acker = undefined
        })
        const connecting: Promise<Redis> = client.connect().then(
          () => client,
          (cause) => {
            if (acker === connecting) acker = undefined
            client.disconnect()
            throw cause
          }
        )
        acker = connecting
      }
      return acker
    }
    // Acks asked for in the same turn of the event loop go out as one XACK.
    let batch: Array<{ readonly id: string; readonly done: (error?: unknown) => void }> = []
    const flushAcks = () => {
      const sending = batch
      batch = []
      ackConnection()
        .then((client) => client.call("XACK", options.stream, options.group, ...sending.map((a) => a.id)))
        .then(
          () => {
            for (const a of sending) a.done()
          },
          (cause) => {
            for (const a of sending) a.done(cause)
          }
        )
    }
    const acknowledge = (id: string) =>
      new Promise<void>((resolve, reject) => {
        if (batch.length === 0) setImmediate(flushAcks)
        batch.push({ id, done: (cause) => (cause === undefined ? resolve() : reject(cause)) })
      })
    return {
      connector,
      // The pending entries are read again first on every connection: nothing delivered is forgotten.
      delivery: () => "resumed",
      connect: (session) =>
        Effect.gen(function* () {
          const reader = yield* openReader(
            options.url,
            `streamemit:${options.consumer}`,
            session as Driver.Session<never>
          )
          const createFrom = options.createGroup
          if (createFrom !== false) {
            yield* Effect.tryPromise({
              try: () =>
                reader
                  .call("XGROUP", "CREATE", options.stream, options.group, createFrom, "MKSTREAM")
                  .catch((cause: Error) => {
                    if (!/BUSYGROUP/.test(cause.message)) throw cause
                  }),
              catch: redisError
            })
          }
          const gate = yield* Connector.pullGate(session as Driver.Session<never>)
          const context = yield* Effect.context<never>()
          const deadLettered = Metric.withAttributes(deadLetteredTotal, { connector, name: options.common.name })
          // Unacknowledged deliveries of this connection; reading waits while there are maxInFlight.
          const flight = { count: 0, wake: undefined as (() => void) | undefined }
          const settled = () => {
            flight.count--
            const wake = flight.wake
            flight.wake = undefined
            wake?.()
          }
          // The read loop runs until this connection's scope closes.
          let open = true
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              open = false
              flight.wake?.()
            })
          )
          const deliver = (id: string, fields: ReadonlyArray<string>, deliveries: number) => {
            flight.count++
            // Its in-flight place is freed once, whether by ack, release or both.
            let inFlight = true
            const leave = () => {
              if (!inFlight) return
              inFlight = false
              settled()
            }
            // Asked for twice (even at once), it is sent once; after a failure, it may be tried again.
            let acking: Promise<void> | undefined
            const ack = Effect.tryPromise({
              try: () =>
                (acking ??= acknowledge(id).then(leave, (cause) => {
                  acking = undefined
                  throw cause
                })),
              catch: (cause) => (cause === consumerClosed ? consumerClosed : redisError(cause))
            })
            // After an ack (sent or under way), a release does nothing.
            const release = Effect.sync(() => {
              if (acking === undefined) leave()
            })
            session.push({ id, item: entryOf(fields), deliveries, ack, release }, sizeOf(fields))
          }
          /** How many times each entry of `entries` was delivered, from the group's pending list. */
          const deliveryCounts = async (entries: ReadonlyArray<[string, unknown]>) => {
            const counts = new Map<string, number>()
            if (entries.length === 0) return counts
            const pending = (await reader.call(
              "XPENDING",
              options.stream,
              options.group,
              entries[0]![0],
              entries[entries.length - 1]![0],
              entries.length,
              options.consumer
            )) as Array<[string, string, number, number]>
            for (const [id, , , times] of pending) counts.set(id, times)
            return counts
          }
          /**
           * Entries delivered before (our own pending ones, or claimed): delivered again, or past `maxDeliveries`
           * moved to the dead letters. An entry deleted from the stream while pending has no fields: acknowledged,
           * counted as dropped.
           */
          const redeliver = async (entries: ReadonlyArray<[string, Array<string> | null]>) => {
            const counts = await deliveryCounts(entries)
            for (const [id, fields] of entries) {
              const deliveries = counts.get(id) ?? 2
              if (fields === null) {
                await reader.call("XACK", options.stream, options.group, id)
                session.dropped(1)
              } else if (options.maxDeliveries !== undefined && deliveries > options.maxDeliveries) {
                await reader
                  .multi()
                  .call(
                    "XADD",
                    options.deadLetter!,
                    "*",
                    ...fields,
                    "streamemit-id",
                    id,
                    "streamemit-stream",
                    options.stream,
                    "streamemit-group",
                    options.group,
                    "streamemit-deliveries",
                    String(deliveries - 1)
                  )
                  .call("XACK", options.stream, options.group, id)
                  .exec()
                  .then((results) => {
                    const failed = results?.find(([cause]) => cause !== null)
                    if (failed) throw failed[0]
                  })
                deadLettered.updateUnsafe(1, context)
              } else deliver(id, fields, deliveries)
            }
          }
          let claimCursor = "0-0"
          let nextClaimAt = 0
          /** Entries of dead (or stuck) consumers, idle for claimAfter: ours now, delivered again. */
          const claim = async (count: number) => {
            const [cursor, claimed, deleted] = (await reader.call(
              "XAUTOCLAIM",
              options.stream,
              options.group,
              options.consumer,
              options.claimAfterMillis!,
              claimCursor,
              "COUNT",
              count
            )) as [string, Array<[string, Array<string> | null]>, Array<string> | undefined]
            session.alive()
            claimCursor = cursor
            // Around the whole pending list, then rest a while.
            if (cursor === "0-0") nextClaimAt = Date.now() + options.claimEveryMillis
            // Deleted from the stream while pending: Redis dropped them from the pending list.
            if (deleted !== undefined && deleted.length > 0) session.dropped(deleted.length)
            await redeliver(claimed.filter(([, fields]) => fields !== null))
            return claimed.length
          }
          const readLoop = async () => {
            // Own pending entries first (from id 0, page by page), then new ones (">").
            let pendingFrom: string | undefined = "0"
            while (open) {
              await gate.beforeRead()
              while (flight.count >= options.maxInFlight && open) {
                // Waiting for acknowledgements is not silence: a PING per block keeps the watchdog honest.
                let timer: ReturnType<typeof setTimeout> | undefined
                const acked = await new Promise<boolean>((resolve) => {
                  flight.wake = () => resolve(true)
                  timer = setTimeout(() => resolve(false), options.blockMillis)
                })
                clearTimeout(timer)
                if (!acked && open) {
                  await reader.ping()
                  session.alive()
                }
              }
              if (!open) return
              const count = Math.min(options.batch, options.maxInFlight - flight.count)
              if (pendingFrom === undefined && options.claimAfterMillis !== undefined && Date.now() >= nextClaimAt) {
                if ((await claim(count)) > 0) {
                  session.flush()
                  continue
                }
              }
              // Own pending entries are there at once; new ones are waited for, up to `block`.
              const wait = pendingFrom !== undefined ? [] : ["BLOCK", options.blockMillis]
              const reply = (await reader.call(
                "XREADGROUP",
                "GROUP",
                options.group,
                options.consumer,
                "COUNT",
                count,
                ...wait,
                "STREAMS",
                options.stream,
                pendingFrom ?? ">"
              )) as Reply
              session.alive()
              const entries = reply?.[0]?.[1] ?? []
              if (pendingFrom !== undefined) {
                if (entries.length === 0) {
                  pendingFrom = undefined
                  continue
                }
                await redeliver(entries)
                pendingFrom = entries[entries.length - 1]![0]
              } else {
                for (const [id, fields] of entries) if (fields !== null) deliver(id, fields, 1)
              }
              session.flush()
            }
          }
          readLoop().catch((cause) => {
            if (open) session.fail(redisError(cause))
          })
          return reader
        })
    }
  })

/**
 * Joins the group in the current Scope and returns the handle: deliveries, lifecycle, status, stats.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Connector.Handle<Redis, Delivery.Delivery<Entry>>, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.flatMap(resolve(options), (resolved) =>
    Effect.flatMap(driver(resolved), (driver) => Connector.make(driver, resolved.common))
  )

/**
 * The deliveries of a consumer in a group: joins when run, reads its own pending entries again on every
 * connection, closes everything when done. Acknowledge each (`delivery.ack`) once its work is done, or run the
 * work with `Delivery.process`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const consume = (options: Options): Stream.Stream<Delivery.Delivery<Entry>, ConnectorError.ConnectorError> =>
  Stream.unwrap(Effect.map(make(options), (handle) => handle.messages))

/**
 * One entry read without a group: its id and its fields.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamEntry {
  readonly id: string
  readonly fields: Entry
}

/**
 * @since 0.2.0
 * @category options
 */
export interface ReadOptions extends Connector.CommonOptions<StreamEntry> {
  /** A `redis://` / `rediss://` URL, as is or `Redacted`. */
  readonly connection: string | Redacted.Redacted<string>
  /** The stream's key. */
  readonly stream: string
  /** Where to start: `"$"` (entries added from now on, the default), `"0"` (the whole stream) or after an entry id. */
  readonly from?: string | undefined
  /** Entries read at most per `XREAD` (COUNT). Default 100. */
  readonly batch?: number | undefined
  /** How long a read waits for new entries (BLOCK). Default 5 s. */
  readonly block?: Duration.Input | undefined
}

interface ReadResolved {
  readonly common: Connector.Resolved<StreamEntry>
  readonly url: string
  readonly stream: string
  readonly from: string
  readonly batch: number
  readonly blockMillis: number
}

const entryId = /^\d+(-\d+)?$/

const resolveRead = (options: ReadOptions): Effect.Effect<ReadResolved, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const url = yield* connectionUrl(options.connection)
    const stream = yield* nonEmpty("stream", options.stream)
    const from = options.from ?? "$"
    if (typeof from !== "string" || (from !== "$" && !entryId.test(from))) {
      return yield* Effect.fail(config("from", from, '"$", "0" or an entry id (1700000000000-0)'))
    }
    const batch = yield* positiveInteger("batch", options.batch, 100)
    const blockMillis = yield* blockOption(options.block)
    const common = yield* Connector.resolve<StreamEntry>(connector, options, {
      liveness: { interval: blockMillis * 3, timeout: blockMillis * 3 },
      // A stream keeps its entries: pausing loses nothing.
      overflow: { strategy: "suspend", bufferSize: Math.max(batch, 1024) }
    })
    return { common, url, stream, from, batch, blockMillis }
  })

const reader = (options: ReadResolved): Driver.Driver<Redis, StreamEntry> => {
  // The id of the last entry read, kept across reconnects: reading resumes right after it. "$" is fixed to the
  // stream's last id at the first connection, so that a reconnect does not skip what was added meanwhile.
  let lastId = options.from === "$" ? undefined : options.from
  return {
    connector,
    delivery: () => "resumed",
    connect: (session) =>
      Effect.gen(function* () {
        const client = yield* openReader(
          options.url,
          `streamemit:read:${options.stream}`,
          session as Driver.Session<never>
        )
        if (lastId === undefined) {
          const latest = (yield* Effect.tryPromise({
            try: () => client.call("XREVRANGE", options.stream, "+", "-", "COUNT", 1),
            catch: redisError
          })) as Array<[string, Array<string>]>
          lastId = latest[0]?.[0] ?? "0-0"
        }
        const gate = yield* Connector.pullGate(session as Driver.Session<never>)
        let open = true
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            open = false
          })
        )
        const readLoop = async () => {
          while (open) {
            await gate.beforeRead()
            if (!open) return
            const reply = (await client.call(
              "XREAD",
              "COUNT",
              options.batch,
              "BLOCK",
              options.blockMillis,
              "STREAMS",
              options.stream,
              lastId!
            )) as Reply
            session.alive()
            for (const [id, fields] of reply?.[0]?.[1] ?? []) {
              lastId = id
              if (fields === null) continue
              session.push({ id, fields: entryOf(fields) }, sizeOf(fields))
            }
            session.flush()
          }
        }
        readLoop().catch((cause) => {
          if (open) session.fail(redisError(cause))
        })
        return client
      })
  }
}

/**
 * Reads a stream without a group in the current Scope and returns the handle. Nothing is acknowledged: every
 * reader sees every entry, and after a reconnect reading resumes right after the last entry read (`Gap` says
 * `resumed`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeReader = (
  options: ReadOptions
): Effect.Effect<Connector.Handle<Redis, StreamEntry>, ConnectorError.ConnectorError, Scope.Scope> =>
  Effect.flatMap(resolveRead(options), (resolved) => Connector.make(reader(resolved), resolved.common))

/**
 * The entries of a stream from `from` on, without a group (`XREAD`): a plain, resumable reader.
 *
 * @since 0.2.0
 * @category constructors
 */
export const read = (options: ReadOptions): Stream.Stream<StreamEntry, ConnectorError.ConnectorError> =>
  Stream.unwrap(Effect.map(makeReader(options), (handle) => handle.messages))

/**
 * @since 0.2.0
 * @category options
 */
export interface RelayOptions<A> {
  /** A `redis://` / `rediss://` URL, as is or `Redacted`. */
  readonly connection: string | Redacted.Redacted<string>
  /** The stream's key the items are added to. */
  readonly stream: string
  /** An item's fields. Default: a string as `{ data }`, anything else as `{ data: JSON }`. */
  readonly encode?: ((item: A) => Readonly<Record<string, string>>) | undefined
  /** Keep about this many entries (`MAXLEN ~`): older ones are trimmed as new ones come. Default: no trimming. */
  readonly maxLen?: number | undefined
}

const defaultEncode = (item: unknown): Readonly<Record<string, string>> => ({
  data: typeof item === "string" ? item : JSON.stringify(item)
})

/**
 * A writer of field lists into the stream: one pipeline of `XADD` per batch; any failed `XADD` fails the batch
 * with a typed error (nothing is dropped quietly: the sink fails, and the caller retries or stops).
 */
const relayWriter = <A>(options: RelayOptions<A>) =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const url = yield* connectionUrl(options.connection)
    const stream = yield* nonEmpty("stream", options.stream)
    if (options.encode !== undefined && typeof options.encode !== "function") {
      return yield* Effect.fail(config("encode", options.encode, "a function"))
    }
    const trim =
      options.maxLen === undefined ? [] : ["MAXLEN", "~", yield* positiveInteger("maxLen", options.maxLen, 1)]
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(url, { ...ours, connectionName: `streamemit:relay:${stream}` })),
      (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
    )
    client.on("error", () => {})
    yield* Effect.tryPromise({ try: () => client.connect(), catch: redisError })
    const write = (entries: ReadonlyArray<ReadonlyArray<string>>) =>
      Effect.tryPromise({
        try: async () => {
          const pipeline = client.pipeline()
          for (const fields of entries) pipeline.call("XADD", stream, ...trim, "*", ...fields)
          const results = (await pipeline.exec()) ?? []
          const failed = results.find(([cause]) => cause !== null)
          if (failed) throw failed[0]
        },
        catch: redisError
      })
    return { write, encode: options.encode ?? (defaultEncode as (item: A) => Readonly<Record<string, string>>) }
  })

const fieldsOf = (entry: Readonly<Record<string, string>>) => {
  const fields: Array<string> = []
  for (const key in entry) fields.push(key, entry[key]!)
  return fields
}

/**
 * The relay's writer, for code that adds items itself (one at a time, or in batches) rather than through a
 * `Sink`: `add(items)` adds them in order with one pipeline of `XADD`, and fails with a typed error when Redis
 * does. The connection closes with the Scope.
 *
 * @since 0.2.0
 * @category relay
 */
export const writer = <A>(
  options: RelayOptions<A>
): Effect.Effect<
  { readonly add: (items: ReadonlyArray<A>) => Effect.Effect<void, ConnectorError.ConnectorError> },
  ConnectorError.ConnectorError,
  Scope.Scope
> =>
  Effect.map(relayWriter(options), ({ encode, write }) => ({
    add: (items: ReadonlyArray<A>) => write(items.map((item) => fieldsOf(encode(item))))
  }))

/**
 * A `Sink` that adds every item to a stream (`XADD`, pipelined per chunk), so that a lossy source becomes a
 * durable, shared, replayable one: `Stream.run(pubsub.messages, RedisStreams.relay({ … }))`. Fails with a
 * typed error when Redis does.
 *
 * @since 0.2.0
 * @category relay
 */
export const relay = <A>(options: RelayOptions<A>): Sink.Sink<void, A, never, ConnectorError.ConnectorError> =>
  Sink.unwrap(
    Effect.map(relayWriter(options), ({ encode, write }) =>
      Sink.forEachArray((items: ReadonlyArray<A>) => write(items.map((item) => fieldsOf(encode(item)))))
    )
  )

/**
 * `relay` for a connector's `signals`: messages are added as `relay` adds them, and every `Gap` of the source
 * becomes a marker entry (`streamemit-gap`: `resumed` or `possible-loss`, `downtime-ms`) in its place, so that the
 * stream's consumers see where the source may have lost messages. Other lifecycle events are not written.
 *
 * @since 0.2.0
 * @category relay
 */
export const relaySignals = <A>(
  options: RelayOptions<A>
): Sink.Sink<void, Lifecycle.Signal<A>, never, ConnectorError.ConnectorError> =>
  Sink.unwrap(
    Effect.map(relayWriter(options), ({ encode, write }) =>
      Sink.forEachArray((signals: ReadonlyArray<Lifecycle.Signal<A>>) => {
        const entries: Array<ReadonlyArray<string>> = []
        for (const signal of signals) {
          if (signal._tag === "Message") entries.push(fieldsOf(encode(signal.message)))
          else if (signal._tag === "Gap") {
            entries.push(["streamemit-gap", signal.delivery, "downtime-ms", String(Duration.toMillis(signal.downtime))])
          }
        }
        return entries.length === 0 ? Effect.void : write(entries)
      })
    )
  )
