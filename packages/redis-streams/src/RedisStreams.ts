/**
 * A consumer in a Redis Streams consumer group (`ioredis`) as a scoped, bounded, self-healing stream of
 * deliveries that are acknowledged after the work is done: at-least-once, shared by every consumer of the group.
 * On every connection it first reads its own pending entries again (delivered, never acknowledged), so nothing is
 * forgotten across a reconnect; at most `maxInFlight` deliveries are unacknowledged at a time. Reconnect,
 * lifecycle, overflow and metrics are core's.
 *
 * Over 500 lines on purpose: this is the package's public surface — the consumer, the reader, the relay sink, the
 * lease and the checkpoint store, each with its documented options (a third of the file is their docs). The
 * machinery is in `internal/` (the consumer's driver, the Redis helpers, the lease).
 *
 * @since 0.2.0
 */
import * as Os from "node:os"
import {
  Checkpoint,
  Connector,
  type ConnectorError,
  type Delivery,
  type Driver,
  type Lifecycle
} from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import type { Cluster, Redis } from "ioredis"
import * as Consumer from "./internal/consumer.ts"
import * as Lease from "./internal/lease.ts"
import type * as Internal from "./internal/redis.ts"
import {
  blockOption,
  type ClusterConnection,
  client,
  config,
  connectionTarget,
  connector,
  entryOf,
  fieldsOf,
  nonEmpty,
  openReader,
  positiveInteger,
  type Reply,
  redisError,
  sizeOf,
  slotOf,
  type Target
} from "./internal/redis.ts"

/**
 * Where to connect: one server's URL (as is or `Redacted`), or a Redis Cluster's seed nodes. On a cluster, the
 * keys of one consumer (its streams and `deadLetter`) must share a hash slot: give them one hash tag
 * (`{orders}:eu`, `{orders}:us`, `{orders}:dead`).
 *
 * @since 0.2.0
 * @category options
 */
export type Connection = string | Redacted.Redacted<string> | ClusterConnection

/**
 * A connection of ours: one server's, or a cluster's.
 *
 * @since 0.2.0
 * @category models
 */
export type Client = Redis | Cluster

/**
 * One entry of the stream: its fields as the producer wrote them (`XADD key * field value …`).
 *
 * @since 0.2.0
 * @category models
 */
export type Entry = Internal.Entry

/**
 * What to do with an entry the `schema` rejects: `"fail"` the stream (the entry stays pending, read again after a
 * restart), `"skip"` it (acknowledged, counted in `streamemit_decode_skipped_total`), or move it to the
 * `"dead-letter"` stream (acknowledged, counted in `streamemit_dead_lettered_total`).
 *
 * @since 0.2.0
 * @category options
 */
export type OnDecodeError = Consumer.OnDecodeError

/**
 * @since 0.2.0
 * @category options
 */
export interface Options<A = Entry> extends Connector.CommonOptions<Delivery.Delivery<A>> {
  /** A `redis://` / `rediss://` URL, as is or `Redacted`, or `{ cluster: [seed URLs] }` for a Redis Cluster. */
  readonly connection: Connection
  /** The stream's key, or several: one read waits on all of them (`delivery.source` says which). */
  readonly stream: string | ReadonlyArray<string>
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
   * Work that may run longer than the group's `claimAfter`: every this often, the deliveries this consumer still
   * holds are renewed (`XCLAIM … JUSTID` resets their idle time), so that no other consumer claims them. Must be
   * shorter than `claimAfter`. Default: off.
   */
  readonly renewEvery?: Duration.Input | false | undefined
  /**
   * An entry delivered this many times without an ack is not delivered again: it is moved to `deadLetter`
   * (required with it) and acknowledged. Default: no limit.
   */
  readonly maxDeliveries?: number | undefined
  /**
   * The stream key dead letters are added to, with their original id, stream, group, delivery count and reason
   * (`streamemit-id`, `-stream`, `-group`, `-deliveries`, `-reason`).
   */
  readonly deadLetter?: string | undefined
  /**
   * Decode each entry's fields with this Schema (e.g. `Schema.Struct({ data: Schema.fromJsonString(Order) })` for
   * entries written by `relay`); `delivery.item` is the decoded value.
   */
  readonly schema?: Schema.Decoder<A> | undefined
  /** An entry the Schema rejects. Default `"dead-letter"` when `deadLetter` is set, else `"fail"`. */
  readonly onDecodeError?: OnDecodeError | undefined
}

/**
 * Entries moved to their dead-letter stream (or, by `term` without one, acknowledged) without their work done, by
 * connector, name and reason (`max-deliveries`, `term`, `decode`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const deadLetteredTotal: Metric.Counter<number> = Consumer.deadLetteredTotal

/**
 * The key (a hash, next to the stream) where the consumers of a group count the entries already reported as
 * trimmed before the group read them, so that each loss is reported once per group. Delete it with the stream.
 *
 * @since 0.2.0
 * @category models
 */
export const lostKey: (stream: string) => string = Consumer.lostKey

/**
 * Every read answers within `block` (with entries or none): three blocks of silence (and at least one block and a
 * second: Redis times a BLOCK out on its 100 ms cron, late under load) is a dead connection.
 */
const silenceAllowed = (blockMillis: number) => {
  const millis = Math.max(blockMillis * 3, blockMillis + 1000)
  return { interval: millis, timeout: millis }
}

/** On a cluster, one consumer's keys must live on one node: its multi-stream reads and dead-letter MULTI span them. */
const sameSlot = (streams: ReadonlyArray<string>, deadLetter: string | undefined) => {
  const slot = slotOf(streams[0]!)
  const expected = "keys of one hash slot on a cluster: give them one hash tag, e.g. {orders}:eu and {orders}:us"
  if (streams.some((stream) => slotOf(stream) !== slot)) {
    return Effect.fail(config("stream", streams, expected))
  }
  if (deadLetter !== undefined && slotOf(deadLetter) !== slot) {
    return Effect.fail(config("deadLetter", deadLetter, `${expected} (the stream's tag)`))
  }
  return Effect.void
}

const resolve = <A>(options: Options<A>): Effect.Effect<Consumer.Resolved<A>, ConnectorError.ConnectorError> =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const target = yield* connectionTarget(options.connection)
    const given = options.stream
    const streams: Array<string> = []
    if (Array.isArray(given)) {
      if (given.length === 0) return yield* Effect.fail(config("stream", given, "a key or a non-empty list of keys"))
      for (const stream of given) streams.push(yield* nonEmpty("stream", stream))
      if (new Set(streams).size !== streams.length) {
        return yield* Effect.fail(config("stream", given, "distinct keys"))
      }
    } else streams.push(yield* nonEmpty("stream", given))
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
    let renewEveryMillis: number | undefined
    if (options.renewEvery !== undefined && options.renewEvery !== false) {
      const renewEvery = yield* Connector.duration(connector, "renewEvery", options.renewEvery, "1 second")
      renewEveryMillis = Math.max(1, Duration.toMillis(renewEvery))
      if (claimAfterMillis !== undefined && renewEveryMillis >= claimAfterMillis) {
        return yield* Effect.fail(config("renewEvery", options.renewEvery, "a duration shorter than claimAfter"))
      }
    }
    let maxDeliveries: number | undefined
    let deadLetter: string | undefined
    if (options.maxDeliveries !== undefined || options.deadLetter !== undefined) {
      if (options.deadLetter === undefined) {
        return yield* Effect.fail(config("deadLetter", undefined, "a stream key (required with maxDeliveries)"))
      }
      deadLetter = yield* nonEmpty("deadLetter", options.deadLetter)
      if (streams.includes(deadLetter)) {
        return yield* Effect.fail(config("deadLetter", deadLetter, "a key other than stream"))
      }
      if (options.maxDeliveries !== undefined) {
        maxDeliveries = yield* positiveInteger("maxDeliveries", options.maxDeliveries, 1)
      }
    }
    if (target._tag === "Cluster") yield* sameSlot(streams, deadLetter)
    if (options.schema !== undefined && !Schema.isSchema(options.schema)) {
      return yield* Effect.fail(config("schema", options.schema, "a Schema"))
    }
    const onDecodeError = options.onDecodeError ?? (deadLetter === undefined ? "fail" : "dead-letter")
    if (onDecodeError !== "fail" && onDecodeError !== "skip" && onDecodeError !== "dead-letter") {
      return yield* Effect.fail(config("onDecodeError", onDecodeError, '"fail", "skip" or "dead-letter"'))
    }
    if (onDecodeError === "dead-letter" && deadLetter === undefined) {
      return yield* Effect.fail(config("onDecodeError", onDecodeError, '"fail" or "skip" (no deadLetter is set)'))
    }
    const common = yield* Connector.resolve<Delivery.Delivery<A>>(connector, options, {
      liveness: silenceAllowed(blockMillis),
      // Reading stops at maxInFlight; the buffer only holds what was read.
      overflow: { strategy: "suspend", bufferSize: Math.max(batch, 1024) }
    })
    const decode =
      options.schema === undefined
        ? undefined
        : (Schema.decodeUnknownResult(options.schema as Schema.Decoder<A, never>) as Consumer.Resolved<A>["decode"])
    return {
      common,
      target,
      streams,
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
      deadLetter,
      renewEveryMillis,
      decode,
      onDecodeError
    }
  })

/**
 * Joins the group in the current Scope and returns the handle: deliveries, lifecycle, status, stats.
 *
 * @since 0.2.0
 * @category constructors
 */
export function make<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Effect.Effect<Connector.Handle<Client, Delivery.Delivery<A>>, ConnectorError.ConnectorError, Scope.Scope>
export function make(
  options: Options<Entry>
): Effect.Effect<Connector.Handle<Client, Delivery.Delivery<Entry>>, ConnectorError.ConnectorError, Scope.Scope>
export function make<A>(
  options: Options<A>
): Effect.Effect<Connector.Handle<Client, Delivery.Delivery<A>>, ConnectorError.ConnectorError, Scope.Scope> {
  return Effect.flatMap(resolve(options), (resolved) =>
    Effect.flatMap(Consumer.driver(resolved), (driver) => Connector.make(driver, resolved.common))
  )
}

/**
 * The deliveries of a consumer in a group: joins when run, reads its own pending entries again on every
 * connection, closes everything when done. Settle each — `ack` once its work is done, `nak(delay)` to have it
 * again later, `term(reason)` for a poison entry — or run the work with `Delivery.process`.
 *
 * @since 0.2.0
 * @category constructors
 */
export function consume<A>(
  options: Options<A> & { readonly schema: Schema.Decoder<A> }
): Stream.Stream<Delivery.Delivery<A>, ConnectorError.ConnectorError>
export function consume(options: Options<Entry>): Stream.Stream<Delivery.Delivery<Entry>, ConnectorError.ConnectorError>
export function consume<A>(options: Options<A>): Stream.Stream<Delivery.Delivery<A>, ConnectorError.ConnectorError> {
  return Stream.unwrap(Effect.map(make(options as Options<Entry>), (handle) => handle.messages)) as never
}

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
  /** A `redis://` / `rediss://` URL, as is or `Redacted`, or `{ cluster: [seed URLs] }` for a Redis Cluster. */
  readonly connection: Connection
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
  readonly target: Target
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
    const target = yield* connectionTarget(options.connection)
    const stream = yield* nonEmpty("stream", options.stream)
    const from = options.from ?? "$"
    if (typeof from !== "string" || (from !== "$" && !entryId.test(from))) {
      return yield* Effect.fail(config("from", from, '"$", "0" or an entry id (1700000000000-0)'))
    }
    const batch = yield* positiveInteger("batch", options.batch, 100)
    const blockMillis = yield* blockOption(options.block)
    const common = yield* Connector.resolve<StreamEntry>(connector, options, {
      liveness: silenceAllowed(blockMillis),
      // A stream keeps its entries: pausing loses nothing.
      overflow: { strategy: "suspend", bufferSize: Math.max(batch, 1024) }
    })
    return { common, target, stream, from, batch, blockMillis }
  })

const reader = (options: ReadResolved): Driver.Driver<Client, StreamEntry> => {
  // The id of the last entry read, kept across reconnects: reading resumes right after it. "$" is fixed to the
  // stream's last id at the first connection, so that a reconnect does not skip what was added meanwhile.
  let lastId = options.from === "$" ? undefined : options.from
  return {
    connector,
    delivery: () => "resumed",
    connect: (session) =>
      Effect.gen(function* () {
        const client = yield* openReader(
          options.target,
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
): Effect.Effect<Connector.Handle<Client, StreamEntry>, ConnectorError.ConnectorError, Scope.Scope> =>
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
  /** A `redis://` / `rediss://` URL, as is or `Redacted`, or `{ cluster: [seed URLs] }` for a Redis Cluster. */
  readonly connection: Connection
  /** The stream's key the items are added to. */
  readonly stream: string
  /** An item's fields. Default: a string as `{ data }`, anything else as `{ data: JSON }`. */
  readonly encode?: ((item: A) => Readonly<Record<string, string>>) | undefined
  /** Keep about this many entries (`MAXLEN ~`): older ones are trimmed as new ones come. Default: no trimming. */
  readonly maxLen?: number | undefined
  /**
   * Keep about this much time of entries (`MINID ~`, from this process's clock: entry ids are the server's
   * milliseconds). Not with `maxLen`. Default: no trimming.
   */
  readonly maxAge?: Duration.Input | undefined
}

/**
 * A writer of field lists into the stream: one pipeline of `XADD` per batch; any failed `XADD` fails the batch
 * with a typed error (nothing is dropped quietly: the sink fails, and the caller retries or stops).
 */
const relayWriter = <A>(options: RelayOptions<A>) =>
  Effect.gen(function* () {
    if (typeof options !== "object" || options === null) {
      return yield* Effect.fail(config("options", options, "an options object"))
    }
    const target = yield* connectionTarget(options.connection)
    const stream = yield* nonEmpty("stream", options.stream)
    if (options.encode !== undefined && typeof options.encode !== "function") {
      return yield* Effect.fail(config("encode", options.encode, "a function"))
    }
    if (options.maxLen !== undefined && options.maxAge !== undefined) {
      return yield* Effect.fail(config("maxAge", options.maxAge, "not with maxLen: one trimming strategy per XADD"))
    }
    const maxLen =
      options.maxLen === undefined ? [] : ["MAXLEN", "~", yield* positiveInteger("maxLen", options.maxLen, 1)]
    const maxAgeMillis =
      options.maxAge === undefined
        ? undefined
        : Duration.toMillis(yield* Connector.duration(connector, "maxAge", options.maxAge, "1 hour"))
    // MINID moves with the clock: computed per batch.
    const trimArgs = () => (maxAgeMillis === undefined ? maxLen : ["MINID", "~", `${Date.now() - maxAgeMillis}-0`])
    const writer = yield* Effect.acquireRelease(
      Effect.sync(() => client(target, `streamemit:relay:${stream}`)),
      (writer) =>
        Effect.promise(() =>
          writer.quit().then(
            () => undefined,
            () => writer.disconnect()
          )
        )
    )
    writer.on("error", () => {})
    yield* Effect.tryPromise({ try: () => writer.connect(), catch: redisError })
    const write = (entries: ReadonlyArray<ReadonlyArray<string>>) =>
      Effect.tryPromise({
        try: async () => {
          const pipeline = writer.pipeline()
          const trim = trimArgs()
          if (trim.length === 0) for (const fields of entries) pipeline.call("XADD", stream, "*", ...fields)
          else for (const fields of entries) pipeline.call("XADD", stream, ...trim, "*", ...fields)
          const results = (await pipeline.exec()) ?? []
          const failed = results.find(([cause]) => cause !== null)
          if (failed) throw failed[0]
        },
        catch: redisError
      })
    const encode = options.encode
    // The default straight to a field list: no record to build and walk per item.
    const fieldsFor: (item: A) => ReadonlyArray<string> =
      encode === undefined
        ? (item) => ["data", typeof item === "string" ? item : JSON.stringify(item)]
        : (item) => fieldsOf(encode(item))
    return { write, fieldsFor }
  })

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
  Effect.map(relayWriter(options), ({ fieldsFor, write }) => ({
    add: (items: ReadonlyArray<A>) => write(items.map(fieldsFor))
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
    Effect.map(relayWriter(options), ({ fieldsFor, write }) =>
      Sink.forEachArray((items: ReadonlyArray<A>) => write(items.map(fieldsFor)))
    )
  )

/**
 * `relay` for a connector's `signals`: messages are added as `relay` adds them, and every `Gap` of the source
 * becomes a marker entry (`streamemit-gap`: `resumed` or `possible-loss`, `downtime-ms`, and `lost` when the
 * source counted them) in its place, so that the
 * stream's consumers see where the source may have lost messages. Other lifecycle events are not written.
 *
 * @since 0.2.0
 * @category relay
 */
export const relaySignals = <A>(
  options: RelayOptions<A>
): Sink.Sink<void, Lifecycle.Signal<A>, never, ConnectorError.ConnectorError> =>
  Sink.unwrap(
    Effect.map(relayWriter(options), ({ fieldsFor, write }) =>
      Sink.forEachArray((signals: ReadonlyArray<Lifecycle.Signal<A>>) => {
        const entries: Array<ReadonlyArray<string>> = []
        for (const signal of signals) {
          if (signal._tag === "Message") entries.push(fieldsFor(signal.message))
          else if (signal._tag === "Gap") {
            const marker = [
              "streamemit-gap",
              signal.delivery,
              "downtime-ms",
              String(Duration.toMillis(signal.downtime))
            ]
            if (signal.lost !== undefined) marker.push("lost", String(signal.lost))
            entries.push(marker)
          }
        }
        return entries.length === 0 ? Effect.void : write(entries)
      })
    )
  )

/**
 * @since 0.2.0
 * @category lease
 */
export type LeaseOptions = Lease.LeaseOptions

/**
 * Runs `work` only while holding a lease in Redis: of N replicas running the same work under the same `key`, one
 * at a time runs it; the others wait. The holder renews the lease every third of `ttl`; when it dies, its lease
 * expires and another replica takes over about `ttl` later. A holder that loses its lease (not renewed in time, or
 * taken) has its work interrupted, then waits to hold it again. When the work ends, the lease is given up and its
 * result returned; on interruption too. Made for a relay that must hold its upstream connection once:
 *
 * ```ts
 * // The upstream connection opens inside the lease, and closes when the lease is lost.
 * const relayPrices = Effect.scoped(
 *   Effect.flatMap(RedisPubSub.make({ connection, channels: ["prices"] }), (pubsub) =>
 *     Stream.run(pubsub.signals, RedisStreams.relaySignals({ connection, stream: "prices" }))
 *   )
 * ).pipe(RedisStreams.withLease({ connection, key: "prices:relay", ttl: "5 seconds" }))
 * ```
 *
 * Invalid options fail at once with a `Config` error; Redis being down only delays the lease.
 *
 * @since 0.2.0
 * @category lease
 */
export const withLease: (
  options: LeaseOptions
) => <A, E, R>(work: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ConnectorError.ConnectorError, R> = Lease.withLease

/**
 * @since 0.2.0
 * @category checkpoints
 */
export interface CheckpointStoreOptions {
  /** A `redis://` / `rediss://` URL, as is or `Redacted`, or `{ cluster: [seed URLs] }`. */
  readonly connection: Connection
  /** The hash that holds every checkpoint (one field per key). Default `streamemit:checkpoints`. */
  readonly hash?: string | undefined
}

/**
 * A `Checkpoint.Store` in a Redis hash: a save is one `HSET` (atomic), a load one `HGET`. Its connection closes
 * with the Layer. A field that cannot be read is a `Config` error naming the key and the hash.
 *
 * @since 0.2.0
 * @category checkpoints
 */
export const checkpointStore = (
  options: CheckpointStoreOptions
): Layer.Layer<Checkpoint.Store, ConnectorError.ConnectorError> =>
  Layer.effect(
    Checkpoint.Store,
    Effect.gen(function* () {
      const target = yield* connectionTarget(options.connection)
      const hash = yield* nonEmpty("hash", options.hash ?? "streamemit:checkpoints")
      const describe = `redis hash ${hash}`
      const redis = yield* Effect.acquireRelease(
        Effect.sync(() => client(target, "streamemit:checkpoints")),
        (redis) =>
          Effect.promise(() =>
            redis.quit().then(
              () => undefined,
              () => redis.disconnect()
            )
          )
      )
      redis.on("error", () => {})
      yield* Effect.tryPromise({ try: () => redis.connect(), catch: redisError })
      return Checkpoint.makeStore(describe, {
        read: async (key) => {
          const text = await redis.hget(hash, key)
          if (text === null) return undefined
          try {
            return JSON.parse(text) as unknown
          } catch {
            // Not JSON: reported as corrupt, with what is there.
            return text
          }
        },
        write: (key, saved) => redis.hset(hash, key, JSON.stringify(saved))
      })
    })
  )
